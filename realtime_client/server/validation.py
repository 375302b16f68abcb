"""Strict validation of client events, with the real service's error texts.

The real Realtime API validates every client event against its schema and answers a
violation with an ``error`` event whose ``code``, ``message`` and ``param`` follow the
OpenAI API's conventions (protocol.md §10): ``unknown_parameter`` ("Unknown parameter:
'session.bogus_field'."), ``invalid_type``, ``invalid_value`` ("Invalid value: 'x'.
Supported values are: 'a', 'b', and 'c'."), ``integer_below_min_value`` and friends,
``missing_required_parameter``. ``param`` is the dotted path from the event's root
(``session.audio.input.format.rate``, ``item.content[0].type``).

The schemas are small declarative trees (:class:`Obj`, :class:`Union`, :class:`Str`, …)
built once per dialect. :func:`validate` returns a cleaned deep copy or raises
:class:`ValidationError`; nothing is applied on failure, which is how an invalid
``session.update`` is discarded whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "Any_",
    "Bool",
    "Const",
    "Int",
    "List",
    "MAX_DEPTH",
    "MAX_SAFE_INTEGER",
    "Nullable",
    "Num",
    "Obj",
    "OneOf",
    "Sized",
    "Spec",
    "Str",
    "Union",
    "ValidationError",
    "check_depth",
    "describe_type",
    "enum_message",
    "json_size",
    "validate",
]


class ValidationError(Exception):
    """A client event broke the schema.

    Attributes:
        code: The ``error.code`` to send, e.g. ``"unknown_parameter"``.
        message: The ``error.message`` to send.
        param: The dotted path of the offending field, or ``None``.
    """

    def __init__(self, code: str | None, message: str, param: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


def describe_type(value: Any) -> str:
    """Name a JSON value's type the way the API's messages do ("an integer")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    return "an unknown type"


def _quote_list(values: Sequence[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def enum_message(value: Any, allowed: Sequence[str]) -> str:
    """The ``invalid_value`` text: "Invalid value: 'x'. Supported values are: …"."""
    shown = value if isinstance(value, str) else repr(value)
    return f"Invalid value: '{shown}'. Supported values are: {_quote_list(allowed)}."


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_error(path: str, expected: str, value: Any) -> ValidationError:
    return ValidationError(
        "invalid_type",
        f"Invalid type for '{path}': expected {expected}, but got {describe_type(value)} instead.",
        path,
    )


def _too_long(path: str, kind: str, limit: int, length: int) -> ValidationError:
    # The API's message for a string or array over its maximum length.
    return ValidationError(
        f"{kind}_above_max_length",
        f"Invalid '{path}': {kind} too long. Expected {_article(kind)} {kind} with maximum "
        f"length {limit}, but got {_article(kind)} {kind} with length {length} instead.",
        path,
    )


def _article(kind: str) -> str:
    return "an" if kind[0] in "aeiou" else "a"


class Spec:
    """A schema node: a JSON type test (:meth:`accepts_type`), then :meth:`refine`."""

    #: How the node is named in an ``invalid_type`` message.
    expected: str = "a value"

    def check(self, value: Any, path: str) -> Any:
        """Validate ``value`` found at ``path``; return the cleaned value."""
        if not self.accepts_type(value):
            raise _type_error(path, self.expected, value)
        return self.refine(value, path)

    def accepts_type(self, value: Any) -> bool:
        """Whether ``value`` has this node's JSON type (used by :class:`OneOf`)."""
        return True

    def refine(self, value: Any, path: str) -> Any:
        """Check a value of the right JSON type further; return the cleaned value."""
        return value


@dataclass
class Any_(Spec):
    """Anything (used for free-form JSON such as tool ``parameters``)."""

    expected: str = "a value"


@dataclass
class Str(Spec):
    """A string, optionally from a fixed set, optionally length-limited."""

    enum: Sequence[str] | None = None
    max_length: int | None = None
    expected: str = "a string"

    def accepts_type(self, value: Any) -> bool:
        return isinstance(value, str)

    def refine(self, value: Any, path: str) -> Any:
        if self.enum is not None and value not in self.enum:
            raise ValidationError("invalid_value", enum_message(value, self.enum), path)
        if self.max_length is not None and len(value) > self.max_length:
            raise _too_long(path, "string", self.max_length, len(value))
        return value


def json_size(value: Any) -> int:
    """The length of ``value`` as compact JSON, in bytes (C speed, no deep recursion).

    A value orjson cannot encode (nested deeper than it goes) is measured by an
    iterative walk instead, which counts its strings, keys and containers.
    """
    try:
        return len(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError):
        pass
    size = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            size += 2 + 2 * len(v) + sum(len(k) + 2 for k in v)
            stack.extend(v.values())
        elif isinstance(v, list):
            size += 2 + len(v)
            stack.extend(v)
        elif isinstance(v, str):
            size += len(v) + 2
        else:
            size += 8
    return size


@dataclass
class Sized(Spec):
    """``inner``, at most ``max_bytes`` long as compact JSON (free-form values, e.g. tools).

    The size is measured before ``inner`` looks at the value, so an oversized value costs
    one C-speed encoding, whatever it holds.
    """

    inner: Spec = field(default_factory=lambda: Any_())
    max_bytes: int = 0
    what: str = "value"

    def check(self, value: Any, path: str) -> Any:
        if isinstance(value, (dict, list)):
            size = json_size(value)
            if size > self.max_bytes:
                raise ValidationError(
                    "invalid_value",
                    f"Invalid '{path}': the {self.what} take {size} bytes of JSON, but at "
                    f"most {self.max_bytes} are supported.",
                    path,
                )
        return self.inner.check(value, path)


@dataclass
class Const(Spec):
    """Exactly one string value (a discriminator such as ``type``)."""

    value: str = ""

    @property
    def expected(self) -> str:  # type: ignore[override]
        return "a string"

    def accepts_type(self, value: Any) -> bool:
        return isinstance(value, str)

    def refine(self, value: Any, path: str) -> Any:
        if value != self.value:
            raise ValidationError("invalid_value", enum_message(value, [self.value]), path)
        return value


@dataclass
class Bool(Spec):
    """A JSON boolean."""

    expected: str = "a boolean"

    def accepts_type(self, value: Any) -> bool:
        return isinstance(value, bool)


#: Largest integer a JSON number carries exactly (2**53 - 1); the default bound of :class:`Int`.
MAX_SAFE_INTEGER = 2**53 - 1


def _show(value: float) -> str:
    # Integers in full (a bound of 9007199254740991 must not read 9.0072e+15).
    return str(value) if isinstance(value, int) else f"{value:g}"


def _range_check(kind: str, value: float, lo: float | None, hi: float | None, path: str) -> None:
    if lo is not None and value < lo:
        raise ValidationError(
            f"{kind}_below_min_value",
            f"Invalid '{path}': {kind} below minimum value. Expected a value >= {_show(lo)}, "
            f"but got {_show(value)} instead.",
            path,
        )
    if hi is not None and value > hi:
        raise ValidationError(
            f"{kind}_above_max_value",
            f"Invalid '{path}': {kind} above maximum value. Expected a value <= {_show(hi)}, "
            f"but got {_show(value)} instead.",
            path,
        )


@dataclass
class Int(Spec):
    """An integer (a float with no fraction is accepted, as JSON does not tell them apart).

    Bounded to ±(2**53 - 1) unless told otherwise: ``1e300`` has no fraction, and a
    larger integer could not be sent back as JSON (or used as a duration).
    """

    min: int | None = -MAX_SAFE_INTEGER
    max: int | None = MAX_SAFE_INTEGER
    expected: str = "an integer"

    def accepts_type(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def check(self, value: Any, path: str) -> Any:
        if isinstance(value, float) and value.is_integer():
            _range_check("integer", value, self.min, self.max, path)  # shown as sent
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _type_error(path, self.expected, value)
        _range_check("integer", value, self.min, self.max, path)
        return value


@dataclass
class Num(Spec):
    """A number (integer or decimal), optionally range-limited."""

    min: float | None = None
    max: float | None = None
    expected: str = "a decimal"

    def accepts_type(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    def refine(self, value: Any, path: str) -> Any:
        _range_check("decimal", float(value), self.min, self.max, path)
        return value


@dataclass
class Nullable(Spec):
    """``null`` or the inner spec."""

    inner: Spec = field(default_factory=Any_)

    @property
    def expected(self) -> str:  # type: ignore[override]
        return self.inner.expected

    def accepts_type(self, value: Any) -> bool:
        return value is None or self.inner.accepts_type(value)

    def check(self, value: Any, path: str) -> Any:
        if value is None:
            return None
        return self.inner.check(value, path)


@dataclass
class List(Spec):
    """A JSON array of ``item`` with an optional maximum length."""

    item: Spec = field(default_factory=Any_)
    max_items: int | None = None
    expected: str = "an array"

    def accepts_type(self, value: Any) -> bool:
        return isinstance(value, list)

    def refine(self, value: Any, path: str) -> Any:
        if self.max_items is not None and len(value) > self.max_items:
            raise _too_long(path, "array", self.max_items, len(value))
        return [self.item.check(v, f"{path}[{i}]") for i, v in enumerate(value)]


@dataclass
class Obj(Spec):
    """A JSON object with known fields; any other key is ``unknown_parameter``."""

    fields: dict[str, Spec] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    #: Accept keys not in ``fields`` as they are (for free-form maps such as ``metadata``).
    open: bool = False
    #: Every value of an ``open`` object must match this spec, if given.
    values: Spec | None = None
    max_keys: int | None = None
    #: Longest key an ``open`` object accepts (``metadata``: 64, protocol.md §13).
    max_key_length: int | None = None
    expected: str = "an object"

    def accepts_type(self, value: Any) -> bool:
        return isinstance(value, Mapping)

    def refine(self, value: Any, path: str) -> Any:
        out: dict[str, Any] = {}
        for key, sub in value.items():
            sub_path = _join(path, key)
            spec = self.fields.get(key)
            if spec is None:
                if not self.open:
                    raise ValidationError(
                        "unknown_parameter", f"Unknown parameter: '{sub_path}'.", sub_path
                    )
                if self.max_key_length is not None and len(key) > self.max_key_length:
                    # The key itself is the string too long; the API's length message,
                    # pointed at the object that holds it.
                    raise _too_long(path, "string", self.max_key_length, len(key))
                out[key] = self.values.check(sub, sub_path) if self.values else sub
                continue
            out[key] = spec.check(sub, sub_path)
        for key in sorted(self.required):
            if key not in value:
                missing = _join(path, key)
                raise ValidationError(
                    "missing_required_parameter",
                    f"Missing required parameter: '{missing}'.",
                    missing,
                )
        if self.max_keys is not None and len(out) > self.max_keys:
            raise ValidationError(
                "object_above_max_properties",
                f"Invalid '{path}': too many properties. Expected an object with at most "
                f"{self.max_keys} properties, but got an object with {len(out)} properties "
                "instead.",
                path,
            )
        return out


@dataclass
class Union(Spec):
    """An object chosen by a discriminator key (``type`` by default)."""

    variants: dict[str, Obj] = field(default_factory=dict)
    key: str = "type"
    #: Variant used when the discriminator is absent (``None``: it is required).
    default: str | None = None
    expected: str = "an object"

    def accepts_type(self, value: Any) -> bool:
        return isinstance(value, Mapping)

    def refine(self, value: Any, path: str) -> Any:
        tag = value.get(self.key, self.default)
        key_path = _join(path, self.key)
        if tag is None:
            raise ValidationError(
                "missing_required_parameter", f"Missing required parameter: '{key_path}'.", key_path
            )
        if not isinstance(tag, str):
            raise _type_error(key_path, "a string", tag)
        variant = self.variants.get(tag)
        if variant is None:
            raise ValidationError("invalid_value", enum_message(tag, list(self.variants)), key_path)
        return variant.check(value, path)


@dataclass
class OneOf(Spec):
    """The first option whose JSON type matches (e.g. ``"inf"`` or an integer)."""

    options: Sequence[Spec] = ()
    expected_text: str = ""

    @property
    def expected(self) -> str:  # type: ignore[override]
        return self.expected_text or " or ".join(o.expected for o in self.options)

    def accepts_type(self, value: Any) -> bool:
        return any(o.accepts_type(value) for o in self.options)

    def check(self, value: Any, path: str) -> Any:
        for option in self.options:
            if option.accepts_type(value):
                return option.check(value, path)
        raise _type_error(path, f"one of {self.expected}", value)


def validate(spec: Spec, value: Any, path: str = "") -> Any:
    """Validate ``value`` against ``spec``; return a cleaned deep copy.

    Raises:
        ValidationError: With the code, message and dotted ``param`` the real service uses.
    """
    return spec.check(value, path)


#: Deepest nesting of objects and arrays accepted in a client event or a REST body (the
#: event itself is level 1; a tool's ``parameters`` in ``session.update`` start at level
#: 5). No source gives the real service's limit; real schemas nest a few levels (strict
#: structured outputs allow 10), and this keeps every echo of an accepted value (a
#: ``session.updated`` quoting the tools, a recording line) far inside what the server can
#: copy and serialise (orjson stops at 255 levels, Python's recursion at ~1000).
MAX_DEPTH = 128


def check_depth(value: Any, what: str = "event", path: str = "") -> None:
    """Refuse ``value`` if its objects and arrays nest more than :data:`MAX_DEPTH` deep.

    One pass without recursion, before anything copies or validates ``value``.

    Raises:
        ValidationError: ``invalid_value``, ``param`` the top-level field holding the
            deep value (under ``path``, the dotted path of ``value`` itself).
    """
    if type(value) is not dict and type(value) is not list:
        return
    stack: list[tuple[Any, int, str | None]] = [(value, 1, None)]
    while stack:
        node, depth, top = stack.pop()
        items: Any = node.items() if type(node) is dict else enumerate(node)
        for key, child in items:
            if type(child) is dict or type(child) is list:
                if top is not None:
                    where = top
                elif type(key) is str:
                    where = _join(path, key)
                else:
                    where = f"{path}[{key}]"
                if depth >= MAX_DEPTH:
                    raise ValidationError(
                        "invalid_value",
                        f"Invalid '{where}': too deeply nested. Expected at most {MAX_DEPTH} "
                        f"levels of nested objects and arrays in the {what}, but got more.",
                        where,
                    )
                stack.append((child, depth + 1, where))

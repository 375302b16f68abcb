"""Parsing and serializing events, in either dialect, with a fast audio path.

* :func:`parse_server_event` / :func:`parse_client_event` take text, bytes or a dict
  and return the specific canonical class; an unknown ``type`` gives
  :class:`UnknownServerEvent` / :class:`UnknownClientEvent` holding the raw dict.
  Malformed input raises :class:`~realtime_client.errors.InvalidEventError`, never a
  bare ``json`` or ``pydantic`` exception.
* :func:`to_wire` / :func:`dumps` serialize a model in the requested dialect.
* :func:`build_append` goes from samples straight to the wire bytes of an
  ``input_audio_buffer.append``: the hot path pays for no generic validation.

Text is decoded once with orjson; the dict is validated by the one class its ``type``
names (a dict lookup, no union search) and kept as ``event.raw``. Audio deltas skip
generic validation for a few exact type checks.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import orjson
import pybase64
from pydantic import BaseModel, ValidationError

from realtime_client.audio.formats import float32_to_pcm16

from ..errors import InvalidEventError
from ._base import ClientEvent, Event, ServerEvent
from .beta import client_from_beta, client_to_beta, server_from_beta, server_to_beta
from .client import CLIENT_EVENT_CLASSES, UnknownClientEvent
from .server import (
    _DELTA_FIELDS,
    SERVER_EVENT_CLASSES,
    ResponseOutputAudioDelta,
    UnknownServerEvent,
    _remember_payload,
)

__all__ = [
    "Dialect",
    "build_append",
    "dumps",
    "parse_client_event",
    "parse_server_event",
    "to_wire",
]

Dialect = Literal["ga", "beta"]

RawEvent = str | bytes | bytearray | memoryview | dict[str, Any]


_SERVER_CLASSES: dict[str, type[Event]] = dict(SERVER_EVENT_CLASSES)
_CLIENT_CLASSES: dict[str, type[Event]] = dict(CLIENT_EVENT_CLASSES)
_AUDIO_DELTA = ResponseOutputAudioDelta.wire_type


def describe_errors(exc: ValidationError) -> str:
    """The first three errors of a validation failure, ``where: why``, and how many more."""
    parts = []
    # Every error is built (pydantic has no partial list): without inputs and contexts
    # (copies of the bad values) that costs a third as much for an event of thousands.
    for err in exc.errors(include_url=False, include_context=False, include_input=False)[:3]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where or '<root>'}: {err.get('msg')}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def _scan(data: str | bytes | bytearray | memoryview) -> None:
    """Refuse a large frame with too many arrays and objects before decoding it.

    ``{`` and ``[`` are counted at memchr speed. Over the limit, those inside strings (a
    tool call's JSON arguments, say) are left out and the rest counted again, unless the
    frame has so many strings that this would cost more than decoding it (then it is
    refused as it stands).
    """
    if len(data) <= _SCAN_ABOVE:
        return
    text: Any = bytes(data) if isinstance(data, memoryview) else data
    if isinstance(text, str):
        opened = text.count("{") + text.count("[")
        if opened > MAX_CONTAINERS and text.count('"') <= _MAX_QUOTES_STRIPPED:
            bare = _JSON_STRING.sub("", text)
            opened = bare.count("{") + bare.count("[")
    else:
        opened = text.count(b"{") + text.count(b"[")
        if opened > MAX_CONTAINERS and text.count(b'"') <= _MAX_QUOTES_STRIPPED:
            bare_bytes = _JSON_STRING_BYTES.sub(b"", text)
            opened = bare_bytes.count(b"{") + bare_bytes.count(b"[")
    if opened > MAX_CONTAINERS:
        raise InvalidEventError(f"event has more than {MAX_CONTAINERS} arrays and objects", data)


def _load(data: RawEvent) -> dict[str, Any]:
    if isinstance(data, dict):
        obj: Any = data
    else:
        _scan(data)
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InvalidEventError(f"event is not valid JSON: {exc}", data) from exc
    if not isinstance(obj, dict):
        raise InvalidEventError(f"event must be a JSON object, got {type(obj).__name__}", data)
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise InvalidEventError(
            "event has no 'type' field" if kind is None else "event 'type' must be a string",
            data,
        )
    return obj


#: Most elements one JSON array of an event may hold, and most arrays and objects in one
#: event. Real events stay far below (128 tools, a few thousand logprobs); past them an
#: event is refused before validation, whose cost grows with every element (a million
#: tiny ones took seconds), so no event costs more than a few tens of ms.
MAX_LIST_ITEMS = 8_192
MAX_CONTAINERS = 16_384
# A frame this small cannot break the limits (an element takes 2 bytes at least): only
# larger frames, and events given as dicts, are walked.
_WALK_ABOVE = 2 * MAX_LIST_ITEMS
# Frames above this size are first scanned for their brackets (a memchr-speed count),
# so a frame of a million tiny objects is refused before decoding builds them.
_SCAN_ABOVE = 64 * 1024
# A JSON string literal (escapes included), to count brackets outside strings only; done
# for frames with at most this many quotes (about 0.1 us per string, 5 ns per byte).
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_JSON_STRING_BYTES = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_MAX_QUOTES_STRIPPED = 4 * MAX_CONTAINERS


def _check_shape(obj: dict[str, Any], raw: Any) -> None:
    """Refuse an event wider or bigger than the limits above, in one cheap pass."""
    stack: list[Any] = [obj]
    seen = 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_CONTAINERS:
            raise InvalidEventError(
                f"invalid {obj['type']!r} event: more than {MAX_CONTAINERS} arrays and objects",
                raw,
            )
        if type(node) is dict:
            children: Any = node.values()
        else:
            if len(node) > MAX_LIST_ITEMS:
                raise InvalidEventError(
                    f"invalid {obj['type']!r} event: an array of {len(node)} elements "
                    f"(at most {MAX_LIST_ITEMS})",
                    raw,
                )
            children = node
        stack.extend(c for c in children if type(c) is dict or type(c) is list)


def _from_dict(
    obj: dict[str, Any],
    classes: dict[str, type[Event]],
    unknown: type[Event],
    raw: Any,
) -> Event:
    cls = classes.get(obj["type"], unknown)
    try:
        event = cls.model_validate(obj)
    except ValidationError as exc:
        message = f"invalid {obj['type']!r} event: {describe_errors(exc)}"
        raise InvalidEventError(message, raw) from exc
    try:
        # An event must serialise back (to_json, recordings): orjson stops at 255 levels
        # of nesting, which decoding does not. One pass, ~1 us for a typical event.
        orjson.dumps(obj)
    except orjson.JSONEncodeError as exc:
        raise InvalidEventError(
            f"invalid {obj['type']!r} event: nested beyond the serialisable depth ({exc})", raw
        ) from exc
    event._set_wire(raw)
    return event


def _fast_audio_delta(obj: dict[str, Any], raw: Any) -> Event | None:
    """Build a ``response.output_audio.delta`` without generic validation.

    The checks are the model's own (strings and ints, exactly); anything unusual
    returns ``None`` so the validating path reports it precisely. This is the one
    event that arrives 50 times a second per session, so it avoids every avoidable
    allocation: a plain delta's decoded dict *is* the model's ``__dict__``.
    """
    try:
        if (
            type(obj["delta"]) is not str
            or type(obj["response_id"]) is not str
            or type(obj["item_id"]) is not str
            or type(obj["output_index"]) is not int
            or type(obj["content_index"]) is not int
        ):
            return None
    except KeyError:
        return None
    event_id = obj.get("event_id")
    if len(obj) == 7 and type(event_id) is str:
        values = obj  # exactly the seven fields: nothing else holds this fresh dict
        fields_set = set(_DELTA_FIELDS)
        extra: dict[str, Any] = {}
    else:
        if event_id is not None and type(event_id) is not str:
            return None
        values = {name: obj.get(name) for name in _AUDIO_DELTA_FIELD_ORDER}
        fields_set = set(obj.keys() & _DELTA_FIELDS) | {"type"}
        extra = {k: v for k, v in obj.items() if k not in _DELTA_FIELDS}
    event = _new_delta(ResponseOutputAudioDelta)
    _set_dict(event, values)
    _set_fields_set(event, fields_set)
    _set_extra(event, extra)
    _set_private(event, None)
    if raw is not obj:  # GA: to_dict() gives back exactly obj, so keep nothing
        object.__setattr__(event, "_wire", raw)
    return event


_new_delta = object.__new__  # pydantic's __new__ is object's; skip the lookup
_loads = orjson.loads
_LE_I2 = np.dtype("<i2")
_AUDIO_DELTA_FIELD_ORDER = tuple(ResponseOutputAudioDelta.model_fields)
# The slot descriptors, called directly: cheaper than object.__setattr__ by name.
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


_DELTA_KEY = b'"delta":"'
#: Frames shorter than this (about 60 ms of PCM16 audio) are decoded by orjson whole: below
#: it, splitting costs more than orjson takes to scan the payload (measured here).
_SPLIT_MIN_CHARS = 4096


def _split_audio_delta(data: bytes) -> tuple[dict[str, Any], bytes] | None:
    """``(orjson.loads(data), decoded payload)`` for a large audio delta, or ``None``.

    A delta frame is a few short fields around one long base64 string. Instead of having
    orjson scan that string (and copy it into a new ``str``), the payload is cut out with
    two ``find`` calls and decoded (strict base64) at once, and only the short rest goes
    through orjson. The decoded bytes are kept for :meth:`ResponseOutputAudioDelta.pcm16`.
    Frames arrive as bytes from the transports; text frames take the whole-frame path.

    It is exact, not a heuristic. Strict base64 holds no ``"``, ``\\``, control or
    non-ASCII character, so the payload is a valid JSON string exactly as written, and
    the frame is valid JSON exactly when the rest is. With no backslash in the rest
    (so no escaped quote or key), every key appears there as written: a single
    ``"delta"`` in the rest is the key that was cut, and orjson confirms it is the
    top-level one. Anything else (escapes, a second ``"delta"``, whitespace around the
    colon, a payload that is not strict base64, another event type) returns ``None``,
    and the caller decodes the frame whole.
    """
    start = data.find(_DELTA_KEY)
    if start < 0:
        return None
    start += len(_DELTA_KEY)
    end = data.find(b'"', start)
    if end < 0:
        return None
    rest = data[:start] + data[end:]
    if b"\\" in rest or rest.count(b'"delta"') != 1:
        return None
    try:
        delta = data[start:end].decode("ascii")
        decoded = pybase64.b64decode(delta, None, True)  # None, True: validate
        obj = orjson.loads(rest)
    except ValueError:  # UnicodeDecodeError and orjson.JSONDecodeError included
        return None
    if type(obj) is not dict or obj.get("type") != _AUDIO_DELTA or obj.get("delta") != "":
        return None
    obj["delta"] = delta
    return obj, decoded


def _parse(
    data: RawEvent,
    dialect: Dialect,
    classes: dict[str, type[Event]],
    unknown: type[Event],
    from_beta: Any,
    walk: bool = True,
) -> Event:
    if dialect not in ("ga", "beta"):
        raise ValueError(f"dialect must be 'ga' or 'beta', got {dialect!r}")
    if isinstance(data, str | bytes | bytearray | memoryview) and len(data) <= _WALK_ABOVE:
        walk = False  # too small to break the shape limits
    raw = _load(data)
    obj = from_beta(raw) if dialect == "beta" else raw
    if obj["type"] == _AUDIO_DELTA and classes is _SERVER_CLASSES:
        event = _fast_audio_delta(obj, raw)
        if event is not None:
            return event
    if walk:
        _check_shape(obj, raw)
    parsed = _from_dict(obj, classes, unknown, raw)
    if dialect == "beta":
        object.__setattr__(parsed, "_wire_beta", True)
    return parsed


def parse_server_event(data: RawEvent, *, dialect: Dialect = "ga") -> ServerEvent:
    """Parse one server event into its canonical class.

    Args:
        data: A text frame (``str`` / ``bytes``) or an already-decoded dict.
        dialect: ``"ga"`` (default) or ``"beta"``; beta names and shapes are mapped
            to the GA classes.

    Returns:
        The specific event, or :class:`UnknownServerEvent` for an unknown ``type``.

    Raises:
        InvalidEventError: Not JSON, not an object, no string ``type``, or fields of
            the wrong type for a known event.
    """
    walk = True
    if (type(data) is bytes or type(data) is str) and dialect == "ga":
        size = len(data)
        if size > _SCAN_ABOVE:
            _scan(data)
        walk = size > _WALK_ABOVE
        # Hot path: one orjson pass (over everything but a large delta's payload), one
        # dict lookup, no union search.
        obj: Any = None
        split = None
        if type(data) is bytes and len(data) >= _SPLIT_MIN_CHARS:
            split = _split_audio_delta(data)
        if split is None:
            try:
                obj = _loads(data)
            except orjson.JSONDecodeError:
                pass  # _parse raises the typed error
        else:
            obj = split[0]
            _remember_payload(obj["delta"], split[1])  # pcm16() will not decode it again
        if type(obj) is dict:
            if obj.get("type") == _AUDIO_DELTA:
                # Inlined common case of _fast_audio_delta: the seven fields, exact
                # types; the decoded dict becomes the event's __dict__ as it is.
                try:
                    plain = (
                        len(obj) == 7
                        and type(obj["delta"]) is str
                        and type(obj["event_id"]) is str
                        and type(obj["response_id"]) is str
                        and type(obj["item_id"]) is str
                        and type(obj["output_index"]) is int
                        and type(obj["content_index"]) is int
                    )
                except KeyError:
                    plain = False
                if plain:
                    # Only __dict__: the model fills its other slots on first use.
                    event = _new_delta(ResponseOutputAudioDelta)
                    _set_dict(event, obj)
                    return event
                slow = _fast_audio_delta(obj, obj)
                if slow is not None:
                    return slow  # type: ignore[return-value]
            data = obj
    parsed = _parse(data, dialect, _SERVER_CLASSES, UnknownServerEvent, server_from_beta, walk)
    assert isinstance(parsed, ServerEvent)
    return parsed


def parse_client_event(data: RawEvent, *, dialect: Dialect = "ga") -> ClientEvent:
    """Parse one client event into its canonical class (the local server uses this).

    Same contract as :func:`parse_server_event`.
    """
    event = _parse(data, dialect, _CLIENT_CLASSES, UnknownClientEvent, client_from_beta)
    assert isinstance(event, ClientEvent)
    return event


def to_wire(event: Event, *, dialect: Dialect = "ga") -> dict[str, Any]:
    """The event as a wire dict in ``dialect``."""
    wire = event.to_dict()
    if dialect == "ga":
        return wire
    if dialect != "beta":
        raise ValueError(f"dialect must be 'ga' or 'beta', got {dialect!r}")
    server = isinstance(event, ServerEvent)
    if getattr(event, "_wire_beta", False):
        # Parsed from beta and unchanged since: give back exactly what was received
        # (the beta ``modalities`` order, the early ``output_audio_buffer.audio_*`` names).
        raw = event.raw
        parse = parse_server_event if server else parse_client_event
        if parse(raw, dialect="beta").to_dict() == wire:
            return copy.deepcopy(raw)
    return server_to_beta(wire) if server else client_to_beta(wire)


def dumps(event: Event, *, dialect: Dialect = "ga") -> bytes:
    """The event as compact JSON bytes in ``dialect`` (send them as a *text* frame)."""
    return orjson.dumps(to_wire(event, dialect=dialect))


_APPEND_HEAD = b'{"type":"input_audio_buffer.append","audio":"'


def build_append(
    audio: npt.NDArray[Any] | bytes | bytearray | memoryview,
    *,
    event_id: str | None = None,
) -> bytes:
    """Wire bytes of an ``input_audio_buffer.append`` (same in both dialects).

    Args:
        audio: float samples in [-1, 1] (converted to PCM16 with rounding and clipping),
            int16 samples, or payload bytes already in the session's input format
            (PCM16 little-endian or G.711 codes).
        event_id: Optional client event id, echoed by the server in errors.

    Returns:
        Compact JSON bytes; send them as a text frame.
    """
    payload: Any
    if isinstance(audio, np.ndarray):
        # base64 reads the samples' buffer in place: no bytes copy of the payload.
        if audio.dtype.kind == "i" and audio.dtype.itemsize == 2:  # int16, either byte order
            payload = np.ascontiguousarray(audio, dtype=_LE_I2)
        elif audio.dtype.kind == "f":
            payload = np.ascontiguousarray(float32_to_pcm16(audio), dtype=_LE_I2)
        else:
            raise InvalidEventError(f"audio must be float or int16 samples, got {audio.dtype}")
    else:
        payload = bytes(audio)  # the same object for bytes; flattens any memoryview
    b64 = pybase64.b64encode(payload)
    if event_id is None:
        return b"".join((_APPEND_HEAD, b64, b'"}'))  # one copy of the payload, not two
    return b"".join((_APPEND_HEAD, b64, b'","event_id":', orjson.dumps(event_id), b"}"))

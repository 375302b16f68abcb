"""Python callables as Realtime function tools.

A tool's name is the function's name, its description the docstring's first paragraph,
and its ``parameters`` the JSON schema pydantic derives from the signature (so type
hints, defaults, ``Annotated[..., Field(description=...)]`` and pydantic models all
work). Arguments from the model are validated against the same schema before the call.

.. code-block:: python

    async def get_weather(city: str, unit: Literal["C", "F"] = "C") -> dict:
        \"\"\"Current weather for a city.\"\"\"
        ...

    tool = Tool.from_callable(get_weather)
    tool.schema()   # {"type": "function", "name": "get_weather", ...}
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pydantic
from pydantic import BaseModel, ConfigDict, ValidationError

from . import events as ev
from .errors import RealtimeError

__all__ = ["FunctionTool", "Tool", "ToolError", "ToolRegistry"]


class ToolError(RealtimeError, ValueError):
    """A callable cannot be used as a tool, or a tool call failed."""


def _description(func: Callable[..., Any]) -> str:
    doc = inspect.getdoc(func) or ""
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip()


@dataclass
class Tool:
    """A Python callable the model may call.

    Attributes:
        name: The tool name the model sees.
        description: What it does (from the docstring).
        func: The callable (sync or async).
        arguments_model: The pydantic model its arguments are validated with.
    """

    name: str
    description: str
    func: Callable[..., Any]
    arguments_model: type[BaseModel]

    @classmethod
    def from_callable(cls, func: Callable[..., Any], *, name: str | None = None) -> Tool:
        """Build a tool from a function's signature and docstring.

        Raises:
            ToolError: The signature has ``*args`` / ``**kwargs`` or cannot be described.
        """
        signature = inspect.signature(func)
        try:
            hints = inspect.get_annotations(func, eval_str=True)
        except Exception as exc:  # a NameError in a string annotation, for example
            raise ToolError(f"cannot read the type hints of {func!r}: {exc}") from exc
        fields: dict[str, Any] = {}
        for param in signature.parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise ToolError(f"tool {func.__name__!r} cannot take *args or **kwargs")
            annotation = hints.get(param.name, Any)
            default = ... if param.default is param.empty else param.default
            fields[param.name] = (annotation, default)
        tool_name = name or func.__name__
        try:
            model = pydantic.create_model(
                f"{tool_name}_arguments",
                __config__=ConfigDict(extra="forbid"),
                **fields,
            )
            model.model_json_schema()
        except (pydantic.PydanticSchemaGenerationError, TypeError) as exc:
            raise ToolError(f"cannot describe the arguments of {tool_name!r}: {exc}") from exc
        return cls(tool_name, _description(func), func, model)

    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the arguments (what ``tools[].parameters`` carries)."""
        schema = self.arguments_model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            if isinstance(prop, dict):
                prop.pop("title", None)
        return schema

    def schema(self) -> ev.FunctionTool:
        """The tool as the session config carries it."""
        return ev.FunctionTool(
            name=self.name, description=self.description, parameters=self.parameters()
        )

    async def call(self, arguments: str, *, timeout: float | None = None) -> str:
        """Validate ``arguments`` (a JSON string), run the function, return its output.

        The output is the result as JSON (strings are sent as they are). Sync
        functions run in a worker thread so they cannot stall the event loop.

        Raises:
            ToolError: Invalid arguments, a timeout, or the function raised.
        """
        try:
            parsed = orjson.loads(arguments or "{}")
            args = self.arguments_model.model_validate(parsed)
        except (orjson.JSONDecodeError, ValidationError) as exc:
            raise ToolError(f"invalid arguments for {self.name}: {exc}") from exc
        kwargs = {name: getattr(args, name) for name in type(args).model_fields}
        func = self.func
        is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
            type(func).__call__  # an object with ``async def __call__``
        )
        try:
            if is_async:
                result = await _within(_contained(func(**kwargs)), timeout)
            else:
                result = await _within(asyncio.to_thread(_run_sync, func, kwargs), timeout)
            if inspect.isawaitable(result):  # a sync wrapper handing back a coroutine
                result = await _within(result, timeout)
        except asyncio.TimeoutError as exc:
            raise ToolError(f"{self.name} timed out after {timeout} s") from exc
        except _ToolExit as exc:
            raise ToolError(f"{self.name} raised {exc}") from exc
        except Exception as exc:
            raise ToolError(f"{self.name} raised {type(exc).__name__}: {exc}") from exc
        return _output(self.name, result)


class _ToolExit(Exception):
    """``SystemExit`` / ``KeyboardInterrupt`` raised by a tool, carried as an exception.

    Left as they are, they would end the event loop (asyncio re-raises them out of
    ``run``): a tool must never stop the application.
    """

    def __init__(self, exc: BaseException) -> None:
        super().__init__(f"{type(exc).__name__}: {exc}")


def _run_sync(func: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    try:
        return func(**kwargs)
    except (SystemExit, KeyboardInterrupt) as exc:
        raise _ToolExit(exc) from exc


async def _contained(awaitable: Any) -> Any:
    try:
        return await awaitable
    except (SystemExit, KeyboardInterrupt) as exc:
        raise _ToolExit(exc) from exc


#: The largest tool output sent, in characters; longer ones are cut with a note (the
#: service closes the connection on a frame past its limit).
MAX_OUTPUT_CHARS = 100_000


def _output(name: str, result: Any) -> str:
    """A tool's result as the output string: JSON (strings as they are), cut if too long.

    Raises:
        ToolError: The result cannot be turned into JSON (a cycle, odd keys, ...).
    """
    if isinstance(result, str):
        text = result
    else:
        try:
            text = orjson.dumps(
                result, default=lambda o: o.model_dump() if isinstance(o, BaseModel) else str(o)
            ).decode()
        except TypeError:
            try:
                text = json.dumps(result, default=str)
            except (TypeError, ValueError, RecursionError) as exc:
                raise ToolError(f"{name} returned a result that is not JSON: {exc}") from exc
    if len(text) > MAX_OUTPUT_CHARS:
        note = f"... [cut: the result of {name} had {len(text):,} characters]"
        text = text[: MAX_OUTPUT_CHARS - len(note)] + note
    return text


async def _within(awaitable: Any, timeout: float | None) -> Any:
    """Await ``awaitable``; cancel it and raise ``asyncio.TimeoutError`` after ``timeout`` s.

    Not ``asyncio.wait_for``: before Python 3.12 it returns the result when the result and
    a cancellation of the waiting task arrive together, so a cancelled session's tool run
    would carry on (CPython gh-86296). ``asyncio.wait`` keeps the cancellation.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except BaseException:  # our caller was cancelled: so is the tool
        task.cancel()
        raise
    if not done:
        task.cancel()
        # Nobody awaits it now: retrieve whatever it ends with, so nothing is logged twice.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        raise asyncio.TimeoutError
    return task.result()


class ToolRegistry:
    """The tools of one session, by name."""

    def __init__(self, tools: list[Callable[..., Any] | Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools or []:
            self.add(tool)

    def add(self, tool: Callable[..., Any] | Tool) -> Tool:
        """Register a callable (or a ready :class:`Tool`)."""
        if not isinstance(tool, Tool):
            tool = Tool.from_callable(tool)
        if tool.name in self._tools:
            raise ToolError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        return tool

    def get(self, name: str | None) -> Tool | None:
        """The tool with this name, if registered."""
        return self._tools.get(name) if name else None

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def schemas(self) -> list[ev.FunctionTool]:
        """Every tool as the session config carries it."""
        return [t.schema() for t in self._tools.values()]


#: The name :class:`Tool` had before 0.2 (it clashed with the wire schema
#: :class:`realtime_client.events.FunctionTool`, which :meth:`Tool.schema` returns).
FunctionTool = Tool

"""One client cannot make the local server copy, keep or send without bound.

Session configs are bounded (instructions, tools), tools are shared rather than copied
per response, the conversation's text has a cap, ephemeral keys are bounded in number
and size, turn detection durations have a range and the input buffer cap holds whatever
they are, an idle timeout fires once per silence, and response generation waits for a
reading client instead of queueing a whole long reply. Sizes and counts are asserted,
never timings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from realtime_client.server import ServerSession, SessionOptions
from realtime_client.server._schemas import (
    MAX_INSTRUCTIONS_CHARS,
    MAX_TOOLS,
    MAX_TOOLS_JSON_BYTES,
)
from realtime_client.server.responders import (
    MessageReply,
    Reply,
    Responder,
    ResponseContext,
)

from .conftest import ListSink


class _Recording(Responder):
    """Answers "ok" and keeps every context it was given."""

    def __init__(self) -> None:
        self.contexts: list[ResponseContext] = []

    async def respond(self, ctx: ResponseContext) -> Reply:
        self.contexts.append(ctx)
        return Reply((MessageReply("ok"),))


def _session(sink: ListSink, responder: Responder, **options: Any) -> ServerSession:
    session = ServerSession(SessionOptions(seed=3, **options), responder, sink)
    session.start()
    return session


async def _wait_for(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def _update(**session: Any) -> dict[str, Any]:
    return {"type": "session.update", "session": {"type": "realtime", **session}}


def _tool(parameters: Any) -> dict[str, Any]:
    return {"type": "function", "name": "f", "parameters": parameters}


def _text_response() -> dict[str, Any]:
    return {
        "type": "response.create",
        "response": {"conversation": "none", "output_modalities": ["text"]},
    }


# --- 1. session configs: bounded, and tools shared, not copied per response ----------------


async def test_tools_are_shared_by_responses_not_copied_for_each() -> None:
    sink, responder = ListSink(), _Recording()
    session = _session(sink, responder)
    params = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(50)}}
    session.receive_event(_update(tools=[_tool(params)]))
    # A later update that leaves the tools alone does not copy them either.
    session.receive_event(_update(instructions="be brief"))
    for _ in range(3):
        session.receive_event(_text_response())
        await _wait_for(lambda: len(responder.contexts) == len(sink.of("response.created")))
        await _wait_for(lambda: len(sink.of("response.done")) == len(responder.contexts))
    [first, *others] = [c.tools[0]["parameters"] for c in responder.contexts]
    assert first == params
    assert all(o is first for o in others)
    assert session.state["tools"][0]["parameters"] is first


async def test_oversized_session_configs_are_refused_whole() -> None:
    sink = ListSink()
    session = _session(sink, _Recording())
    free_form = {"type": "object", "x": [{} for _ in range(MAX_TOOLS_JSON_BYTES // 3 + 10)]}
    refused = [
        _update(tools=[_tool(free_form)]),
        _update(tools=[_tool({"type": "object"}) for _ in range(MAX_TOOLS + 1)]),
        _update(instructions="x" * (MAX_INSTRUCTIONS_CHARS + 1)),
    ]
    for event in refused:
        session.receive_event(event)
    errors = [e["error"] for e in sink.of("error")]
    assert [(e["type"], e["code"], e["param"]) for e in errors] == [
        ("invalid_request_error", "invalid_value", "session.tools"),
        ("invalid_request_error", "array_above_max_length", "session.tools"),
        ("invalid_request_error", "string_above_max_length", "session.instructions"),
    ]
    assert session.state["tools"] == [] and len(session.state["instructions"]) < 1000
    # Within the limits, the same kinds of config are taken.
    session.receive_event(
        _update(tools=[_tool({"type": "object"})] * MAX_TOOLS, instructions="y" * 1000)
    )
    assert len(sink.of("error")) == 3
    await _wait_for(lambda: bool(sink.of("session.updated")))
    assert len(session.state["tools"]) == MAX_TOOLS

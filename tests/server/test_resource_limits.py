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
import io
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import numpy as np
import pytest

from realtime_client.server import LocalServer, ServerSession, SessionOptions, app
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

from .conftest import ListSink, open_client, user_text


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


# --- 2c. the input buffer cap holds whatever prefix_padding_ms is ---------------------------


async def test_the_buffer_cap_holds_while_the_vad_hears_silence() -> None:
    sink = ListSink()
    session = _session(sink, _Recording(), max_buffer_ms=1000)
    td = {"type": "server_vad", "prefix_padding_ms": 3_600_000}
    session.receive_event(_update(audio={"input": {"turn_detection": td}}))
    assert sink.of("error") == []
    for _ in range(10):
        session.append_input_pcm(np.zeros(24_000, dtype=np.int16))  # a second of silence
    assert session.buffer.ms <= 1000
    assert sink.of("error") == []  # silence is dropped, not refused
    # Past the longest a session lasts, a duration is refused as out of range.
    session.receive_event(
        _update(audio={"input": {"turn_detection": {**td, "prefix_padding_ms": 10**12}}})
    )
    [error] = [e["error"] for e in sink.of("error")]
    assert error["code"] == "integer_above_max_value"
    assert error["param"] == "session.audio.input.turn_detection.prefix_padding_ms"


# --- 2d. an idle timeout fires once per silence ----------------------------------------------


async def test_an_idle_timeout_fires_once_per_silence_not_in_a_loop() -> None:
    sink = ListSink()
    session = _session(sink, _Recording())
    td = {"type": "server_vad", "idle_timeout_ms": 1}
    session.receive_event(
        _update(output_modalities=["text"], audio={"input": {"turn_detection": td}})
    )
    session.receive_event({"type": "response.create"})
    await _wait_for(lambda: len(sink.of("response.done")) >= 2)  # the client's, then the idle one
    # The silence goes on: it was answered once, and is not answered again and again.
    await asyncio.sleep(0.2)  # at 1 ms, room for ~200 more if the timer re-armed itself
    assert len(sink.of("input_audio_buffer.timeout_triggered")) == 1
    assert len(sink.of("response.created")) == 2
    # A new client response is a new exchange: its silence is answered once more.
    session.receive_event({"type": "response.create"})
    await _wait_for(lambda: len(sink.of("response.done")) >= 4)
    await asyncio.sleep(0.2)
    assert len(sink.of("input_audio_buffer.timeout_triggered")) == 2
    assert len(sink.of("response.created")) == 4
    session.close()


# --- 3. a long reply waits for a client that reads ----------------------------------------


async def test_a_long_reply_at_speed_0_waits_for_a_reading_client() -> None:
    cap = 256 * 1024
    sinks: list[Any] = []
    async with LocalServer(speed=0, seed=1, responder="echo", max_outbox_bytes=cap) as server:
        server.on_session = lambda s: sinks.append(s.sink)
        client = await open_client(server, max_size=None)
        assert (await client.recv())["type"] == "session.created"
        await client.send(user_text("a " * 300))  # about 40 s of speech: ~2.5 MB of events
        await client.send({"type": "response.create"})
        audio = 0
        while True:
            event = await client.recv()
            if event["type"] == "response.output_audio.delta":
                audio += len(event["delta"])
            if event["type"] == "response.done":
                break
        assert event["response"]["status"] == "completed"
        assert audio > 4 * cap  # far more than the cap went through
        assert sinks[0].closed_reason is None
        await client.ws.close()


# --- 2b. ephemeral keys: bounded in number and in what each carries ---------------------------


async def test_client_secrets_are_bounded_in_number_and_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(app, "MAX_EPHEMERAL_KEYS", 3)
    body = {
        "expires_after": {"anchor": "created_at", "seconds": 7200},
        "session": {"type": "realtime", "instructions": "x" * 1000},
    }
    async with LocalServer(speed=0, seed=1) as server, aiohttp.ClientSession() as http:

        async def post(payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            url = f"{server.url}/realtime/client_secrets"
            headers = {"Authorization": "Bearer sk-test"}
            data = io.BytesIO(json.dumps(payload).encode())
            headers["Content-Type"] = "application/json"
            async with http.post(url, data=data, headers=headers) as resp:
                return resp.status, await resp.json()

        big = {**body, "session": {"type": "realtime", "instructions": "x" * (4 << 20)}}
        status, data = await post(big)
        assert (status, data["error"]["code"]) == (400, "string_above_max_length")
        assert data["error"]["param"] == "session.instructions"
        assert [(await post(body))[0] for _ in range(5)] == [200, 200, 200, 429, 429]
        assert len(server._ephemeral) == 3
        status, data = await post(body)
        assert data["error"]["code"] == "rate_limit_exceeded"

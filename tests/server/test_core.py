"""The session core without a socket, the validator, ids, and output pacing."""

from __future__ import annotations

import asyncio
import base64
import time

import numpy as np
import pytest

from realtime_client._ids import ID_PATTERN, IdGenerator
from realtime_client.server import (
    LocalServer,
    MessageReply,
    Reply,
    Responder,
    ResponseContext,
    ServerSession,
    SessionOptions,
    make_responder,
)
from realtime_client.server.validation import (
    Int,
    List,
    Nullable,
    Obj,
    OneOf,
    Str,
    Union,
    ValidationError,
    enum_message,
    validate,
)

from .conftest import ListSink, open_client, speech, types


def test_ids_have_the_real_shape_and_are_seeded() -> None:
    a, b = IdGenerator(7), IdGenerator(7)
    assert [a.item(), a.response(), a.event()] == [b.item(), b.response(), b.event()]
    for make in (a.item, a.response, a.event, a.session, a.conversation):
        m = ID_PATTERN.match(make())
        assert m is not None and len(m["body"]) == 21
    assert len(a.call()) == len("call_") + 16
    assert IdGenerator().item() != IdGenerator().item()


def test_validator_messages() -> None:
    spec = Obj(
        {
            "a": Int(min=1, max=3),
            "b": List(Str(enum=["x", "y", "z"])),
            "c": Nullable(Union({"p": Obj({"type": Str()}), "q": Obj({"type": Str()})})),
            "d": OneOf([Int(), Str(enum=["inf"])]),
        },
        required=frozenset({"a"}),
    )
    assert validate(spec, {"a": 2, "b": ["x"], "c": None, "d": "inf"}) == {
        "a": 2,
        "b": ["x"],
        "c": None,
        "d": "inf",
    }
    cases = [
        (
            {"a": 0},
            "integer_below_min_value",
            "s.a",
            "Invalid 's.a': integer below minimum value. Expected a value >= 1, but got 0 instead.",
        ),
        (
            {"a": 1, "b": ["w"]},
            "invalid_value",
            "s.b[0]",
            "Invalid value: 'w'. Supported values are: 'x', 'y', and 'z'.",
        ),
        (
            {"a": 1, "c": {"type": "r"}},
            "invalid_value",
            "s.c.type",
            "Invalid value: 'r'. Supported values are: 'p' and 'q'.",
        ),
        (
            {"a": 1, "c": {}},
            "missing_required_parameter",
            "s.c.type",
            "Missing required parameter: 's.c.type'.",
        ),
        (
            {"a": 1, "d": [1]},
            "invalid_type",
            "s.d",
            "Invalid type for 's.d': expected one of an integer or a string, but got an array "
            "instead.",
        ),
        ({}, "missing_required_parameter", "s.a", "Missing required parameter: 's.a'."),
        (
            {"a": True},
            "invalid_type",
            "s.a",
            "Invalid type for 's.a': expected an integer, but got a boolean instead.",
        ),
    ]
    for value, code, param, message in cases:
        with pytest.raises(ValidationError) as info:
            validate(spec, value, "s")
        assert (info.value.code, info.value.param, info.value.message) == (code, param, message)
    assert enum_message("a", ["b"]) == "Invalid value: 'a'. Supported values are: 'b'."


async def test_session_core_runs_without_a_transport() -> None:
    sink = ListSink()
    session = ServerSession(SessionOptions(speed=0, seed=5), make_responder("echo"), sink)
    session.start()
    assert sink.events[0]["type"] == "session.created"
    session.receive_event(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
        }
    )
    # the WebRTC path: decoded microphone audio straight into the buffer
    session.append_input_pcm(speech(300))
    session.receive_event({"type": "input_audio_buffer.commit"})
    session.receive_event({"type": "response.create"})
    for _ in range(200):
        if sink.events[-1]["type"] == "rate_limits.updated":
            break
        await asyncio.sleep(0.005)
    kinds = types(sink.events)
    assert kinds[:6] == [
        "session.created",
        "session.updated",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
    ]
    assert kinds[-1] == "rate_limits.updated"
    audio = b"".join(
        base64.b64decode(e["delta"])
        for e in sink.events
        if e["type"] == "response.output_audio.delta"
    )
    np.testing.assert_array_equal(np.frombuffer(audio, "<i2"), speech(300))
    await session.aclose()


def test_the_former_name_is_an_alias() -> None:
    from realtime_client import events
    from realtime_client.server import RealtimeSession

    assert RealtimeSession is ServerSession
    assert events.RealtimeSession is not ServerSession  # the session config model


async def test_a_beta_session_is_ga_inside_and_beta_on_the_wire() -> None:
    sink = ListSink()
    session = ServerSession(
        SessionOptions(dialect="beta", speed=0, seed=2), make_responder("echo"), sink
    )
    session.start()
    wire = sink.events[0]["session"]
    assert (wire["modalities"], wire["input_audio_format"]) == (["audio", "text"], "pcm16")
    assert session.state["output_modalities"] == ["audio", "text"]  # kept as listed
    assert session.state["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert "modalities" not in session.state and "voice" not in session.state
    session.receive_event(
        {
            "type": "session.update",
            "session": {"voice": "ash", "output_audio_format": "g711_ulaw", "tool_choice": "f"},
        }
    )
    assert session.state["audio"]["output"]["voice"] == "ash"
    assert session.state["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    assert session.state["tool_choice"] == {"type": "function", "name": "f"}
    updated = sink.events[-1]
    assert updated["type"] == "session.updated"
    assert updated["session"]["output_audio_format"] == "g711_ulaw"
    assert updated["session"]["tool_choice"] == "f"
    assert list(updated["session"]) == list(wire)  # the beta service's key order
    session.receive_event(
        {
            "type": "conversation.item.create",
            "item": {
                "id": "item_a",
                "type": "message",
                "role": "assistant",
                "content": [{"type": "text", "text": "yo"}],
            },
        }
    )
    assert session.items["item_a"]["content"] == [{"type": "output_text", "text": "yo"}]
    assert "object" not in session.items["item_a"]
    assert [e["type"] for e in sink.events[-1:]] == ["conversation.item.created"]
    created = sink.events[-1]["item"]
    assert created["object"] == "realtime.item"
    assert created["content"] == [{"type": "text", "text": "yo"}]
    await session.aclose()


async def test_session_expiry_closes_through_the_sink() -> None:
    sink = ListSink()
    session = ServerSession(
        SessionOptions(speed=0, session_limit_s=0.05), make_responder("echo"), sink
    )
    session.start()
    await asyncio.sleep(0.15)
    assert sink.events[-1]["error"]["code"] == "session_expired"
    assert sink.closed == (1001, "invalid_request_error.session_expired")
    await session.aclose()


@pytest.mark.parametrize("speed", [1.0, 4.0])
async def test_output_audio_is_paced(speed: float) -> None:
    """1 s of echoed audio takes about 1 s / speed to stream."""
    async with LocalServer(speed=speed, audio_delta_ms=100) as srv:
        c = await open_client(srv)
        await c.recv()
        await c.update({"type": "realtime", "audio": {"input": {"turn_detection": None}}})
        await c.append(speech(1000))
        await c.send({"type": "input_audio_buffer.commit"})
        await c.send({"type": "response.create"})
        await c.until("response.output_audio.delta")
        t0 = time.monotonic()
        events = await c.until("response.done")
        elapsed = time.monotonic() - t0
        n = sum(e["type"] == "response.output_audio.delta" for e in events)
        assert n == 9  # 10 deltas in all, the first one already received
        expected = 0.9 / speed  # nine more deltas of 100 ms each
        assert expected * 0.9 <= elapsed <= expected + 0.4
        await c.ws.close()


class _Boom(Responder):
    async def respond(self, ctx: ResponseContext) -> Reply:
        raise RuntimeError("responder bug")


class _Fixed(Responder):
    async def respond(self, ctx: ResponseContext) -> Reply:
        return Reply((MessageReply(f"turn {ctx.response_index}: {ctx.user_text}"),))


async def test_custom_responders_and_a_failing_one() -> None:
    async with LocalServer(speed=0, responder=_Fixed()) as srv:
        c = await open_client(srv)
        await c.recv()
        await c.say("yo", response={"output_modalities": ["text"]})
        done = (await c.until("response.done"))[-1]["response"]
        assert done["output"][0]["content"][0]["text"] == "turn 0: yo"
        await c.ws.close()
    async with LocalServer(speed=0, responder=_Boom()) as srv:
        c = await open_client(srv)
        await c.recv()
        await c.send({"type": "response.create"})
        events = await c.until("response.done")
        assert types(events) == ["response.created", "response.done"]
        done = events[-1]["response"]
        assert done["status"] == "failed" and done["status_details"]["type"] == "failed"
        assert done["usage"]["total_tokens"] == 0
        await c.ws.close()

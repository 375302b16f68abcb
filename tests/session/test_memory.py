"""The session over the public in-memory transport: exact wire-level race tests."""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import orjson
import pytest

from realtime_client import InvalidServerEvent, ServerError, connect, memory_pair
from realtime_client import events as ev
from realtime_client.errors import InvalidStateError
from realtime_client.server import LocalServer
from realtime_client.transports import MemoryTransport

from .conftest import error_for, open_pair, recv


async def nothing_sent(server_end: MemoryTransport) -> bool:
    await asyncio.sleep(0.05)
    return server_end._inbox.empty()


def created(rid: str) -> dict[str, Any]:
    return {
        "type": "response.created",
        "event_id": f"e_{rid}",
        "response": {"id": rid, "status": "in_progress", "conversation_id": "conv_1"},
    }


def done(rid: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "response.done",
        "event_id": f"d_{rid}",
        "response": {"id": rid, "status": status, "conversation_id": "conv_1"},
    }


async def test_create_while_active_waits_for_response_done() -> None:
    session, server = await open_pair()
    first = asyncio.ensure_future(session.create_response())
    sent = await recv(server)
    assert sent["type"] == "response.create"
    await server.send_event(created("resp_1"))
    assert (await first).response.id == "resp_1"
    second = asyncio.ensure_future(session.create_response())
    assert await nothing_sent(server)  # queued: resp_1 is still active
    await server.send_event(done("resp_1"))
    sent = await recv(server)
    assert sent["type"] == "response.create"
    await server.send_event(created("resp_2"))
    assert (await second).response.id == "resp_2"
    await session.close()


async def test_active_response_race_is_requeued_not_surfaced() -> None:
    session, server = await open_pair()
    seen: list[Any] = []
    session.on("*", seen.append)
    request = asyncio.ensure_future(session.create_response())
    sent = await recv(server)
    # A VAD turn got there first: the server committed the user's speech and started
    # its own response, then refuses our create.
    await server.send_event(
        {"type": "input_audio_buffer.committed", "event_id": "e_c", "item_id": "item_u"}
    )
    await server.send_event(created("resp_vad"))
    await server.send_event(
        error_for(
            sent,
            "conversation_already_has_active_response",
            "Conversation already has an active response in progress: resp_vad.",
        )
    )
    assert await nothing_sent(server)
    assert not request.done()
    await server.send_event(done("resp_vad"))
    resent = await recv(server)
    assert resent["type"] == "response.create" and resent["event_id"] != sent["event_id"]
    await server.send_event(created("resp_mine"))
    assert (await request).response.id == "resp_mine"
    assert not any(isinstance(e, ev.Error) for e in seen)
    await session.close()


async def test_raw_responses_surface_the_race() -> None:
    session, server = await open_pair(raw_responses=True)
    errors: list[ev.Error] = []
    session.on(ev.Error, errors.append)
    request = asyncio.ensure_future(session.create_response())
    sent = await recv(server)
    await server.send_event(error_for(sent, "conversation_already_has_active_response", "busy"))
    with pytest.raises(ServerError, match="conversation_already_has_active_response") as info:
        await request
    assert info.value.code == "conversation_already_has_active_response"
    assert info.value.event_id == sent["event_id"]
    # The same error reaches the event stream, and the session goes on.
    assert [e.error.event_id for e in errors] == [sent["event_id"]]
    assert session.stats.server_errors == 1 and not session.closed
    again = asyncio.ensure_future(session.create_response())
    assert (await recv(server))["type"] == "response.create"
    await server.send_event(created("resp_2"))
    assert (await again).response.id == "resp_2"
    await session.close()


async def test_cancel_race_with_a_finished_response_returns_false() -> None:
    session, server = await open_pair()
    seen: list[Any] = []
    session.on("*", seen.append)
    await server.send_event(created("resp_1"))
    await asyncio.sleep(0.01)
    cancelling = asyncio.ensure_future(session.cancel_response())
    sent = await recv(server)
    assert sent == {"type": "response.cancel", "event_id": sent["event_id"]}
    await server.send_event(done("resp_1"))  # it finished on its own first ...
    await server.send_event(
        error_for(
            sent, "response_cancel_not_active", "Cancellation failed: no active response found"
        )
    )
    assert await cancelling is False  # it completed: nothing was cancelled
    await asyncio.sleep(0.02)
    assert not any(isinstance(e, ev.Error) for e in seen)  # the late error is absorbed
    assert session.stats.server_errors == 0
    assert await session.cancel_response() is False  # nothing active: nothing sent
    assert await nothing_sent(server)
    await session.close()


async def test_malformed_frames_are_reported_and_the_session_goes_on() -> None:
    session, server = await open_pair()
    await server.send(b"{not json")
    await server.send(b'{"type": "response.output_audio.delta", "delta": 5}')
    await server.send_event(created("resp_1"))
    got: list[Any] = []
    async for event in session:
        if isinstance(event, ev.SessionCreated):
            continue
        got.append(event)
        if isinstance(event, ev.ResponseCreated):
            break
    assert [type(e) for e in got] == [InvalidServerEvent, InvalidServerEvent, ev.ResponseCreated]
    assert "not valid JSON" in got[0].error
    await session.close()


async def test_handlers_sync_async_and_failing(caplog: pytest.LogCaptureFixture) -> None:
    session, server = await open_pair()
    calls: list[str] = []

    def sync_handler(event: Any) -> None:
        calls.append("sync:" + event.type)

    async def async_handler(event: Any) -> None:
        calls.append("async:" + event.type)

    def broken(event: Any) -> None:
        raise RuntimeError("handler bug")

    session.on(ev.ResponseCreated, sync_handler)
    session.on("response.created", async_handler)
    session.on("response.created", broken)
    with caplog.at_level(logging.ERROR, logger="realtime_client"):
        await server.send_event(created("resp_1"))
        await asyncio.sleep(0.05)
    assert calls == ["sync:response.created", "async:response.created"]
    assert "handler bug" in caplog.text
    assert not session.closed
    await session.close()


async def test_dropped_memory_connection_without_reconnect_ends_iteration() -> None:
    session, server = await open_pair()
    await server.close(1006, "gone")
    with pytest.raises(Exception, match="1006"):
        async for _ in session:
            pass
    assert session.closed


async def test_api_key_never_reaches_logs_or_reprs(caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-proj-SECRET1234567890"
    async with LocalServer(responder="echo", speed=0, api_keys=[secret]) as server:
        with caplog.at_level(logging.DEBUG):
            async with connect(url=server.url, api_key=secret) as session:
                await session.send_text("hi")
                async for event in session:
                    if isinstance(event, ev.ResponseDone):
                        break
                assert secret not in repr(session)
        with caplog.at_level(logging.DEBUG), pytest.raises(Exception) as info:
            await connect(url=server.url, api_key=secret + "x")
        assert secret not in str(info.value)
    assert caplog.records, "debug logging should have produced records"
    assert all(secret not in record.getMessage() for record in caplog.records)


async def test_connect_as_async_iterator_yields_sessions() -> None:
    async with LocalServer(responder="echo", speed=0) as server:
        count = 0
        async for session in connect(url=server.url):
            count += 1
            await session.send_text("hello", respond=False)
            break
        assert count == 1
        # Leaving the loop finalizes the generator, which closes the session.
        for _ in range(50):
            if session.closed:
                break
            await asyncio.sleep(0.01)
        assert session.closed


async def test_wire_frames_are_text_json() -> None:
    session, server = await open_pair()
    task = asyncio.ensure_future(session.update_session(instructions="Be brief."))
    raw = await asyncio.wait_for(server.recv(), 2)
    frame = orjson.loads(raw)
    assert frame["session"] == {"type": "realtime", "instructions": "Be brief."}
    await server.send_event(
        {
            "type": "session.updated",
            "event_id": "e1",
            "session": {"type": "realtime", "instructions": "Be brief."},
        }
    )
    updated = await task
    assert isinstance(updated, ev.SessionUpdated)
    await session.close()


async def test_a_refused_create_does_not_jam_the_queue() -> None:
    session, server = await open_pair()
    errors: list[ev.Error] = []
    session.on(ev.Error, errors.append)
    first = asyncio.ensure_future(session.create_response({"max_output_tokens": 5000}))
    sent = await recv(server)
    await server.send_event(
        error_for(
            sent,
            "integer_above_max_value",
            "Expected a value <= 4096",
            param="response.max_output_tokens",
        )
    )
    with pytest.raises(ServerError, match="4096") as info:
        await first
    assert info.value.code == "integer_above_max_value"
    assert info.value.param == "response.max_output_tokens"
    assert [e.error.code for e in errors] == ["integer_above_max_value"]
    assert not session.closed
    second = asyncio.ensure_future(session.create_response())
    assert (await recv(server))["type"] == "response.create"
    await server.send_event(created("resp_2"))
    assert (await second).response.id == "resp_2"
    await session.close()


async def test_open_failing_on_the_config_closes_the_transport() -> None:
    client_end, server_end = memory_pair()
    opening = asyncio.ensure_future(connect(transport=client_end, instructions="x"))
    await server_end.send_event(
        {"type": "session.created", "event_id": "e0", "session": {"type": "realtime"}}
    )
    update = await recv(server_end)
    await server_end.send_event(
        error_for(update, "unknown_parameter", "Unknown parameter: 'session.x'.")
    )
    with pytest.raises(ServerError, match="Unknown parameter") as info:
        await opening
    assert info.value.code == "unknown_parameter"
    assert info.value.event_id == update["event_id"]
    assert client_end.closed


async def test_a_failing_sink_does_not_stop_the_reader() -> None:
    class BrokenSink:
        def write(self, pcm: Any, item_id: str, content_index: int = 0) -> None:
            pass

        def clear(self) -> None:
            raise RuntimeError("device gone")

    session, server = await open_pair()
    session.attach(sink=BrokenSink())
    await server.send_event(
        {
            "type": "input_audio_buffer.speech_started",
            "event_id": "e1",
            "audio_start_ms": 0,
            "item_id": "item_u",
        }
    )
    request = asyncio.ensure_future(session.create_response())
    await recv(server)
    await server.send_event(created("resp_1"))
    assert (await asyncio.wait_for(request, 2)).response.id == "resp_1"
    await session.close()


async def test_iteration_after_close_ends_at_once() -> None:
    session, _server = await open_pair()
    await session.close()
    for _ in range(2):
        got = [event async for event in session]
        assert all(isinstance(e, ev.SessionCreated) for e in got)


async def test_async_callable_objects_work_as_tools() -> None:
    from realtime_client.tools import FunctionTool

    class Lookup:
        __name__ = "lookup"

        async def __call__(self, key: str) -> dict[str, str]:
            """Look a key up."""
            await asyncio.sleep(0)
            return {"key": key}

    tool = FunctionTool.from_callable(Lookup(), name="lookup")
    assert await tool.call('{"key": "a"}', timeout=1) == '{"key":"a"}'


async def test_cancelling_a_tool_call_as_the_tool_returns_still_cancels() -> None:
    from realtime_client.tools import FunctionTool

    async def quick() -> int:
        """Return at once."""
        return 1

    tool = FunctionTool.from_callable(quick)
    call = asyncio.ensure_future(tool.call("{}", timeout=1))
    await asyncio.sleep(0)  # the call starts the tool and waits
    await asyncio.sleep(0)  # the tool returns
    call.cancel()  # ... and the session closes before the call sees the result
    (outcome,) = await asyncio.gather(call, return_exceptions=True)
    assert isinstance(outcome, asyncio.CancelledError)


# --- helpers answering with errors, metrics, tools, prices, push-to-talk, truncate ------


def audio_delta(rid: str, item_id: str, ms: int) -> dict[str, Any]:
    """``ms`` of PCM16 24 kHz silence for an item."""
    pcm = bytes(48 * ms)  # 24 samples/ms, 2 bytes each
    return {
        "type": "response.output_audio.delta",
        "event_id": f"a_{item_id}",
        "response_id": rid,
        "item_id": item_id,
        "output_index": 0,
        "content_index": 0,
        "delta": base64.b64encode(pcm).decode(),
    }


USAGE = {
    "total_tokens": 3_160,
    "input_tokens": 1_160,
    "output_tokens": 2_000,
    "input_token_details": {
        "text_tokens": 160,
        "audio_tokens": 1_000,
        "image_tokens": 0,
        "cached_tokens": 60,
        "cached_tokens_details": {"text_tokens": 60, "audio_tokens": 0, "image_tokens": 0},
    },
    "output_token_details": {"text_tokens": 400, "audio_tokens": 1_600},
}


def done_with_usage(rid: str) -> dict[str, Any]:
    event = done(rid)
    event["response"]["usage"] = USAGE  # type: ignore[index]
    return event


async def test_helpers_raise_server_error_and_the_stream_sees_it_too() -> None:
    session, server = await open_pair()
    updating = asyncio.ensure_future(session.update_session(instructions="x" * 10))
    update = await recv(server)
    await server.send_event(error_for(update, "invalid_value", "Instructions too long."))
    with pytest.raises(ServerError, match="Instructions too long") as info:
        await updating
    assert (info.value.code, info.value.event_id) == ("invalid_value", update["event_id"])

    committing = asyncio.ensure_future(session.commit())
    commit = await recv(server)
    await server.send_event(
        error_for(commit, "input_audio_buffer_commit_empty", "buffer too small")
    )
    with pytest.raises(ServerError) as info:
        await committing
    assert info.value.code == "input_audio_buffer_commit_empty"

    # Each error also reaches the event stream, with the request it belongs to.
    errors: list[ev.Error] = []
    async for event in session:
        if isinstance(event, ev.Error):
            errors.append(event)
            if len(errors) == 2:
                break
    assert [(e.error.code, e.error.event_id) for e in errors] == [
        ("invalid_value", update["event_id"]),
        ("input_audio_buffer_commit_empty", commit["event_id"]),
    ]
    assert session.stats.server_errors == 2
    # Recoverable: the session stays usable.
    assert not session.closed
    clearing = asyncio.ensure_future(session.clear_input())
    assert (await recv(server))["type"] == "input_audio_buffer.clear"
    await server.send_event({"type": "input_audio_buffer.cleared", "event_id": "e_cl"})
    assert isinstance(await clearing, ev.InputAudioBufferCleared)
    await session.close()


async def test_each_turn_is_logged_with_latency_usage_and_cost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session, server = await open_pair()
    with caplog.at_level(logging.INFO, logger="realtime_client"):
        await server.send_event(
            {
                "type": "input_audio_buffer.speech_stopped",
                "event_id": "e_ss",
                "audio_end_ms": 900,
                "item_id": "item_u",
            }
        )
        await asyncio.sleep(0.01)
        request = asyncio.ensure_future(session.create_response())
        await recv(server)
        await server.send_event(created("resp_1"))
        await request
        await asyncio.sleep(0.02)
        await server.send_event(audio_delta("resp_1", "item_a", 100))
        await asyncio.sleep(0.02)
        await server.send_event(done_with_usage("resp_1"))
        await asyncio.sleep(0.05)
    turn = session.stats.last_turn()
    assert turn is not None and turn.usage is not None and turn.cost_usd is not None
    assert turn.create_to_delta_ms is not None and turn.create_to_delta_ms >= 15
    assert turn.speech_to_audio_ms is not None and turn.speech_to_audio_ms > turn.create_to_delta_ms
    assert turn.duration_ms is not None and turn.duration_ms >= 15
    lines = [
        r for r in caplog.records if r.name == "realtime_client" and "resp_1" in r.getMessage()
    ]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].levelno == logging.INFO
    line = lines[0].getMessage()
    assert f"create -> first delta {turn.create_to_delta_ms:.0f} ms" in line
    assert f"speech stop -> first audio {turn.speech_to_audio_ms:.0f} ms" in line
    assert f"duration {turn.duration_ms:.0f} ms" in line
    assert "resp_1 completed" in line
    assert "in text 160 audio 1000 image 0 (cached text 60 audio 0 image 0)" in line
    assert "out text 400 audio 1600" in line
    # gpt-realtime prices (USD per 1M tokens): 100 text, 60 cached text, 1000 audio in;
    # 400 text, 1600 audio out.
    expected = (100 * 4.0 + 60 * 0.4 + 1_000 * 32.0 + 400 * 16.0 + 1_600 * 64.0) / 1e6
    assert turn.cost_usd == pytest.approx(expected)
    assert f"cost ${expected:.6f}" in line
    await session.close()


async def test_prices_override_changes_the_cost_estimate() -> None:
    from realtime_client import PRICES

    default, default_server = await open_pair()
    custom, custom_server = await open_pair(prices={"input_audio": 0.0, "output_audio": 1.0})
    for server in (default_server, custom_server):
        await server.send_event(created("resp_1"))
        await server.send_event(done_with_usage("resp_1"))
    await asyncio.sleep(0.05)
    base = 100 * 4.0 + 60 * 0.4 + 400 * 16.0
    assert default.stats.cost_usd == pytest.approx((base + 1_000 * 32.0 + 1_600 * 64.0) / 1e6)
    assert custom.stats.cost_usd == pytest.approx((base + 1_000 * 0.0 + 1_600 * 1.0) / 1e6)
    turn = custom.stats.last_turn()
    assert turn is not None and turn.cost_usd == pytest.approx(custom.stats.cost_usd)
    assert PRICES["output_audio"] == 64.0  # the module's table is not touched
    await default.close()
    await custom.close()


async def test_a_tool_timeout_sends_an_error_output_and_the_session_goes_on() -> None:
    async def slow(seconds: float) -> str:
        """Take a while."""
        await asyncio.sleep(seconds)
        return "too late"

    client_end, server = memory_pair()
    opening = asyncio.ensure_future(connect(transport=client_end, tools=[slow], tool_timeout=0.05))
    await server.send_event(
        {"type": "session.created", "event_id": "e0", "session": {"type": "realtime"}}
    )
    update = await recv(server)
    assert [t["name"] for t in update["session"]["tools"]] == ["slow"]
    await server.send_event(
        {"type": "session.updated", "event_id": "e1", "session": update["session"]}
    )
    session = await opening
    await server.send_event(created("resp_1"))
    finished = done("resp_1")
    finished["response"]["output"] = [  # type: ignore[index]
        {
            "type": "function_call",
            "id": "item_f",
            "call_id": "call_1",
            "name": "slow",
            "arguments": '{"seconds": 30}',
            "status": "completed",
        }
    ]
    await server.send_event(finished)
    output = await recv(server)  # within 2 s: the tool was stopped after 0.05 s
    assert output["type"] == "conversation.item.create"
    assert output["item"]["type"] == "function_call_output"
    assert output["item"]["call_id"] == "call_1"
    assert "timed out" in orjson.loads(output["item"]["output"])["error"]
    await server.send_event(
        {"type": "conversation.item.added", "event_id": "e2", "item": output["item"]}
    )
    # The session carries on: it asks for the next response.
    assert (await recv(server))["type"] == "response.create"
    await server.send_event(created("resp_2"))
    assert session.stats.tool_calls == 1 and session.stats.tool_errors == 1
    assert not session.closed
    await session.close()


async def test_truncate_is_skipped_when_nothing_was_played_or_no_audio() -> None:
    session, server = await open_pair()
    await server.send_event(created("resp_1"))
    await server.send_event(audio_delta("resp_1", "item_a", 200))
    await server.send_event(
        {
            "type": "response.output_text.delta",
            "event_id": "e_t",
            "response_id": "resp_1",
            "item_id": "item_t",
            "output_index": 1,
            "content_index": 0,
            "delta": "text only",
        }
    )
    await asyncio.sleep(0.02)
    assert await session.truncate("item_a", 0) is None  # nothing played
    assert await session.truncate("item_t", 150) is None  # no audio
    assert await session.truncate("item_a", 100, content_index=1) is None  # no such part
    assert await session.truncate("item_unknown", 150) is None
    assert await nothing_sent(server)
    # A barge-in before the sink played anything cuts nothing either.
    from realtime_client.audio.playback import PlaybackBuffer

    sink = PlaybackBuffer(24_000, prebuffer_ms=1_000)
    session.attach(sink=sink)
    await server.send_event(audio_delta("resp_1", "item_a", 100))
    await server.send_event(
        {
            "type": "input_audio_buffer.speech_started",
            "event_id": "e_sp",
            "audio_start_ms": 0,
            "item_id": "item_u",
        }
    )
    assert await nothing_sent(server)
    # What was played is cut, clamped to the audio received (300 ms).
    cutting = asyncio.ensure_future(session.truncate("item_a", 5_000))
    sent = await recv(server)
    assert (sent["type"], sent["item_id"], sent["audio_end_ms"]) == (
        "conversation.item.truncate",
        "item_a",
        300,
    )
    await server.send_event(
        {
            "type": "conversation.item.truncated",
            "event_id": "e_tr",
            "item_id": "item_a",
            "content_index": 0,
            "audio_end_ms": 300,
        }
    )
    result = await cutting
    assert result is not None and result.audio_end_ms == 300
    await session.close()


async def test_push_to_talk_turns_detection_off_and_a_press_cuts_the_reply() -> None:
    from realtime_client.audio.playback import PlaybackBuffer

    client_end, server = memory_pair()
    opening = asyncio.ensure_future(
        connect(transport=client_end, push_to_talk=True, instructions="Be brief.")
    )
    await server.send_event(
        {"type": "session.created", "event_id": "e0", "session": {"type": "realtime"}}
    )
    update = await recv(server)
    assert update["type"] == "session.update"
    assert update["session"] == {
        "type": "realtime",
        "instructions": "Be brief.",
        "audio": {"input": {"turn_detection": None}},
    }
    await server.send_event(
        {"type": "session.updated", "event_id": "e1", "session": update["session"]}
    )
    session = await opening
    sink = PlaybackBuffer(24_000, prebuffer_ms=0, fade_ms=0)
    session.attach(sink=sink)
    await server.send_event(created("resp_1"))
    await server.send_event(
        {
            "type": "response.output_item.added",
            "event_id": "e_oi",
            "response_id": "resp_1",
            "output_index": 0,
            "item": {
                "id": "item_a",
                "type": "message",
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            },
        }
    )
    for _ in range(5):
        await server.send_event(audio_delta("resp_1", "item_a", 100))
    await asyncio.sleep(0.02)
    sink.read(24 * 320)  # the device played 320 ms of the 500 ms received
    pressing = asyncio.ensure_future(session.push_to_talk_press())
    frames = {f["type"]: f for f in [await recv(server), await recv(server)]}
    assert set(frames) == {"response.cancel", "conversation.item.truncate"}
    truncate = frames["conversation.item.truncate"]
    assert (truncate["item_id"], truncate["content_index"], truncate["audio_end_ms"]) == (
        "item_a",
        0,
        320,
    )
    assert not sink.playing  # stopped at once, before any answer
    await server.send_event(
        {
            "type": "conversation.item.truncated",
            "event_id": "e_tr",
            "item_id": "item_a",
            "content_index": 0,
            "audio_end_ms": 320,
        }
    )
    await server.send_event(done("resp_1", "cancelled"))
    assert (await recv(server))["type"] == "input_audio_buffer.clear"
    await server.send_event({"type": "input_audio_buffer.cleared", "event_id": "e_cl"})
    await asyncio.wait_for(pressing, 2)
    item = session.conversation.get("item_a")
    assert item is not None and item.truncated_at_ms == 320
    assert session.protocol.active_response_id is None
    await session.close()


async def test_event_queue_keeps_order_survives_a_cancelled_wait_and_drops_oldest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session, server = await open_pair()
    session._max_queue = 3  # Session(max_event_queue=3); connect() keeps the default
    iterator = session.__aiter__()
    assert (await iterator.__anext__()).type == "session.created"
    # A reader that gives up while waiting must not swallow the next event.
    waiting = asyncio.ensure_future(iterator.__anext__())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    for n in range(5):
        await server.send_event({"type": "x.custom", "event_id": f"e{n}", "n": n})
    await asyncio.sleep(0.05)
    # Bounded: the two oldest went, counted and logged; the rest come in order.
    assert session.stats.dropped_events == 2
    got = [(await asyncio.wait_for(iterator.__anext__(), 1)).raw["n"] for _ in range(3)]
    assert got == [2, 3, 4]
    assert "event queue full" in caplog.text
    # A waiting reader is woken by the next event.
    later = asyncio.ensure_future(iterator.__anext__())
    await asyncio.sleep(0)
    await server.send_event({"type": "x.custom", "event_id": "e9", "n": 9})
    assert (await asyncio.wait_for(later, 1)).raw["n"] == 9
    await session.close()
    with pytest.raises(StopAsyncIteration):
        await iterator.__anext__()


def _delta(n: int) -> dict[str, Any]:
    return {
        "type": "response.output_audio.delta",
        "event_id": f"e_d{n}",
        "response_id": "resp_1",
        "item_id": "item_a",
        "output_index": 0,
        "content_index": 0,
        "delta": base64.b64encode(bytes([n, 0, n, 0])).decode(),
    }


@pytest.mark.parametrize("iterate_audio", [False, True])
async def test_with_a_sink_deltas_skip_the_iterator_unless_asked(iterate_audio: bool) -> None:
    session, server = await open_pair()
    written: list[list[int]] = []

    class Sink:
        def write(self, pcm: Any, item_id: str, content_index: int = 0) -> int:
            written.append(list(pcm))
            return len(pcm)

        def clear(self) -> None:
            pass

    handled: list[str] = []
    session.on(ev.ResponseOutputAudioDelta, lambda e: handled.append(e.event_id))
    session.attach(sink=Sink(), iterate_audio=iterate_audio)
    for n in (1, 2):
        await server.send_event(_delta(n))
    await server.send_event(done("resp_1"))
    iterated = []
    async for event in session:
        iterated.append(event.type)
        if event.type == "response.done":
            break
    # the sink plays every delta and handlers see each; the iterator only when asked
    assert written == [[1, 1], [2, 2]]
    assert handled == ["e_d1", "e_d2"]
    after_open = iterated[iterated.index("session.created") + 1 :]
    deltas = ["response.output_audio.delta"] * 2 if iterate_audio else []
    assert after_open == [*deltas, "response.done"]
    await session.close()


async def test_cancelling_a_request_as_its_answer_lands_still_cancels() -> None:
    # asyncio.wait_for (before 3.12) returns the answer when it and the cancellation meet
    # in one loop iteration, so the cancelled task ran on: a client task that never ended.
    session, server = await open_pair()
    task = asyncio.ensure_future(session.clear_input())
    sent = await recv(server)
    assert sent["type"] == "input_audio_buffer.clear"
    # The reader settles the answer and the task is cancelled before it runs again.
    session._futures[sent["event_id"]].set_result(ev.InputAudioBufferCleared())
    task.cancel()
    (outcome,) = await asyncio.gather(task, return_exceptions=True)
    assert isinstance(outcome, asyncio.CancelledError)
    await session.close()


async def test_a_request_without_an_answer_times_out_with_a_clear_error() -> None:
    session, server = await open_pair(request_timeout=0.05)
    with pytest.raises(InvalidStateError, match="no answer to input_audio_buffer.clear"):
        await session.clear_input()
    assert (await recv(server))["type"] == "input_audio_buffer.clear"
    assert session._futures == {}
    await session.close()


async def test_request_timeout_none_waits_for_the_answer() -> None:
    session, server = await open_pair(request_timeout=None)
    request = asyncio.ensure_future(session.clear_input())
    sent = await recv(server)
    await asyncio.sleep(0.05)
    assert not request.done()  # no limit: still waiting
    await server.send_event({"type": "input_audio_buffer.cleared", "event_id": "e_cl"})
    assert isinstance(await asyncio.wait_for(request, 2), ev.InputAudioBufferCleared)
    assert sent["type"] == "input_audio_buffer.clear"
    await session.close()

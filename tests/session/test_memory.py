"""The session over the public in-memory transport: exact wire-level race tests."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest

from realtime_client import InvalidServerEvent, connect, memory_pair
from realtime_client import events as ev
from realtime_client.server import LocalServer
from realtime_client.transports import MemoryTransport


async def open_pair(**kwargs: Any) -> tuple[Any, MemoryTransport]:
    client_end, server_end = memory_pair()
    opening = asyncio.ensure_future(connect(transport=client_end, **kwargs))
    await server_end.send_event(
        {"type": "session.created", "event_id": "e0", "session": {"type": "realtime"}}
    )
    return await opening, server_end


async def recv(server_end: MemoryTransport) -> dict[str, Any]:
    return await asyncio.wait_for(server_end.recv_event(), 2)


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
        {
            "type": "error",
            "event_id": "e_err",
            "error": {
                "type": "invalid_request_error",
                "code": "conversation_already_has_active_response",
                "message": "Conversation already has an active response in progress: resp_vad.",
                "param": None,
                "event_id": sent["event_id"],
            },
        }
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
    request = asyncio.ensure_future(session.create_response())
    sent = await recv(server)
    await server.send_event(
        {
            "type": "error",
            "event_id": "e_err",
            "error": {
                "type": "invalid_request_error",
                "code": "conversation_already_has_active_response",
                "message": "busy",
                "event_id": sent["event_id"],
            },
        }
    )
    with pytest.raises(Exception, match="conversation_already_has_active_response"):
        await request
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
        {
            "type": "error",
            "event_id": "e_err",
            "error": {
                "type": "invalid_request_error",
                "code": "response_cancel_not_active",
                "message": "Cancellation failed: no active response found",
                "event_id": sent["event_id"],
            },
        }
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
    first = asyncio.ensure_future(session.create_response({"max_output_tokens": 5000}))
    sent = await recv(server)
    await server.send_event(
        {
            "type": "error",
            "event_id": "e_err",
            "error": {
                "type": "invalid_request_error",
                "code": "integer_above_max_value",
                "message": "Expected a value <= 4096",
                "param": "response.max_output_tokens",
                "event_id": sent["event_id"],
            },
        }
    )
    with pytest.raises(Exception, match="4096"):
        await first
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
        {
            "type": "error",
            "event_id": "e1",
            "error": {
                "type": "invalid_request_error",
                "code": "unknown_parameter",
                "message": "Unknown parameter: 'session.x'.",
                "event_id": update["event_id"],
            },
        }
    )
    with pytest.raises(Exception, match="Unknown parameter"):
        await opening
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

"""A hostile or broken server never kills the session (the hardening issue's repros)."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import numpy as np
import pytest

from realtime_client import InvalidServerEvent, connect, memory_pair
from realtime_client.audio import PlaybackBuffer
from realtime_client.errors import RemoteProtocolError
from realtime_client.protocol import RealtimeProtocol

from .conftest import open_pair


async def next_notice(seen: list[Any]) -> InvalidServerEvent:
    for _ in range(200):
        found = [e for e in seen if isinstance(e, InvalidServerEvent)]
        if found:
            return found[0]
        await asyncio.sleep(0.01)
    raise AssertionError("no InvalidServerEvent")


def delta_event(index_field: str, value: int) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "response.output_text.delta",
        "event_id": "e2",
        "response_id": "r",
        "item_id": "i",
        "output_index": 0,
        "content_index": 0,
        "delta": "x",
    }
    event[index_field] = value
    return event


def response_created(response_id: str = "resp_1") -> dict[str, Any]:
    """``response.created`` for ``response_id`` (in progress)."""
    return {
        "type": "response.created",
        "event_id": f"c_{response_id}",
        "response": {"id": response_id, "status": "in_progress", "conversation_id": "conv"},
    }


def output_item_added(output_index: int, response_id: str = "r") -> dict[str, Any]:
    """``response.output_item.added`` of an empty assistant message at ``output_index``."""
    return {
        "type": "response.output_item.added",
        "event_id": "o",
        "response_id": response_id,
        "output_index": output_index,
        "item": {"id": "i", "type": "message", "role": "assistant", "content": []},
    }


def not_pcm16_delta() -> dict[str, Any]:
    """An audio delta whose payload is 3 bytes: not 16-bit samples."""
    return {
        "type": "response.output_audio.delta",
        "event_id": "d1",
        "response_id": "r",
        "item_id": "i",
        "output_index": 0,
        "content_index": 0,
        "delta": base64.b64encode(b"odd").decode(),
    }


def unparseable_response_done(response_id: str = "resp_1") -> dict[str, Any]:
    """A ``response.done`` that fails strict parsing: its usage is not an object."""
    return {
        "type": "response.done",
        "event_id": "d1",
        "response": {"id": response_id, "status": "completed", "usage": "lots"},
    }


def unrequested_commit() -> dict[str, Any]:
    """A server-VAD ``input_audio_buffer.committed`` nobody asked for."""
    return {"type": "input_audio_buffer.committed", "event_id": "e_c", "item_id": "item_u"}


@pytest.mark.parametrize(
    ("field", "value"),
    [("content_index", -1), ("content_index", 5_000_000), ("content_index", 2**63 - 1)],
)
async def test_a_bad_index_is_reported_and_the_reader_goes_on(field: str, value: int) -> None:
    session, server = await open_pair()
    seen: list[Any] = []
    session.on("*", seen.append)
    started = time.perf_counter()
    await server.send_event(delta_event(field, value))
    notice = await next_notice(seen)
    assert "content_index" in notice.error
    assert time.perf_counter() - started < 1.0  # no allocation up to the index
    # The reader is alive: a request still gets its answer.
    clearing = asyncio.ensure_future(session.clear_input())
    sent = await asyncio.wait_for(server.recv_event(), 2)
    await server.send_event(
        {"type": "input_audio_buffer.cleared", "event_id": "e3", "previous": sent["event_id"]}
    )
    await asyncio.wait_for(clearing, 2)
    assert not session.closed
    await session.close()


def test_output_index_out_of_range_is_a_remote_protocol_error() -> None:
    proto = RealtimeProtocol()
    proto.receive(response_created("r"))
    with pytest.raises(RemoteProtocolError, match="output_index"):
        proto.receive(output_item_added(10**9))


async def test_a_delta_that_is_not_pcm16_is_an_invalid_event_not_audio() -> None:
    session, server = await open_pair()
    seen: list[Any] = []
    session.on("*", seen.append)
    session.attach(sink=PlaybackBuffer(24_000, prebuffer_ms=0))
    await server.send_event(not_pcm16_delta())
    notice = await next_notice(seen)
    assert "PCM16" in notice.error
    assert session.stats.audio_received_ms == 0
    assert session.protocol.audio_received_ms("i") == 0
    await session.close()


async def test_a_response_done_that_fails_parsing_still_ends_its_response() -> None:
    session, server = await open_pair()
    first = asyncio.ensure_future(session.create_response())
    await asyncio.wait_for(server.recv_event(), 2)
    await server.send_event(response_created("resp_1"))
    await asyncio.wait_for(first, 2)
    second = asyncio.ensure_future(session.create_response())
    await asyncio.sleep(0.05)
    assert server._inbox.empty()  # queued behind resp_1
    # A response.done whose usage is not an object fails strict parsing...
    await server.send_event(unparseable_response_done("resp_1"))
    # ...but resp_1 is over, so the queued create goes out.
    sent = await asyncio.wait_for(server.recv_event(), 2)
    assert sent["type"] == "response.create"
    assert session.protocol.responses["resp_1"].status == "incomplete"
    assert session.protocol.active_response_id is None
    second.cancel()
    await session.close()


# --- tools, URLs and keys (the hardening issue's items 17-20) -------------------------------


async def test_every_tool_failure_becomes_an_error_output() -> None:
    from realtime_client.tools import MAX_OUTPUT_CHARS, Tool, ToolError

    def not_json() -> object:
        return {(1, 2): "x"}

    def cycle() -> object:
        loop: list[object] = []
        loop.append(loop)
        return loop

    def exits() -> None:
        raise SystemExit(3)

    async def interrupts() -> None:
        raise KeyboardInterrupt

    for func in (not_json, cycle, exits, interrupts):
        with pytest.raises(ToolError, match=func.__name__):
            await Tool.from_callable(func).call("{}", timeout=5)

    def huge() -> str:
        return "x" * (3 * MAX_OUTPUT_CHARS)

    out = await Tool.from_callable(huge).call("{}", timeout=5)
    assert len(out) == MAX_OUTPUT_CHARS and out.endswith("characters]")


async def test_a_failing_tool_still_answers_and_the_turn_goes_on() -> None:
    def broken() -> object:
        return {(1, 2): "x"}

    client_end, server = memory_pair()
    opening = asyncio.ensure_future(connect(transport=client_end, tools=[broken]))
    await server.send_event(
        {"type": "session.created", "event_id": "e0", "session": {"type": "realtime"}}
    )
    update = await asyncio.wait_for(server.recv_event(), 2)
    await server.send_event(
        {"type": "session.updated", "event_id": "e1", "session": {"type": "realtime"}}
    )
    session = await opening
    assert update["type"] == "session.update"
    call = {
        "id": "fc_1",
        "type": "function_call",
        "call_id": "call_1",
        "name": "broken",
        "arguments": "{}",
        "status": "completed",
    }
    await server.send_event(
        {
            "type": "response.done",
            "event_id": "d1",
            "response": {
                "id": "resp_1",
                "status": "completed",
                "conversation_id": "conv",
                "output": [call],
            },
        }
    )
    create = await asyncio.wait_for(server.recv_event(), 2)
    assert create["type"] == "conversation.item.create"
    assert create["item"]["type"] == "function_call_output"
    assert "not JSON" in create["item"]["output"]
    assert session.stats.tool_errors == 1
    await session.close()


@pytest.mark.parametrize("url", ["http://[::1", "http://h:99999/v1", "http://h:abc/v1"])
async def test_malformed_urls_are_connect_errors(url: str) -> None:
    from realtime_client.errors import ConnectError

    with pytest.raises(ConnectError, match="malformed URL"):
        await connect("gpt-realtime", url=url, api_key="k", allow_insecure=True)


async def test_credentials_in_the_url_never_reach_an_error() -> None:
    from realtime_client.errors import ConnectError

    with pytest.raises(ConnectError) as info:
        await connect(
            "gpt-realtime",
            url="http://user:sk-inurl@127.0.0.1:9/v1?api_key=sk-query",
            reconnect=False,
        )
    assert "sk-inurl" not in str(info.value) and "sk-query" not in str(info.value)
    assert "***" in str(info.value)


async def test_no_key_travels_unencrypted_off_this_machine() -> None:
    from realtime_client.errors import ConnectError

    with pytest.raises(ConnectError, match="unencrypted"):
        await connect("gpt-realtime", url="http://192.0.2.1/v1", api_key="sk-x")
    with pytest.raises(ConnectError, match="unencrypted"):
        await connect("gpt-realtime", url="ws://example.com/v1", api_key="sk-x", transport="webrtc")


async def test_a_frame_past_the_limit_closes_instead_of_costing_memory() -> None:
    from realtime_client.server import LocalServer
    from realtime_client.transports import WebSocketTransport
    from realtime_client.transports.websocket import DEFAULT_MAX_FRAME

    assert DEFAULT_MAX_FRAME == 8 * 1024 * 1024
    async with LocalServer(speed=0) as server:
        transport = WebSocketTransport(
            server.ws_url + "?model=gpt-realtime",
            headers={"Authorization": "Bearer sk-local"},
            max_size=1024,
        )
        await transport.connect()
        first = await transport.recv()  # session.created fits in 1 KiB
        assert b"session.created" in (first if isinstance(first, bytes) else first.encode())
        await transport.send(
            '{"type":"conversation.item.create","item":{"type":"message","role":"user",'
            '"content":[{"type":"input_text","text":"' + "y" * 4000 + '"}]}}'
        )
        from realtime_client.errors import ConnectionClosedError

        with pytest.raises(ConnectionClosedError) as info:
            for _ in range(5):
                await transport.recv()  # the echo of 4 KB is past our 1 KiB limit
        assert info.value.code == 1009
        await transport.close()


# --- send_audio input (items 14, 15) ----------------------------------------------------


@pytest.mark.parametrize(
    ("block", "rate", "why"),
    [
        (np.zeros(960, np.int32), 48_000, "int32"),
        (np.zeros(480, np.uint8), 24_000, "uint8"),
        (np.zeros(320, bool), 16_000, "bool"),
        (np.zeros(480, complex), 24_000, "complex"),
        (np.zeros((960, 2), np.int64), 48_000, "int64"),
        (np.zeros((480, 0), np.float32), 24_000, "no channels"),
        (np.full(480, np.inf, np.float32), 24_000, "infinite"),
        (np.full(960, np.nan, np.float32), 48_000, "NaN"),
        (np.zeros(960, np.float32), "48000", "whole number"),
    ],
)
async def test_send_audio_has_one_rule_for_every_path(block: Any, rate: Any, why: str) -> None:
    from realtime_client.errors import AudioFormatError

    session, server = await open_pair()
    with pytest.raises(AudioFormatError, match=why):
        await session.send_audio(block, rate)
    assert session.stats.audio_sent_ms == 0
    assert server._inbox.empty()
    await session.close()


async def test_a_huge_send_goes_out_as_appends_the_service_accepts() -> None:
    from realtime_client.audio_path import EventAudioPath

    session, server = await open_pair()
    seconds = 130
    await session.send_audio(np.zeros(24_000 * seconds, np.int16), 24_000)
    sizes = []
    while not server._inbox.empty():
        frame = await server.recv()
        assert len(frame) < 15 * 1024 * 1024
        sizes.append(len(frame))
    assert len(sizes) == -(-seconds * 24_000 // EventAudioPath.MAX_APPEND_SAMPLES)  # 3
    assert session.stats.audio_sent_ms == seconds * 1000
    await session.close()


async def test_odd_rates_are_refused_up_front_and_known_rates_built_before_audio() -> None:
    import time

    from realtime_client.errors import AudioFormatError

    session, _server = await open_pair()
    started = time.perf_counter()
    with pytest.raises(AudioFormatError, match="reduced ratio"):
        await session.send_audio(np.zeros(960, np.float32), 47_952)
    assert time.perf_counter() - started < 0.5  # refused before any filter is designed

    class Source:
        sample_rate = 44_100

        def __aiter__(self) -> Source:
            return self

        async def __anext__(self) -> np.ndarray:
            raise StopAsyncIteration

    session.attach(Source())
    assert (44_100, 24_000) in session._input._resamplers  # designed at attach
    await session.close()


async def test_an_unrequested_commit_before_our_response_created_does_not_stall_us() -> None:
    session, server = await open_pair()
    first = asyncio.ensure_future(session.create_response())
    assert (await asyncio.wait_for(server.recv_event(), 2))["type"] == "response.create"
    # Server VAD commits between our create and its response.created...
    await server.send_event(unrequested_commit())
    await server.send_event(response_created("resp_1"))
    # ...and no other response.created or error follows: resp_1 was ours.
    await server.send_event(
        {
            "type": "response.done",
            "event_id": "d1",
            "response": {"id": "resp_1", "status": "completed", "conversation_id": "conv"},
        }
    )
    created = await asyncio.wait_for(first, 2)
    assert created.type == "response.created" and created.response.id == "resp_1"
    # The queue moves on.
    second = asyncio.ensure_future(session.create_response())
    assert (await asyncio.wait_for(server.recv_event(), 2))["type"] == "response.create"
    second.cancel()
    await session.close()


async def test_an_event_nested_too_deep_to_serialise_is_reported_not_accepted() -> None:
    """Issue 14, item 4: orjson stops serialising at 255 levels; such an event is refused."""
    import json

    from realtime_client import events as ev
    from realtime_client.errors import InvalidEventError

    def nested(levels: int) -> Any:
        value: Any = "x"
        for _ in range(levels):
            value = [value]
        return value

    event = {**delta_event("content_index", 0), "extra": nested(300)}
    with pytest.raises(InvalidEventError, match="depth"):
        ev.parse_server_event(json.dumps(event))
    shallow = {**delta_event("content_index", 0), "extra": nested(200)}
    assert ev.dumps(ev.parse_server_event(json.dumps(shallow)))
    session, server = await open_pair()
    seen: list[Any] = []
    session.on("*", seen.append)
    await server.send(json.dumps(event))
    assert "depth" in (await next_notice(seen)).error
    assert not session.closed
    await session.close()

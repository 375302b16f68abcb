"""A hostile or broken server never kills the session (the hardening issue's repros)."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import pytest

from realtime_client import InvalidServerEvent, connect, memory_pair
from realtime_client.audio import PlaybackBuffer
from realtime_client.errors import RemoteProtocolError
from realtime_client.protocol import RealtimeProtocol
from realtime_client.transports import MemoryTransport


async def open_pair() -> tuple[Any, MemoryTransport]:
    client_end, server_end = memory_pair()
    opening = asyncio.ensure_future(connect(transport=client_end))
    await server_end.send_event(
        {"type": "session.created", "event_id": "e0", "session": {"type": "realtime"}}
    )
    return await opening, server_end


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
    proto.receive(
        {
            "type": "response.created",
            "event_id": "c",
            "response": {"id": "r", "status": "in_progress", "conversation_id": "conv"},
        }
    )
    with pytest.raises(RemoteProtocolError, match="output_index"):
        proto.receive(
            {
                "type": "response.output_item.added",
                "event_id": "o",
                "response_id": "r",
                "output_index": 10**9,
                "item": {"id": "i", "type": "message", "role": "assistant", "content": []},
            }
        )


async def test_a_delta_that_is_not_pcm16_is_an_invalid_event_not_audio() -> None:
    session, server = await open_pair()
    seen: list[Any] = []
    session.on("*", seen.append)
    session.attach(sink=PlaybackBuffer(24_000, prebuffer_ms=0))
    await server.send_event(
        {
            "type": "response.output_audio.delta",
            "event_id": "d1",
            "response_id": "r",
            "item_id": "i",
            "output_index": 0,
            "content_index": 0,
            "delta": base64.b64encode(b"odd").decode(),  # 3 bytes: not 16-bit samples
        }
    )
    notice = await next_notice(seen)
    assert "PCM16" in notice.error
    assert session.stats.audio_received_ms == 0
    assert session.protocol.audio_received_ms("i") == 0
    await session.close()


async def test_a_response_done_that_fails_parsing_still_ends_its_response() -> None:
    session, server = await open_pair()
    first = asyncio.ensure_future(session.create_response())
    await asyncio.wait_for(server.recv_event(), 2)
    await server.send_event(
        {
            "type": "response.created",
            "event_id": "c1",
            "response": {"id": "resp_1", "status": "in_progress", "conversation_id": "conv"},
        }
    )
    await asyncio.wait_for(first, 2)
    second = asyncio.ensure_future(session.create_response())
    await asyncio.sleep(0.05)
    assert server._inbox.empty()  # queued behind resp_1
    # A response.done whose usage is not an object fails strict parsing...
    await server.send_event(
        {
            "type": "response.done",
            "event_id": "d1",
            "response": {"id": "resp_1", "status": "completed", "usage": "lots"},
        }
    )
    # ...but resp_1 is over, so the queued create goes out.
    sent = await asyncio.wait_for(server.recv_event(), 2)
    assert sent["type"] == "response.create"
    assert session.protocol.responses["resp_1"].status == "incomplete"
    assert session.protocol.active_response_id is None
    second.cancel()
    await session.close()

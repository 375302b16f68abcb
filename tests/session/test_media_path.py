"""The session's media audio path, over the in-memory transport's media emulation.

What a WebRTC transport will do, tested now through the seam: captured audio goes to the
media channel (never as ``input_audio_buffer.append``), output audio comes off it and is
played tagged with the item of the response ``output_audio_buffer.started`` named.
"""

from __future__ import annotations

import asyncio

import numpy as np

from realtime_client.audio import PlaybackBuffer
from realtime_client.transports import MemoryTransport

from .conftest import open_pair, recv, until


class RecordingSink(PlaybackBuffer):
    """A playback buffer that also remembers which items were marked finished."""

    def __init__(self) -> None:
        super().__init__(24_000, prebuffer_ms=0)
        self.finished: list[tuple[str, int | None]] = []

    def mark_finished(self, item_id: str, content_index: int | None = None) -> None:
        self.finished.append((item_id, content_index))
        super().mark_finished(item_id, content_index)


def tone(rate: int, ms: int, hz: float = 440.0) -> np.ndarray:
    t = np.arange(rate * ms // 1000) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


async def start_reply(server: MemoryTransport, rid: str = "resp_1", item: str = "item_a") -> None:
    for event in (
        {
            "type": "response.created",
            "event_id": "c1",
            "response": {"id": rid, "status": "in_progress", "conversation_id": "conv_1"},
        },
        {
            "type": "response.output_item.added",
            "event_id": "o1",
            "response_id": rid,
            "output_index": 0,
            "item": {"id": item, "type": "message", "role": "assistant", "content": []},
        },
        {
            "type": "response.content_part.added",
            "event_id": "p1",
            "response_id": rid,
            "item_id": item,
            "output_index": 0,
            "content_index": 0,
            "part": {"type": "audio", "transcript": ""},
        },
        {"type": "output_audio_buffer.started", "event_id": "b1", "response_id": rid},
    ):
        await server.send_event(event)


async def test_captured_audio_goes_to_the_media_channel_not_as_events() -> None:
    session, server = await open_pair(media=True)
    assert session.audio_path.kind == "media"
    assert server.media is not None
    block = tone(24_000, 200)
    for start in range(0, len(block), 480):  # 20 ms blocks at 24 kHz
        await session.send_audio(block[start : start + 480], 24_000)
    received: list[np.ndarray] = []
    while sum(map(len, received)) < 9_000:
        received.append(await asyncio.wait_for(server.media.recv(), 2))
    uplink = np.concatenate(received)
    # Resampled to the channel's 48 kHz: twice the samples, minus the filter's hold-back.
    assert abs(len(uplink) - 2 * len(block)) < 100
    spectrum = np.abs(np.fft.rfft(uplink[2000:8000].astype(np.float64)))
    peak_hz = np.argmax(spectrum) * 48_000 / 6000
    assert abs(peak_hz - 440) < 10
    assert session.stats.audio_sent_ms == 200.0
    assert server._inbox.empty()  # no input_audio_buffer.append on this transport
    await session.close()


async def test_output_audio_is_played_tagged_with_the_started_responses_item() -> None:
    session, server = await open_pair(media=True)
    assert server.media is not None
    sink = RecordingSink()
    session.attach(sink=sink)
    await start_reply(server)
    pcm48 = (tone(48_000, 300) * 32767).astype(np.int16)
    await server.media.send(pcm48)
    await until(lambda: session.stats.audio_received_ms >= 300)
    # The protocol core counts it on the item, as deltas would be.
    assert abs(session.protocol.audio_received_ms("item_a") - 300) < 1
    assert abs(sink.received_ms("item_a") - 300) < 1 and sink.buffered_ms > 250
    await server.send_event(
        {"type": "output_audio_buffer.stopped", "event_id": "b2", "response_id": "resp_1"}
    )
    await until(lambda: sink.finished == [("item_a", 0)])
    await session.close()


async def test_audio_with_no_response_playing_is_counted_not_played() -> None:
    session, server = await open_pair(media=True)
    assert server.media is not None
    sink = RecordingSink()
    session.attach(sink=sink)
    await server.media.send(np.zeros(960, np.int16))
    await until(lambda: session.stats.unattributed_audio_ms >= 20)
    assert sink.buffered_ms == 0
    await session.close()


async def test_interrupt_clears_the_output_buffer_and_cancels_without_truncate() -> None:
    session, server = await open_pair(media=True)
    assert server.media is not None
    sink = RecordingSink()
    session.attach(sink=sink)
    await start_reply(server)
    await server.media.send((tone(48_000, 200) * 32767).astype(np.int16))
    await until(lambda: session.stats.audio_received_ms >= 200)
    interrupting = asyncio.ensure_future(session.interrupt())
    sent = {(await recv(server))["type"], (await recv(server))["type"]}
    assert sent == {"response.cancel", "output_audio_buffer.clear"}
    await server.send_event(
        {"type": "output_audio_buffer.cleared", "event_id": "b3", "response_id": "resp_1"}
    )
    await server.send_event(
        {
            "type": "response.done",
            "event_id": "d1",
            "response": {"id": "resp_1", "status": "cancelled", "conversation_id": "conv_1"},
        }
    )
    await asyncio.wait_for(interrupting, 2)
    assert sink.buffered_ms == 0
    assert server._inbox.empty()  # no conversation.item.truncate: the server cuts itself
    await session.close()


async def test_barge_in_clears_playback_and_leaves_the_cut_to_the_server() -> None:
    session, server = await open_pair(media=True)
    assert server.media is not None
    sink = RecordingSink()
    session.attach(sink=sink)
    await start_reply(server)
    await server.media.send((tone(48_000, 400) * 32767).astype(np.int16))
    await until(lambda: session.stats.audio_received_ms >= 400)
    await server.send_event(
        {
            "type": "input_audio_buffer.speech_started",
            "event_id": "s1",
            "audio_start_ms": 100,
            "item_id": "item_u",
        }
    )
    await until(lambda: sink.buffered_ms == 0)
    await asyncio.sleep(0.05)
    assert server._inbox.empty()  # server VAD cancels and truncates by itself
    await session.close()


async def test_interrupt_with_nothing_playing_sends_no_clear() -> None:
    session, server = await open_pair(media=True)
    await session.interrupt()  # nothing active, nothing playing: nothing to send
    assert server._inbox.empty()
    await session.close()

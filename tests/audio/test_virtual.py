"""The simulated devices: VirtualSpeaker, VirtualMicrophone, and a session using them."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from realtime_client import connect, memory_pair
from realtime_client.audio import (
    CapturedBlock,
    DeviceError,
    Microphone,
    PlayedPosition,
    Speaker,
    VirtualMicrophone,
    VirtualSpeaker,
    block_edge,
    pcm16_to_float32,
)
from realtime_client.transports import MemoryTransport

RATE = 24_000


def tone(seconds: float, rate: int = RATE, hz: float = 440.0) -> npt.NDArray[np.float32]:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


async def blocks_of(mic: VirtualMicrophone, count: int) -> list[CapturedBlock]:
    return [await mic.__anext__() for _ in range(count)]


# --- block edges ---------------------------------------------------------------------------


def test_block_edges_average_the_block_length_at_odd_rates() -> None:
    lengths = [block_edge(k + 1, 11_025, 20) - block_edge(k, 11_025, 20) for k in range(100)]
    assert set(lengths) == {220, 221}
    assert block_edge(100, 11_025, 20) == 22_050  # exactly 2 s after 100 blocks
    assert [block_edge(k, 24_000, 20) for k in range(3)] == [0, 480, 960]


# --- the speaker ---------------------------------------------------------------------------


async def test_speaker_ticked_by_hand_plays_and_counts_like_a_speaker() -> None:
    async with VirtualSpeaker(speed=None, prebuffer_ms=40) as speaker:
        assert isinstance(speaker, Speaker)
        x = tone(0.1)
        assert speaker.write(x, "item_a") == len(x)
        assert speaker.written_ms == pytest.approx(100.0)
        first = speaker.tick()
        assert len(first) == 480  # one 20 ms block at the device rate
        np.testing.assert_array_equal(first, x[:480])  # prebuffer reached: it plays at once
        speaker.tick()
        assert speaker.played_ms("item_a") == pytest.approx(40.0)
        assert speaker.stream_time == pytest.approx(0.040)
        position = speaker.clear(fade_ms=0)
        assert isinstance(position, PlayedPosition)
        assert (position.item_id, position.played_ms) == ("item_a", pytest.approx(40.0))
        assert not speaker.tick().any()  # cleared: silence
        assert speaker.stats.callbacks == 3
    with pytest.raises(DeviceError, match="not open"):
        speaker.write(x, "item_b")


async def test_speaker_resamples_to_its_device_rate_like_a_speaker() -> None:
    async with VirtualSpeaker(speed=None, device_rate=48_000, prebuffer_ms=0) as speaker:
        speaker.write(tone(0.2, hz=1000.0), "item_a")
        speaker.mark_finished("item_a")  # the resampler's tail goes in too
        played = np.concatenate([speaker.tick() for _ in range(12)])
        assert len(played) == 12 * 960
        assert speaker.received_ms("item_a") == pytest.approx(200.0, abs=1.0)
        # The 1 kHz tone, at the device's 48 kHz.
        spectrum = np.abs(np.fft.rfft(played[960:8640]))
        assert np.fft.rfftfreq(7680, 1 / 48_000)[np.argmax(spectrum)] == pytest.approx(1000.0)


async def test_speaker_on_its_own_clock_plays_in_real_time() -> None:
    async with VirtualSpeaker(speed=4.0, prebuffer_ms=0) as speaker:
        speaker.write(tone(1.0), "item_a")
        t0 = time.monotonic()
        await asyncio.sleep(0.1)
        played = speaker.played_ms("item_a")
        elapsed_ms = (time.monotonic() - t0) * 1000
        # Four times real time: about 400 ms of audio in 100 ms, never more than the clock.
        assert 200 <= played <= 4 * elapsed_ms + 80
    with pytest.raises(ValueError, match="speed"):
        VirtualSpeaker(speed=0)


# --- the microphone ------------------------------------------------------------------------


async def test_microphone_cuts_exact_blocks_then_silence() -> None:
    x = tone(0.1, rate=11_025)  # 1102 frames: five blocks and a bit
    mic = VirtualMicrophone(x, 11_025, speed=0)
    blocks = await blocks_of(mic, 8)
    assert [b.frame_index for b in blocks] == [block_edge(k, 11_025, 20) for k in range(8)]
    assert {len(b.samples) for b in blocks} == {220, 221}
    joined = np.concatenate([b.samples for b in blocks])
    np.testing.assert_array_equal(joined[: len(x)], x)
    assert not joined[len(x) :].any()  # a quiet room after the file
    assert all(b.sample_rate == 11_025 and b.dropped_frames == 0 for b in blocks)
    assert blocks[5].capture_time == pytest.approx(0.1, abs=1 / 11_025)  # on the device clock
    assert mic.stats.blocks == 8 and mic.stats.frames == len(joined)
    assert mic.stream_time == pytest.approx(len(joined) / 11_025)


async def test_microphone_repeats_or_ends() -> None:
    x = np.arange(700, dtype=np.float32) / 1000  # not a whole number of 480-frame blocks
    repeat = await blocks_of(VirtualMicrophone(x, after="repeat", speed=0), 3)
    np.testing.assert_array_equal(
        np.concatenate([b.samples for b in repeat]), np.tile(x, 3)[: 3 * 480]
    )
    ended = [b async for b in VirtualMicrophone(x, after="end", speed=0)]
    assert [len(b.samples) for b in ended] == [480, 220]
    closed = VirtualMicrophone(x, speed=0)
    assert isinstance(closed, Microphone)
    async with closed:
        pass
    assert [b async for b in closed] == []
    with pytest.raises(DeviceError, match="not open"):
        closed.stream_time  # noqa: B018 (the property raises)


async def test_microphone_paces_blocks_and_reports_when_each_was_due() -> None:
    seen: list[tuple[int, float, float]] = []
    start = time.monotonic() + 0.01

    def on_block(index: int, due: float) -> None:
        seen.append((index, due, time.monotonic()))

    mic = VirtualMicrophone(tone(1.0), speed=2.0, start=start, on_block=on_block)
    await blocks_of(mic, 6)
    for index, due, taken in seen:
        assert due == pytest.approx(start + index * 0.010)  # 20 ms blocks at twice real time
        assert taken >= due
    assert mic.due(mic.blocks) == pytest.approx(start + 6 * 0.010)


async def test_microphone_ticks_its_duplex_speaker_once_per_block() -> None:
    async with VirtualSpeaker(speed=None, prebuffer_ms=0) as speaker:
        mic = VirtualMicrophone(speed=0, speaker=speaker)
        speaker.write(tone(0.2), "item_a")
        await blocks_of(mic, 3)
        assert speaker.played_ms("item_a") == pytest.approx(60.0)
    with pytest.raises(ValueError, match="speed=None"):
        VirtualMicrophone(speaker=VirtualSpeaker())


# --- what a session sees -----------------------------------------------------------------


async def open_pair() -> tuple[Any, MemoryTransport]:
    client_end, server_end = memory_pair()
    opening = asyncio.ensure_future(connect(transport=client_end))
    await server_end.send_event(
        {"type": "session.created", "event_id": "e0", "session": {"type": "realtime"}}
    )
    return await opening, server_end


async def test_a_session_streams_the_microphone_and_truncates_at_the_played_position() -> None:
    session, server = await open_pair()
    speech = tone(0.1, rate=16_000)
    async with (
        VirtualMicrophone(speech, 16_000, after="end", speed=0) as mic,
        VirtualSpeaker(speed=None, prebuffer_ms=0, fade_ms=0) as speaker,
    ):
        session.attach(mic, speaker)
        appended = []
        while sum(len(a) for a in appended) < 2400:  # 100 ms at 24 kHz, resampled
            event = await asyncio.wait_for(server.recv_event(), 2)
            assert event["type"] == "input_audio_buffer.append"
            appended.append(pcm16_to_float32(base64.b64decode(event["audio"])))
        level = float(np.sqrt(np.mean(np.concatenate(appended)[200:] ** 2)))
        assert level == pytest.approx(0.5 / np.sqrt(2), rel=0.05)  # the tone went out

        pcm = (tone(0.3) * 32767).astype("<i2").tobytes()
        await server.send_event(
            {
                "type": "response.output_audio.delta",
                "event_id": "e_d",
                "response_id": "resp_1",
                "item_id": "item_a",
                "output_index": 0,
                "content_index": 0,
                "delta": base64.b64encode(pcm).decode(),
            }
        )
        for _ in range(100):
            if speaker.written_ms:
                break
            await asyncio.sleep(0.01)
        for _ in range(7):
            speaker.tick()  # the device played 140 ms
        await server.send_event(
            {
                "type": "input_audio_buffer.speech_started",
                "event_id": "e_sp",
                "audio_start_ms": 0,
                "item_id": "item_u",
            }
        )
        truncate = await asyncio.wait_for(server.recv_event(), 2)
        assert (truncate["type"], truncate["item_id"], truncate["audio_end_ms"]) == (
            "conversation.item.truncate",
            "item_a",
            140,
        )
        assert not speaker.tick().any()  # playback stopped at the barge-in
    await session.close()

"""Our Opus path for WebRTC peers: the encoder, the inline decoder, libopus direct and PyAV.

The wire stays standard Opus: what we encode decodes with aiortc's own (PyAV) decoder, and
what aiortc's encoder sends decodes with ours.
"""

from __future__ import annotations

import asyncio
import fractions
from typing import Any

import numpy as np
import pytest

pytest.importorskip("aiortc", reason="the webrtc extra is not installed")

from aiortc.codecs import get_capabilities
from aiortc.codecs.opus import OpusDecoder as AiortcDecoder
from aiortc.codecs.opus import OpusEncoder as AiortcEncoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av import AudioFrame

from realtime_client import _opus
from realtime_client._rtc import (
    FRAME,
    RATE,
    OpusEncoder,
    PcmFrame,
    PcmTrack,
    _InlineDecoding,
    frame_to_mono,
)

from ..conftest import dominant_hz

OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=96)
PCMU = RTCRtpCodecParameters(mimeType="audio/PCMU", clockRate=8000, channels=1, payloadType=0)


def tone_frames(count: int, hz: float = 440.0) -> list[np.ndarray]:
    t = np.arange(FRAME * count) / RATE
    pcm = (0.3 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    return [pcm[i * FRAME : (i + 1) * FRAME] for i in range(count)]


@pytest.fixture(params=["direct", "pyav"])
def codec_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways to reach libopus: ctypes (where it loads) and PyAV's wrapper."""
    if request.param == "direct":
        if _opus.load() is None:
            pytest.skip("libopus cannot be called directly on this platform")
    else:
        monkeypatch.setattr(_opus, "_lib", None)
        monkeypatch.setattr(_opus, "_tried", True)
    return str(request.param)


def test_our_packets_are_mono_32_kbps_opus_that_aiortcs_decoder_plays(codec_path: str) -> None:
    encoder = OpusEncoder()
    decoder = AiortcDecoder()
    heard = []
    sizes = []
    for index, samples in enumerate(tone_frames(50, 600.0)):
        packet = encoder.encode(samples, index * FRAME)
        assert packet.pts == index * FRAME and packet.time_base == fractions.Fraction(1, RATE)
        payload = bytes(packet)
        sizes.append(len(payload))
        assert payload[0] & 0x04 == 0  # the TOC's stereo flag: a mono stream
        (frame,) = decoder.decode(JitterFrame(data=payload, timestamp=index * FRAME))
        heard.append(frame_to_mono(frame))
    # 32 kb/s is 80 bytes per 20 ms; aiortc's encoder (96 kb/s stereo) sends about 240.
    assert 40 <= np.mean(sizes) <= 110
    pcm = np.concatenate(heard[10:])
    assert abs(dominant_hz(pcm.astype(np.float32) / 32768, RATE) - 600) < 15
    assert np.abs(pcm).max() > 0.2 * 32767


async def test_the_inline_decoder_plays_aiortcs_packets_mono_and_passes_the_rest_on(
    codec_path: str,
) -> None:
    encoder = AiortcEncoder()
    output: asyncio.Queue[Any] = asyncio.Queue()
    inline = _InlineDecoding(output)
    for index, samples in enumerate(tone_frames(30, 800.0)):
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = index * FRAME
        frame.time_base = fractions.Fraction(1, RATE)
        payloads, timestamp = encoder.encode(frame)
        for payload in payloads:
            inline.put((OPUS, JitterFrame(data=payload, timestamp=timestamp)))
    frames = [output.get_nowait() for _ in range(output.qsize())]
    assert len(frames) >= 28
    if codec_path == "direct":
        assert all(isinstance(f, PcmFrame) for f in frames)
    assert all(f.sample_rate == RATE for f in frames)
    pcm = np.concatenate([frame_to_mono(f) for f in frames[5:]])
    assert len(pcm) == FRAME * len(frames[5:])  # mono: one sample per tick
    assert abs(dominant_hz(pcm.astype(np.float32) / 32768, RATE) - 800) < 15
    # A corrupt packet is dropped, not fatal; other codecs and the stop go to aiortc's thread.
    inline.put((OPUS, JitterFrame(data=b"\xff\xff\xff\xff\xff", timestamp=0)))
    other = (PCMU, JitterFrame(data=b"\x00" * 160, timestamp=0))
    inline.put(other)
    inline.put(None)
    assert inline.get() is other and inline.get() is None
    assert output.qsize() == 0


async def test_a_track_with_our_codec_gives_packets_and_without_it_frames() -> None:
    ours, theirs = PcmTrack(), PcmTrack(own_codec=False)
    for track in (ours, theirs):
        track.push(tone_frames(2)[0])
    packet = await ours.recv()
    frame = await theirs.recv()
    assert not isinstance(packet, AudioFrame) and len(bytes(packet)) > 0
    assert isinstance(frame, AudioFrame) and frame.samples == FRAME
    assert "opus" in {c.mimeType.split("/")[1].lower() for c in get_capabilities("audio").codecs}


def speech_like(count: int) -> list[np.ndarray]:
    t = np.arange(FRAME * count) / RATE
    rng = np.random.default_rng(3)
    voiced = 3000 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 4 * t))
    formant = 1500 * np.sin(2 * np.pi * 900 * t + np.sin(2 * np.pi * 5 * t))
    pcm = (voiced + formant + rng.normal(0, 400, len(t))).astype(np.int16)
    return [pcm[i * FRAME : (i + 1) * FRAME] for i in range(count)]


def test_speech_is_coded_celt_only_by_default_and_silk_or_hybrid_in_voip_mode(
    codec_path: str,
) -> None:
    # The TOC's configuration: 0-11 SILK, 12-15 hybrid, 16-31 CELT (RFC 6716 §3.1).
    low_delay, voip = OpusEncoder(), OpusEncoder(low_delay=False)
    frames = speech_like(40)
    ours = [bytes(low_delay.encode(f, i * FRAME))[0] >> 3 for i, f in enumerate(frames)]
    theirs = [bytes(voip.encode(f, i * FRAME))[0] >> 3 for i, f in enumerate(frames)]
    assert all(config >= 16 for config in ours)
    assert sum(config < 16 for config in theirs[5:]) > len(theirs[5:]) // 2

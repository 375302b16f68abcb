"""Test speech for the AEC and VAD benchmarks: espeak-ng when installed, else synthetic.

Both are deterministic. The synthetic voice (gliding harmonics, breath noise and a
syllable envelope) is only a stand-in: figures measured on it say so in the output.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

from realtime_client.audio import read_wav_mono

F32 = npt.NDArray[np.float32]

SENTENCES = (
    "Hello there, this is the assistant speaking through your laptop speakers today.",
    "The weather tomorrow will be sunny with a light breeze from the west.",
    "Could you tell me more about the train times to the city on Sunday morning?",
    "Wait, stop, I have a question about that.",
    "Sorry to interrupt, what was the second thing you said?",
)


def speech(index: int, rate: int = 24_000) -> tuple[F32, str]:
    """Sentence ``index`` (mod the list), peak-normalised to 0.5, and its source name."""
    text = SENTENCES[index % len(SENTENCES)]
    exe = shutil.which("espeak-ng") or shutil.which("espeak")
    if exe is not None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "s.wav"
            voice = ("en-us", "en-us+f3", "en", "en-us+m3", "en+f2")[index % 5]
            done = subprocess.run(
                [exe, "-v", voice, "-w", str(path), text], capture_output=True, timeout=30
            )
            if done.returncode == 0:
                samples, _ = read_wav_mono(path, rate)
                x = np.asarray(samples, np.float32)
                return (0.5 * x / max(1e-9, float(np.abs(x).max()))).astype(np.float32), "espeak"
    return synthetic(2.5 + 0.3 * (index % 3), seed=index, rate=rate), "synthetic"


def synthetic(
    seconds: float,
    seed: int = 0,
    rate: int = 24_000,
    *,
    peak: float = 0.5,
    pitch_hz: float = 130.0,
    glide_hz: float = 50.0,
    glide_rate_hz: float = 0.6,
    harmonics: int = 13,
    syllable_hz: float = 3.3,
    tail_ms: int = 100,
) -> F32:
    """A voice-like signal: gliding harmonics, breath noise, syllables.

    The pitch glides ``glide_hz`` around ``pitch_hz``, ``glide_rate_hz`` times a second;
    ``syllable_hz`` syllables a second; the last ``tail_ms`` are silent; the peak is
    ``peak``. The defaults are the benchmarks' voice.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = pitch_hz + glide_hz * np.sin(2 * np.pi * glide_rate_hz * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, harmonics + 1))
    x = x + 0.3 * rng.standard_normal(n)
    x = x * np.clip(np.sin(2 * np.pi * syllable_hz * t + rng.uniform(0, 6)), 0, None) ** 0.7
    x[max(0, n - rate * tail_ms // 1000) :] = 0.0
    out: npt.NDArray[np.float32] = (x / np.abs(x).max() * peak).astype(np.float32)
    return out


def active_dbfs(x: F32, rate: int = 24_000) -> float:
    """Level of the voiced part: mean energy of the 10 ms frames within 30 dB of the peak."""
    frame = rate // 100
    n = len(x) // frame
    energy = np.mean(np.square(x[: n * frame].reshape(n, frame), dtype=np.float64), axis=1)
    active = energy[energy > energy.max() * 1e-3]
    return 10.0 * float(np.log10(active.mean()))


def at_level(x: F32, dbfs: float, rate: int = 24_000) -> F32:
    """``x`` scaled so its active level is ``dbfs``."""
    return (x * 10 ** ((dbfs - active_dbfs(x, rate)) / 20)).astype(np.float32)


def span_ms(x: F32, rate: int = 24_000) -> tuple[float, float]:
    """First and last 10 ms frame within 40 dB of the peak frame: the truth, in ms."""
    frame = rate // 100
    n = len(x) // frame
    energy = np.mean(np.square(x[: n * frame].reshape(n, frame), dtype=np.float64), axis=1)
    loud = np.flatnonzero(energy > energy.max() * 1e-4)
    return float(loud[0] * 10), float((loud[-1] + 1) * 10)


def noise(kind: str, seconds: float, dbfs: float, seed: int = 0, rate: int = 24_000) -> F32:
    """White or pink (1/f) noise at an RMS of ``dbfs``."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    white = rng.standard_normal(n)
    if kind == "pink":
        spectrum = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(n, 1 / rate)
        spectrum[1:] /= np.sqrt(freqs[1:] / freqs[1])
        spectrum[0] = 0
        white = np.fft.irfft(spectrum, n)
    elif kind != "white":
        raise ValueError(f"noise kind must be white or pink, got {kind!r}")
    white = white / np.sqrt(np.mean(white**2))
    noise: npt.NDArray[np.float32] = (white * 10 ** (dbfs / 20)).astype(np.float32)
    return noise

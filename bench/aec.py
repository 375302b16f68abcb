"""Echo cancellation: suppression, self-interruptions, double talk, latency and CPU.

Run with ``python -m bench.aec`` (``--quick``: fewer replies and trials, no device loop).
Speech is espeak-ng's (synthetic when it is missing; the output says which). It prints,
for WebRTC AEC3 (``aec3``, the ``aec`` extra) and the fallback echo gate (``gate``):

- ERLE after 2 s: echo energy over residual energy once the first 2 s have passed, far
  end only, through the simulated loudspeaker-room path (:class:`EchoPath`: 40 ms,
  -6 dB, 250 ms tail), in dB (target >= 30);
- self-interruptions over ``N`` spoken replies: ``realtime-replay --echo`` against the
  local server (echo responder: each reply is the user's own sentence), without AEC and
  with each canceller (target 0 with AEC);
- double talk: a user sentence starts 0.8-2.4 s into a reply, as loud at the microphone
  as the loudspeaker's sound (6 dB over its echo); a trial is a hit when the local
  server's VAD (``EnergyVAD`` defaults) hears speech start within 500 ms of the onset on
  the canceller's output (target >= 95 %); false starts before the onset are counted too;
- added latency: buffering the canceller adds (0 for 20 ms blocks) plus its processing
  time per 20 ms block, p50 / p99, in ms (target <= 10 ms);
- CPU: processing time over audio time, in % of one core per session (target <= 2 %).

Then, when PulseAudio, ALSA's pulse plugin and PortAudio are here, the same ERLE on the
PulseAudio null-sink loop: a :class:`DuplexDevice` plays into the sink and records its
monitor (the echo path is the real device path, 0 dB), with the measured echo delay.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from realtime_client.audio import (
    EchoCanceller,
    EchoPath,
    estimate_delay_ms,
    make_echo_canceller,
    write_wav,
)
from realtime_client.audio.vad import EnergyVAD, SpeechStarted

from ._speech import active_dbfs, at_level, speech

__all__ = ["Figures", "main", "measure"]

RATE = 24_000
BLOCK = RATE // 50
F32 = npt.NDArray[np.float32]
KINDS = ("aec3", "gate")


@dataclass
class Figures:
    """One canceller's figures (``None``: not measured)."""

    erle_db: float
    self_interruptions: int | None
    replies: int
    double_talk_hits: float
    double_talk_false_starts: int
    latency_ms: float
    block_p50_ms: float
    block_p99_ms: float
    cpu_percent: float


def _energy_db(x: F32) -> float:
    return 10.0 * float(np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def _run(canceller: EchoCanceller, near: F32, far: F32) -> tuple[F32, list[float]]:
    out, times = [], []
    for k in range(0, len(near) - BLOCK + 1, BLOCK):
        t0 = time.perf_counter()
        out.append(canceller.process(near[k : k + BLOCK], far[k : k + BLOCK]))
        times.append(time.perf_counter() - t0)
    return np.concatenate(out), times


def _far_end(count: int) -> tuple[F32, str]:
    parts, source = [], ""
    for i in range(count):
        voice, source = speech(i)
        parts += [voice, np.zeros(RATE // 5, np.float32)]
    return np.concatenate(parts), source


def erle_and_cost(kind: str) -> tuple[float, float, float, float, float]:
    """ERLE after 2 s, latency, block p50 / p99 (ms), CPU % of a core."""
    far, _ = _far_end(3)
    path = EchoPath(RATE)
    echo = np.concatenate([path.process(far[k : k + BLOCK]) for k in range(0, len(far), BLOCK)])
    canceller = make_echo_canceller(RATE, kind)  # type: ignore[arg-type]
    cpu = time.process_time()
    out, times = _run(canceller, echo, far)
    cpu = time.process_time() - cpu
    settled = slice(2 * RATE, len(out))
    erle = _energy_db(echo[settled]) - _energy_db(out[settled])
    latency = float(getattr(canceller, "latency_ms", 0.0))
    p50 = statistics.median(times) * 1000
    p99 = float(np.percentile(times, 99)) * 1000
    return erle, latency, p50, p99, 100.0 * cpu / (len(out) / RATE)


def double_talk(kind: str, trials: int) -> tuple[float, int]:
    """Share of barge-ins heard within 500 ms, and false starts before them."""
    rng = np.random.default_rng(7)
    hits = false_starts = 0
    warm, _ = speech(4)
    for t in range(trials):
        reply, _ = speech(t % 3)
        user, _ = speech(3 + t % 2)
        far = np.concatenate([warm, reply]).astype(np.float32)
        path = EchoPath(RATE, seed=t)
        echo = np.concatenate([path.process(far[k : k + BLOCK]) for k in range(0, len(far), BLOCK)])
        onset = len(warm) + int(rng.uniform(0.8, 2.4) * RATE)
        mic = echo.copy()
        user = at_level(user, active_dbfs(reply))  # as loud as the loudspeaker, 6 dB over echo
        end = min(len(mic), onset + len(user))
        mic[onset:end] += user[: end - onset]
        canceller = make_echo_canceller(RATE, kind)  # type: ignore[arg-type]
        out, _ = _run(canceller, mic, far)
        vad = EnergyVAD(RATE, prefix_padding_ms=0)
        starts = [e.audio_start_ms for e in vad.process(out) if isinstance(e, SpeechStarted)]
        onset_ms = onset * 1000 / RATE
        # The user's first voiced 10 ms (espeak leaves some lead silence).
        frames = np.mean(np.square(user[: len(user) // 240 * 240].reshape(-1, 240)), axis=1)
        first_voiced_ms = float(np.flatnonzero(frames > frames.max() * 1e-3)[0] * 10)
        true_ms = onset_ms + first_voiced_ms
        false_starts += sum(
            1 for s in starts if len(warm) * 1000 / RATE + 2000 <= s < true_ms - 100
        )
        if any(true_ms - 100 <= s <= true_ms + 500 for s in starts):
            hits += 1
    return hits / trials, false_starts


async def _self_interruptions(replies: int, aec: bool, kind: str) -> int:
    from realtime_client.apps.replay import replay

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(replies):
            voice, _ = speech(i)
            gap = np.zeros(RATE // 4, np.float32)
            path = Path(tmp) / f"u{i}.wav"
            write_wav(path, np.concatenate([gap, voice, gap]), RATE)
            paths.append(path)
        if aec and kind == "gate":
            from unittest import mock

            import realtime_client.apps.replay._driver as driver

            def gate(rate: int) -> EchoCanceller:
                return make_echo_canceller(rate, "gate")

            with mock.patch.object(driver, "make_echo_canceller", gate):
                result = await replay(
                    paths, None, speed=0, echo=True, transcription_model=None, turn_timeout=4.0
                )
        else:
            # A turn that loops on its own echo never completes: 4 s (at speed 0 a good
            # turn takes well under one) counts it without waiting the default 30 s.
            result = await replay(
                paths,
                None,
                speed=0,
                echo=True,
                aec=aec,
                transcription_model=None,
                turn_timeout=4.0,
            )
    return int(result.report["echo"]["self_interruptions"])


async def _loop_erle(seconds: float) -> tuple[float, float | None] | str:
    from realtime_client.audio import DuplexDevice

    from ._pulse import SINK, null_sink

    with null_sink() as reason:
        if reason is not None:
            return reason
        far, _ = _far_end(3)
        far = far[: int(seconds * RATE)]
        heard, clean, refs = [], [], []
        del SINK  # PortAudio reaches the sink through ALSA's "pulse" device
        async with DuplexDevice("pulse", "pulse", RATE, 20, aec=True) as device:
            canceller = device.canceller
            assert canceller is not None
            for k in range(75 + len(far) // BLOCK):
                if k == 75:  # 1.5 s of warm-up (PortAudio's timestamps settle)
                    device.speaker.write(far, "reply")
                    device.speaker.mark_finished("reply")
                block = await asyncio.wait_for(device.capture.__anext__(), 2.0)
                out = canceller.process(block.samples, block.reference)
                if k >= 75:
                    heard.append(block.samples)
                    clean.append(out)
                    refs.append(
                        block.reference if block.reference is not None else block.samples * 0
                    )
        h, c, r = np.concatenate(heard), np.concatenate(clean), np.concatenate(refs)
        delay = estimate_delay_ms(h, r, RATE)
        settled = slice(2 * RATE, len(c))
        return _energy_db(h[settled]) - _energy_db(c[settled]), delay


def measure(quick: bool = False) -> tuple[dict[str, Figures], int, str]:
    """Figures per canceller, self-interruptions without AEC, and the speech source."""
    replies = 3 if quick else 20
    trials = 6 if quick else 40
    _, source = speech(0)
    without = asyncio.run(_self_interruptions(replies, False, "aec3"))
    figures: dict[str, Figures] = {}
    for kind in KINDS:
        try:
            make_echo_canceller(RATE, kind)  # type: ignore[arg-type]
        except ImportError as exc:
            print(f"{kind}: not available ({exc})")
            continue
        erle, latency, p50, p99, cpu = erle_and_cost(kind)
        hit, false = double_talk(kind, trials)
        figures[kind] = Figures(
            erle_db=erle,
            self_interruptions=asyncio.run(_self_interruptions(replies, True, kind)),
            replies=replies,
            double_talk_hits=hit,
            double_talk_false_starts=false,
            latency_ms=latency,
            block_p50_ms=p50,
            block_p99_ms=p99,
            cpu_percent=cpu,
        )
    return figures, without, source


def main(argv: list[str] | None = None) -> int:
    """Print the figures (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m bench.aec", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer replies, no device loop")
    args, _ = parser.parse_known_args(argv)
    logging.getLogger("realtime_client").setLevel(logging.ERROR)
    figures, without, source = measure(args.quick)
    replies = next(iter(figures.values())).replies if figures else 0
    print(f"speech: {source}; simulated room: 40 ms, -6 dB, 250 ms tail; 20 ms blocks at 24 kHz")
    print(f"self-interruptions without AEC: {without} over {replies} replies")
    print(
        f"{'canceller':<9} {'ERLE>2s dB':>10} {'self-int':>8} {'double talk':>11} "
        f"{'false':>5} {'latency ms':>10} {'block p50/p99 ms':>16} {'CPU %':>6}"
    )
    for kind, f in figures.items():
        print(
            f"{kind:<9} {f.erle_db:10.1f} {f.self_interruptions!s:>8} "
            f"{100 * f.double_talk_hits:10.0f}% {f.double_talk_false_starts:5d} "
            f"{f.latency_ms:10.1f} {f.block_p50_ms:8.3f}/{f.block_p99_ms:<7.3f} "
            f"{f.cpu_percent:6.2f}"
        )
    if args.quick:
        return 0
    loop = asyncio.run(_loop_erle(8.0))
    if isinstance(loop, str):
        print(f"null-sink loop: skipped ({loop})")
    else:
        erle, delay = loop
        shown = "unclear" if delay is None else f"{delay:.1f} ms"
        print(
            f"null-sink loop (DuplexDevice, aec3): ERLE after 2 s {erle:.1f} dB, echo delay {shown}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

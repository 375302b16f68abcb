"""Resampler benchmark: ours vs soxr HQ (streaming) vs scipy resample_poly per chunk.

Run with ``python -m bench.resample``. Everything is fed in 20 ms chunks, as a device or the
Realtime API would. Per pair and implementation it prints:

- speed: seconds of audio per second of CPU (x realtime), its ratio to soxr measured in the
  same run, and per-chunk p50/p99 in us;
- aliasing: worst steady-state level, re a full-scale tone, of what tones above the output
  Nyquist frequency leave behind (downsampling), or of the images of tones up to 0.99 x the
  input Nyquist frequency (upsampling);
- ripple: worst gain deviation of 24 tones from 20 Hz to 0.9 x the lower Nyquist, in dB;
- THD+N of a -6 dBFS 997 Hz tone, in dB;
- latency: content delay (cross-correlation lag of band-limited noise against the ideal
  output) plus hold-back (input time received minus output time returned, averaged over
  chunk ends), in ms.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy loads OpenBLAS
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from realtime_client.audio.resample import Resampler

__all__ = ["TARGETS", "Targets", "main"]

PAIRS = [(48_000, 24_000), (24_000, 48_000), (44_100, 24_000), (16_000, 24_000), (24_000, 8_000)]
CHUNK_MS = 20
SPEED_SECONDS = 3.0
ROUNDS = 5
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Step = Callable[[F32], F32]


@dataclass
class Row:
    name: str
    realtime: float
    p50_us: float
    p99_us: float
    alias_db: float
    ripple_db: float
    thdn_db: float
    delay_ms: float
    hold_ms: float


def _factories(in_rate: int, out_rate: int) -> dict[str, Callable[[], Step]]:
    makers: dict[str, Callable[[], Step]] = {"ours": lambda: Resampler(in_rate, out_rate).process}
    try:
        import soxr

        def make_soxr() -> Step:
            stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")
            return lambda x: stream.resample_chunk(x)

        makers["soxr HQ"] = make_soxr
    except ImportError:
        pass
    try:
        from scipy.signal import resample_poly

        g = math.gcd(in_rate, out_rate)

        def make_scipy() -> Step:
            up, down = out_rate // g, in_rate // g
            return lambda x: resample_poly(x, up, down).astype(np.float32)

        makers["scipy/chunk"] = make_scipy
    except ImportError:
        pass
    return makers


def _stream(step: Step, x: F32, in_rate: int) -> tuple[F32, list[int], list[int]]:
    """Feed ``x`` in 20 ms chunks; return the output and frames in/out after each chunk."""
    n = in_rate * CHUNK_MS // 1000
    outs, n_in, n_out, total = [], [], [], 0
    for i in range(0, len(x), n):
        y = step(x[i : i + n])
        outs.append(y)
        total += len(y)
        n_in.append(min(i + n, len(x)))
        n_out.append(total)
    return np.concatenate(outs).astype(np.float32), n_in, n_out


def _speeds(
    makers: dict[str, Callable[[], Step]],
    in_rate: int,
    *,
    seconds: float = SPEED_SECONDS,
    rounds: int = ROUNDS,
) -> dict[str, tuple[float, ...]]:
    """(x realtime, p50 us, p99 us) per implementation, best of interleaved rounds.

    Rounds alternate between implementations so that load from other processes on a
    shared machine hits all of them alike.
    """
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(int(in_rate * seconds))).astype(np.float32)
    n = in_rate * CHUNK_MS // 1000
    chunks = [x[i : i + n] for i in range(0, len(x) - n + 1, n)]
    best: dict[str, tuple[float, ...]] = {}
    for _ in range(rounds):
        for name, make in makers.items():
            step = make()
            for c in chunks[:10]:  # warm caches and any lazy set-up
                step(c)
            t = np.empty(len(chunks))
            for k, c in enumerate(chunks):
                t0 = time.perf_counter_ns()
                step(c)
                t[k] = time.perf_counter_ns() - t0
            realtime = len(chunks) * CHUNK_MS / 1000 / (float(t.sum()) * 1e-9)
            if name not in best or realtime > best[name][0]:
                p50, p99 = np.percentile(t, [50, 99]) / 1e3
                best[name] = (realtime, float(p50), float(p99))
    return best


def _faded_tone(freq: float, rate: int, seconds: float, amplitude: float) -> F32:
    t = np.arange(int(rate * seconds)) / rate
    fade = np.clip(np.minimum(t, seconds - t) / 0.05, 0.0, 1.0)
    env = 0.5 - 0.5 * np.cos(np.pi * fade)
    return (amplitude * env * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _db(x: float) -> float:
    return 20 * math.log10(max(x, 1e-12))


def _fit(y: F64, freqs: list[float], rate: int, start: int) -> tuple[F64, F64]:
    """Least-squares amplitudes of ``freqs`` in ``y`` and the residual."""
    t = (start + np.arange(len(y))) / rate
    cols = [np.ones_like(t)]
    for f in freqs:
        cols += [np.cos(2 * np.pi * f * t), np.sin(2 * np.pi * f * t)]
    basis = np.stack(cols, axis=1)
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    amps: F64 = np.hypot(coef[1::2], coef[2::2])
    residual: F64 = y - basis @ coef
    return amps, residual


def _steady(y: F32, rate: int, seconds: float) -> tuple[F64, int]:
    """The middle of a faded signal's output (fades and transients left out)."""
    a, b = int(0.12 * rate), int((seconds - 0.12) * rate)
    return y[a:b].astype(np.float64), a


def _aliasing(make: Callable[[], Step], in_rate: int, out_rate: int) -> float:
    seconds, worst = 0.6, -math.inf
    if out_rate < in_rate:
        nyq = out_rate / 2
        tones = [1.003 * nyq, 1.05 * nyq, (nyq + in_rate / 2) / 2, 0.99 * in_rate / 2]
        for f in tones:
            y, _, _ = _stream(make(), _faded_tone(f, in_rate, seconds, 1.0), in_rate)
            seg, _ = _steady(y, out_rate, seconds)
            worst = max(worst, _db(math.sqrt(2 * float(np.mean(seg**2)))))
    else:
        nyq = in_rate / 2
        for f in (0.5 * nyq, 0.9 * nyq, 0.99 * nyq):
            y, _, _ = _stream(make(), _faded_tone(f, in_rate, seconds, 1.0), in_rate)
            seg, start = _steady(y, out_rate, seconds)
            _, residual = _fit(seg, [f], out_rate, start)  # what is left: images, noise
            window = np.kaiser(len(residual), 20.0)
            spectrum = np.abs(np.fft.rfft(residual * window)) ** 2
            freqs = np.fft.rfftfreq(len(residual), 1 / out_rate)
            share = spectrum[freqs >= nyq].sum() / max(float(spectrum.sum()), 1e-300)
            power = float(np.mean(residual**2)) * share
            worst = max(worst, _db(math.sqrt(2 * power)))
    return worst


def _ripple(make: Callable[[], Step], in_rate: int, out_rate: int) -> float:
    seconds = 1.0
    freqs = list(np.geomspace(20.0, 0.9 * min(in_rate, out_rate) / 2, 24))
    rng = np.random.default_rng(1)
    t = np.arange(int(in_rate * seconds)) / in_rate
    fade = 0.5 - 0.5 * np.cos(np.pi * np.clip(np.minimum(t, seconds - t) / 0.05, 0, 1))
    x = sum(0.03 * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f in freqs)
    y, _, _ = _stream(make(), (fade * x).astype(np.float32), in_rate)
    seg, start = _steady(y, out_rate, seconds)
    amps, _ = _fit(seg, freqs, out_rate, start)
    return max(abs(_db(a / 0.03)) for a in amps)


def _thdn(make: Callable[[], Step], in_rate: int, out_rate: int) -> float:
    seconds = 1.0
    y, _, _ = _stream(make(), _faded_tone(997.0, in_rate, seconds, 0.5), in_rate)
    seg, start = _steady(y, out_rate, seconds)
    amps, residual = _fit(seg, [997.0], out_rate, start)
    return _db(math.sqrt(float(np.mean(residual**2))) / (amps[0] / math.sqrt(2)))


def _latency(make: Callable[[], Step], in_rate: int, out_rate: int) -> tuple[float, float]:
    """(content delay, mean hold-back) in ms, with noise band-limited to 0.8 x Nyquist."""
    seconds, band = 1.0, 0.8 * min(in_rate, out_rate) / 2
    rng = np.random.default_rng(2)
    n_in = int(in_rate * seconds)
    n_ideal = n_in * out_rate // in_rate
    # Build the noise in the frequency domain so it exists exactly at both rates.
    n_bins = int(seconds * band)
    amps = rng.standard_normal(n_bins) + 1j * rng.standard_normal(n_bins)

    def synth(rate: int, n: int) -> F64:
        spec = np.zeros(int(seconds * rate) // 2 + 1, dtype=complex)
        spec[1 : n_bins + 1] = amps
        sig: F64 = np.fft.irfft(spec, int(seconds * rate))[:n]
        return sig

    x = synth(in_rate, n_in)
    scale = 0.3 / float(np.std(x))
    ideal = synth(out_rate, n_ideal) * scale
    y, ins, outs = _stream(make(), (x * scale).astype(np.float32), in_rate)
    m = min(len(y), len(ideal)) - 200
    lags = np.arange(-100, 1_000)
    corr = np.array(
        [np.dot(y[100 + k : 100 + k + m - 1_000], ideal[100 : 100 + m - 1_000]) for k in lags]
    )
    i = int(np.argmax(corr))
    frac = 0.0
    if 0 < i < len(corr) - 1:
        a, b, c = corr[i - 1 : i + 2]
        frac = 0.5 * (a - c) / (a - 2 * b + c)
    delay_ms = (lags[i] + frac) * 1000 / out_rate
    holds = [(ni / in_rate - no / out_rate) * 1000 for ni, no in zip(ins, outs, strict=True)]
    return float(delay_ms), float(np.mean(holds[5:]))


@dataclass(frozen=True)
class Targets:
    """The issue's targets for our resampler, checked by ``--check``."""

    alias_db: float = -100.0  # worst aliasing / imaging, dB re full scale
    ripple_db: float = 0.1  # passband flatness up to 0.9 x the lower Nyquist, +/- dB
    latency_ms: float = 2.0  # content delay plus hold-back
    speed_vs_soxr: float = 1 / 3  # x realtime, as a share of soxr HQ's in the same run

    def misses(self, row: Row, soxr_realtime: float) -> list[str]:
        """What ``row`` misses (empty when every target is met)."""
        out = []
        if row.alias_db > self.alias_db:
            out.append(f"aliasing {row.alias_db:.1f} dB > {self.alias_db:g} dB")
        if row.ripple_db > self.ripple_db:
            out.append(f"ripple {row.ripple_db:.3f} dB > {self.ripple_db:g} dB")
        if row.delay_ms + row.hold_ms > self.latency_ms:
            out.append(f"latency {row.delay_ms + row.hold_ms:.2f} ms > {self.latency_ms:g} ms")
        if math.isfinite(soxr_realtime) and row.realtime < self.speed_vs_soxr * soxr_realtime:
            share = row.realtime / soxr_realtime
            out.append(f"speed {share:.2f} x soxr < {self.speed_vs_soxr:.2f}")
        return out


TARGETS = Targets()


@contextlib.contextmanager
def _pinned() -> Iterator[str]:
    """Pin to one CPU for the run where the OS allows it; restore the CPU set after."""
    if not (hasattr(os, "sched_setaffinity") and hasattr(os, "sched_getaffinity")):
        yield "not pinned (no sched_setaffinity)"
        return
    previous = os.sched_getaffinity(0)
    cpu = max(previous)
    os.sched_setaffinity(0, {cpu})
    try:
        yield f"pinned to CPU {cpu}"
    finally:
        os.sched_setaffinity(0, previous)


def _measure(in_rate: int, out_rate: int, seconds: float, rounds: int) -> list[Row]:
    makers = _factories(in_rate, out_rate)
    speeds = _speeds(makers, in_rate, seconds=seconds, rounds=rounds)
    rows = []
    for name, make in makers.items():
        realtime, p50, p99 = speeds[name]
        delay, hold = _latency(make, in_rate, out_rate)
        rows.append(
            Row(
                name,
                realtime,
                p50,
                p99,
                _aliasing(make, in_rate, out_rate),
                _ripple(make, in_rate, out_rate),
                _thdn(make, in_rate, out_rate),
                delay,
                hold,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; with ``--check``, non-zero if ours misses a target.

    ``--quick`` (also accepted from ``python -m bench --quick``) times 0.5 s of audio in
    one round instead of 3 s in 5: a smoke run, not figures to quote.
    """
    parser = argparse.ArgumentParser(prog="python -m bench.resample")
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--check", action="store_true", help="exit 1 if ours misses a target")
    args, _ = parser.parse_known_args(argv)  # python -m bench passes every bench's flags
    seconds, rounds = (0.5, 1) if args.quick else (SPEED_SECONDS, ROUNDS)
    missed: list[str] = []
    with _pinned() as where:
        print(f"Resampler benchmark, {CHUNK_MS} ms chunks, {where}, OMP_NUM_THREADS=1")
        header = (
            f"{'pair':>13} {'impl':<11} {'x realtime':>10} {'vs soxr':>7} {'p50 us':>7} "
            f"{'p99 us':>7} {'alias dB':>8} {'ripple dB':>9} {'THD+N dB':>8} {'latency ms':>10}"
        )
        print(header)
        print("-" * len(header))
        started = time.perf_counter()
        for in_rate, out_rate in PAIRS:
            rows = _measure(in_rate, out_rate, seconds, rounds)
            soxr_rt = next((r.realtime for r in rows if r.name == "soxr HQ"), math.nan)
            pair = f"{in_rate / 1000:g}->{out_rate / 1000:g} kHz"
            for r in rows:
                print(
                    f"{pair:>13} {r.name:<11} {r.realtime:>10,.0f} {r.realtime / soxr_rt:>7.2f} "
                    f"{r.p50_us:>7.1f} {r.p99_us:>7.1f} {r.alias_db:>8.1f} {r.ripple_db:>9.4f} "
                    f"{r.thdn_db:>8.1f} {r.delay_ms + r.hold_ms:>10.2f}"
                )
                if r.name == "ours":
                    missed += [f"{pair}: {m}" for m in TARGETS.misses(r, soxr_rt)]
        print(f"({time.perf_counter() - started:.0f} s; latency = content delay + mean hold-back)")
    if missed:
        print("targets missed by ours:\n  " + "\n  ".join(missed))
    else:
        print("ours meets every target (aliasing, ripple, latency, speed vs soxr)")
    return 1 if (args.check and missed) else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Smoke test of the resampler benchmark, so it cannot rot between runs.

It checks that a quick run reports every pair and implementation with finite figures,
that ``--check`` follows the targets, and that the CPU pinning is undone. Speed targets are
ratios printed by ``python -m bench.resample``, never asserted here on a shared machine;
the quality targets are asserted by the resampler's own tests.
"""

from __future__ import annotations

import math
import os

import pytest

from bench import resample

__all__: list[str] = []

_IMPLS = ("ours", "soxr HQ", "scipy/chunk")


def _rows(out: str) -> dict[tuple[str, str], list[float]]:
    rows: dict[tuple[str, str], list[float]] = {}
    for line in out.splitlines():
        for pair_in, pair_out in resample.PAIRS:
            pair = f"{pair_in / 1000:g}->{pair_out / 1000:g} kHz"
            for name in _IMPLS:
                # Table rows only ("pair impl figures..."), not the "targets missed" lines.
                if line.strip().startswith(f"{pair} {name} "):
                    rest = line.strip()[len(pair) + len(name) + 2 :].split()
                    rows[(pair, name)] = [float(v.replace(",", "")) for v in rest]
    return rows


def test_quick_run_reports_every_pair_and_restores_affinity(
    capsys: pytest.CaptureFixture[str],
) -> None:
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None

    assert resample.main(["--quick"]) == 0

    rows = _rows(capsys.readouterr().out)
    for pair_in, pair_out in resample.PAIRS:
        pair = f"{pair_in / 1000:g}->{pair_out / 1000:g} kHz"
        for impl in _IMPLS:
            assert (pair, impl) in rows, f"no row for {impl} at {pair}"
            values = rows[(pair, impl)]
            assert len(values) == 8 and all(math.isfinite(v) for v in values), (pair, impl, values)
            assert values[0] > 0  # x realtime
    if affinity is not None:
        assert os.sched_getaffinity(0) == affinity


def test_check_exit_code_follows_the_targets(capsys: pytest.CaptureFixture[str]) -> None:
    code = resample.main(["--quick", "--check"])
    out = capsys.readouterr().out
    assert code == (1 if "targets missed by ours" in out else 0)


def test_targets_name_what_a_row_misses() -> None:
    good = resample.Row("ours", 1000.0, 1.0, 2.0, -110.0, 0.01, -120.0, 0.1, 0.0)
    assert resample.TARGETS.misses(good, soxr_realtime=2000.0) == []
    bad = resample.Row("ours", 100.0, 1.0, 2.0, -90.0, 0.5, -120.0, 2.5, 0.5)
    misses = resample.TARGETS.misses(bad, soxr_realtime=2000.0)
    assert [m.split()[0] for m in misses] == ["aliasing", "ripple", "latency", "speed"]

"""Smoke test of the echo-cancellation benchmark (quick: 3 replies, 6 double-talk trials).

Targets are printed by ``python -m bench.aec``; here only what a short run can show is
asserted: AEC3 suppresses the echo, the assistant interrupts itself without AEC and not
with it, and the cost figures are finite and positive. One quick measurement serves both
tests (it takes ~15 s).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from bench import aec

__all__: list[str] = []


@pytest.fixture(scope="module")
def quick() -> Any:
    return aec.measure(quick=True)


@pytest.mark.timeout(300)
def test_quick_run_prints_both_cancellers(
    quick: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aec, "measure", lambda quick_run: quick)
    assert aec.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "self-interruptions without AEC:" in out
    for kind in aec.KINDS:
        assert out.count(f"\n{kind} ") == 1, out


@pytest.mark.timeout(300)
def test_figures(quick: Any) -> None:
    figures, without, _ = quick
    assert without >= 1  # the echo path's defaults make it interrupt itself
    ours = figures["aec3"]
    assert ours.erle_db >= 25.0
    assert ours.self_interruptions == 0
    assert ours.double_talk_hits >= 0.8
    assert ours.latency_ms == 0.0
    for f in figures.values():
        assert all(math.isfinite(v) and v >= 0 for v in (f.block_p50_ms, f.block_p99_ms))
        assert 0 < f.cpu_percent < 100

"""Smoke test of the sessions-per-core benchmark, so it cannot rot between runs.

It checks that a quick run starts the local server, drives every client and reports every
field; the speed targets themselves are printed by ``python -m bench.sessions``, never
asserted here (the machine is shared and noisy).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re

import pytest

from bench import sessions

__all__: list[str] = []

_COLUMNS = 17  # fields per table row


def _rows(out: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in out.splitlines()
        if line.startswith("| ") and line.split("|")[1].strip() in sessions.VARIANTS
    ]


def test_quick_run_reports_every_client_and_field(capsys: pytest.CaptureFixture[str]) -> None:
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None

    assert sessions.main(["--quick"]) == 0

    out = capsys.readouterr().out
    rows = _rows(out)
    levels = sessions.QUICK.levels
    # Every client ran the first level; a client only skips levels above one it failed.
    for variant in sessions.VARIANTS:
        ran = [int(r[1]) for r in rows if r[0] == variant]
        assert ran and ran[0] == levels[0], (variant, ran)
    for row in rows:
        assert len(row) == _COLUMNS, row
        n, ticks = int(row[1]), int(row[2])
        window_ticks = n * sessions.QUICK.window_s * 1000 / sessions.FRAME_MS
        assert ticks == pytest.approx(window_ticks, rel=0.1), row
        late = [float(x) for x in row[3:6]]
        assert all(x >= 0 and math.isfinite(x) for x in late), row
        assert late[0] <= late[1] <= late[2], row
        for pair in (row[6], row[7]):  # send and receive latency, p50 / p99
            p50, p99 = (float(x) for x in pair.split(" / "))
            assert 0 <= p50 <= p99, row
        assert float(row[8]) > 0 and float(row[9]) > 0, row  # the client did use CPU
        # Output audio really flowed into the playback buffers at about real time.
        assert 50 <= float(row[11]) <= 150, row
        assert row[-1] in ("yes", "**no**"), row
    for variant in sessions.VARIANTS:
        assert re.search(rf"largest N with p99 lateness ≤ 10 ms: {variant} (\d+|< \d+)", out)
    assert re.search(r"capture → socket p50 \d+\.\d+ / p99 \d+\.\d+ ms", out)
    assert re.search(r"socket → PlaybackBuffer p50 \d+\.\d+ / p99 \d+\.\d+ ms", out)
    assert "client CPU per session-second" in out
    # Pinning is for the benchmark only: the caller's CPU set comes back.
    if affinity is not None:
        assert os.sched_getaffinity(0) == affinity


_FACTS = {
    "client_core": 0,
    "server_core": 1,
    "arrival_clock": "socket",
    "down_delay_ms": 0.1,
    "up_delay_ms": 0.1,
    "profile": "",
}


def _result(variant: str, n: int, passed: bool) -> sessions.LevelResult:
    return sessions.LevelResult(
        variant=variant,
        sessions=n,
        ticks=n * 50,
        lateness_p50_ms=0.5,
        lateness_p99_ms=2.0 if passed else 30.0,
        lateness_max_ms=40.0,
        send_p50_ms=0.6,
        send_p99_ms=1.5,
        recv_p50_ms=0.2,
        recv_p99_ms=0.9,
        client_cpu_pct=50.0,
        cpu_ms_per_session_s=10.0,
        server_cpu_pct=30.0,
        audio_in_pct=100.0,
        underrun_ms_per_session_s=0.0,
        preempted_per_s=1.0,
        other_load_pct=2.0,
        open_s=0.1,
        passed=passed,
    )


def test_largest_n_is_the_largest_pass_below_the_first_failure() -> None:
    results = [
        _result("ours", 25, True),
        _result("ours", 50, True),
        _result("ours", 100, False),
        _result("ours", 75, True),  # the half-way level of the refinement
        _result("sdk", 25, False),
    ]
    text = sessions.render(results, _FACTS, sessions.RunConfig(variants=("ours", "sdk")))
    assert "largest N with p99 lateness ≤ 10 ms: ours 75\n" in text
    assert "largest N with p99 lateness ≤ 10 ms: sdk < 25" in text
    assert "checked against bare: run it too" in text
    # latency: checked at the light load (N=25), shown at capacity for information
    assert "client-added latency, ours at N=25" in text
    assert "(target p99 ≤ 2 ms: yes)" in text
    assert "client-added latency, ours at N=75" in text
    assert "at capacity" in text


def test_sessions_target_is_a_ratio_against_bare_in_the_same_run() -> None:
    config = sessions.RunConfig(variants=("ours", "bare"))
    for ours_n, bare_n, met in ((75, 100, True), (75, 125, False), (150, 200, True)):
        results = [
            _result("ours", 25, True),
            _result("ours", ours_n, True),
            _result("ours", ours_n + 25, False),
            _result("bare", 25, True),
            _result("bare", bare_n, True),
            _result("bare", bare_n + 25, False),
        ]
        text = sessions.render(results, _FACTS, config)
        ratio = f"ours / bare = {ours_n / bare_n:.2f}× (target ≥ 0.75×"
        assert ratio in text, text
        assert f"bare holds 200: {'yes' if met else '**no**'})" in text
        assert sessions._missed(results, config) is not met
    # without a bare figure the sessions target cannot be met
    assert sessions._missed([_result("ours", 25, True)], sessions.RunConfig(variants=("ours",)))
    # a slow latency at the light load misses the target whatever the sessions ratio
    slow = dataclasses.replace(_result("ours", 25, True), send_p99_ms=2.5)
    results = [slow, _result("ours", 50, False), _result("bare", 25, True)]
    assert sessions._missed(results, config)


def test_rejects_bad_arguments() -> None:
    for argv in (["--levels", "0,10"], ["--levels", "x"], ["--clients", "nope"], ["--window", "0"]):
        with pytest.raises(SystemExit):
            sessions.main(argv)
    with pytest.raises(ValueError, match="levels"):
        sessions.RunConfig(levels=())
    with pytest.raises(ValueError, match="variants"):
        sessions.RunConfig(variants=("ours", "other"))


async def test_a_failing_level_runs_once_more_and_the_better_run_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs = iter([_result("ours", 50, False), _result("ours", 50, True)])
    calls: list[int] = []

    async def fake_run_level(variant: str, n: int, *args: object, **kwargs: object) -> object:
        calls.append(n)
        return next(runs), True

    monkeypatch.setattr(sessions.run, "_run_level", fake_run_level)
    run = sessions._Run(sessions.RunConfig(levels=(50,), variants=("ours",)))
    result, _ = await sessions._level("ours", 50, None, run, None)  # type: ignore[arg-type]
    assert calls == [50, 50] and result.passed
    # without retries the first (failing) run stands
    runs = iter([_result("ours", 50, False), _result("ours", 50, True)])
    calls.clear()
    run = sessions._Run(sessions.RunConfig(levels=(50,), variants=("ours",), retry_failed=False))
    result, _ = await sessions._level("ours", 50, None, run, None)  # type: ignore[arg-type]
    assert calls == [50] and not result.passed

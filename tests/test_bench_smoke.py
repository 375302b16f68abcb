"""Smoke test of the codec benchmark, so it cannot rot between runs.

Only that it runs and reports every path is checked: speed targets are ratios printed by
``python -m bench.codec``, never asserted in a unit test on a shared machine.
"""

from __future__ import annotations

import os
import re

import pytest

from bench import codec

__all__: list[str] = []

_PATHS = (
    "parse_server_event(frame).pcm16()",
    "orjson.loads",
    "pybase64.b64decode",
    "json.loads",
    "parse_event",
    "build_append(block)",
    "json.dumps",
    "async_maybe_transform",
)


def test_quick_run_reports_every_path_and_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None

    assert codec.main(["--quick"]) == 0

    out = capsys.readouterr().out
    for path in _PATHS:
        assert path in out, f"report lacks the {path!r} path"
    for target in codec.TARGETS:
        row = next((line for line in out.splitlines() if line.startswith(f"| {target.name} |")), "")
        # One finite positive ratio per chunk size, then a verdict.
        ratios = re.findall(r"\| (\d+\.\d+)× ", row)
        assert len(ratios) == len(codec.CHUNK_MS), row
        assert all(float(r) > 0 for r in ratios)
        assert row.endswith(("| yes |", "| **no** |")), row
    # Ours against stdlib json + base64, parse and build: ratios without a target.
    assert {(c.op, c.numerator, c.denominator) for c in codec.COMPARISONS} == {
        ("parse", "stdlib", "ours"),
        ("build", "stdlib", "ours"),
    }
    for comparison in codec.COMPARISONS:
        prefix = f"| {comparison.name} | none |"
        row = next((line for line in out.splitlines() if line.startswith(prefix)), "")
        ratios = re.findall(r"\| (\d+\.\d+)× ", row)
        assert len(ratios) == len(codec.CHUNK_MS), f"report lacks the {comparison.name!r} row"
        assert all(float(r) > 0 for r in ratios)
        assert row.endswith("| – |"), row
    # Pinning to one core is for the benchmark only: the caller's CPU set comes back.
    if affinity is not None:
        assert os.sched_getaffinity(0) == affinity


def test_check_flag_exit_code_follows_the_targets(capsys: pytest.CaptureFixture[str]) -> None:
    code = codec.main(["--quick", "--repeats", "1", "--check"])
    out = capsys.readouterr().out
    missed = "| **no** |" in out
    assert code == (1 if missed else 0)


def test_rejects_nonpositive_repeats() -> None:
    with pytest.raises(SystemExit):
        codec.main(["--repeats", "0"])
    with pytest.raises(ValueError, match="repeats"):
        codec.run_benchmark(repeats=0)

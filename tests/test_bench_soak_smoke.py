"""Smoke test of the soak benchmark (``python -m bench.soak``), so it cannot rot.

A few minutes of conversation only: growth figures that short are noise, so only the
report's shape and the caps' effect on the kept history are checked here.
"""

from __future__ import annotations

import re

import pytest

from bench import soak

__all__: list[str] = []


def test_quick_soak_reports_client_and_server_growth(capsys: pytest.CaptureFixture[str]) -> None:
    assert soak.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^\d+ turns, 3\.0 min of conversation", out, re.M), out
    for side in ("client", "server"):
        row = next(line for line in out.splitlines() if line.startswith(f"| {side} |"))
        assert re.search(r"[+-]\d+\.\d+ MB", row), row
        assert row.endswith(("| yes |", "| **no** |")), row
    kept = re.search(r"responses kept (\d+), turn stats kept (\d+)", out)
    assert kept is not None and int(kept[1]) <= 64 and int(kept[2]) <= 64


def test_rejects_a_nonpositive_length() -> None:
    with pytest.raises(SystemExit):
        soak.main(["--hours", "0"])

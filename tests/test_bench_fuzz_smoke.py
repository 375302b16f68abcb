"""Smoke test of the parser fuzz campaign (``python -m bench.fuzz``)."""

from __future__ import annotations

import re

import pytest

from bench import fuzz

__all__: list[str] = []


def test_quick_fuzz_reports_frames_rate_and_no_failures(capsys: pytest.CaptureFixture[str]) -> None:
    assert fuzz.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"2,000 mutated frames .* ms per MB", out), out
    assert "failures (anything but InvalidEventError): 0" in out


def test_a_failure_is_counted_by_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(data: object) -> None:
        raise IndexError("escaped")

    monkeypatch.setattr(fuzz, "_parse_all_ways", broken)
    _, _, failures = fuzz.run_fuzz(10)
    assert failures == {"IndexError": 10}

"""Smoke test of the hostile-server campaign (``python -m bench.hostile``)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from bench import hostile
from realtime_client import Session

__all__: list[str] = []


def test_quick_campaign_breaks_no_invariant(capsys: pytest.CaptureFixture[str]) -> None:
    assert hostile.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^hostile server: 2\d\d cases \(\d+ fixed, 200 mutated", out, re.M), out
    assert "failures: 0" in out and "time per case: p50" in out
    assert "the costliest re-timed alone: " in out


async def test_a_reader_that_dies_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The campaign can fail: a reader that ends without a word is seen, and so is its hang."""
    real = Session._react

    def react(self: Session, received: Any, now: float) -> None:
        if received.event.type != "session.created":
            raise asyncio.CancelledError  # the reader task ends, nobody told
        real(self, received, now)

    monkeypatch.setattr(Session, "_react", react)
    name, frames = hostile.fixed_cases(10)[-3]  # the unrequested commit
    result = await hostile.run_case(frames)
    assert result.failures["reader died silently"] == 1, (name, result.failures)
    assert result.failures["request hung"] == 1


async def test_an_unreported_invalid_event_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Session, "_emit", lambda self, event: None)
    result = await hostile.run_case(['{"type": "response.done", "response": 5}'])
    assert result.failures["unreported invalid event"] == 1

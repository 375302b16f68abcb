"""Smoke test of the connection-drop campaign (``python -m bench.drops``)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from bench import drops
from realtime_client import Session

__all__: list[str] = []


def test_quick_campaign_loses_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert drops.main(["--quick"]) == 0
    out = capsys.readouterr().out
    found = re.search(r"^connection drops: (\d+) drops over \d+ sessions, (\d+) turns", out, re.M)
    assert found is not None and int(found[1]) >= 20 and int(found[2]) > 0, out
    assert "lost audio unaccounted: 0 ms; diverged conversations: 0; hangs: 0" in out


async def test_speech_not_sent_again_is_counted_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    """The campaign can fail: without the resend of uncommitted speech, audio goes missing."""
    monkeypatch.setattr(
        drops, "_POLICY", dataclasses.replace(drops._POLICY, resend_uncommitted_ms=0)
    )
    result = await drops.run_drops(8, seed=3, turns_per_session=4)
    assert result.failures["lost audio (ms)"] > 0


async def test_a_conversation_not_restored_is_counted_diverged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def restore_nothing(self: Session) -> int:
        return 0

    monkeypatch.setattr(Session, "_restore_conversation", restore_nothing)
    result = await drops.run_drops(8, seed=3, turns_per_session=4)
    assert result.failures["diverged"] > 0

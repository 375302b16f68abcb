"""Smoke test of the VAD benchmark, so it cannot rot between runs.

A quick run scores every detector in every quick condition with sane figures; the table's
claims (the fixed threshold stuck in noise, the tracking one not) are checked on the
numbers it prints.
"""

from __future__ import annotations

import pytest

from bench import vad

__all__: list[str] = []


def test_quick_run_scores_every_detector_and_condition(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert vad.main(["--quick"]) == 0
    out = capsys.readouterr().out
    results, _ = vad.run(quick=True)
    names = {d.name for d in vad.detectors()}
    assert {"energy before", "energy after", "silero", "webrtcvad"} <= names
    for condition, _kind, _snr, _level in vad.CONDITIONS[::2]:
        assert set(results[condition]) == names
        for name, score in results[condition].items():
            assert f"{condition:<18} {name:<14}" in out
            assert 0 <= score.hit <= 1 and score.turns >= 0 and score.rtf > 0
    # In noise over -40 dBFS the fixed threshold never ends its turn; the tracking one does.
    noisy = results["white 20 dB"]
    assert noisy["energy before"].stuck == 1.0 and noisy["energy before"].end_ms is None
    assert noisy["energy after"].stuck == 0.0 and noisy["energy after"].hit == 1.0
    # In a quiet room both energy detectors agree to the frame.
    quiet = results["quiet"]
    assert quiet["energy before"].start_ms == quiet["energy after"].start_ms

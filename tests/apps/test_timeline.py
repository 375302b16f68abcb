"""The replay's timeline picture: what matplotlib draws matches the data and the legend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from realtime_client.apps._timeline import TimelineData, render_timeline, save_timeline

pytest.importorskip("matplotlib", reason="the report extra is not installed")

RATE = 24_000


def data(**overrides: Any) -> TimelineData:
    """Two seconds of input, a response that was cut, words on both lanes."""
    tone = (0.5 * np.sin(np.arange(RATE * 2) / 10.0)).astype(np.float32)
    fields: dict[str, Any] = {
        "sample_rate": RATE,
        "input_track": tone,
        "output_track": tone[::-1].copy(),
        "speech": [(200.0, 900.0)],
        "inputs": [(0.0, 1000.0, "question.wav")],
        "responses": [(1000.0, 1800.0, "R1 (cancelled): It is sunny", "cancelled")],
        "truncations": [1500.0],
        "user_words": [(200.0, 900.0, "Hi <there> & you")],
        "title": "realtime-replay: question.wav\necho responder · speed 4x",
    }
    fields.update(overrides)
    return TimelineData(**fields)


def drawn(fig: Any) -> tuple[list[str], list[str]]:
    """Every text on the figure, and the legend's labels."""
    texts = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        texts += [t.get_text() for t in ax.texts]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    return texts, legend


def test_words_title_and_legend_match_what_is_drawn() -> None:
    texts, legend = drawn(render_timeline(data()))
    assert "realtime-replay: question.wav\necho responder · speed 4x" in texts
    assert "“Hi <there> & you”" in texts
    assert "R1 (cancelled): It is sunny" in texts
    assert "question.wav" in texts
    assert legend == [
        "input file (extent as streamed)",
        "speech (server VAD)",
        "input audio",
        "assistant audio as played",
        "truncated / not completed",
    ]  # no barge-in was drawn, so none is listed


def test_push_to_talk_and_barge_in_legend() -> None:
    fig = render_timeline(data(speech=[], push_to_talk=True, barge_ins=[1200.0], truncations=[]))
    _, legend = drawn(fig)
    assert "user turn (push-to-talk: whole file, committed at its end)" in legend
    assert "speech (server VAD)" not in legend
    assert legend[-1] == "barge-in"
    # A completed response, nothing cut: no red entry.
    fig = render_timeline(data(responses=[(1000.0, 1800.0, "R1: ok", "completed")], truncations=[]))
    assert "truncated / not completed" not in drawn(fig)[1]


def test_long_words_are_shortened_to_their_span(tmp_path: Path) -> None:
    words = "word " * 200
    texts, _ = drawn(render_timeline(data(user_words=[(200.0, 900.0, words)])))
    shown = next(t for t in texts if t.startswith("“word"))
    assert shown.endswith("…") and 10 < len(shown) < 150
    size = save_timeline(tmp_path / "t.png", data())
    assert size == (1400, 520)
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

"""The WebRTC mouth-to-ear benchmark runs and measures both directions (short version)."""

from __future__ import annotations

import pytest

pytest.importorskip("aiortc", reason="the webrtc extra is not installed")

from bench import webrtc


async def test_clicks_are_heard_both_ways_and_tabulated() -> None:
    ours = await webrtc.measure("ours 20 ms", 1, 0.0, 1.2)
    default = await webrtc.measure("aiortc default", None, 0.0, 1.2)
    for result in (ours, default):
        assert result.sent >= 5
        assert len(result.up_ms) >= result.sent - 1 and len(result.down_ms) >= result.sent - 1
        assert all(0 < ms < 200 for ms in result.up_ms + result.down_ms)
    table = webrtc.render([default, ours])
    assert "| aiortc default | 0% |" in table and "1.00x" in table


async def test_sessions_per_core_level_measures_lateness_and_cpu() -> None:
    ours = await webrtc.measure_sessions(2, 1.0)
    theirs = await webrtc.measure_sessions(2, 1.0, own_codec=False)
    for level in (ours, theirs):
        assert level.ends_started == 4  # every end heard the other before the measurement
        assert level.frames > 2 * 2 * 30  # 4 ends, ~50 frames a second each
        assert 0.6 < level.delivered < 1.2
        assert level.cpu_ms_per_end_second > 0
    table = webrtc.render_sessions([theirs, ours])
    assert "| aiortc | 2 | 4 |" in table and "| ours | 2 | 4 |" in table
    assert "1.00x" in table or "saturated" in table
    line = webrtc.sessions_per_core([theirs, ours], p99_limit_ms=1e9)
    assert "ours 4" in line and "aiortc 4" in line

"""The output audio buffer of a media call: playout events and cuts, without a peer."""

from __future__ import annotations

import numpy as np

from realtime_client.server._playout import Cut, OutputAudioBuffer


def test_the_output_buffer_reports_playout_per_response() -> None:
    buffer = OutputAudioBuffer(48_000)
    assert buffer.push("r1", "i1", np.ones(2400, np.int16)).size == 4800  # 100 ms
    buffer.finish("r1")
    assert buffer.push("r2", "i2", np.ones(2400, np.int16)).size == 4800
    assert buffer.played_to(4800 + 4000) == [("output_audio_buffer.started", "r1")]
    # r1 plays out and r2 starts in the same frame: stopped first.
    assert buffer.played_to(4800 - 160) == [
        ("output_audio_buffer.stopped", "r1"),
        ("output_audio_buffer.started", "r2"),
    ]
    assert buffer.played_to(0) == []  # r2 is not done: it may have more audio to come
    buffer.finish("r2")
    assert buffer.played_to(0) == [("output_audio_buffer.stopped", "r2")]


def test_a_clear_reports_what_was_handed_out_and_mutes_the_response() -> None:
    buffer = OutputAudioBuffer(48_000)
    buffer.push("r1", "i1", np.ones(2400, np.int16))
    buffer.push("r1", "i2", np.ones(2400, np.int16))
    buffer.played_to(9600 - 3840)  # 80 ms handed out
    [cut] = buffer.clear()
    assert cut == Cut("r1", {"i1": 80, "i2": 0}, frozenset({"i1", "i2"}), generating=True)
    assert buffer.queued == 0 and buffer.responses == []
    assert buffer.push("r1", "i2", np.ones(2400, np.int16)).size == 0  # still generating: muted
    buffer.finish("r1")
    assert buffer.push("r3", "i3", np.ones(240, np.int16)).size == 480
    assert buffer.last_response_id == "r3"


def test_each_item_is_resampled_as_one_stream() -> None:
    t = np.arange(24_000 * 300 // 1000) / 24_000
    item = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    whole = OutputAudioBuffer(48_000).push("r", "i", item)
    buffer = OutputAudioBuffer(48_000)
    chunked = np.concatenate(
        [buffer.push("r", "i", item[k : k + 1000]) for k in range(0, 7200, 1000)]
    )
    assert whole.size == chunked.size == 2 * item.size
    assert np.array_equal(whole, chunked)

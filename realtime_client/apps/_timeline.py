"""The timeline picture of a replay: input waveform with VAD segments, output as played.

Everything is placed on one clock, the replay's device clock (ms since the first block
was captured), the same clock that the transcript's ``at_ms`` values use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ._png import RGB, Canvas, write_png

__all__ = ["TimelineData", "render_timeline", "save_timeline"]

_BLUE: RGB = (40, 90, 200)
_ORANGE: RGB = (225, 120, 20)
_GREEN: RGB = (60, 170, 80)
_GREY: RGB = (150, 150, 150)
_RED: RGB = (200, 30, 30)
_MAGENTA: RGB = (190, 40, 190)
_LANE: RGB = (244, 244, 248)
_INK: RGB = (30, 30, 30)

WIDTH = 1200
HEIGHT = 300
_LEFT = 92
_RIGHT = 16
_INPUT_Y = (40, 130)
_OUTPUT_Y = (150, 240)
_AXIS_Y = 244
_LEGEND_Y = 278


@dataclass
class TimelineData:
    """What the picture shows, all times in ms on the device clock.

    Attributes:
        sample_rate: Rate of both tracks, in Hz.
        input_track: What the microphone path captured (mono float32).
        output_track: What the playback buffer played (mono float32), same clock.
        speech: VAD segments ``(start_ms, end_ms)`` (end ``None`` if never stopped).
        inputs: Input files ``(start_ms, end_ms, name)``.
        responses: Assistant audio ``(start_ms, end_ms, label, status)``.
        barge_ins: Times the replay injected a barge-in, in ms.
        truncations: Times an item was truncated (``conversation.item.truncated``), in ms.
        title: The caption.
    """

    sample_rate: int
    input_track: npt.NDArray[np.float32]
    output_track: npt.NDArray[np.float32]
    speech: list[tuple[float, float | None]] = field(default_factory=list)
    inputs: list[tuple[float, float, str]] = field(default_factory=list)
    responses: list[tuple[float, float, str, str]] = field(default_factory=list)
    barge_ins: list[float] = field(default_factory=list)
    truncations: list[float] = field(default_factory=list)
    title: str = "REALTIME-REPLAY TIMELINE"


def _tick_step_s(total_s: float) -> float:
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600):
        if total_s / step <= 14:
            return float(step)
    return 1200.0


def _envelope(
    track: npt.NDArray[np.float32], columns: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Min and max of ``track`` per pixel column (zeros where the track is shorter)."""
    lows = np.zeros(columns, dtype=np.float32)
    highs = np.zeros(columns, dtype=np.float32)
    n = len(track)
    if n == 0:
        return lows, highs
    edges = np.linspace(0, n, columns + 1).astype(np.int64)
    starts = np.minimum(edges[:-1], n - 1)
    lows[:] = np.minimum.reduceat(track, starts)
    highs[:] = np.maximum.reduceat(track, starts)
    empty = edges[1:] <= edges[:-1]
    lows[empty] = 0.0
    highs[empty] = 0.0
    return lows, highs


def render_timeline(data: TimelineData) -> npt.NDArray[np.uint8]:
    """Draw the timeline; returns an ``(HEIGHT, WIDTH, 3)`` uint8 RGB array."""
    canvas = Canvas(WIDTH, HEIGHT)
    plot_w = WIDTH - _LEFT - _RIGHT
    total_ms = max(
        1000.0,
        len(data.input_track) * 1000.0 / data.sample_rate,
        len(data.output_track) * 1000.0 / data.sample_rate,
    )

    def x_of(ms: float) -> int:
        return _LEFT + round(max(0.0, min(ms, total_ms)) / total_ms * plot_w)

    canvas.text(8, 10, data.title, _INK)
    for (top, bottom), label in ((_INPUT_Y, "INPUT"), (_OUTPUT_Y, "OUTPUT")):
        canvas.rect(_LEFT, top, _LEFT + plot_w, bottom, _LANE)
        canvas.text(8, (top + bottom) // 2 - 5, label, _INK)

    # Input lane: file spans along the top edge, VAD bands behind the waveform.
    top, bottom = _INPUT_Y
    for start, end, _name in data.inputs:
        canvas.rect(x_of(start), top, max(x_of(end), x_of(start) + 1), top + 4, _GREY)
    for start, speech_end in data.speech:
        stop = total_ms if speech_end is None else speech_end
        canvas.rect(x_of(start), top + 4, max(x_of(stop), x_of(start) + 1), bottom, _GREEN, 0.28)
    _waveform(canvas, data.input_track, top + 6, bottom - 2, plot_w, _BLUE)

    # Output lane: each response's audio span, the played waveform, truncation marks.
    top, bottom = _OUTPUT_Y
    for start, end, label, status in data.responses:
        x0, x1 = x_of(start), max(x_of(end), x_of(start) + 2)
        canvas.rect(x0, top, x1, bottom, _ORANGE, 0.18)
        canvas.hline(x0, x1, top, _RED if status not in ("completed",) else _ORANGE, 3)
        canvas.text(x0 + 3, top + 6, label, _INK, scale=1)
    _waveform(canvas, data.output_track, top + 14, bottom - 2, plot_w, _ORANGE)
    for ms in data.truncations:
        canvas.vline(x_of(ms) - 1, top, bottom, _RED, 3)

    for ms in data.barge_ins:
        x = x_of(ms)
        canvas.vline(x - 1, _INPUT_Y[0], _OUTPUT_Y[1], _MAGENTA, 2)
        canvas.text(x + 3, _INPUT_Y[0] + 8, "BARGE-IN", _MAGENTA, scale=1)

    # Time axis.
    canvas.hline(_LEFT, _LEFT + plot_w, _AXIS_Y, _INK)
    step_s = _tick_step_s(total_ms / 1000.0)
    tick = 0.0
    while tick * 1000.0 <= total_ms + 1e-6:
        x = x_of(tick * 1000.0)
        canvas.vline(x, _AXIS_Y, _AXIS_Y + 5, _INK)
        label = f"{tick:g}S"
        canvas.text(min(x - Canvas.text_width(label) // 2, WIDTH - 60), _AXIS_Y + 8, label, _INK)
        tick += step_s

    # Legend: a swatch and a word per element.
    x = _LEFT
    for color, label in (
        (_BLUE, "INPUT AUDIO"),
        ((175, 220, 180), "SPEECH (SERVER VAD)"),
        (_ORANGE, "ASSISTANT AUDIO PLAYED"),
        (_RED, "TRUNCATED / NOT COMPLETED"),
        (_MAGENTA, "BARGE-IN"),
    ):
        canvas.rect(x, _LEGEND_Y, x + 14, _LEGEND_Y + 10, color)
        x = canvas.text(x + 20, _LEGEND_Y, label, _INK) + 22
    return canvas.pixels


def _waveform(
    canvas: Canvas,
    track: npt.NDArray[np.float32],
    top: int,
    bottom: int,
    plot_w: int,
    color: RGB,
) -> None:
    lows, highs = _envelope(track, plot_w)
    mid = (top + bottom) / 2
    half = (bottom - top) / 2
    # Rows grow downwards: the max of the signal is the smallest row.
    hi_rows = np.clip(np.round(mid - np.clip(highs, -1, 1) * half), top, bottom).astype(np.int_)
    lo_rows = np.clip(np.round(mid - np.clip(lows, -1, 1) * half), top, bottom).astype(np.int_)
    canvas.columns(_LEFT, hi_rows, lo_rows, color)


def save_timeline(path: str | os.PathLike[str], data: TimelineData) -> tuple[int, int]:
    """Render and write the PNG; returns ``(width, height)``."""
    pixels = render_timeline(data)
    write_png(path, pixels)
    return pixels.shape[1], pixels.shape[0]

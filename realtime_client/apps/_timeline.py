"""The timeline picture of a replay, drawn with matplotlib (the ``report`` extra).

Everything is placed on one clock, the replay's device clock (ms since the first block
was captured), the same clock that the transcript's ``at_ms`` values use. matplotlib is
imported only when a picture is drawn, with the Agg backend (no display, no pyplot
state); its bundled DejaVu fonts are used, nothing is downloaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import MissingExtraError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["TIMELINE_NEEDS", "TimelineData", "render_timeline", "save_timeline"]

#: The one-line note shown when matplotlib is not installed.
TIMELINE_NEEDS = (
    "timeline.png needs the report extra (matplotlib): pip install 'realtime-client[report]'"
)

_BLUE = "#2858c8"
_ORANGE = "#e17814"
_GREEN = "#3caa50"
_GREY = "#8c8c8c"
_RED = "#c81e1e"
_MAGENTA = "#be28be"
_LANE = "#f4f4f8"

#: Size of the picture: inches at :data:`DPI` dots per inch.
SIZE_IN = (14.0, 5.2)
DPI = 100
_FONT_PT = 8.0


@dataclass
class TimelineData:
    """What the picture shows, all times in ms on the device clock.

    Attributes:
        sample_rate: Rate of both tracks, in Hz.
        input_track: What the microphone path captured (mono float32).
        output_track: What the playback buffer played (mono float32), same clock.
        speech: VAD segments ``(start_ms, end_ms)`` (end ``None`` if never stopped).
        inputs: Input files ``(start_ms, end_ms, name)``.
        responses: Assistant audio as played ``(start_ms, end_ms, label, status)``; the
            label carries the response's number and words.
        barge_ins: Times the replay injected a barge-in, in ms.
        truncations: Times an item was truncated (``conversation.item.truncated``), in ms.
        user_words: What the user said per turn ``(start_ms, end_ms, words)``.
        push_to_talk: Turns were committed by push-to-talk (no server VAD).
        title: The caption (files, responder, speed).
    """

    sample_rate: int
    input_track: npt.NDArray[np.float32]
    output_track: npt.NDArray[np.float32]
    speech: list[tuple[float, float | None]] = field(default_factory=list)
    inputs: list[tuple[float, float, str]] = field(default_factory=list)
    responses: list[tuple[float, float, str, str]] = field(default_factory=list)
    barge_ins: list[float] = field(default_factory=list)
    truncations: list[float] = field(default_factory=list)
    user_words: list[tuple[float, float, str]] = field(default_factory=list)
    push_to_talk: bool = False
    title: str = "realtime-replay timeline"

    @property
    def total_ms(self) -> float:
        """Length of the time axis, in ms (at least 1 s)."""
        return max(
            1000.0,
            len(self.input_track) * 1000.0 / self.sample_rate,
            len(self.output_track) * 1000.0 / self.sample_rate,
        )


def _envelope(
    track: npt.NDArray[np.float32], columns: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Min and max of ``track`` per column (zeros where the track is shorter)."""
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


def _fit(text: str, span_ms: float, total_ms: float, axes_px: float) -> str:
    """``text`` shortened (with an ellipsis) to what fits in ``span_ms`` at the font size."""
    char_px = _FONT_PT * DPI / 72.0 * 0.6
    room = int(span_ms / total_ms * axes_px / char_px) - 1
    if room < 2:
        return ""
    return text if len(text) <= room else text[: room - 1].rstrip() + "…"


def _matplotlib() -> Any:
    """The Agg-backed :class:`~matplotlib.figure.Figure` class, or MissingExtraError."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingExtraError(TIMELINE_NEEDS) from exc
    return Figure, FigureCanvasAgg


def render_timeline(data: TimelineData) -> Any:
    """Draw the timeline; returns the matplotlib ``Figure`` (on an Agg canvas).

    Raises:
        MissingExtraError: matplotlib is not installed (the ``report`` extra).
    """
    figure_cls, canvas_cls = _matplotlib()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig = figure_cls(figsize=SIZE_IN, dpi=DPI)
    canvas_cls(fig)
    ax_in, ax_out = fig.subplots(2, 1, sharex=True, gridspec_kw={"hspace": 0.08})
    fig.subplots_adjust(left=0.06, right=0.99, top=0.86, bottom=0.17)
    total = data.total_ms
    axes_px = SIZE_IN[0] * DPI * (0.99 - 0.06)
    columns = int(axes_px)
    times = np.linspace(0.0, total / 1000.0, columns)
    handles: list[Any] = []

    def span(ax: Axes, start: float, end: float, **style: Any) -> None:
        # Below the input-file bar (y 1.08 and up of -1.25..1.25): the bar stays grey.
        top = 0.93 if ax is ax_in else 1.0
        ax.axvspan(start / 1000.0, max(end, start + 1.0) / 1000.0, ymax=top, **style)

    # Input lane: file extents along the top, turns behind the waveform, words under it.
    for ax, label in ((ax_in, "input"), (ax_out, "output")):
        ax.set_facecolor(_LANE)
        ax.set_ylim(-1.25, 1.25)
        ax.set_yticks([])
        ax.set_ylabel(label, fontsize=9)
        ax.set_xlim(0.0, total / 1000.0)
    for start, end, _name in data.inputs:
        ax_in.broken_barh(
            [(start / 1000.0, (end - start) / 1000.0)], (1.08, 0.14), facecolors=_GREY
        )
    for start, end, name in data.inputs:
        text = _fit(name, end - start, total, axes_px)
        if text:
            ax_in.text(start / 1000.0, 1.02, text, fontsize=7, va="top", color="#444444")
    if data.inputs:
        handles.append(Patch(color=_GREY, label="input file (extent as streamed)"))
    turn_label = (
        "user turn (push-to-talk: whole file, committed at its end)"
        if data.push_to_talk
        else "speech (server VAD)"
    )
    for start, speech_end in data.speech:
        stop = total if speech_end is None else speech_end
        span(ax_in, start, stop, color=_GREEN, alpha=0.25, lw=0)
    if data.push_to_talk and not data.speech:
        for start, end, _name in data.inputs:
            span(ax_in, start, end, color=_GREEN, alpha=0.25, lw=0)
            ax_in.axvline(end / 1000.0, ymax=0.93, color=_GREEN, lw=1.5)
    if data.speech or (data.push_to_talk and data.inputs):
        handles.append(Patch(color=_GREEN, alpha=0.35, label=turn_label))
    if len(data.input_track):
        lows, highs = _envelope(data.input_track, columns)
        ax_in.fill_between(times, np.clip(lows, -1, 1), np.clip(highs, -1, 1), color=_BLUE, lw=0)
        handles.append(Patch(color=_BLUE, label="input audio"))
    for start, end, words in data.user_words:
        text = _fit(f"“{words}”", end - start, total, axes_px)
        if text:
            ax_in.text(start / 1000.0, -1.18, text, fontsize=_FONT_PT, va="bottom", color="#103070")

    # Output lane: each response's span and words, the played waveform, truncations.
    any_cut = False
    for start, end, label, status in data.responses:
        done = status == "completed"
        any_cut = any_cut or not done
        span(ax_out, start, end, color=_ORANGE, alpha=0.15, lw=0)
        ax_out.plot(
            [start / 1000.0, max(end, start + 1.0) / 1000.0],
            [1.18, 1.18],
            color=_ORANGE if done else _RED,
            lw=3,
            solid_capstyle="butt",
        )
        text = _fit(label, end - start, total, axes_px)
        if text:
            ax_out.text(start / 1000.0, 1.1, text, fontsize=_FONT_PT, va="top", color="#5a2a00")
    if len(data.output_track):
        lows, highs = _envelope(data.output_track, columns)
        ax_out.fill_between(
            times, np.clip(lows, -1, 1) * 0.85, np.clip(highs, -1, 1) * 0.85, color=_ORANGE, lw=0
        )
    if data.responses or len(data.output_track):
        handles.append(Patch(color=_ORANGE, label="assistant audio as played"))
    for ms in data.truncations:
        ax_out.axvline(ms / 1000.0, color=_RED, lw=2)
    if data.truncations or any_cut:
        handles.append(Line2D([], [], color=_RED, lw=2.5, label="truncated / not completed"))
    for ms in data.barge_ins:
        for ax in (ax_in, ax_out):
            ax.axvline(ms / 1000.0, color=_MAGENTA, lw=1.5, ls="--")
    if data.barge_ins:
        handles.append(Line2D([], [], color=_MAGENTA, lw=1.5, ls="--", label="barge-in"))

    ax_out.set_xlabel("time on the device clock (s)", fontsize=9)
    ax_out.tick_params(labelsize=8)
    fig.suptitle(data.title, fontsize=10, x=0.06, ha="left", y=0.985)
    if handles:
        fig.legend(
            handles=handles,
            loc="lower left",
            bbox_to_anchor=(0.06, 0.0),
            ncol=len(handles),
            fontsize=8,
            frameon=False,
        )
    return fig


def save_timeline(path: str | os.PathLike[str], data: TimelineData) -> tuple[int, int]:
    """Render and write the PNG; returns ``(width, height)`` in pixels.

    Raises:
        MissingExtraError: matplotlib is not installed (the ``report`` extra).
    """
    fig = render_timeline(data)
    fig.savefig(os.fspath(path), format="png", dpi=DPI)
    width, height = fig.canvas.get_width_height()
    return int(width), int(height)

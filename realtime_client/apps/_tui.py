"""The terminal screen of ``realtime-chat``, on ``rich``: scrolling transcript, live status.

Theory of operation
-------------------
In a terminal the screen is a :class:`rich.live.Live` display of a few lines (live partial
transcripts, connection and turn state, microphone and output level meters with the echo
suppression figure, the latency of the last turn, tokens and cost so far, the keys).
Finished transcript lines are printed with ``console.print`` while the display is live:
rich moves the cursor up to the first status line, erases the status area, prints the new
lines and draws the status area again below them. So transcript lines go into the
terminal's scrollback and survive the program, while the status area is redrawn in place.
Every status line is cut one column short of the terminal's width (read again on every
redraw), so it never wraps and the redraw stays exact. There is no refresh thread: the chat
calls :meth:`ChatScreen.refresh` from its event loop (15 times a second). Only plain ANSI
sequences are written (cursor up, erase line, SGR colours), so it works over ``ssh``; no
curses, no alternate screen.

When the output is not a terminal the screen degrades to plain lines: transcript lines,
state changes and one line per finished turn, no escape sequences and no meters (rich is
not used there at all, so nothing is wrapped or highlighted).

:class:`KeyReader` puts a terminal ``stdin`` in cbreak mode (keys arrive one by one, no
echo, Ctrl-C still signals) and always restores the saved settings on close.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

try:  # POSIX only: without it there are no single-key presses, just lines
    import termios
    import tty
except ImportError:  # pragma: no cover - Windows
    termios = None  # type: ignore[assignment]
    tty = None  # type: ignore[assignment]

__all__ = ["ChatScreen", "KeyReader", "StatusInfo", "level_bar"]

#: Rich styles of the roles and of the kinds of note.
_STYLES = {
    "you": "bold cyan",
    "assistant": "bold green",
    "note": "dim",
    "error": "bold red",
    "tool": "yellow",
}
_METER_FLOOR_DBFS = -60.0


def level_bar(dbfs: float, width: int, *, unicode: bool = True) -> str:
    """A horizontal bar for a level in dBFS: empty at -60 dBFS, full at 0 dBFS.

    Args:
        dbfs: The level, in dBFS.
        width: Bar width, in characters.
        unicode: Use block characters; ``False`` uses ``#`` and ``-``.
    """
    width = max(0, width)
    fraction = min(1.0, max(0.0, (dbfs - _METER_FLOOR_DBFS) / -_METER_FLOOR_DBFS))
    full = round(fraction * width)
    on, off = ("█", "░") if unicode else ("#", "-")
    return on * full + off * (width - full)


@dataclass
class StatusInfo:
    """What the status area shows (the chat updates it; the screen draws it).

    Attributes:
        connection: Connection state, e.g. ``"connected"``, ``"reconnecting (2)"``.
        target: Where we are connected (model and server).
        turn: Turn state, e.g. ``"listening"``, ``"you are speaking"``, ``"thinking"``.
        mode: ``"VAD"`` or ``"push-to-talk"``.
        input_dbfs: Microphone level, in dBFS (``None`` hides the meter).
        output_dbfs: Playback level, in dBFS (``None`` hides the meter).
        echo: Echo suppression achieved, already formatted (``""`` hides it).
        latency: Latency of the last turn, already formatted (``""`` before the first).
        usage: Token usage and cost so far, already formatted.
        keys: Key help shown at the end.
        partials: Transcripts still being spoken, by key: ``(role, text so far)``.
    """

    connection: str = "connecting"
    target: str = ""
    turn: str = ""
    mode: str = "VAD"
    input_dbfs: float | None = None
    output_dbfs: float | None = None
    echo: str = ""
    latency: str = ""
    usage: str = ""
    keys: str = "q quit"
    partials: dict[str, tuple[str, str]] = field(default_factory=dict)


class ChatScreen:
    """The transcript and status display: a rich live display, or plain lines.

    Args:
        out: Where to write (normally ``sys.stdout``).
        ansi: Keep a live status area below the transcript (rich); ``False`` prints plain
            lines without escape sequences.
        color: Colour roles, states and meters (ignored without ``ansi``).
        width: Fixed width in columns; ``None`` asks the terminal on every redraw.
    """

    def __init__(
        self,
        out: TextIO,
        *,
        ansi: bool,
        color: bool = True,
        width: int | None = None,
    ) -> None:
        self.out = out
        self.ansi = ansi
        self.color = color and ansi
        self.status = StatusInfo()
        self._closed = False
        self._last_plain_state: tuple[str, str] = ("", "")
        encoding = (getattr(out, "encoding", None) or "").lower().replace("-", "")
        self.unicode = encoding in ("utf8", "utf16", "utf32")
        self._console: Console | None = None
        self._live: Live | None = None
        if ansi:
            self._console = Console(
                file=out,
                force_terminal=True,  # the caller decided: out is a terminal
                force_jupyter=False,
                color_system="auto" if self.color else None,
                no_color=not self.color,
                width=width,
                highlight=False,  # transcript text is shown as said: no number colouring,
                markup=False,  # no [markup] parsing ("[1.2 seconds of audio]")
                emoji=False,  # and no :emoji: codes
            )
            # No refresh thread (auto_refresh=False): the chat redraws from its event loop.
            # Transient: on close the status area is erased; the transcript stays.
            self._live = Live(
                get_renderable=self._render,
                console=self._console,
                auto_refresh=False,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            with contextlib.suppress(OSError, ValueError):
                self._live.start()  # hides the cursor while the status area is live

    # --- content ----------------------------------------------------------------------

    def line(self, role: str, text: str) -> None:
        """Print a finished transcript line (``role`` is ``"you"`` or ``"assistant"``)."""
        if self._console is None:
            self._plain(f"{role}: {text}")
        else:
            self._print(Text.assemble((f"{role}:", _role_style(role)), " ", text))

    def note(self, text: str, kind: str = "note") -> None:
        """Print an informational line (``kind``: ``"note"``, ``"error"`` or ``"tool"``)."""
        prefix = {"error": "! ", "tool": "» "}.get(kind, "· ")
        if self._console is None:
            self._plain(prefix + text)
        else:
            self._print(Text(prefix + text, style=_STYLES.get(kind, "")))

    def partial(self, key: str, role: str, text: str) -> None:
        """Show a transcript still being spoken (live only: plain mode waits for the end)."""
        self.status.partials[key] = (role, text)

    def end_partial(self, key: str) -> None:
        """Remove a live partial (its final line is printed with :meth:`line`)."""
        self.status.partials.pop(key, None)

    # --- drawing ------------------------------------------------------------------------

    def refresh(self) -> None:
        """Redraw the status area in place (live), or print a state change (plain)."""
        if self._closed:
            return
        if self._live is not None:
            with contextlib.suppress(OSError, ValueError):
                self._live.refresh()
            return
        state = (self.status.connection, self.status.turn)
        if state != self._last_plain_state:
            self._last_plain_state = state
            turn = f" · {self.status.turn}" if self.status.turn else ""
            self._plain(f"[{self.status.connection}{turn}]")

    def close(self) -> None:
        """Erase the status area, print a last summary line, show the cursor again."""
        if self._closed:
            return
        if self._live is None and self.status.usage:
            self._plain(f"[{self.status.usage}]")
        self._closed = True
        if self._live is not None and self._console is not None:
            console = self._console
            with contextlib.suppress(OSError, ValueError):
                self._live.stop()  # erases the status area (transient), shows the cursor
                summary = " · ".join(s for s in (self.status.latency, self.status.usage) if s)
                if summary:
                    console.print(Text(summary, style="dim"), soft_wrap=True)
                console.show_cursor(True)  # the last thing written: the cursor is back

    # --- internals ------------------------------------------------------------------------

    def _plain(self, text: str) -> None:
        if self._closed:
            return
        with contextlib.suppress(OSError, ValueError):
            self.out.write(text + "\n")
            self.out.flush()

    def _print(self, text: Text) -> None:
        """A transcript line above the live area (into the scrollback; the terminal wraps it)."""
        if self._closed or self._console is None:
            return
        with contextlib.suppress(OSError, ValueError):
            self._console.print(text, soft_wrap=True)

    def _render(self) -> Group:
        """The status area: live partials, state, meters and echo, latency, usage, keys."""
        s = self.status
        width = self._console.width if self._console is not None else 80
        # One column spare: writing into the last column makes some terminals wrap early.
        cols = max(1, width - 1)
        lines: list[Text] = []
        for role, said in list(s.partials.values())[-2:]:
            head = f"{role}:"
            flat = " ".join(said.split())  # one line, whatever the model sent
            room = max(2, cols - len(head) - 1)
            body = flat if len(flat) <= room else "…" + flat[-(room - 1) :]
            lines.append(Text.assemble((head, _role_style(role)), " ", body))
        dot = "●" if self.unicode else "*"
        state = Text.assemble((dot, _connection_style(s.connection)), " ", s.connection)
        if s.target:
            state.append(f" · {s.target}")
        state.append(f" · {s.mode}")
        if s.turn:
            state.append(" · ")
            state.append(s.turn, style=_turn_style(s.turn))
        lines.append(state)
        meters: list[Text] = []
        levels = [
            (k, v) for k, v in (("mic", s.input_dbfs), ("out", s.output_dbfs)) if v is not None
        ]
        if levels:
            # The bars get what the labels, figures and echo figure leave (4 to 20 columns).
            fixed = len(levels) * len("mic " + "  -99 dB") + 3 * (len(levels) - 1)
            fixed += len(s.echo) + 3 if s.echo else 0
            bar_width = max(4, min(20, (cols - fixed) // len(levels)))
            meters.extend(self._meter(label, level, bar_width) for label, level in levels)
        if s.echo:
            meters.append(Text(s.echo, style="magenta"))
        if meters:
            lines.append(Text("   ").join(meters))
        tail = Text(" · ", style="dim").join(
            [Text(x) for x in (s.latency, s.usage) if x] + ([Text(s.keys, "dim")] if s.keys else [])
        )
        if tail.plain:
            lines.append(tail)
        for text in lines:
            text.no_wrap = True
            text.overflow = "ellipsis"
            text.truncate(cols, overflow="ellipsis")
        return Group(*lines)

    def _meter(self, label: str, level: float, bar_width: int) -> Text:
        """``mic ████░░░░ -23 dB``: the filled part coloured by level, the rest dim."""
        bar = level_bar(level, bar_width, unicode=self.unicode)
        full = len(bar.rstrip("░-"))
        colour = "red" if level >= -6 else "yellow" if level >= -20 else "green"
        return Text.assemble(
            f"{label} ",
            (bar[:full], colour),
            (bar[full:], "dim"),
            f" {max(level, -99.0):4.0f} dB",
        )


def _role_style(role: str) -> str:
    """``you`` bold cyan; ``assistant`` (and ``assistant (preamble)``) bold green."""
    if role == "you":
        return _STYLES["you"]
    return _STYLES["assistant"] if role.startswith("assistant") else ""


def _connection_style(connection: str) -> str:
    if connection == "connected":
        return "green"
    return "yellow" if "connecting" in connection else "red"


def _turn_style(turn: str) -> str:
    if turn.startswith(("you", "recording")):
        return _STYLES["you"]
    if turn.startswith("assistant"):
        return _STYLES["assistant"]
    return "bold" if turn == "thinking" else ""


class KeyReader:
    """Single key presses from ``stdin``, delivered to a callback on the event loop.

    A terminal is put in cbreak mode (no line buffering, no echo; Ctrl-C still raises
    SIGINT) and restored by :meth:`close`, also after an error. A pipe delivers its bytes
    the same way (``q`` then Enter quits). When ``stdin`` cannot be watched (a regular
    file, ``/dev/null``) there are simply no keys.

    Args:
        on_key: Called with each key as a one-character string.
        stdin: The input stream (default ``sys.stdin``).
    """

    def __init__(self, on_key: Callable[[str], None], stdin: TextIO | None = None) -> None:
        self._on_key = on_key
        self._stdin = stdin or sys.stdin
        self._fd = -1
        self._saved: list[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether keys come from a terminal (single presses) rather than a pipe."""
        return self._saved is not None

    def start(self) -> None:
        """Start delivering keys (call from the event loop)."""
        try:
            fd = self._stdin.fileno()
        except (OSError, ValueError, AttributeError):
            return
        if os.isatty(fd) and termios is not None:
            with contextlib.suppress(termios.error):
                self._saved = termios.tcgetattr(fd)
                tty.setcbreak(fd, termios.TCSANOW)
        loop = asyncio.get_running_loop()
        try:
            loop.add_reader(fd, self._readable)
        except (OSError, ValueError, NotImplementedError):
            self._restore(fd)
            return
        self._fd, self._loop = fd, loop

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # EOF: stop watching; quitting stays with q, Ctrl-C or SIGTERM
            self._stop_watching()
            return
        for char in data.decode("utf-8", "replace"):
            self._on_key(char)

    def _stop_watching(self) -> None:
        if self._loop is not None and self._fd >= 0:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._fd)
        self._loop = None

    def _restore(self, fd: int) -> None:
        saved, self._saved = self._saved, None
        if saved is not None and termios is not None:
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(fd, termios.TCSADRAIN, saved)

    def close(self) -> None:
        """Stop reading and restore the terminal settings."""
        self._stop_watching()
        if self._fd >= 0:
            self._restore(self._fd)
        self._fd = -1

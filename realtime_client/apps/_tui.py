"""A small ANSI terminal UI for ``realtime-chat``: scrolling transcript plus a status area.

Theory of operation
-------------------
Finished transcript lines are printed normally, so they land in the terminal's scrollback
and survive the program. Below them sits a status area of a few lines (live partial
transcripts, connection and turn state, level meters, latency, usage) which is redrawn in
place: move the cursor up to its first line, erase to the end of the screen, print any
new transcript lines, then print the status area again. Every status line is cut to the
terminal's width, so no line wraps and the cursor arithmetic stays exact. Only plain ANSI
escape sequences are used (cursor up, erase, SGR colours), which every terminal emulator
and ``ssh`` session understands; no curses.

When the output is not a terminal the screen degrades to plain lines: transcript lines,
state changes and one line per finished turn, no escape sequences and no meters.

:class:`KeyReader` puts a terminal ``stdin`` in cbreak mode (keys arrive one by one, no
echo, Ctrl-C still signals) and always restores the saved settings on close.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

try:  # POSIX only: without it there are no single-key presses, just lines
    import termios
    import tty
except ImportError:  # pragma: no cover - Windows
    termios = None  # type: ignore[assignment]
    tty = None  # type: ignore[assignment]

__all__ = ["ChatScreen", "KeyReader", "StatusInfo", "level_bar"]

_RESET = "\x1b[0m"
_STYLES = {
    "you": "\x1b[1;36m",  # bold cyan
    "assistant": "\x1b[1;32m",  # bold green
    "note": "\x1b[2m",  # dim
    "error": "\x1b[1;31m",  # bold red
    "tool": "\x1b[33m",  # yellow
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
    """The transcript and status display, ANSI or plain.

    Args:
        out: Where to write (normally ``sys.stdout``).
        ansi: Redraw a status area with escape sequences; ``False`` prints plain lines.
        color: Colour the roles (ignored without ``ansi``).
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
        self._width = width
        self._drawn = 0  # status lines currently on screen
        self._closed = False
        self._last_plain_state: tuple[str, str] = ("", "")
        encoding = (getattr(out, "encoding", None) or "").lower().replace("-", "")
        self.unicode = encoding in ("utf8", "utf16", "utf32")
        if self.ansi:
            self._write("\x1b[?25l")  # hide the cursor while the status area is live

    # --- content ----------------------------------------------------------------------

    def line(self, role: str, text: str) -> None:
        """Print a finished transcript line (``role`` is ``"you"`` or ``"assistant"``)."""
        self._emit([self._styled(f"{role}:", role) + " " + text])

    def note(self, text: str, kind: str = "note") -> None:
        """Print an informational line (``kind``: ``"note"``, ``"error"`` or ``"tool"``)."""
        prefix = {"error": "! ", "tool": "» "}.get(kind, "· ")
        self._emit([self._styled(prefix + text, kind)])

    def partial(self, key: str, role: str, text: str) -> None:
        """Show a transcript still being spoken (ANSI only: plain mode waits for the end)."""
        self.status.partials[key] = (role, text)

    def end_partial(self, key: str) -> None:
        """Remove a live partial (its final line is printed with :meth:`line`)."""
        self.status.partials.pop(key, None)

    # --- drawing ------------------------------------------------------------------------

    def refresh(self) -> None:
        """Redraw the status area (ANSI), or print a state change (plain)."""
        if self._closed:
            return
        if self.ansi:
            self._emit([])
            return
        state = (self.status.connection, self.status.turn)
        if state != self._last_plain_state:
            self._last_plain_state = state
            turn = f" · {self.status.turn}" if self.status.turn else ""
            self._write(f"[{self.status.connection}{turn}]\n")

    def close(self) -> None:
        """Erase the status area, print a last summary line, show the cursor again."""
        if self._closed:
            return
        if self.ansi:
            self._write(self._erase())
            self._drawn = 0
            summary = " · ".join(s for s in (self.status.latency, self.status.usage) if s)
            if summary:
                self._write(self._styled(summary, "note") + "\n")
            self._write(_RESET + "\x1b[?25h")
        else:
            if self.status.usage:
                self._write(f"[{self.status.usage}]\n")
        self._closed = True
        with contextlib.suppress(OSError, ValueError):
            self.out.flush()

    # --- internals ------------------------------------------------------------------------

    def _columns(self) -> int:
        if self._width is not None:
            return self._width
        return shutil.get_terminal_size((80, 24)).columns

    def _styled(self, text: str, kind: str) -> str:
        if not self.color or kind not in _STYLES:
            return text
        return f"{_STYLES[kind]}{text}{_RESET}"

    def _write(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.out.write(text)

    def _erase(self) -> str:
        if self._drawn == 0:
            return ""
        up = f"\x1b[{self._drawn - 1}A" if self._drawn > 1 else ""
        return "\r" + up + "\x1b[J"

    def _emit(self, lines: list[str]) -> None:
        if self._closed:
            return
        if not self.ansi:
            for text in lines:
                self._write(text + "\n")
            with contextlib.suppress(OSError, ValueError):
                self.out.flush()
            return
        status = self._status_lines()
        buf = [self._erase()]
        buf.extend(text + "\n" for text in lines)
        buf.append("\n".join(status))
        self._drawn = len(status)
        self._write("".join(buf))
        with contextlib.suppress(OSError, ValueError):
            self.out.flush()

    @staticmethod
    def _fit(text: str, columns: int) -> str:
        # One column spare: writing into the last column makes some terminals wrap early.
        room = max(1, columns - 1)
        return text if len(text) <= room else text[: room - 1] + "…"

    def _status_lines(self) -> list[str]:
        s = self.status
        cols = self._columns()
        lines: list[str] = []
        for role, text in list(s.partials.values())[-2:]:
            head = f"{role}:"
            room = max(1, cols - 1 - len(head) - 1)
            body = text if len(text) <= room else "…" + text[-(room - 1) :]
            lines.append(self._styled(head, role) + " " + body)
        dot = "●" if self.unicode else "*"
        top = f"{dot} {s.connection}"
        if s.target:
            top += f" · {s.target}"
        top += f" · {s.mode}"
        if s.turn:
            top += f" · {s.turn}"
        lines.append(self._fit(top, cols))
        meters = []
        bar_width = max(4, min(20, (cols - 40) // 2))
        for label, level in (("mic", s.input_dbfs), ("out", s.output_dbfs)):
            if level is not None:
                bar = level_bar(level, bar_width, unicode=self.unicode)
                meters.append(f"{label} {bar} {max(level, -99.0):4.0f} dB")
        if s.echo:
            meters.append(s.echo)
        if meters:
            lines.append(self._fit("   ".join(meters), cols))
        tail = " · ".join(x for x in (s.latency, s.usage, s.keys) if x)
        if tail:
            lines.append(self._styled(self._fit(tail, cols), "note"))
        return lines


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

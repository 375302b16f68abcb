"""``realtime-chat`` end to end: in a pseudo-terminal, in plain mode, and its failure messages.

The chat runs as a subprocess with a WAV file standing in for the microphone
(``--input-wav``) and no speaker (``--no-speaker``), so no audio device is needed.
"""

from __future__ import annotations

import asyncio
import fcntl
import io
import json
import os
import pty
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from realtime_client import connect
from realtime_client import events as ev
from realtime_client.apps import chat
from realtime_client.apps._tui import ChatScreen, level_bar
from realtime_client.apps.example_tools import calculate, get_weather
from realtime_client.audio import read_wav, write_wav
from realtime_client.server import LocalServer

from ..conftest import clean_env, speech_wav

RATE = 24_000
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")
FINAL_ECHO = re.compile(rb'assistant:(?:\x1b\[0m)? Echo of your (\d+\.\d+) seconds of audio "\[')


CHAT = [sys.executable, "-m", "realtime_client.apps.chat"]


def emulate(data: str, columns: int) -> list[str]:
    """What a terminal shows after ``data``, scrollback included: one string per row.

    Enough of a VT100 for the chat's output: printable characters with autowrap (xterm's
    pending wrap at the last column), CR, LF (as CR LF, like a tty), cursor up (``ESC[nA``),
    erase in line (``ESC[2K``) and to the end of the screen (``ESC[J``); colours and cursor
    visibility are ignored; blank rows at the bottom are left out.
    """
    rows: list[list[str]] = [[]]
    row = col = 0
    pending = False
    for token in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|.", data, re.S):
        if token.startswith("\x1b["):
            arg, code = token[2:-1], token[-1]
            if code == "A":
                row = max(0, row - int(arg or 1))
                pending = False
            elif code == "K" and arg == "2":
                rows[row] = []
            elif code == "J" and arg in ("", "0"):
                del rows[row][col:]
                del rows[row + 1 :]
            continue
        if token == "\r":
            col, pending = 0, False
        elif token == "\n":  # the tty driver's onlcr makes it CR LF
            row, col, pending = row + 1, 0, False
        else:
            if pending:
                row, col, pending = row + 1, 0, False
            while len(rows) <= row:
                rows.append([])
            line = rows[row]
            line.extend(" " * (col - len(line)))
            line[col : col + 1] = [token]
            if col == columns - 1:
                pending = True
            else:
                col += 1
        while len(rows) <= row:
            rows.append([])
    shown = ["".join(r).rstrip() for r in rows]
    while shown and not shown[-1]:  # blank rows at the bottom look like unused screen
        shown.pop()
    return shown


class Terminal:
    """The chat in a pseudo-terminal, as a user runs it (100x30, TERM=xterm)."""

    def __init__(self, args: list[str], term: str = "xterm") -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        self.slave = slave
        self.saved = termios.tcgetattr(slave)
        self.proc = subprocess.Popen(
            CHAT + args,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=clean_env(TERM=term),
            close_fds=True,
        )
        self.output = b""

    def read_until(
        self, pattern: re.Pattern[bytes], timeout: float = 20.0, *, plain: bool = False
    ) -> re.Match[bytes]:
        """Wait for ``pattern`` in the output (``plain``: with escape sequences removed)."""

        def search() -> re.Match[bytes] | None:
            return pattern.search(ANSI.sub(b"", self.output) if plain else self.output)

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = search()
            if found:
                return found
            self._read(0.05)
            if self.proc.poll() is not None:
                self._read(0.2)
                break
        found = search()
        if found:
            return found
        raise AssertionError(f"{pattern.pattern!r} not shown; output:\n{self.text()[-3000:]}")

    def _read(self, wait: float) -> None:
        ready, _, _ = select.select([self.master], [], [], wait)
        if ready:
            try:
                self.output += os.read(self.master, 65536)
            except OSError:  # EIO once the child has closed the terminal
                pass

    def press(self, key: bytes) -> None:
        os.write(self.master, key)

    def wait(self, timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.05)
        self._read(0.1)
        if self.proc.poll() is None:
            self.proc.kill()
            raise AssertionError(f"the chat did not exit; output:\n{self.text()[-3000:]}")
        return self.proc.returncode

    def text(self) -> str:
        return self.output.decode("utf-8", "replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    return speech_wav(tmp_path / "speech.wav", 1.0, lead_s=0.3)


# --- end to end ------------------------------------------------------------------------------


def test_chat_in_a_terminal_shows_both_sides_and_quits_on_q(wav: Path) -> None:
    term = Terminal(["--input-wav", str(wav), "--no-speaker"])
    try:
        term.read_until(re.compile(rb"No OPENAI_API_KEY: using the embedded local server"))
        term.read_until(re.compile(rb"connected"))
        # The user's side: the local server's transcription of the committed audio.
        term.read_until(re.compile(rb"you:(?:\x1b\[0m)? \[\d+\.\d+ seconds of audio\]"))
        heard = float(term.read_until(FINAL_ECHO)[1])
        assert 1.0 <= heard <= 1.8  # the 1 s burst plus VAD padding, not the whole file
        # Meters (coloured: matched without the colours), latency and cost in the status area.
        term.read_until(re.compile(rb"mic [\xe2\x96\x88\xe2\x96\x91]+ +-?\d+ dB"), plain=True)
        term.read_until(re.compile(rb"last turn \d+ ms \(end of speech"))
        term.read_until(re.compile(rb"tokens \d+ in / \d+ out \xc2\xb7 \$\d+\.\d{4}"), plain=True)
        term.press(b"q")
        assert term.wait() == 0
        tail = term.output[-400:]
        assert b"tokens" in tail and b"$" in tail  # the closing summary: usage and cost
        assert term.output.rstrip().endswith(b"\x1b[?25h")  # the cursor is visible again
        # What the terminal holds at the end: the transcript, each line once (it went into
        # the scrollback), the closing summary, and no trace of the status area (redrawn in
        # place some 15 times a second, then erased).
        rows = [row for row in emulate(term.text(), 100) if row]
        assert sum(row.startswith("you: [") for row in rows) == 1, rows
        assert sum(row.startswith("assistant: Echo of your") for row in rows) == 1, rows
        status = re.compile(r"^● |^mic [█░]| · q quit$")
        assert not any(status.search(row) for row in rows), rows
        assert re.fullmatch(
            r"last turn \d+ ms .* · tokens \d+ in / \d+ out · \$\d+\.\d{4}", rows[-1]
        )
        assert termios.tcgetattr(term.slave) == term.saved  # cbreak mode was undone
        assert b"Traceback" not in term.output
    finally:
        term.close()


@pytest.mark.parametrize("term", ["dumb", "unknown"])
def test_a_terminal_that_cannot_redraw_gets_plain_lines(wav: Path, term: str) -> None:
    session = Terminal(["--input-wav", str(wav), "--no-speaker"], term=term)
    try:
        session.read_until(re.compile(rb"^assistant: Echo of your", re.M))
        session.press(b"q")
        assert session.wait() == 0
        assert b"\x1b[" not in session.output  # no escape sequences at all
        assert re.search(rb"^\[connected \xc2\xb7 listening\]\r?$", session.output, re.M)
        assert termios.tcgetattr(session.slave) == session.saved
    finally:
        session.close()


def test_push_to_talk_sends_only_between_two_spaces(tmp_path: Path) -> None:
    long_speech = speech_wav(tmp_path / "long.wav", 8.0)
    term = Terminal(["--input-wav", str(long_speech), "--no-speaker", "--push-to-talk"])
    try:
        term.read_until(re.compile(rb"connected: press space to talk"))
        time.sleep(1.0)  # speech is flowing, but without VAD and a press nothing is sent
        assert b"Echo of your" not in term.output
        term.press(b" ")
        term.read_until(re.compile(rb"recording \(space sends\)"))
        time.sleep(1.0)
        term.press(b" ")
        heard = float(term.read_until(FINAL_ECHO)[1])
        assert 0.7 <= heard <= 1.6  # what was recorded between the presses, not 8 s
        term.press(b"q")
        assert term.wait() == 0
        assert termios.tcgetattr(term.slave) == term.saved
    finally:
        term.close()


def test_ctrl_c_quits_cleanly(wav: Path) -> None:
    term = Terminal(["--input-wav", str(wav), "--no-speaker"])
    try:
        term.read_until(re.compile(rb"connected: speak any time"))
        term.proc.send_signal(signal.SIGINT)
        assert term.wait() == 0
        assert termios.tcgetattr(term.slave) == term.saved
        assert b"Traceback" not in term.output
    finally:
        term.close()


def test_plain_lines_and_barge_in_when_stdout_is_not_a_terminal(tmp_path: Path) -> None:
    # Speak, then speak again while the echo of the first turn is playing.
    first = speech_wav(tmp_path / "first.wav", 1.0, lead_s=0.3)
    second = speech_wav(tmp_path / "second.wav", 1.0, lead_s=0.7)
    joined = tmp_path / "barge_in.wav"
    write_wav(joined, np.concatenate([read_wav(first)[0], read_wav(second)[0]]), RATE)
    proc = subprocess.Popen(
        [*CHAT, "--input-wav", str(joined), "--no-speaker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    assert proc.stdout is not None and proc.stdin is not None
    lines: list[bytes] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if line.startswith(b"\xc2\xb7 turn 2:") or not line:
            break
    proc.stdin.write(b"q\n")
    proc.stdin.flush()
    out, err = proc.communicate(timeout=15)
    text = b"".join(lines) + out
    assert proc.returncode == 0, err.decode()
    assert b"\x1b[" not in text  # no escape sequences in a log file
    assert re.search(rb"^you: \[\d+\.\d+ seconds of audio\]$", text, re.M)
    assert re.search(rb'^assistant: Echo of your \d+\.\d+ seconds of audio "\[', text, re.M)
    # The second burst interrupted the first reply: playback was cut, the item truncated
    # at what had been heard, and the response cancelled; the second turn completed.
    cut = re.search(rb"^\xc2\xb7 interrupted: reply cut at (\d+) ms$", text, re.M)
    assert cut and 0 < int(cut[1]) < 1300, text.decode()
    assert re.search(rb"^\xc2\xb7 turn 1: cancelled", text, re.M), text.decode()
    assert re.search(rb"^\xc2\xb7 turn 2: completed \xc2\xb7 last turn \d+ ms", text, re.M)
    assert re.search(rb"^\[tokens \d+ in / \d+ out \xc2\xb7 \$\d+\.\d{4}\]$", text, re.M)


# --- failures: one clear line, no traceback, a distinct exit status ------------------------


def run_chat(
    args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        CHAT + args,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env or clean_env(),
        timeout=30,
    )


def assert_clear_failure(
    result: subprocess.CompletedProcess[str], code: int, *needles: str
) -> None:
    assert result.returncode == code, result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("realtime-chat: "), result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_portaudio_missing_is_explained(tmp_path: Path) -> None:
    # A sounddevice that fails to load its library, as it does without libportaudio2.
    fake = tmp_path / "fake_site"
    fake.mkdir()
    (fake / "sounddevice.py").write_text("raise OSError('PortAudio library not found')\n")
    env = clean_env(PYTHONPATH=os.pathsep.join([str(fake), os.getcwd()]))
    result = run_chat(["--no-speaker"], env)
    assert_clear_failure(result, chat.EXIT_AUDIO, "audio is not available", "libportaudio2")
    listing = run_chat(["--list-devices"], env)
    assert_clear_failure(listing, chat.EXIT_AUDIO, "PortAudio library not found")


def test_missing_audio_device_is_explained() -> None:
    from realtime_client.audio import PortAudioMissingError, list_devices

    try:
        list_devices()
    except PortAudioMissingError as exc:
        pytest.skip(f"needs PortAudio for a real device lookup: {exc}")
    result = run_chat(["--input-device", "no-such-microphone-xyz", "--no-speaker"])
    assert_clear_failure(
        result, chat.EXIT_AUDIO, "audio device problem", "no-such-microphone-xyz", "--list-devices"
    )


def test_unreachable_server_is_explained(wav: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    result = run_chat(["--url", url, "--retries", "0", "--input-wav", str(wav), "--no-speaker"])
    assert_clear_failure(result, chat.EXIT_NETWORK, f"cannot reach {url}", "network")


async def test_refused_api_key_is_explained(wav: Path) -> None:
    async with LocalServer(responder="echo", speed=0, api_keys=["sk-right"]) as server:
        proc = await asyncio.create_subprocess_exec(
            *CHAT,
            "--url",
            server.url,
            "--input-wav",
            str(wav),
            "--no-speaker",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_env(OPENAI_API_KEY="sk-wrong"),
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    result = subprocess.CompletedProcess(CHAT, proc.returncode or 0, out.decode(), err.decode())
    assert_clear_failure(result, chat.EXIT_AUTH, "refused the API key", "OPENAI_API_KEY")


def test_bad_tools_module_is_a_usage_error(wav: Path) -> None:
    result = run_chat(["--tools", "no_such_module_xyz", "--input-wav", str(wav), "--no-speaker"])
    assert_clear_failure(result, chat.EXIT_USAGE, "--tools", "no_such_module_xyz")


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP port that accepts connections and never answers: the connect hangs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        sock.close()


@pytest.mark.parametrize("how", ["q", "ctrl-c"])
def test_quit_while_connecting(wav: Path, silent_server: str, how: str) -> None:
    term = Terminal(["--url", silent_server, "--input-wav", str(wav), "--no-speaker"])
    try:
        term.read_until(re.compile(rb"connecting"))
        time.sleep(0.5)  # well inside the connect, which would wait for many seconds
        started = time.monotonic()
        if how == "q":
            term.press(b"q")
        else:
            term.proc.send_signal(signal.SIGINT)
        assert term.wait(timeout=5) == 0
        assert time.monotonic() - started < 4
        assert b"listening" not in term.output  # not connected: no turn state shown
        assert term.output.rstrip().endswith(b"\x1b[?25h")  # the cursor is visible again
        assert termios.tcgetattr(term.slave) == term.saved
        assert b"Traceback" not in term.output
    finally:
        term.close()


def test_bad_log_path_is_a_usage_error_and_leaves_the_terminal_alone(
    wav: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "no-such-dir" / "chat.log"
    term = Terminal(["--log", str(bad), "--input-wav", str(wav), "--no-speaker"])
    try:
        assert term.wait() == chat.EXIT_USAGE
        text = term.text()
        assert "realtime-chat: error: cannot open --log" in text and str(bad) in text
        assert b"\x1b[?25l" not in term.output  # the cursor was never hidden
        assert termios.tcgetattr(term.slave) == term.saved
        assert "Traceback" not in text
    finally:
        term.close()


def test_unsupported_url_scheme_is_a_usage_error(wav: Path) -> None:
    result = run_chat(["--url", "ftp://127.0.0.1:9/v1", "--input-wav", str(wav), "--no-speaker"])
    assert_clear_failure(result, chat.EXIT_USAGE, "unsupported URL scheme")


# --- pieces ------------------------------------------------------------------------------------


def test_load_tools_from_default_module_file_and_none(tmp_path: Path) -> None:
    names = [t.__name__ for t in chat.load_tools(chat.DEFAULT_TOOLS)]
    assert names == ["get_weather", "calculate"]
    assert chat.load_tools("none") == []
    module = tmp_path / "my_tools.py"
    module.write_text(
        "from os.path import join\n"
        "def lookup(key: str) -> str:\n    'Look a key up.'\n    return key\n"
        "def _helper() -> None: ...\n"
        "def main() -> None: ...\n"
    )
    assert [t.__name__ for t in chat.load_tools(str(module))] == ["lookup"]  # not join/_/main
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    with pytest.raises(ValueError, match="no functions"):
        chat.load_tools(str(empty))
    with pytest.raises(ValueError, match="no such tools file"):
        chat.load_tools(str(tmp_path / "missing.py"))


async def test_example_tools() -> None:
    paris = await get_weather("Paris")
    again = await get_weather(" paris ")
    assert (paris["temperature"], paris["conditions"]) == (
        again["temperature"],
        again["conditions"],
    )
    assert -5 <= paris["temperature"] <= 30 and paris["simulated"] is True
    fahrenheit = await get_weather("Paris", "fahrenheit")
    assert fahrenheit["temperature"] == round(paris["temperature"] * 9 / 5 + 32)
    assert calculate("17 * 23") == 391
    assert calculate("2 ** 10 - sqrt(16) / (1 + 1)") == 1022
    assert calculate("-7 // 2") == -4
    for bad in ("__import__('os')", "1 / 0", "9 ** 9 ** 9", "x + 1", "True + 1", "1 +"):
        with pytest.raises(ValueError):
            calculate(bad)


def test_screen_plain_mode_prints_lines_and_no_escapes() -> None:
    out = io.StringIO()
    screen = ChatScreen(out, ansi=False)
    screen.status.connection = "connected"
    screen.refresh()
    screen.refresh()  # unchanged state: not printed twice
    screen.partial("out:1", "assistant", "Hel")  # partials wait for the final line
    screen.line("assistant", "Hello.")
    screen.note("tool ran", "tool")
    screen.status.usage = "tokens 1 in / 2 out · $0.0001"
    screen.close()
    assert out.getvalue() == (
        "[connected]\nassistant: Hello.\n» tool ran\n[tokens 1 in / 2 out · $0.0001]\n"
    )


def test_screen_ansi_redraws_the_status_area_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")  # rich draws nothing live on a "dumb" terminal
    out = io.StringIO()
    everything: list[str] = []

    def written() -> str:
        """What the screen wrote since the last call."""
        text = out.getvalue()
        out.truncate(0)
        out.seek(0)
        everything.append(text)
        return text

    screen = ChatScreen(out, ansi=True, color=False, width=60)
    screen.status.connection = "connected"
    screen.status.target = "a very long target name that cannot possibly fit in sixty columns"
    screen.status.input_dbfs = -20.0
    screen.status.output_dbfs = -100.0
    screen.status.echo = "echo -31 dB (aec3)"
    screen.partial("out:1", "assistant", "word " * 30)
    screen.refresh()
    first = written()
    assert first.startswith("\x1b[?25l")  # cursor hidden while the status area is live
    status = first[len("\x1b[?25l") :].split("\n")
    assert len(status) == 4  # partial, state, meters, keys
    assert all(len(line) <= 59 for line in status)  # never wraps, so the redraw is exact
    assert status[0].startswith("assistant: …")  # the end of a long partial is shown
    # Both meters and the echo figure fit in 60 columns (the bars shrink to make room).
    assert re.fullmatch(r"mic #+-+  -20 dB   out -+  -99 dB   echo -31 dB \(aec3\)", status[2])
    # A redraw moves up over the status area (3 lines up from its last line, each erased)
    # and draws it again: as many lines up as it then goes down, so it stays in place.
    up_and_erase = "\r\x1b[2K" + "\x1b[1A\x1b[2K" * 3
    for _ in range(3):
        screen.refresh()
        redraw = written()
        assert redraw.startswith(up_and_erase) and redraw.count("\n") == 3
        assert redraw[len(up_and_erase) :].split("\n") == status
    # A transcript line goes above the status area, which is drawn again below it.
    screen.line("you", "hi [1.5 seconds of audio]")  # as said: no [markup] parsing
    redraw = written()
    assert redraw.startswith(up_and_erase + "you: hi [1.5 seconds of audio]\n")
    assert redraw.count("\n") == 4
    # On a terminal: each transcript line once, then one status area.
    screen.end_partial("out:1")
    screen.line("assistant", "Hello.")
    screen.status.usage = "tokens 1 in / 2 out · $0.0001"
    screen.refresh()
    written()
    shown = emulate("".join(everything), 60)
    assert shown[:2] == ["you: hi [1.5 seconds of audio]", "assistant: Hello."], shown
    assert len(shown) == 5 and shown[2].startswith("* connected"), shown
    assert shown[4] == "tokens 1 in / 2 out · $0.0001 · q quit"
    # Closing erases the status area and leaves the summary, cursor shown again.
    screen.close()
    assert written().endswith("\x1b[?25h")
    assert emulate("".join(everything), 60) == [
        "you: hi [1.5 seconds of audio]",
        "assistant: Hello.",
        "tokens 1 in / 2 out · $0.0001",
    ]


def test_screen_ansi_partial_with_line_breaks_stays_one_status_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TERM", "xterm")
    out = io.StringIO()
    screen = ChatScreen(out, ansi=True, color=False, width=60)
    screen.partial("out:1", "assistant (preamble)", "First line.\n\nSecond   line.")
    screen.refresh()
    status = out.getvalue()[len("\x1b[?25l") :].split("\n")
    assert status[0] == "assistant (preamble): First line. Second line."
    assert len(status) == 3  # partial, state, keys (no meters before any level)
    screen.close()


def test_level_bar() -> None:
    assert level_bar(0.0, 10, unicode=False) == "#" * 10
    assert level_bar(-60.0, 10, unicode=False) == "-" * 10
    assert level_bar(-30.0, 10, unicode=False) == "#" * 5 + "-" * 5
    assert level_bar(-120.0, 4) == "░░░░" and level_bar(6.0, 4) == "████"


def test_each_failure_gets_its_message_and_exit_status() -> None:
    from realtime_client.audio import AudioError, DeviceError, PortAudioMissingError
    from realtime_client.errors import AuthenticationError, ConnectError, TransportError

    url = "http://127.0.0.1:9/v1"
    cases = [
        (PortAudioMissingError("no lib"), chat.EXIT_AUDIO, "audio is not available: no lib"),
        (DeviceError("no mic"), chat.EXIT_AUDIO, "audio device problem: no mic"),
        # A subclass is told apart from its base: the refused key is not a network problem.
        (AuthenticationError("bad key"), chat.EXIT_AUTH, f"the server at {url} refused"),
        (ConnectError("refused"), chat.EXIT_NETWORK, f"cannot reach {url}: refused"),
        (TransportError("reset"), chat.EXIT_NETWORK, f"the connection to {url} was lost"),
        (FileNotFoundError(2, "missing", "x.wav"), chat.EXIT_USAGE, "[Errno 2] missing"),
        (AudioError("odd {where}"), chat.EXIT_AUDIO, "audio problem: odd {where}"),
        (RuntimeError("odd"), chat.EXIT_SERVER, "RuntimeError: odd"),
    ]
    for exc, code, start in cases:
        failure = chat._explain(exc, url)
        assert failure.code == code, exc
        assert str(failure).startswith(start), str(failure)


async def test_a_2x_preamble_is_labelled_in_the_chat_transcript(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    reply = [{"text": "Let me see.", "phase": "commentary"}, {"text": "All done."}]
    script.write_text(json.dumps({"default": reply}))
    out = io.StringIO()
    screen = ChatScreen(out, ansi=False)
    app = chat._Chat(chat.build_parser().parse_args([]), screen)
    async with LocalServer(responder=f"script:{script}", speed=0) as server:
        async with connect("gpt-realtime-2.1", url=server.url) as session:
            await session.send_text("hello")
            async for event in session:
                app.handle(event)
                if isinstance(event, ev.ResponseDone):
                    break
    screen.close()
    lines = out.getvalue().splitlines()
    assert "assistant (preamble): Let me see." in lines
    assert "assistant: All done." in lines


def test_help_shows_every_option_a_newcomer_needs() -> None:
    text = chat.build_parser().format_help()
    for option in ("--input-wav", "--responder", "--transcription-model", "--no-aec"):
        assert option in text, option
    # The earlier name still parses.
    args = chat.build_parser().parse_args(["--transcribe-model", "none"])
    assert args.transcription_model == "none"


def test_responder_errors_are_usage_errors(tmp_path: Path) -> None:
    wav = speech_wav(tmp_path / "in.wav", 0.5)
    result = run_chat(["--input-wav", str(wav), "--no-speaker", "--responder", "nope"])
    assert_clear_failure(result, 2, "--responder")
    result = run_chat(
        ["--input-wav", str(wav), "--no-speaker", "--responder", "echo", "--url", "http://x/v1"]
    )
    assert_clear_failure(result, 2, "drop --url")

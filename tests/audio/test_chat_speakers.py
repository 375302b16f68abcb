"""``realtime-chat`` through speakers on the PulseAudio loop: no headphones needed.

The chat runs with its default audio (one full-duplex device, echo cancellation on) on the
null sink, whose monitor is its microphone: everything it plays comes straight back, as
from a laptop's speakers. The "user" speaks by playing a file into the same sink. The echo
responder replies with the user's own audio, so an echo that got through would be taken
for a new turn, again and again.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from realtime_client.audio import write_wav

from ..conftest import clean_env
from .conftest import PulseServer
from .test_echo import speechlike

RATE = 24_000
CHAT = [sys.executable, "-m", "realtime_client.apps.chat"]


class _Lines:
    """The chat's stdout, line by line, read in a thread."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.lines: list[str] = []
        self._proc = proc
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 20.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines if re.search(pattern, line)]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} x{count} not seen:\n" + "\n".join(self.lines))

    def count(self, pattern: str) -> int:
        return sum(1 for line in self.lines if re.search(pattern, line))


def _say(server: PulseServer, wav: Path) -> None:
    """The user speaks: the file is played into the sink (the chat's microphone hears it)."""
    subprocess.run(
        ["paplay", f"--device={server.sink}", str(wav)],
        env={**os.environ, "PULSE_SERVER": server.server},
        check=True,
        timeout=20,
    )


def _chat(extra: list[str]) -> tuple[subprocess.Popen[bytes], _Lines]:
    proc = subprocess.Popen(
        [
            *CHAT,
            "--input-device",
            "pulse",
            "--output-device",
            "pulse",
            "--transcription-model",
            "none",
            *extra,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    return proc, _Lines(proc)


def _quit(proc: subprocess.Popen[bytes]) -> str:
    assert proc.stdin is not None
    proc.stdin.write(b"q\n")
    proc.stdin.flush()
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err.decode()
    return err.decode()


@pytest.fixture
def utterance(tmp_path: Path) -> Path:
    path = tmp_path / "user.wav"
    write_wav(path, speechlike(1.2, seed=3, level=0.3), RATE)
    return path


@pytest.fixture
def other_utterance(tmp_path: Path) -> Path:
    path = tmp_path / "other.wav"
    write_wav(path, speechlike(1.2, seed=11, level=0.3), RATE)
    return path


@pytest.mark.device
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_chat_through_speakers_does_not_interrupt_itself_and_hears_a_barge_in(
    pulse_server: PulseServer, utterance: Path, other_utterance: Path
) -> None:
    proc, out = _chat([])
    try:
        out.wait_for(r"connected: speak any time")
        time.sleep(2.0)  # the devices warm up (timestamps settle)
        _say(pulse_server, utterance)
        out.wait_for(r"^· turn 1: completed")
        # The reply (the user's 1.2 s, played through the loop) is over: nothing it
        # said came back as a turn of its own.
        time.sleep(4.0)
        assert out.count(r"^· turn \d+:") == 1, "\n".join(out.lines)
        assert out.count(r"interrupted") == 0, "\n".join(out.lines)
        (line,) = out.wait_for(r"^· turn 1: completed")
        erle = re.search(r"echo -(\d+) dB \(aec3\)", line)
        assert erle and int(erle[1]) >= 10, line
        # Barge-in: the user speaks again, and once more while that reply is playing.
        _say(pulse_server, utterance)
        # 0.2 s into the reply (a fixed wait after speech missed it on a loaded machine),
        # the user says something else: the echo responder's reply *is* the first
        # utterance, and the same words again would be an echo of it, 0.2 s late.
        out.wait_for(r"^\[connected · assistant speaking\]", count=2, timeout=10)
        time.sleep(0.2)
        _say(pulse_server, other_utterance)
        out.wait_for(r"^· interrupted: reply cut at \d+ ms")
        out.wait_for(r"^· turn 2: cancelled")
        out.wait_for(r"^· turn 3: completed")
        time.sleep(3.0)
        assert out.count(r"^· turn \d+:") == 3, "\n".join(out.lines)
    finally:
        if proc.poll() is None:
            _quit(proc)


@pytest.mark.device
@pytest.mark.slow
@pytest.mark.timeout(90)
def test_without_aec_the_chat_interrupts_itself_through_speakers(
    pulse_server: PulseServer, utterance: Path
) -> None:
    proc, out = _chat(["--no-aec"])
    try:
        out.wait_for(r"connected: speak any time")
        time.sleep(2.0)
        _say(pulse_server, utterance)
        # One utterance, but the reply comes back through the loop as a new turn, and so on.
        out.wait_for(r"^· turn \d+:", count=2, timeout=20)
        assert not re.search(r"echo -\d+ dB", "\n".join(out.lines))  # no canceller, no figure
    finally:
        if proc.poll() is None:
            _quit(proc)

"""The local server in a child process pinned to its own core."""

from __future__ import annotations

import math
import os
import select
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from realtime_client.audio import write_wav

from .config import _MODEL, _REPLY_S, _SERVER_START_S, API_RATE, FRAME_MS

__all__: list[str] = []


@dataclass(frozen=True)
class _Urls:
    base: str  # http://127.0.0.1:PORT/v1 (what the server prints)
    ws: str  # ws://127.0.0.1:PORT/v1/realtime?model=...


class _Server:
    """The local server in a child process, pinned to its own core before it starts."""

    def __init__(self, workdir: Path, core: int | None) -> None:
        script = workdir / "reply.json"
        wav = workdir / "reply.wav"
        _write_reply_wav(wav, _REPLY_S)
        script.write_text(
            orjson.dumps({"default": {"audio": wav.name, "text": "benchmark reply"}}).decode()
        )
        args = [
            "--port",
            "0",
            "--speed",
            "1",
            "--audio-delta-ms",
            str(FRAME_MS),
            "--responder",
            f"script:{script}",
        ]
        # The child pins itself before importing anything, so every thread it starts
        # inherits the core (pinning it from here would pin its main thread only).
        pin = f"os.sched_setaffinity(0, {{{core}}}); " if core is not None else ""
        code = (
            f"import os, runpy, sys; {pin}sys.argv = ['realtime-server'] + sys.argv[1:]; "
            "runpy.run_module('realtime_client.server', run_name='__main__')"
        )
        self._stderr = open(workdir / "server.stderr", "w+b")  # closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=str(Path(__file__).resolve().parent.parent),
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], _SERVER_START_S)
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("http"):
            self.close()
            raise RuntimeError(f"the local server did not start: {line!r} {self.stderr_tail()}")
        base = line.rstrip("/")
        self.urls = _Urls(base, "ws" + base[4:] + f"/realtime?model={_MODEL}")
        self._tick = os.sysconf("SC_CLK_TCK")

    def cpu_s(self) -> float:
        """CPU time the server has used so far, in seconds."""
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return math.nan
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._tick

    def stderr_tail(self) -> str:
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()[-2000:].decode(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


def _write_reply_wav(path: Path, seconds: float) -> None:
    """Speech-like test audio: a gliding two-tone signal with a 4 Hz syllable envelope."""
    n = int(seconds * API_RATE)
    t = np.arange(n, dtype=np.float64) / API_RATE
    pitch = 140.0 + 30.0 * np.sin(2 * math.pi * 0.7 * t)
    phase = 2 * math.pi * np.cumsum(pitch) / API_RATE
    envelope = 0.55 + 0.45 * np.sin(2 * math.pi * 4.0 * t)
    x = envelope * (0.25 * np.sin(phase) + 0.08 * np.sin(3 * phase))
    write_wav(path, x.astype(np.float32), API_RATE)

"""A private PulseAudio server with a null sink, on the real device path.

The device tests' fixture (tests/audio/conftest.py) and the benchmarks both run it. The
server runs as the current user with its own runtime dir (no root, no D-Bus, no
system-wide daemon); as root it only warns. PortAudio reaches it through ALSA's pulse
plugin (libasound2-plugins): the process gets ``PULSE_SERVER`` and an ``ALSA_CONFIG_PATH``
that routes ALSA's ``default`` device to pulse. sounddevice initialises PortAudio when
imported, so PortAudio is re-initialised after the environment is set, and again after
the server stops. :func:`null_sink` yields ``None`` (and the reason) when a part is
missing, so benchmarks can say what they skipped.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import glob
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SINK = "bench_sink"
START_TIMEOUT_S = 10.0
SETTLE_S = 2.5


class PulseFailed(RuntimeError):
    """The server, or the recorder that keeps its sink's latency low, did not start."""


@dataclass(frozen=True)
class PulseServer:
    """A running PulseAudio server.

    Attributes:
        server: The ``PULSE_SERVER`` address (a unix socket).
        sink: Name of the null sink (the default sink).
        source: Name of its monitor (the default source).
        log: The server's log file.
    """

    server: str
    sink: str
    source: str
    log: Path

    def pactl(self, *args: str) -> str:
        """Run pactl against this server and return its output."""
        env = {**os.environ, "PULSE_SERVER": self.server}
        done = subprocess.run(
            ["pactl", *args], env=env, capture_output=True, text=True, timeout=10, check=True
        )
        return done.stdout


def missing() -> str | None:
    """Why the server cannot run here, or ``None``."""
    if any(shutil.which(exe) is None for exe in ("pulseaudio", "pactl", "parec")):
        return "PulseAudio is not installed (apt-get install pulseaudio pulseaudio-utils)"
    plugin = "alsa-lib/libasound_module_pcm_pulse.so"
    if not (glob.glob(f"/usr/lib/*/{plugin}") or glob.glob(f"/usr/lib*/{plugin}")):
        return "ALSA's pulse plugin is not installed (apt-get install libasound2-plugins)"
    if ctypes.util.find_library("portaudio") is None:
        return "the PortAudio library is not installed (apt-get install libportaudio2)"
    if importlib.util.find_spec("sounddevice") is None:
        return "sounddevice is not installed (pip install 'realtime-client[audio]')"
    return None


def _reinit_portaudio() -> None:
    import sounddevice as sd

    # PortAudio enumerates devices once, at initialisation: make it see the new setup.
    sd._terminate()
    sd._initialize()


@contextlib.contextmanager
def running(root: Path, sink: str = SINK) -> Iterator[PulseServer]:
    """Run the server, with its files in the empty folder ``root``, for the block.

    Check :func:`missing` first. Raises :class:`PulseFailed` (with the server's log) when
    the server or its keep-alive recorder does not start; the server is stopped then.
    """
    runtime = root / "run"
    runtime.mkdir(mode=0o700)
    socket = runtime / "native"
    script = root / "server.pa"
    script.write_text(
        f"load-module module-native-protocol-unix auth-anonymous=1 socket={socket}\n"
        f"load-module module-null-sink sink_name={sink} rate=48000 channels=2\n"
        f"set-default-sink {sink}\n"
        f"set-default-source {sink}.monitor\n"
    )
    client_conf = root / "client.conf"
    client_conf.write_text("autospawn = no\n")
    asound = root / "asound.conf"
    asound.write_text("pcm.!default { type pulse }\nctl.!default { type pulse }\n")
    log = root / "pulseaudio.log"
    server_env = {
        **os.environ,
        "HOME": str(root),
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_CONFIG_HOME": str(root / "config"),
        "PULSE_RUNTIME_PATH": str(runtime),
        "PULSE_STATE_PATH": str(root / "state"),
    }
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [
                "pulseaudio",
                "-n",  # no default.pa: only what our script loads
                "-F",
                str(script),
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
                "--log-target=stderr",
            ],
            env=server_env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
        )
    server = PulseServer(f"unix:{socket}", sink, f"{sink}.monitor", log)
    client_env = {
        "PULSE_SERVER": server.server,
        "PULSE_CLIENTCONFIG": str(client_conf),
        "ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{asound}",
    }
    saved = {k: os.environ.get(k) for k in client_env}
    keepalive: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise PulseFailed(f"pulseaudio exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if socket.exists() and sink in server.pactl("list", "short", "sinks"):
                    break
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                pass
            if time.monotonic() > deadline:
                raise PulseFailed(
                    f"pulseaudio did not start in {START_TIMEOUT_S} s:\n{log.read_text()}"
                )
            time.sleep(0.05)
        # Without clients the null sink relaxes its latency to 2 s; a capture stream that
        # connects then gets nothing for ~1.6 s and half-rate blocks after (measured here).
        # A low-latency recorder on the monitor for the whole run keeps it at 10 ms.
        keepalive = subprocess.Popen(
            ["parec", f"--device={server.source}", "--latency-msec=10", "--raw"],
            env={**os.environ, "PULSE_SERVER": server.server},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while not server.pactl("list", "short", "source-outputs").strip():
            if keepalive.poll() is not None or time.monotonic() > deadline:
                raise PulseFailed(f"parec could not record from {server.source}")
            time.sleep(0.02)
        # The sink keeps rendering with its idle 2 s latency until that period ends: streams
        # opened before then stall (measured: broken capture at 1.0 s, clean at 2.5 s).
        time.sleep(SETTLE_S)
        os.environ.update(client_env)
        _reinit_portaudio()
        yield server
    finally:
        if keepalive is not None:
            keepalive.terminate()
            keepalive.wait(timeout=5)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if importlib.util.find_spec("sounddevice") is not None:
            _reinit_portaudio()


@contextlib.contextmanager
def null_sink() -> Iterator[str | None]:
    """Run the server on a null sink; yields ``None`` while it runs, else the reason."""
    reason = missing()
    if reason is not None:
        yield reason
        return
    with tempfile.TemporaryDirectory(prefix="bench-pulse-") as tmp, contextlib.ExitStack() as stack:
        try:
            stack.enter_context(running(Path(tmp)))
        except PulseFailed as exc:
            yield str(exc)
            return
        yield None

"""A private PulseAudio server with a null sink, for benchmarks on the real device path.

Like the test suite's fixture (tests/audio/conftest.py): a per-user server with its own
runtime directory, a null sink whose monitor is the default source, a low-latency
recorder that keeps the sink from relaxing its latency, and ALSA's ``default`` routed to
pulse for PortAudio. :func:`null_sink` yields ``None`` (and the reason) when a part is
missing, so benchmarks can say what they skipped.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

SINK = "bench_sink"


def missing() -> str | None:
    """Why the loop cannot run here, or ``None``."""
    if shutil.which("pulseaudio") is None or shutil.which("parec") is None:
        return "PulseAudio is not installed (apt-get install pulseaudio pulseaudio-utils)"
    plugin = "alsa-lib/libasound_module_pcm_pulse.so"
    if not (glob.glob(f"/usr/lib/*/{plugin}") or glob.glob(f"/usr/lib*/{plugin}")):
        return "ALSA's pulse plugin is not installed (apt-get install libasound2-plugins)"
    if ctypes.util.find_library("portaudio") is None:
        return "PortAudio is not installed (apt-get install libportaudio2)"
    return None


@contextlib.contextmanager
def null_sink() -> Iterator[str | None]:
    """Run a null-sink PulseAudio server; yields ``None`` when it runs, else the reason."""
    reason = missing()
    if reason is not None:
        yield reason
        return
    with tempfile.TemporaryDirectory(prefix="bench-pulse-") as tmp:
        root = Path(tmp)
        runtime = root / "run"
        runtime.mkdir(mode=0o700)
        socket = runtime / "native"
        (root / "server.pa").write_text(
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={socket}\n"
            f"load-module module-null-sink sink_name={SINK} rate=48000 channels=2\n"
            f"set-default-sink {SINK}\nset-default-source {SINK}.monitor\n"
        )
        (root / "client.conf").write_text("autospawn = no\n")
        (root / "asound.conf").write_text(
            "pcm.!default { type pulse }\nctl.!default { type pulse }\n"
        )
        env = {
            **os.environ,
            "HOME": tmp,
            "XDG_RUNTIME_DIR": str(runtime),
            "PULSE_RUNTIME_PATH": str(runtime),
            "PULSE_STATE_PATH": str(root / "state"),
        }
        server = subprocess.Popen(
            [
                "pulseaudio",
                "-n",
                "-F",
                str(root / "server.pa"),
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = {
            "PULSE_SERVER": f"unix:{socket}",
            "PULSE_CLIENTCONFIG": str(root / "client.conf"),
            "ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{root / 'asound.conf'}",
        }
        saved = {k: os.environ.get(k) for k in client}
        keepalive = None
        try:
            deadline = time.monotonic() + 10
            while not socket.exists():
                if server.poll() is not None or time.monotonic() > deadline:
                    yield "pulseaudio did not start"
                    return
                time.sleep(0.05)
            keepalive = subprocess.Popen(
                ["parec", f"--device={SINK}.monitor", "--latency-msec=10", "--raw"],
                env={**os.environ, "PULSE_SERVER": client["PULSE_SERVER"]},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(2.5)  # the sink leaves its idle 2 s latency (see the test fixture)
            os.environ.update(client)
            import sounddevice as sd

            sd._terminate()
            sd._initialize()
            yield None
        finally:
            if keepalive is not None:
                keepalive.terminate()
                keepalive.wait(timeout=5)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            server.terminate()
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=5)
            with contextlib.suppress(ImportError, OSError):
                import sounddevice as sd

                sd._terminate()
                sd._initialize()

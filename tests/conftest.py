"""Helpers shared by the test folders: speech-like signals and a clean environment.

Import them relatively (``from ..conftest import voiced``); the simulated audio devices
the tests need are the library's own (:class:`realtime_client.audio.VirtualMicrophone`,
:class:`realtime_client.audio.VirtualSpeaker`).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from realtime_client.audio import write_wav

__all__ = [
    "CHROMIUM",
    "chromium",
    "clean_env",
    "dominant_hz",
    "fake_microphone",
    "speech_wav",
    "until",
    "voiced",
]

#: Headless Chromium for the browser tests (``.ci/run`` installs it), or ``None``.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

#: Variables that point a program at a server or hold a key: a test sets what it needs.
_ENDPOINT_VARS = ("REALTIME_URL", "REALTIME_SERVER_API_KEYS")


def voiced(
    seconds: float, rate: int = 24_000, *, amplitude: float = 0.2, pitch_hz: float = 220.0
) -> npt.NDArray[np.float32]:
    """A vowel-like tone with a 3 Hz syllable swell, loud enough for any energy VAD.

    Args:
        seconds: Length, in s.
        rate: Sample rate, in Hz.
        amplitude: Peak of the carrier (the swell adds up to 30 %).
        pitch_hz: Pitch, in Hz.
    """
    t = np.arange(int(seconds * rate)) / rate
    x = amplitude * np.sin(2 * np.pi * pitch_hz * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
    return x.astype(np.float32)


def speech_wav(
    path: Path,
    speech_s: float,
    rate: int = 24_000,
    *,
    lead_s: float = 0.0,
    tail_s: float = 0.0,
    amplitude: float = 0.2,
) -> Path:
    """Write silence, :func:`voiced` speech, silence to a WAV file; return its path.

    Args:
        path: The file to write.
        speech_s: Speech length, in s.
        rate: Sample rate, in Hz.
        lead_s: Silence before, in s.
        tail_s: Silence after, in s.
        amplitude: See :func:`voiced`.
    """
    samples = np.concatenate(
        [
            np.zeros(int(lead_s * rate), np.float32),
            voiced(speech_s, rate, amplitude=amplitude),
            np.zeros(int(tail_s * rate), np.float32),
        ]
    )
    write_wav(path, samples, rate)
    return path


def weather_script(folder: Path, city: str, answer: str, *, answer_key: str = "default") -> Path:
    """A responder script: "weather" calls ``get_weather(city)``; otherwise ``answer``.

    ``answer_key="turns"`` gives the answer as the script's first scripted turn instead of
    its default reply.
    """
    reply = {"text": answer}
    path = folder / "script.json"
    rule = {
        "match": "weather",
        "reply": {"function_call": {"name": "get_weather", "arguments": {"city": city}}},
    }
    fallback: object = [{"reply": reply}] if answer_key == "turns" else reply
    path.write_text(json.dumps({"rules": [rule], answer_key: fallback}))
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without keys or server URLs (``OPENAI_*``,
    ``REALTIME_URL``, ...), plus ``extra``: a subprocess then takes the offline path unless
    the test says otherwise."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OPENAI_") and k not in _ENDPOINT_VARS
    }
    env.update(extra)
    return env


def fake_microphone(path: Path, silence_s: float) -> Path:
    """A WAV for Chromium's fake microphone: 1.2 s of 440 Hz, then ``silence_s`` of
    silence (Chromium loops it), 48 kHz mono."""
    rate = 48_000
    t = np.arange(int(rate * 1.2)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    write_wav(path, np.concatenate([tone, np.zeros(int(rate * silence_s), np.float32)]), rate)
    return path


@asynccontextmanager
async def chromium(url: str, microphone: Path, profile: Path) -> AsyncIterator[None]:
    """Headless Chromium on ``url`` with ``microphone`` as its fake capture device.

    The flags are shared/webrtc-notes.md's: no sandbox or GPU, fake media UI and device,
    loopback allowed in peer connections, no background networking. Stopped (and killed
    after 5 s) on exit, with its child processes.
    """
    assert CHROMIUM is not None, "Chromium is not installed"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
        "--autoplay-policy=no-user-gesture-required",
        "--allow-loopback-in-peer-connection",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-quic",
        f"--user-data-dir={profile}",
    ]
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM,
        *flags,
        url,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


def dominant_hz(pcm: npt.NDArray[np.generic], rate: int = 24_000) -> float:
    """The strongest frequency in ``pcm`` (Hann window), in Hz."""
    x = np.asarray(pcm, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


async def until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait until ``predicate()`` is true (fails the test after ``timeout`` s)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``live`` tests (the real API) are collected only when asked for: ``pytest -m live``."""
    if "live" in (config.option.markexpr or ""):
        return
    live = [item for item in items if "live" in item.keywords]
    if live:
        config.hook.pytest_deselected(items=live)
        items[:] = [item for item in items if "live" not in item.keywords]

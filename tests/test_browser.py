"""Headless Chromium ↔ the local server over WebRTC, through the browser example.

The page (``examples/browser/index.html``) gets an ephemeral key from the example's token
endpoint, calls the local server's ``/v1/realtime/calls`` with its fake microphone (a WAV:
a 440 Hz tone, then silence, looped by Chromium), and measures what it hears. The echo
responder plays the user's turn back, so the page must hear 440 Hz, and the server must
have heard the page. Chromium runs with plain flags (no CDP); the page posts its results
back. The flags and pitfalls are in shared/webrtc-notes.md.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("aiortc", reason="the webrtc extra is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"
)

from aiohttp import web  # noqa: E402

from realtime_client.audio import write_wav  # noqa: E402
from realtime_client.server import LocalServer  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "browser" / "server.py"


def _example() -> Any:
    spec = importlib.util.spec_from_file_location("browser_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["browser_example"] = module
    spec.loader.exec_module(module)
    return module


def _fake_microphone(path: Path) -> None:
    rate = 48_000
    t = np.arange(int(rate * 1.2)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    write_wav(path, np.concatenate([tone, np.zeros(int(rate * 1.8), np.float32)]), rate)


async def test_the_page_talks_to_the_local_server_over_webrtc(tmp_path: Path) -> None:
    wav = tmp_path / "mic.wav"
    _fake_microphone(wav)
    results: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    example = _example()
    async with LocalServer(responder="echo", speed=1) as server:
        app = example.make_app(server.url, api_key="sk-local", on_results=results.put)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        profile = tmp_path / "profile"
        assert CHROMIUM is not None
        proc = await asyncio.create_subprocess_exec(
            *[
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}",
                "--autoplay-policy=no-user-gesture-required",
                "--allow-loopback-in-peer-connection",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-quic",
                f"--user-data-dir={profile}",
                f"http://127.0.0.1:{port}/?raw=1&auto=1&secs=7",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            got = await asyncio.wait_for(results.get(), 60)
        finally:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
            await runner.cleanup()
    assert got["callId"].startswith("rtc_"), got
    assert "session.created" in got["events"]
    assert "output_audio_buffer.started" in got["events"], got["events"]
    assert "response.output_audio.delta" not in got["events"]  # audio went as media
    # The echo responder played the page's own tone back: the page heard 440 Hz.
    assert got["heardRms"] > 0.02, got
    assert abs(got["heardHz"] - 440) < 15, got

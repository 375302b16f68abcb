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
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import CHROMIUM, chromium, fake_microphone

pytest.importorskip("aiortc", reason="the webrtc extra is not installed")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"
)

from aiohttp import web  # noqa: E402

from realtime_client.server import LocalServer  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "browser" / "server.py"


def _example() -> Any:
    spec = importlib.util.spec_from_file_location("browser_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["browser_example"] = module
    spec.loader.exec_module(module)
    return module


async def test_the_page_talks_to_the_local_server_over_webrtc(tmp_path: Path) -> None:
    wav = tmp_path / "mic.wav"
    fake_microphone(wav, silence_s=1.8)
    results: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    example = _example()
    async with LocalServer(responder="echo", speed=1) as server:
        app = example.make_app(server.url, api_key="sk-local", on_results=results.put)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        page = f"http://127.0.0.1:{port}/?raw=1&auto=1&secs=7"
        try:
            async with chromium(page, wav, tmp_path / "profile"):
                got = await asyncio.wait_for(results.get(), 60)
        finally:
            await runner.cleanup()
    assert got["callId"].startswith("rtc_"), got
    assert "session.created" in got["events"]
    assert "output_audio_buffer.started" in got["events"], got["events"]
    assert "response.output_audio.delta" not in got["events"]  # audio went as media
    # The echo responder played the page's own tone back: the page heard 440 Hz.
    assert got["heardRms"] > 0.02, got
    assert abs(got["heardHz"] - 440) < 15, got

"""OpenAI's own JS Agents SDK calls the local server over WebRTC, from headless Chromium.

The page (``tests/agents_sdk.html``) loads the browser bundle of ``@openai/agents-realtime``
(fetched with ``npm pack`` into pytest's cache at a pinned version and checked against its
integrity hash), gets an ephemeral key from its app's token endpoint
(``mint_ephemeral_key`` against the local server), and connects a ``RealtimeSession`` over
``OpenAIRealtimeWebRTC`` with ``baseUrl`` pointed at the local server's
``/v1/realtime/calls``. The page and the server are on different origins, so the SDK's
POST goes through a CORS preflight. Chromium's fake microphone plays a WAV (a 440 Hz tone,
then silence, looped); the echo responder says the turn back, so the SDK's audio element
must play 440 Hz. Chromium runs with plain flags (no CDP); the page posts its results
back. The flags and pitfalls are in shared/webrtc-notes.md.

What the SDK (0.20.0) does, from its source (``dist/openaiRealtimeWebRtc.mjs``): it POSTs
the offer to ``baseUrl`` as given (the whole calls URL; the default is
``https://api.openai.com/v1/realtime/calls``) with ``Content-Type: application/sdp``,
``Authorization: Bearer ek_…`` (in a browser it refuses any key but an ephemeral one) and
``X-OpenAI-Agents-SDK: openai-agents-sdk.0.20.0``; it takes the call id from
``Location``. When ``oai-events`` opens it sends a ``session.update`` (the agent's
instructions and tools, the model, its audio defaults: PCM 24 kHz, ``semantic_vad``,
``gpt-4o-mini-transcribe``) and ``connect()`` resolves on the first ``session.updated``
(after 5 s without one it resolves anyway, with a console warning). On
``session.created`` it sends ``session.update`` with ``tracing: "auto"``. It plays the
first stream of the remote track on an audio element, and ``close()`` closes the data
channel and the peer connection (no hang-up request).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import CHROMIUM, chromium, dominant_hz, fake_microphone, until

pytest.importorskip("aiortc", reason="the webrtc extra is not installed")
NPM = shutil.which("npm")
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.skipif(NPM is None, reason="npm is not installed (it fetches the Agents SDK)"),
]

from aiohttp import web  # noqa: E402

from realtime_client.client_secrets import mint_ephemeral_key  # noqa: E402
from realtime_client.server import LocalServer  # noqa: E402
from realtime_client.server.calls import Call  # noqa: E402

SDK = "@openai/agents-realtime"
#: The version whose source the docstring describes, and its tarball's npm integrity.
SDK_VERSION = "0.20.0"
SDK_INTEGRITY = (
    "sha512-KK3w9k9rkqv5mC25vykWTe/1IIcOMsqwJs9mB0aX9Z2Us487xGduZgqr+ENEzthjZbQvTi/+qUv/tfoZeN/p/w"
    "=="
)
#: The self-contained browser bundle in the package (UMD, global ``OpenAIAgentsRealtime``).
BUNDLE = "package/dist/bundle/openai-realtime-agents.umd.js"
PAGE = Path(__file__).with_name("agents_sdk.html")
INSTRUCTIONS = "Say back what you hear."  # the page's agent


@pytest.fixture(scope="module")
def sdk_bundle(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SDK's browser bundle, fetched once into pytest's cache (``npm pack``, pinned)."""
    cache = getattr(request.config, "cache", None)
    root = cache.mkdir("agents-sdk") if cache is not None else tmp_path_factory.mktemp("sdk")
    bundle = Path(root) / f"agents-realtime-{SDK_VERSION}.umd.js"
    if bundle.is_file():
        return bundle
    assert NPM is not None
    with tempfile.TemporaryDirectory(dir=root) as staging:
        try:
            done = subprocess.run(
                [NPM, "pack", f"{SDK}@{SDK_VERSION}", "--pack-destination", staging]
                + ["--loglevel=error", "--json"],
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"npm pack {SDK}@{SDK_VERSION} took more than 180 s")
        assert done.returncode == 0, f"npm pack {SDK}@{SDK_VERSION} failed:\n{done.stderr}"
        [packed] = json.loads(done.stdout)
        tarball = (Path(staging) / packed["filename"]).read_bytes()
        digest = base64.b64encode(hashlib.sha512(tarball).digest()).decode()
        assert f"sha512-{digest}" == SDK_INTEGRITY, f"{SDK}@{SDK_VERSION}: unexpected tarball"
        with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
            member = tar.extractfile(BUNDLE)
            assert member is not None, f"{SDK}@{SDK_VERSION} has no {BUNDLE}"
            part = Path(staging) / bundle.name
            part.write_bytes(member.read())
        part.replace(bundle)  # atomic: a half-written bundle is never used
    return bundle


def _app(
    server: LocalServer, bundle: Path, results: asyncio.Queue[dict[str, Any]]
) -> web.Application:
    """The page's app: the page, the SDK, a token endpoint (ephemeral keys), ``/results``."""

    async def page(_: web.Request) -> web.FileResponse:
        return web.FileResponse(PAGE)

    async def sdk(_: web.Request) -> web.FileResponse:
        return web.FileResponse(bundle, headers={"Content-Type": "text/javascript"})

    async def token(_: web.Request) -> web.Response:
        secret = await mint_ephemeral_key({"model": "gpt-realtime"}, url=server.url)
        return web.json_response({"value": secret.value, "base_url": server.url})

    async def posted(request: web.Request) -> web.Response:
        await results.put(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/sdk.js", sdk)
    app.router.add_post("/token", token)
    app.router.add_post("/results", posted)
    return app


@pytest.mark.timeout(300)  # the first run fetches the SDK (a few seconds, 180 s at most)
async def test_the_agents_sdk_calls_the_local_server_over_webrtc(
    sdk_bundle: Path, tmp_path: Path
) -> None:
    wav = tmp_path / "mic.wav"
    fake_microphone(wav, silence_s=3.8)  # one turn per 5 s
    results: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    calls: dict[str, Call] = {}
    async with LocalServer(responder="echo", speed=1) as server:
        runner = web.AppRunner(_app(server, sdk_bundle, results))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        waiting = asyncio.ensure_future(results.get())
        try:
            async with chromium(f"http://127.0.0.1:{port}/", wav, tmp_path / "profile"):
                # Keep each call the server answers: the SDK's close() ends it.
                deadline = time.monotonic() + 45
                while not waiting.done():
                    assert time.monotonic() < deadline, "the page posted no results"
                    calls.update(server.calls)
                    await asyncio.wait({waiting}, timeout=0.05)
                got = waiting.result()
                # The SDK closed the session: the server saw the channel close and hung up.
                await until(lambda: not server.calls)
        finally:
            waiting.cancel()
            await runner.cleanup()

    # The page: connect() resolved, on the server's answer to the SDK's session.update.
    assert got["error"] is None, got["error"]
    assert got["connected"], got
    assert got["console"] == [], got["console"]  # no SDK warning (no 5 s fallback) or error
    assert got["errors"] == [], got["errors"]
    raw = got["rawEvents"]
    assert raw[:3] == ["session.created", "session.updated", "session.updated"], raw
    assert abs(got["connectMs"] - got["firstUpdatedMs"]) < 200, got
    # The SDK saw the server's events, and its own schemas accepted every one of them.
    assert set(raw) == set(got["typedEvents"]), set(raw) ^ set(got["typedEvents"])
    order = [t for t in raw if t.startswith(("response.", "output_audio_buffer."))]
    for expected in (
        "response.created",
        "output_audio_buffer.started",
        "response.done",
        "output_audio_buffer.stopped",
    ):
        assert expected in order, order
    assert order.index("response.created") < order.index("output_audio_buffer.started")
    assert order.index("response.done") < order.index("output_audio_buffer.stopped")
    assert "response.output_audio.delta" not in raw  # audio went as media
    assert got["sessionEvents"][:3] == ["agent_start", "audio_stopped", "agent_end"], got
    # The session's history: the user's spoken turn and the echo, both completed.
    user, assistant = got["history"][:2]
    assert (user["role"], user["status"]) == ("user", "completed"), got["history"]
    assert (assistant["role"], assistant["status"]) == ("assistant", "completed")
    assert assistant["text"].startswith("Echo of your"), assistant
    # What the SDK's audio element played: the page's own tone, echoed.
    assert got["remoteStream"], got
    assert got["heardRms"] > 0.02, got
    assert abs(got["heardHz"] - 440) < 15, got

    # The server: one call (the id the SDK read from Location), configured by the SDK's
    # session.update, that heard the tone and said it back.
    [call] = calls.values()
    assert got["callId"] == call.id
    assert call.setup_s is not None and call.ended
    session = call.session
    assert session.state["instructions"] == INSTRUCTIONS
    assert session.state["audio"]["input"]["turn_detection"]["type"] == "semantic_vad"
    user_id, assistant_id = session.order[:2]
    heard = session.item_audio[user_id]
    assert heard.size > 24_000 * 0.5
    assert abs(dominant_hz(heard) - 440) < 5
    assert session.items[assistant_id]["content"][0]["type"] == "output_audio"

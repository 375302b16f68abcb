"""The WebRTC client transport against a real aiortc peer answering on loopback.

The peer here is the smallest Realtime-like answerer: it takes the SDP offer the way the
real service does (``POST /v1/realtime/calls``, multipart with an API key or plain SDP with
an ephemeral key), answers 201 with ``Location``, opens ``oai-events`` with
``session.created``, answers ``session.update``, records the audio it hears and plays a
tone on its own track when told to.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Any

import numpy as np
import pytest

pytest.importorskip("aiortc", reason="the webrtc extra is not installed")
aiohttp = pytest.importorskip("aiohttp", reason="aiohttp is not installed")

from aiohttp import web  # noqa: E402
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402

from realtime_client import connect  # noqa: E402
from realtime_client._rtc import PcmTrack, frame_to_mono  # noqa: E402
from realtime_client.audio import PlaybackBuffer  # noqa: E402
from realtime_client.errors import AuthenticationError, ConnectError, InvalidModelError  # noqa: E402
from realtime_client.transports.webrtc import calls_url  # noqa: E402

from ..conftest import dominant_hz  # noqa: E402
from .conftest import until  # noqa: E402


def tone(rate: int, ms: int, hz: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(rate * ms // 1000) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


class Answerer:
    """A minimal WebRTC call server on 127.0.0.1 (aiohttp + aiortc)."""

    def __init__(self, *, refuse: int | None = None) -> None:
        self.refuse = refuse
        self.requests: list[dict[str, Any]] = []
        self.heard: list[np.ndarray] = []
        self.events: list[dict[str, Any]] = []
        self.hangups: list[str] = []
        self.track = PcmTrack()
        self.channel: Any = None
        self.pcs: list[RTCPeerConnection] = []
        self.url = ""

    async def calls(self, request: web.Request) -> web.Response:
        kind = request.content_type
        auth = request.headers.get("Authorization", "")
        if kind.startswith("multipart/"):
            parts: dict[str, str] = {}
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                parts[part.name or ""] = (await part.read()).decode()  # type: ignore[union-attr]
            offer = parts["sdp"]
            session = json.loads(parts["session"])
        else:
            offer = await request.text()
            session = None
        self.requests.append({"type": kind, "auth": auth, "session": session})
        if self.refuse is not None:
            body = {"error": {"message": f"refused with {self.refuse}"}}
            return web.json_response(body, status=self.refuse)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)
        pc.addTrack(self.track)

        @pc.on("datachannel")
        def on_channel(channel: Any) -> None:
            self.channel = channel

            def created() -> None:
                channel.send(
                    json.dumps(
                        {
                            "type": "session.created",
                            "event_id": "e0",
                            "session": {"type": "realtime", "id": "sess_rtc"},
                        }
                    )
                )

            if channel.readyState == "open":
                created()
            else:
                channel.on("open", created)

            @channel.on("message")
            def on_message(message: str) -> None:
                event = json.loads(message)
                self.events.append(event)
                if event["type"] == "session.update":
                    channel.send(
                        json.dumps(
                            {
                                "type": "session.updated",
                                "event_id": "e1",
                                "session": {"type": "realtime", "id": "sess_rtc"},
                            }
                        )
                    )

        @pc.on("track")
        def on_track(track: Any) -> None:
            async def pull() -> None:
                try:
                    while True:
                        self.heard.append(frame_to_mono(await track.recv()))
                except Exception:
                    return

            asyncio.ensure_future(pull())

        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return web.Response(
            status=201,
            text=pc.localDescription.sdp,
            headers={"Location": "/v1/realtime/calls/rtc_test123"},
        )

    async def hangup(self, request: web.Request) -> web.Response:
        self.hangups.append(request.match_info["call_id"])
        return web.Response(status=200)

    def send(self, event: dict[str, Any]) -> None:
        self.channel.send(json.dumps(event))

    async def __aenter__(self) -> Answerer:
        app = web.Application()
        app.router.add_post("/v1/realtime/calls", self.calls)
        app.router.add_post("/v1/realtime/calls/{call_id}/hangup", self.hangup)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for pc in self.pcs:
            await pc.close()
        await self.runner.cleanup()


def test_calls_url_for_base_urls() -> None:
    assert calls_url("https://api.openai.com/v1") == "https://api.openai.com/v1/realtime/calls"
    assert calls_url("wss://h/v1/realtime") == "https://h/v1/realtime/calls"
    assert (
        calls_url("http://127.0.0.1:8/v1/realtime/calls") == "http://127.0.0.1:8/v1/realtime/calls"
    )
    with pytest.raises(ConnectError, match="scheme"):
        calls_url("ftp://x/v1")


async def test_a_call_carries_events_and_audio_both_ways_then_hangs_up() -> None:
    async with Answerer() as server:
        async with connect(
            "gpt-realtime",
            url=server.url,
            api_key="sk-test",
            transport="webrtc",
            instructions="Be brief.",
        ) as session:
            assert session.audio_path.kind == "media"
            # The multipart form with the model and the config, the key as a bearer.
            [request] = server.requests
            assert request["type"] == "multipart/form-data"
            assert request["auth"] == "Bearer sk-test"
            assert request["session"]["model"] == "gpt-realtime"
            assert request["session"]["instructions"] == "Be brief."
            assert [e["type"] for e in server.events] == ["session.update"]
            # Uplink: a 440 Hz tone, 20 ms blocks at 24 kHz, real time.
            block = tone(24_000, 1200, 440.0)
            for start in range(0, len(block), 480):
                await session.send_audio(block[start : start + 480], 24_000)
            await until(lambda: sum(map(len, server.heard)) > 48_000)
            heard = np.concatenate(server.heard)
            loud = heard[np.abs(heard) > 1000]
            assert len(loud) > 24_000
            assert abs(dominant_hz(heard[-24_000:], 48_000) - 440) < 5
            assert session.stats.audio_sent_ms == pytest.approx(1200, abs=1)
            # Downlink: a response whose audio plays as media, tagged with its item.
            sink = PlaybackBuffer(24_000, prebuffer_ms=0)
            session.attach(sink=sink)
            for event in (
                {
                    "type": "response.created",
                    "event_id": "r1",
                    "response": {
                        "id": "resp_1",
                        "status": "in_progress",
                        "conversation_id": "conv_1",
                    },
                },
                {
                    "type": "response.output_item.added",
                    "event_id": "r2",
                    "response_id": "resp_1",
                    "output_index": 0,
                    "item": {"id": "item_a", "type": "message", "role": "assistant", "content": []},
                },
                {
                    "type": "response.content_part.added",
                    "event_id": "r3",
                    "response_id": "resp_1",
                    "item_id": "item_a",
                    "output_index": 0,
                    "content_index": 0,
                    "part": {"type": "audio", "transcript": ""},
                },
                {"type": "output_audio_buffer.started", "event_id": "r4", "response_id": "resp_1"},
            ):
                server.send(event)
            await until(lambda: session.protocol.audio_item_of("resp_1") is not None)
            await asyncio.sleep(0.1)
            server.track.push((tone(48_000, 800, 660.0) * 32767).astype(np.int16))
            await until(lambda: sink.received_ms("item_a") > 500)
            played = sink.read(int(sink.buffered_ms * 24))
            assert abs(dominant_hz(played[-6000:], 24_000) - 660) < 8
            assert session.protocol.audio_received_ms("item_a") > 500
            # On loopback the receiver holds 20 ms (1 frame), not aiortc's 80 ms.
            [receiver] = session._transport._pc.getReceivers()
            assert receiver._RTCRtpReceiver__jitter_buffer._prefetch == 1
    assert server.hangups == ["rtc_test123"]


async def test_an_ephemeral_key_sends_the_sdp_alone() -> None:
    async with Answerer() as server:
        async with connect(
            "gpt-realtime", url=server.url, api_key="ek_abc", transport="webrtc"
        ) as session:
            assert not session.closed
        assert server.requests[0]["type"] == "application/sdp"
        assert server.requests[0]["session"] is None


@pytest.mark.parametrize(
    ("status", "error"), [(401, AuthenticationError), (400, InvalidModelError)]
)
async def test_http_refusals_are_typed(status: int, error: type[Exception]) -> None:
    async with Answerer(refuse=status) as server:
        with pytest.raises(error, match=f"refused with {status}") as info:
            await connect("gpt-realtime", url=server.url, api_key="sk-secret", transport="webrtc")
        assert "sk-secret" not in str(info.value)


async def test_an_unreachable_server_is_a_retryable_connect_error() -> None:
    with pytest.raises(ConnectError) as info:
        await connect(
            "gpt-realtime",
            url="http://127.0.0.1:9/v1",
            api_key="k",
            transport="webrtc",
            reconnect=False,
        )
    assert info.value.retryable


def test_the_key_never_goes_unencrypted_off_loopback() -> None:
    from realtime_client.transports.webrtc import WebRTCTransport

    with pytest.raises(ConnectError, match="unencrypted"):
        WebRTCTransport("http://example.com/v1", api_key="sk-x")
    WebRTCTransport("http://example.com/v1", api_key="sk-x", allow_insecure=True)


async def test_mint_an_ephemeral_key_from_the_local_server() -> None:
    from realtime_client.client_secrets import mint_ephemeral_key
    from realtime_client.server import LocalServer

    async with LocalServer(speed=0, api_keys=["sk-real"]) as server:
        secret = await mint_ephemeral_key(
            {"instructions": "Be brief."}, api_key="sk-real", url=server.url, expires_after_s=60
        )
        assert secret.value.startswith("ek_") and secret.value not in repr(secret)
        assert secret.session["instructions"] == "Be brief."
        # The key opens a session that carries the config.
        async with connect("gpt-realtime", url=server.url, api_key=secret.value) as session:
            assert session.server_session is not None
            assert session.server_session.instructions == "Be brief."
        with pytest.raises(AuthenticationError):
            await mint_ephemeral_key(api_key="sk-wrong", url=server.url)


_FROZEN_SERVER = """
import asyncio
from realtime_client.server import LocalServer

async def main() -> None:
    async with LocalServer(responder="echo", speed=0) as server:
        print(server.url, flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP (POSIX)")
async def test_send_waits_while_the_peer_does_not_acknowledge() -> None:
    """Events wait in the data channel up to a mark, then ``send`` waits, as on a socket.

    The peer is the local server in another process, frozen with SIGSTOP: nothing it is
    sent is acknowledged. Without the wait, every event would pile up in memory.
    """
    from realtime_client.errors import ConnectionClosedError
    from realtime_client.transports.webrtc import SEND_HIGH_WATER, WebRTCTransport

    peer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _FROZEN_SERVER,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert peer.stdout is not None
        url = (await asyncio.wait_for(peer.stdout.readline(), 60)).decode().strip()
        transport = WebRTCTransport(url, api_key="sk-frozen", model="gpt-realtime")
        await transport.connect()
        channel = transport._channel
        text = {"type": "input_text", "text": "x" * 50_000}
        event = {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [text]},
        }
        payload = json.dumps(event)
        sent = 0

        async def flood() -> None:
            nonlocal sent
            while True:
                await transport.send(payload)
                sent += 1

        os.kill(peer.pid, signal.SIGSTOP)
        sender = asyncio.ensure_future(flood())
        await until(lambda: sent * len(payload) > SEND_HIGH_WATER - len(payload))
        waiting_at = sent
        await asyncio.sleep(0.5)
        assert sent == waiting_at and not sender.done()  # waiting, not buffering on
        assert channel.bufferedAmount <= SEND_HIGH_WATER + len(payload)
        assert waiting_at * len(payload) <= SEND_HIGH_WATER + 2 * len(payload)
        # The peer acknowledges again: sending goes on (after SCTP's retransmission timer).
        os.kill(peer.pid, signal.SIGCONT)
        await until(lambda: sent > waiting_at + 20, timeout=30)
        # A close wakes a waiting sender with the typed error.
        os.kill(peer.pid, signal.SIGSTOP)
        resumed_to = sent
        await asyncio.sleep(0.5)
        stalled = sent
        assert stalled - resumed_to <= SEND_HIGH_WATER // len(payload) + 2
        await asyncio.sleep(0.2)
        assert sent == stalled and not sender.done()
        await transport.close()
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(sender, 5)
    finally:
        peer.kill()
        await asyncio.wait_for(peer.wait(), 10)

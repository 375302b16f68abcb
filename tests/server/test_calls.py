"""WebRTC calls on the local server: real aiortc peers on loopback.

The caller is our own client (``connect(..., transport="webrtc")``) or, where the HTTP
exchange itself is under test, a bare aiortc peer and aiohttp. Audio really flows: the
client's tone is decoded, resampled and heard by the server's VAD, and the response plays
on the server's outgoing track in real time, back to the client's sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("aiortc", reason="the webrtc extra is not installed")
aiohttp = pytest.importorskip("aiohttp", reason="aiohttp is not installed")

import websockets  # noqa: E402
from aiortc import (  # noqa: E402
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)

from realtime_client import ReconnectPolicy, connect  # noqa: E402
from realtime_client._rtc import PcmTrack  # noqa: E402
from realtime_client.errors import AuthenticationError, ConnectionClosedError  # noqa: E402
from realtime_client.server import LocalServer  # noqa: E402
from realtime_client.server._playout import Cut  # noqa: E402
from realtime_client.server.calls import Call  # noqa: E402
from realtime_client.session import Session  # noqa: E402
from realtime_client.transports.webrtc import WebRTCTransport  # noqa: E402

from ..conftest import dominant_hz, until  # noqa: E402
from .conftest import sideband  # noqa: E402

KEY = "sk-test-calls-0123456789"
BLOCK = 480  # 20 ms at 24 kHz


def tone(ms: int, hz: float = 440.0, amplitude: float = 0.3, rate: int = 24_000) -> np.ndarray:
    t = np.arange(rate * ms // 1000) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


async def speak(session: Session, ms: int, hz: float = 440.0) -> None:
    """Send a tone then 400 ms of silence, 20 ms at a time (the track paces it)."""
    pcm = np.concatenate([tone(ms, hz), np.zeros(24 * 400, np.float32)])
    for start in range(0, len(pcm), BLOCK):
        await session.send_audio(pcm[start : start + BLOCK], 24_000)


class Sink:
    """An audio sink that keeps what each item played."""

    def __init__(self) -> None:
        self.audio: dict[str, list[np.ndarray]] = defaultdict(list)

    def write(self, pcm: Any, item_id: str, content_index: int = 0) -> None:
        self.audio[item_id].append(np.asarray(pcm))

    def clear(self) -> None:
        return None

    def pcm(self, item_id: str) -> np.ndarray:
        return np.concatenate(self.audio[item_id])


class Events:
    """Every event a client session sees, with its arrival time."""

    def __init__(self, session: Session) -> None:
        self.seen: list[tuple[float, Any]] = []
        session.on("*", lambda event: self.seen.append((time.monotonic(), event)))

    def of(self, type_: str) -> list[Any]:
        return [e for _, e in self.seen if e.type == type_]

    def at(self, type_: str) -> float:
        return next(t for t, e in self.seen if e.type == type_)

    def types(self) -> list[str]:
        return [e.type for _, e in self.seen]


@pytest.fixture
def script(tmp_path: Path) -> str:
    """A long tone (to talk over) for "play", a short text answer otherwise."""
    path = tmp_path / "script.json"
    path.write_text(
        json.dumps(
            {
                "rules": [
                    {
                        "match": "play",
                        "reply": {
                            "tone": {"frequency_hz": 660, "duration_ms": 3000},
                            "text": "one two three four five six seven eight nine ten",
                        },
                    }
                ],
                "default": {"text": "Fine."},
            }
        )
    )
    return f"script:{path}"


@pytest.fixture
async def echo_server() -> AsyncIterator[LocalServer]:
    async with LocalServer(responder="echo", speed=1) as server:
        yield server


async def raw_offer(*, candidates: bool = True) -> tuple[RTCPeerConnection, Any, str]:
    """A bare caller: the ``oai-events`` channel and a microphone track, offered."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel = pc.createDataChannel("oai-events")
    pc.addTrack(PcmTrack())
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    if not candidates:  # what a browser posts when it does not wait for gathering
        lines = sdp.splitlines(keepends=True)
        sdp = "".join(ln for ln in lines if not ln.startswith(("a=candidate", "a=end-of-cand")))
    return pc, channel, sdp


def multipart(sdp: str, session: dict[str, Any] | None) -> Any:
    form = aiohttp.FormData()
    form.add_field("sdp", sdp, content_type="application/sdp")
    if session is not None:
        form.add_field("session", json.dumps(session), content_type="application/json")
    return form


async def post(url: str, key: str | None, body: Any, **headers: str) -> tuple[int, Any, str]:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        return r.status, r.headers, await r.text()


# --- the call: audio both ways, playout events, barge-in, interrupt, hang-up -------------


async def test_a_tone_is_heard_and_the_echo_plays_back_as_media(echo_server: LocalServer) -> None:
    async with connect(
        "gpt-realtime", url=echo_server.url, api_key=KEY, transport="webrtc"
    ) as session:
        events = Events(session)
        sink = Sink()
        session.attach(sink=sink)
        [call] = echo_server.calls.values()
        assert call.setup_s is not None and call.setup_s < 2.0
        await speak(session, 500)
        await until(lambda: events.of("output_audio_buffer.stopped"))
        # The server heard the tone: a user item of 440 Hz audio (48 → 24 kHz).
        server = call.session
        user_id, assistant_id = server.order
        heard = server.item_audio[user_id]
        assert abs(dominant_hz(heard) - 440) < 5
        assert server.items[assistant_id]["content"][0]["type"] == "output_audio"
        # The echo came back as media, tagged with the assistant item.
        [done] = events.of("response.done")
        [started] = events.of("output_audio_buffer.started")
        [stopped] = events.of("output_audio_buffer.stopped")
        assert started.response_id == stopped.response_id == done.response.id
        assert [item.id for item in done.response.output] == [assistant_id]
        played = sink.pcm(assistant_id)
        echo_ms = server.item_audio[assistant_id].size / 24
        assert len(played) / 24 == pytest.approx(echo_ms, abs=100)
        assert abs(dominant_hz(played) - 440) < 5
        # No audio events on this transport; the playout events bracket the response.
        types = events.types()
        assert "response.output_audio.delta" not in types
        assert types.index("output_audio_buffer.started") < types.index("response.done")
        assert types.index("rate_limits.updated") < types.index("output_audio_buffer.stopped")
        # It plays in real time: stopped comes one item length after started (a loaded
        # machine can only make it later).
        span = events.at("output_audio_buffer.stopped") - events.at("output_audio_buffer.started")
        assert echo_ms - 60 <= span * 1000 <= echo_ms + 250


async def test_barge_in_truncates_at_the_audio_handed_to_the_track(script: str) -> None:
    cuts: list[Cut] = []
    # The VAD commits the user's turn but asks for no new response (one at a time here).
    vad = {"type": "server_vad", "create_response": False}
    async with (
        LocalServer(responder=script, speed=1) as server,
        connect(
            "gpt-realtime",
            url=server.url,
            api_key=KEY,
            transport="webrtc",
            session={"type": "realtime", "audio": {"input": {"turn_detection": vad}}},
        ) as session,
    ):
        events = Events(session)
        [call] = server.calls.values()
        clear = call.buffer.clear

        def clear_and_keep() -> list[Cut]:
            got = clear()
            cuts.extend(got)
            return got

        call.buffer.clear = clear_and_keep  # type: ignore[method-assign]
        await session.send_text("play")
        await until(lambda: events.of("output_audio_buffer.started"))
        await asyncio.sleep(0.5)
        await speak(session, 300)
        await until(lambda: events.of("conversation.item.truncated"))
        await until(lambda: events.of("response.done"))
        [truncated] = events.of("conversation.item.truncated")
        [done] = events.of("response.done")
        [item] = done.response.output
        # The server cut the item at what it had handed out when the user spoke.
        [cut] = cuts
        assert truncated.item_id == item.id
        assert truncated.audio_end_ms == cut.handed_ms[item.id]
        played_s = events.at("input_audio_buffer.speech_started") - events.at(
            "output_audio_buffer.started"
        )
        assert truncated.audio_end_ms == pytest.approx(played_s * 1000, abs=100)
        assert call.session.item_audio[item.id].size == truncated.audio_end_ms * 24
        assert done.response.status == "cancelled"
        # The order the service sends: speech start, cleared, truncated, then the cancel.
        order = [
            t
            for t in events.types()
            if t
            in (
                "input_audio_buffer.speech_started",
                "output_audio_buffer.cleared",
                "conversation.item.truncated",
                "response.done",
            )
        ]
        assert order == [
            "input_audio_buffer.speech_started",
            "output_audio_buffer.cleared",
            "conversation.item.truncated",
            "response.done",
        ]
        assert not events.of("output_audio_buffer.stopped")
        assert call.track.backlog_ms == 0
        # The heard words are kept: fewer than the ten the tone was to carry.
        transcript = call.session.items[item.id]["content"][0]["transcript"]
        assert 0 < len(transcript.split()) < 10


async def test_interrupt_clears_the_output_buffer(script: str) -> None:
    async with (
        LocalServer(responder=script, speed=1) as server,
        connect("gpt-realtime", url=server.url, api_key=KEY, transport="webrtc") as session,
    ):
        events = Events(session)
        [call] = server.calls.values()
        await session.send_text("play")
        await until(lambda: events.of("output_audio_buffer.started"))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await session.interrupt()
        [cleared] = events.of("output_audio_buffer.cleared")
        [done] = events.of("response.done")
        assert cleared.response_id == done.response.id
        assert done.response.status == "cancelled"
        [truncated] = events.of("conversation.item.truncated")
        played_ms = (started - events.at("output_audio_buffer.started")) * 1000
        assert truncated.audio_end_ms == pytest.approx(played_ms, abs=100)
        assert call.track.backlog_ms == 0
        await asyncio.sleep(0.1)
        assert not events.of("output_audio_buffer.stopped")
        # Nothing plays any more: the client knows it and a second interrupt sends nothing.
        await session.interrupt()
        await asyncio.sleep(0.1)
        assert [e.response_id for e in events.of("output_audio_buffer.cleared")] == [
            done.response.id
        ]


async def test_hang_up_ends_the_call(echo_server: LocalServer) -> None:
    async with connect(
        "gpt-realtime", url=echo_server.url, api_key=KEY, transport="webrtc"
    ) as session:
        [call] = echo_server.calls.values()
        assert echo_server.sessions == [call.session]
    # The client's close posts the hang-up: the call and its session are gone.
    await until(lambda: call.ended)
    assert echo_server.calls == {} and echo_server.sessions == []
    assert call.session.closed and call.pc.connectionState == "closed"
    # A hang-up from elsewhere (the app server) ends a live call too.
    async with connect(
        "gpt-realtime", url=echo_server.url, api_key=KEY, transport="webrtc", reconnect=False
    ) as session:
        [call] = echo_server.calls.values()
        hangup = f"{echo_server.url}/realtime/calls/{call.id}/hangup"
        status, headers, _ = await post(hangup, KEY, None)
        assert status == 200 and headers["Access-Control-Allow-Origin"] == "*"
        assert call.ended
        await until(lambda: session.closed)
        status, _, text = await post(hangup, KEY, None)
        assert status == 404 and json.loads(text)["error"]["code"] == "call_id_not_found"


REMEMBER = "Remember the blue door."


@contextlib.asynccontextmanager
async def remembering(server: LocalServer) -> AsyncIterator[tuple[Session, Events, Call]]:
    """A WebRTC session that reconnects at once and has said :data:`REMEMBER`; its call."""
    policy = ReconnectPolicy(base_delay_s=0.05, jitter=0.0)
    async with connect(
        "gpt-realtime", url=server.url, api_key=KEY, transport="webrtc", reconnect=policy
    ) as session:
        events = Events(session)
        await session.send_text(REMEMBER, respond=False)
        [first] = server.calls.values()
        yield session, events, first


async def carries_on(server: LocalServer, session: Session, events: Events, first: Call) -> Call:
    """Checks the call that replaced ``first`` has the conversation and answers; returns it."""
    [second] = server.calls.values()
    assert second.id != first.id and first.ended
    [item] = second.session.items.values()
    assert item["content"] == [{"type": "input_text", "text": REMEMBER}]
    # The new call carries the session on.
    await session.send_text("And now?")
    await until(lambda: events.of("response.done"))
    assert events.of("response.done")[-1].response.status == "completed"
    return second


async def test_a_dropped_call_reconnects_as_a_new_call_and_keeps_the_conversation(
    echo_server: LocalServer,
) -> None:
    async with remembering(echo_server) as (session, events, first):
        await first.pc.close()  # the server's peer dies
        await until(lambda: events.of("client.reconnected"))
        await carries_on(echo_server, session, events, first)


# --- the HTTP exchange ----------------------------------------------------------------------


async def test_the_sdp_alone_with_an_ephemeral_key_and_no_candidates() -> None:
    async with LocalServer(responder="echo", speed=0, api_keys=[KEY]) as server:
        key = server.mint_client_secret(
            {"type": "realtime", "model": "gpt-realtime-mini", "instructions": "From the key."}
        )
        pc, channel, sdp = await raw_offer(candidates=False)
        messages: list[str] = []
        channel.on("message", messages.append)
        calls_url = f"{server.url}/realtime/calls"
        status, headers, answer = await post(
            calls_url, key, sdp, **{"Content-Type": "application/sdp"}
        )
        assert status == 201
        assert headers["Content-Type"] == "text/plain; charset=utf-8"
        assert headers["Location"].startswith("/v1/realtime/calls/rtc_")
        assert headers["Access-Control-Allow-Origin"] == "*"
        assert headers["Access-Control-Expose-Headers"] == "Location, X-Request-Id"
        assert headers["X-Request-Id"].startswith("req_")
        assert "a=candidate" in answer
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await until(lambda: messages)
        created = json.loads(messages[0])
        assert created["type"] == "session.created"
        assert created["session"]["model"] == "gpt-realtime-mini"
        assert created["session"]["instructions"] == "From the key."
        [call] = server.calls.values()
        assert headers["Location"] == f"/v1/realtime/calls/{call.id}"
        # A session.update on the channel is answered there.
        channel.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        await until(lambda: len(messages) > 1)
        assert json.loads(messages[1])["type"] == "session.updated"
        # Errors as on a WebSocket, and output_audio_buffer.clear is checked like any event.
        channel.send("not json")
        channel.send(json.dumps({"type": "output_audio_buffer.clear", "bogus": 1}))
        channel.send(json.dumps({"type": "output_audio_buffer.clear", "event_id": "c1"}))
        await until(lambda: len(messages) > 4)
        errors = [json.loads(m)["error"] for m in messages[2:]]
        assert [(e["code"], e["param"], e["event_id"]) for e in errors] == [
            ("invalid_json", None, None),
            ("unknown_parameter", "bogus", None),
            ("invalid_value", None, "c1"),  # nothing has played yet
        ]
        await pc.close()
        await until(lambda: server.calls == {})


async def test_the_answer_looks_like_the_services_and_callers_still_connect() -> None:
    """protocol.md §16.4: ice-lite, Opus (fmtp) + PCMU + PCMA, setup:active, one BUNDLE;
    call ids ``rtc_u2_`` + 22, session ids ``sess_u0_`` + 22."""
    async with LocalServer(responder="echo", speed=0, api_keys=[KEY]) as server:
        pc, channel, sdp = await raw_offer()
        messages: list[str] = []
        channel.on("message", messages.append)
        session = {"type": "realtime", "model": "gpt-realtime"}
        status, headers, answer = await post(
            f"{server.url}/realtime/calls", KEY, multipart(sdp, session)
        )
        assert status == 201
        assert re.fullmatch(r"/v1/realtime/calls/rtc_u2_[0-9A-Za-z]{22}", headers["Location"])
        head, _, media = answer.partition("\r\nm=")
        assert "a=ice-lite" in head.split("\r\n")  # session level, before any m= line
        assert "a=group:BUNDLE 0 1" in head
        audio, _, application = media.partition("\r\nm=application")
        rtpmaps = re.findall(r"a=rtpmap:(\d+) ([^\r]+)", audio)
        assert [name for _, name in rtpmaps] == ["opus/48000/2", "PCMU/8000", "PCMA/8000"]
        opus_pt = rtpmaps[0][0]
        assert audio.split("\r\n")[0].endswith(f" {opus_pt} 0 8")  # the m= line's formats
        assert f"a=fmtp:{opus_pt} minptime=10;useinbandfec=1" in audio
        assert "a=setup:active" in audio and "a=rtcp-mux" in audio
        assert "a=sctp-port:5000" in application
        # The caller (aiortc, a full ICE agent) takes the server for a lite one and connects.
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await until(lambda: messages)
        [transceiver] = pc.getTransceivers()
        assert transceiver.receiver.transport.transport._connection.remote_is_lite
        created = json.loads(messages[0])
        assert re.fullmatch(r"sess_u0_[0-9A-Za-z]{22}", created["session"]["id"])
        [call] = server.calls.values()
        assert call.id == headers["Location"].rsplit("/", 1)[1]
        await until(lambda: call.track.frames > 10)
        assert pc.connectionState == "connected"
        await pc.close()


async def test_the_multipart_form_with_an_api_key() -> None:
    async with LocalServer(responder="echo", speed=0, api_keys=[KEY]) as server:
        async with connect(
            "gpt-realtime-1.5",
            url=server.url,
            api_key=KEY,
            transport="webrtc",
            instructions="From the form.",
        ):
            [call] = server.calls.values()
            state = call.session.state
            assert (state["model"], state["instructions"]) == ("gpt-realtime-1.5", "From the form.")
        # The form alone (no session.update after it) carries the config.
        pc, channel, sdp = await raw_offer()
        session = {
            "type": "realtime",
            "model": "gpt-realtime-2.1",
            "instructions": "Only the form.",
        }
        status, _, answer = await post(f"{server.url}/realtime/calls", KEY, multipart(sdp, session))
        assert status == 201
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        [call] = server.calls.values()
        await until(lambda: call.setup_s is not None)
        assert call.session.state["instructions"] == "Only the form."
        # The model's own defaults (protocol.md §16.1).
        audio = call.session.state["audio"]
        assert audio["output"]["voice"] == "marin"
        assert audio["input"]["turn_detection"]["silence_duration_ms"] == 500
        await pc.close()


@pytest.mark.parametrize(
    ("key", "body", "status", "code"),
    [
        ("sk-wrong", "form", 401, "invalid_api_key"),
        (None, "form", 401, None),
        ("ek_unknown", "sdp", 401, "invalid_api_key"),
        (KEY, "sdp", 400, "missing_model"),
        (KEY, "bad-model", 400, "invalid_model"),
        (KEY, "bad-sdp", 400, "invalid_offer"),
        (KEY, "bad-field", 400, "unknown_parameter"),
    ],
)
async def test_refusals_are_the_services(
    key: str | None, body: str, status: int, code: str | None
) -> None:
    async with LocalServer(api_keys=[KEY]) as server:
        pc, _, sdp = await raw_offer()
        await pc.close()
        model = "gpt-nope" if body == "bad-model" else "gpt-realtime"
        session: dict[str, Any] = {"type": "realtime", "model": model}
        if body == "bad-field":
            session["bogus"] = 1
        data: Any = (
            sdp
            if body == "sdp"
            else multipart("v=0\r\nnot an offer\r\n" if body == "bad-sdp" else sdp, session)
        )
        headers = {"Content-Type": "application/sdp"} if body == "sdp" else {}
        got, answer_headers, text = await post(f"{server.url}/realtime/calls", key, data, **headers)
        assert got == status
        assert json.loads(text)["error"]["code"] == code
        assert answer_headers["Access-Control-Allow-Origin"] == "*"  # readable by a page
        assert server.calls == {} and server.sessions == []


async def test_our_client_gets_an_authentication_error_for_a_bad_key() -> None:
    async with LocalServer(api_keys=[KEY]) as server:
        with pytest.raises(AuthenticationError, match="Incorrect API key"):
            await connect("gpt-realtime", url=server.url, api_key="sk-nope", transport="webrtc")


async def test_the_cors_preflight_allows_what_browser_sdks_send() -> None:
    asked = "authorization, content-type, x-openai-agents-sdk, openai-beta, x-stainless-os"
    async with (
        LocalServer() as server,
        aiohttp.ClientSession() as http,
        http.options(
            f"{server.url}/realtime/calls",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": asked,
            },
        ) as response,
    ):
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
        allowed = {h.strip() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
        assert allowed == {h.strip() for h in asked.split(",")}


# --- the sideband -----------------------------------------------------------------------------


async def test_a_sideband_sees_the_calls_events_and_acts_on_the_call(
    echo_server: LocalServer,
) -> None:
    async with connect(
        "gpt-realtime", url=echo_server.url, api_key=KEY, transport="webrtc"
    ) as session:
        events = Events(session)
        [call] = echo_server.calls.values()
        async with sideband(echo_server, call.id, KEY) as band:
            seen = band.seen
            await session.send_text("Hello there.", respond=False)
            await until(lambda: any(e["type"] == "conversation.item.done" for e in seen))
            # Events the sideband sends act on the call: the caller sees the answer too.
            update = {"type": "realtime", "instructions": "Steered from the server."}
            await band.send({"type": "session.update", "session": update})
            await until(lambda: events.of("session.updated"))
            assert call.session.state["instructions"] == "Steered from the server."
            assert any(e["type"] == "session.updated" for e in seen)
            added = next(e for e in seen if e["type"] == "conversation.item.added")
            assert added["item"]["content"][0]["text"] == "Hello there."
        assert not call.ended  # the sideband left; the call goes on
        # An unknown call, or an ephemeral key, is a 404 before the upgrade.
        ephemeral = echo_server.mint_client_secret()
        for query, key in (("call_id=rtc_nope", KEY), (f"call_id={call.id}", ephemeral)):
            with pytest.raises(websockets.InvalidStatus) as info:
                await websockets.connect(
                    f"{echo_server.ws_url}?{query}",
                    additional_headers={"Authorization": f"Bearer {key}"},
                )
            assert info.value.response.status_code == 404
            error = json.loads(info.value.response.body or b"{}")["error"]
            assert error["code"] == "call_id_not_found"


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "dropped"),
    [("drop_after=3", "the peer"), ("drop_after=3,close_code=1000", "the data channel")],
)
async def test_a_fault_drops_the_peer_or_the_data_channel_a_retryable_close(
    spec: str, dropped: str
) -> None:
    async with LocalServer(responder="echo", speed=0, api_keys=[KEY]) as server:
        server.push_faults(spec)
        transport = WebRTCTransport(server.url, api_key=KEY, model="gpt-realtime")
        await transport.connect()
        [call] = server.calls.values()
        assert call.faults.drop_after == 3
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "hi"}],
        }
        await transport.send(json.dumps({"type": "conversation.item.create", "item": item}))
        got: list[str] = []
        with pytest.raises(ConnectionClosedError) as info:
            while True:
                got.append(json.loads(await asyncio.wait_for(transport.recv(), 10))["type"])
        assert info.value.retryable and info.value.code == 1006
        # Three events went out, then nothing (those in flight may be lost with the peer).
        expected = ["session.created", "conversation.item.added", "conversation.item.done"]
        assert 1 <= len(got) <= 3 and got == expected[: len(got)]
        assert call.sent == 3 and call.dropped
        await until(lambda: call.ended)
        if dropped == "the data channel":
            assert call.channel.readyState == "closed"
        await transport.close()


async def test_a_fault_dropped_call_reconnects_as_a_new_call_and_restores() -> None:
    async with LocalServer(responder="echo", speed=0, api_keys=[KEY]) as server:
        server.push_faults("drop_at=input_audio_buffer.cleared")  # the first call only
        async with remembering(server) as (session, events, first):
            assert first.faults.drop_at == "input_audio_buffer.cleared"
            # The trigger: its answer is where the peer drops (the clear itself never returns).
            trigger = asyncio.ensure_future(session.clear_input())
            await until(lambda: events.of("client.reconnected"))
            trigger.cancel()
            second = await carries_on(server, session, events, first)
            assert first.dropped and not second.faults.active


async def test_event_faults_apply_on_the_data_channel_and_a_bad_spec_is_refused() -> None:
    async with LocalServer(responder="echo", speed=0, api_keys=[KEY]) as server:
        url = f"{server.url}/realtime/calls"
        refused, _, sdp = await raw_offer()
        session = {"type": "realtime", "model": "gpt-realtime"}
        status, _, text = await post(f"{url}?fault=explode=1", KEY, multipart(sdp, session))
        await refused.close()
        assert status == 400 and json.loads(text)["error"]["code"] == "invalid_value"
        assert server.calls == {}
        pc, channel, sdp = await raw_offer()
        messages: list[tuple[float, dict[str, Any]]] = []
        channel.on("message", lambda m: messages.append((time.monotonic(), json.loads(m))))
        spec = "error_after=1,error_code=boom,delay=0.2"
        status, _, answer = await post(f"{url}?fault={spec}", KEY, multipart(sdp, session))
        assert status == 201
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await until(lambda: len(messages) >= 2)
        [call] = server.calls.values()
        assert [m["type"] for _, m in messages[:2]] == ["session.created", "error"]
        assert messages[1][1]["error"]["code"] == "boom"
        assert messages[1][1]["error"]["type"] == "server_error"
        # session.created waited out the delay after the channel opened (one clock here).
        assert call.setup_s is not None
        opened = call._offered_at + call.setup_s
        assert messages[0][0] - opened >= 0.19
        await pc.close()

"""Regression tests for the local server's review findings (one section per finding)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import websockets

from realtime_client.server import LocalServer, ServerSession, SessionOptions, make_responder
from realtime_client.server.responders import TTSResponder
from realtime_client.server.validation import Int, ValidationError, validate

from .conftest import Client, ListSink, open_client, silence, speech, types


def _session(sink: ListSink, **options: Any) -> ServerSession:
    session = ServerSession(SessionOptions(seed=3, **options), make_responder("echo"), sink)
    session.start()
    return session


async def _wait_for(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def _vad_off() -> dict[str, Any]:
    return {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
    }


async def _start_text_response(session: ServerSession, sink: ListSink) -> str:
    """A spoken answer to a long text turn; returns its item id once audio streams."""
    session.receive_event(_vad_off())
    words = "one two three four five six seven eight nine ten eleven twelve"
    session.receive_event(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": words}],
            },
        }
    )
    session.receive_event({"type": "response.create"})
    await _wait_for(lambda: bool(sink.of("response.output_audio.delta")))
    item_id: str = sink.of("response.output_audio.delta")[0]["item_id"]
    return item_id


# --- 1. a barge-in does not start the idle timeout while the user speaks -------------------


async def test_idle_timeout_does_not_fire_while_the_user_is_speaking() -> None:
    sink = ListSink()
    session = _session(sink, speed=1.0, audio_delta_ms=50)
    session.receive_event(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {
                    "input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 200}}
                },
            },
        }
    )
    session.append_input_pcm(np.concatenate([speech(600), silence(300)]))
    await _wait_for(lambda: bool(sink.of("response.output_audio.delta")))
    # Barge in with a second of continuous speech, streamed in real time.
    for _ in range(10):
        session.append_input_pcm(speech(100))
        await asyncio.sleep(0.1)
    assert len(sink.of("input_audio_buffer.speech_started")) == 2
    done = sink.of("response.done")
    assert [d["response"]["status_details"]["reason"] for d in done] == ["turn_detected"]
    assert sink.of("input_audio_buffer.timeout_triggered") == []
    assert len(sink.of("response.created")) == 1  # one utterance, not several
    # The user stops: one turn is committed and answered, then the timeout counts again.
    session.append_input_pcm(silence(300))
    assert len(sink.of("input_audio_buffer.committed")) == 2
    await _wait_for(lambda: bool(sink.of("input_audio_buffer.timeout_triggered")))
    assert len(sink.of("input_audio_buffer.speech_stopped")) == 2
    assert [d["response"]["status"] for d in sink.of("response.done")][:2] == [
        "cancelled",
        "completed",
    ]
    await session.aclose()


# --- 2. with server VAD, silence is trimmed and speech is heard after max_buffer_ms --------


async def test_vad_keeps_listening_after_more_silence_than_the_buffer_holds() -> None:
    sink = ListSink()
    session = _session(sink, speed=0, max_buffer_ms=3000)
    for _ in range(4):  # 4 s of a muted microphone, more than the buffer may hold
        session.receive_event(
            {
                "type": "input_audio_buffer.append",
                "audio": base64.b64encode(silence(1000).tobytes()).decode(),
            }
        )
    assert session.buffer.samples <= 24 * 400  # only what a speech start can reach back to
    session.append_input_pcm(np.concatenate([speech(600), silence(500)]))
    assert sink.of("error") == []
    start = sink.of("input_audio_buffer.speech_started")[0]
    stop = sink.of("input_audio_buffer.speech_stopped")[0]
    # The time base still counts from the first append: speech began at 4000 ms.
    assert abs(start["audio_start_ms"] - (4000 - 300)) <= 10
    assert abs(stop["audio_end_ms"] - (4600 + 200)) <= 10
    committed = sink.of("input_audio_buffer.committed")[0]["item_id"]
    assert committed == start["item_id"]
    item_ms = session.item_audio[committed].size / 24
    assert abs(item_ms - (stop["audio_end_ms"] - start["audio_start_ms"])) <= 1
    await _wait_for(lambda: bool(sink.of("response.done")))
    await session.aclose()


# --- 3. integers JSON cannot carry are refused; a writer failure closes 1011 ----------------


def test_int_is_bounded_to_safe_integers_by_default() -> None:
    assert validate(Int(), 2**53 - 1) == 2**53 - 1
    with pytest.raises(ValidationError) as info:
        validate(Int(min=0), 2**64, "x")
    assert info.value.code == "integer_above_max_value"
    assert info.value.message == (
        "Invalid 'x': integer above maximum value. Expected a value <= 9007199254740991, "
        f"but got {2**64} instead."
    )
    with pytest.raises(ValidationError) as info:
        validate(Int(), -1e300, "y")
    assert info.value.code == "integer_below_min_value"
    assert info.value.message.endswith(
        "Expected a value >= -9007199254740991, but got -1e+300 instead."
    )


async def test_huge_integers_get_a_validation_error_not_a_dead_socket(
    server: LocalServer, client: Client
) -> None:
    await client.ws.send(
        '{"type":"session.update","event_id":"e1","session":{"type":"realtime",'
        '"instructions":"NEW","audio":{"input":{"turn_detection":{"type":"server_vad",'
        '"silence_duration_ms":1e20}}}}}'
    )
    err = (await client.recv())["error"]
    assert err["code"] == "integer_above_max_value"
    assert err["param"] == "session.audio.input.turn_detection.silence_duration_ms"
    assert err["message"].endswith("Expected a value <= 9007199254740991, but got 1e+20 instead.")
    assert server.sessions[0].state["instructions"] != "NEW"  # nothing applied
    await client.send({"type": "session.update", "session": {"type": "realtime"}})
    assert (await client.recv())["type"] == "session.updated"  # the socket still works


async def test_a_failing_session_update_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sink = ListSink()
    session = _session(sink, speed=0)

    def broken(self: ServerSession, force: bool = False) -> None:
        raise RuntimeError("VAD refused the parameters")

    monkeypatch.setattr(ServerSession, "_configure_vad", broken)
    with caplog.at_level(logging.CRITICAL, logger="realtime_client.server"):
        session.receive_event(
            {"type": "session.update", "session": {"type": "realtime", "instructions": "NEW"}}
        )
    assert sink.events[-1]["error"]["type"] == "server_error"
    assert session.state["instructions"] != "NEW"
    assert sink.of("session.updated") == []
    await session.aclose()


async def test_an_event_the_writer_cannot_encode_closes_with_1011(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    c = await open_client(server)
    await c.recv()
    with caplog.at_level(logging.CRITICAL, logger="realtime_client.server"):
        server.sessions[0].sink.send_event({"type": "bogus", "n": 2**70})
        with pytest.raises(websockets.ConnectionClosed) as info:
            await c.recv(timeout=3)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1011


# --- 4. truncating an assistant audio item that is still streaming ------------------------


async def test_truncate_an_item_that_is_still_streaming() -> None:
    sink = ListSink()
    session = _session(sink, speed=1.0, audio_delta_ms=50)
    item_id = await _start_text_response(session, sink)
    await asyncio.sleep(0.3)
    session.receive_event(
        {
            "type": "conversation.item.truncate",
            "event_id": "far",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 100_000,
        }
    )
    err = sink.events[-1]["error"]
    assert (err["code"], err["param"], err["event_id"]) == ("invalid_value", "audio_end_ms", "far")
    m = re.fullmatch(r"Audio content of (\d+)ms is already shorter than 100000ms", err["message"])
    assert m is not None and 200 <= int(m[1]) < 100_000
    session.receive_event(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 150,
        }
    )
    assert sink.events[-1] == {
        "type": "conversation.item.truncated",
        "event_id": sink.events[-1]["event_id"],
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": 150,
    }
    session.receive_event(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 200,
        }
    )
    assert sink.events[-1]["error"]["message"] == (
        "Audio content of 150ms is already shorter than 200ms"
    )
    session.receive_event({"type": "response.cancel"})
    streamed = sink.of("response.output_audio_transcript.done")[0]["transcript"]
    item = sink.of("response.output_item.done")[0]["item"]
    kept = item["content"][0]["transcript"]
    assert len(kept.split()) < len(streamed.split()) and streamed.startswith(kept)
    assert session.items[item_id]["content"][0]["transcript"] == kept
    assert session.item_audio[item_id].size == 150 * 24
    await session.aclose()


# --- 5. an expired ephemeral key stays refused --------------------------------------------


async def test_expired_ephemeral_key_is_never_accepted(server: LocalServer) -> None:
    key = server.mint_client_secret({"type": "realtime", "instructions": "x"}, ttl_s=-1.0)
    for _ in range(2):  # the first refusal must not turn the key into an "any key"
        c = await open_client(server, key=key)
        err = await c.recv()
        assert err["error"]["code"] == "invalid_api_key"
        with pytest.raises(websockets.ConnectionClosed) as info:
            await c.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 3000
    c = await open_client(server, key="ek_" + "0" * 32)  # never minted
    assert (await c.recv())["error"]["code"] == "invalid_api_key"
    await c.ws.close()


async def test_minting_prunes_expired_ephemeral_keys(server: LocalServer) -> None:
    old = server.mint_client_secret(ttl_s=-1.0)
    live = server.mint_client_secret(ttl_s=60.0)
    assert old not in server._ephemeral and live in server._ephemeral


# --- 6. cancelling a TTS synthesis kills espeak-ng ----------------------------------------


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None and shutil.which("espeak") is None,
    reason="espeak-ng is not installed (apt-get install espeak-ng)",
)
async def test_cancelled_tts_synthesis_kills_espeak(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[tuple[asyncio.subprocess.Process, str]] = []
    real_exec = asyncio.create_subprocess_exec

    async def spying_exec(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        proc = await real_exec(*args, **kwargs)
        started.append((proc, str(args[list(args).index("-w") + 1])))
        return proc

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spying_exec)
    tts = TTSResponder()
    task = asyncio.create_task(tts.synthesize(" ".join(["word"] * 3000)))
    await _wait_for(lambda: bool(started))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    proc, wav = started[0]
    try:
        assert proc.returncode is not None, "espeak-ng still running after the cancel"
        assert not await asyncio.to_thread(Path(wav).exists)  # removed, not re-created
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# --- 7. ?call_id= ignores the model and reports the unknown call --------------------------


@pytest.mark.parametrize("query", ["call_id=rtc_u1_abc", "call_id=rtc_u1_abc&model=gpt-realtime"])
async def test_call_id_is_refused_as_an_unknown_call(server: LocalServer, query: str) -> None:
    # As the real service: a 404 before the upgrade, whatever the model (tests/server/
    # test_calls.py joins a live call).
    with pytest.raises(websockets.InvalidStatus) as info:
        await open_client(server, query=query)
    assert info.value.response.status_code == 404
    error = json.loads(info.value.response.body or b"{}")["error"]
    assert error == {
        "message": "No session found for the provided call_id",
        "type": "invalid_request_error",
        "param": "",
        "code": "call_id_not_found",
    }


async def test_call_id_with_a_bad_key_is_refused_as_any_bad_key(server: LocalServer) -> None:
    c = await open_client(server, query="call_id=rtc_u1_abc", key=None)
    error = (await c.recv())["error"]
    assert error["message"] == "Missing bearer or basic authentication in header"
    with pytest.raises(websockets.ConnectionClosed) as info:
        await c.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 3000


# --- 8. limits: one append at most 15 MB; deleted items keep no audio ---------------------


async def test_an_append_over_15_mb_is_refused() -> None:
    sink = ListSink()
    session = _session(sink, speed=0)
    too_big = bytes(15 * 1024 * 1024 + 2)
    session.receive_event(
        {
            "type": "input_audio_buffer.append",
            "event_id": "big",
            "audio": base64.b64encode(too_big).decode(),
        }
    )
    err = sink.events[-1]["error"]
    assert (err["code"], err["param"], err["event_id"]) == ("invalid_value", "audio", "big")
    assert err["message"] == (
        "Invalid 'audio': audio too large. Expected at most 15728640 bytes of decoded audio "
        "per append, but got 15728642 bytes instead."
    )
    assert session.buffer.samples == 0
    await session.aclose()


async def test_an_item_deleted_while_streaming_keeps_no_audio() -> None:
    sink = ListSink()
    session = _session(sink, speed=1.0, audio_delta_ms=50)
    item_id = await _start_text_response(session, sink)
    session.receive_event({"type": "conversation.item.delete", "item_id": item_id})
    assert sink.events[-1]["type"] == "conversation.item.deleted"
    session.receive_event({"type": "response.cancel"})
    assert types(sink.events)[-2:] == ["response.done", "rate_limits.updated"]
    assert item_id not in session.item_audio and item_id not in session.items
    await session.aclose()

"""Wire details over a real loopback WebSocket: keepalive, VAD flags, TTLs, limits."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from realtime_client.server import LocalServer

from ..conftest import weather_script
from .conftest import KEY, Client, open_client, silence, speech, types

# --- keepalive pings arrive on schedule, even while the client streams audio ------------


async def test_pings_keep_arriving_while_the_client_streams_audio() -> None:
    async with LocalServer(speed=0, ping_interval_s=0.2) as srv, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(
            f"{srv.ws_url}?model=gpt-realtime",
            autoping=False,
            headers={"Authorization": f"Bearer {KEY}"},
        )
        assert (await ws.receive(timeout=2)).type == aiohttp.WSMsgType.TEXT  # session.created
        chunk = base64.b64encode(silence(20).astype("<i2").tobytes()).decode()
        append = json.dumps({"type": "input_audio_buffer.append", "audio": chunk})

        async def stream() -> None:
            # a frame every 20 ms: far more often than the ping interval
            while True:
                await ws.send_str(append)
                await asyncio.sleep(0.02)

        streamer = asyncio.create_task(stream())
        pings: list[tuple[float, bytes]] = []
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < 1.3:
                msg = await ws.receive(timeout=1.0)
                assert msg.type == aiohttp.WSMsgType.PING, msg  # never a data frame
                pings.append((time.monotonic() - t0, msg.data))
                # no pong: the real service does not drop a client for that
        finally:
            streamer.cancel()
        assert len(pings) >= 4
        gaps = [b[0] - a[0] for a, b in zip(pings, pings[1:], strict=False)]
        assert all(0.1 < g < 0.4 for g in gaps), gaps
        assert all(len(data) == 4 for _, data in pings)  # protocol.md §1.1: 4-byte payload
        assert not ws.closed
        await ws.send_str(json.dumps({"type": "input_audio_buffer.clear"}))
        while (msg := await ws.receive(timeout=2)).type == aiohttp.WSMsgType.PING:
            pass
        assert json.loads(msg.data)["type"] == "input_audio_buffer.cleared"
        await ws.close()


def test_default_ping_interval_is_the_real_services() -> None:
    assert LocalServer().ping_interval_s == pytest.approx(20.26)


# --- rate_limit_exceeded: a failed response.done, as the real service sends it ----------


async def _text_turn(c: Client, text: str) -> list[dict[str, Any]]:
    await c.say(text)
    return await c.until("rate_limits.updated")


async def test_a_response_over_the_token_budget_fails_with_rate_limit_exceeded(
    server: LocalServer,
) -> None:
    c = await open_client(server, query="model=gpt-realtime&fault=rate_limit_tokens=20")
    await c.recv()
    await c.update(
        {
            "type": "realtime",
            "instructions": "Be brief.",
            "output_modalities": ["text"],
        }
    )
    first = await _text_turn(c, "hello world")
    done = first[-2]["response"]
    assert done["status"] == "completed"
    used = done["usage"]["total_tokens"]
    (tokens,) = first[-1]["rate_limits"]
    assert (tokens["name"], tokens["limit"], tokens["remaining"]) == ("tokens", 20, 20 - used)
    assert 0 < tokens["reset_seconds"] <= 60
    second = await _text_turn(c, "hello again")
    assert types(second) == [
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
        "response.done",
        "rate_limits.updated",
    ]
    failed = second[3]["response"]
    assert failed["status"] == "failed" and failed["output"] == []
    assert failed["usage"]["total_tokens"] == 0  # protocol.md §7.3: zeros, not null
    details = failed["status_details"]
    assert list(details) == ["type", "error"] and details["type"] == "failed"
    error = details["error"]
    assert list(error) == ["type", "code", "message"]
    assert (error["type"], error["code"]) == ("tokens", "rate_limit_exceeded")
    m = re.fullmatch(
        r"Rate limit reached for gpt-realtime in organization org-local on tokens per min "
        r"\(TPM\): Limit 20, Used (\d+), Requested (\d+)\. Please try again in "
        r"(\d+\.\d{3})s\. Visit https://platform\.openai\.com/account/rate-limits to learn "
        r"more\.",
        error["message"],
    )
    assert m is not None, error["message"]
    assert int(m[1]) == used and used + int(m[2]) > 20
    assert 0 < float(m[3]) <= 60
    assert second[-1]["rate_limits"][0]["remaining"] == 20 - used  # nothing spent
    # no error event: the session goes on, and a response that fits still runs
    await c.send({"type": "response.create", "response": {"conversation": "none", "input": []}})
    oob = await c.until("rate_limits.updated")
    assert oob[-2]["response"]["status"] == "completed"
    await c.ws.close()


# --- server VAD flags -------------------------------------------------------------------


async def _turn_detection(c: Client, **fields: Any) -> None:
    await c.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "server_vad", **fields}}},
            },
        }
    )
    td = (await c.until("session.updated"))[-1]["session"]["audio"]["input"]["turn_detection"]
    assert td | fields == td


async def test_create_response_false_commits_without_a_response(client: Client) -> None:
    await _turn_detection(client, create_response=False)
    await client.append(np.concatenate([silence(300), speech(600), silence(400)]))
    events = await client.until("conversation.item.done")
    assert types(events) == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert await client.quiet(0.5) == []  # no response.created
    await client.send({"type": "response.create"})  # the turn is there to answer
    assert (await client.recv())["type"] == "response.created"


async def test_interrupt_response_false_lets_the_response_finish() -> None:
    async with LocalServer(speed=2.0, audio_delta_ms=50) as srv:
        c = await open_client(srv)
        await c.recv()
        await _turn_detection(c, interrupt_response=False)
        await c.append(np.concatenate([speech(1000), silence(300)]), chunk_ms=300)
        first = await c.until("response.output_audio.delta")
        response_id = first[-1]["response_id"]
        await c.append(np.concatenate([speech(300), silence(300)]), chunk_ms=300)
        events = await c.until("response.done")
        kinds = types(events)
        assert "input_audio_buffer.speech_started" in kinds  # the user did talk over it
        assert "input_audio_buffer.committed" in kinds
        assert "response.created" not in kinds  # one active response at a time
        done = events[-1]["response"]
        assert done["id"] == response_id
        assert done["status"] == "completed" and done["status_details"] is None
        assert done["output"][0]["status"] == "completed"
        started = next(e for e in first if e["type"] == "input_audio_buffer.speech_started")
        stopped = next(e for e in first if e["type"] == "input_audio_buffer.speech_stopped")
        pcm = b"".join(
            base64.b64decode(e["delta"])
            for e in first + events
            if e["type"] == "response.output_audio.delta"
        )
        # the whole first turn was played back, not cut at the interruption
        expected_ms = stopped["audio_end_ms"] - started["audio_start_ms"]
        assert abs(len(pcm) / 48 - expected_ms) <= 1
        await c.ws.close()


async def test_threshold_decides_what_counts_as_speech(client: Client) -> None:
    quiet_speech = speech(800, amp=0.05)  # about -29 dBFS
    await _turn_detection(client, threshold=0.8, create_response=False)  # -22 dBFS
    await client.append(np.concatenate([silence(300), quiet_speech, silence(500)]))
    assert await client.quiet(0.4) == []
    await client.append(np.concatenate([speech(800), silence(500)]))  # about -13.5 dBFS
    events = await client.until("conversation.item.done")
    assert types(events)[0] == "input_audio_buffer.speech_started"
    await _turn_detection(client, threshold=0.5)  # -40 dBFS: the quiet voice now counts
    await client.append(np.concatenate([silence(300), quiet_speech, silence(500)]))
    events = await client.until("conversation.item.done")
    assert types(events)[0] == "input_audio_buffer.speech_started"


async def test_prefix_padding_moves_audio_start_ms(client: Client) -> None:
    await _turn_detection(client, prefix_padding_ms=100, create_response=False)
    await client.append(np.concatenate([silence(500), speech(800), silence(400)]))
    events = await client.until("conversation.item.done")
    started, stopped = events[0], events[1]
    assert abs(started["audio_start_ms"] - 400) <= 20  # 500 ms minus 100 ms (default: 200)
    await client.send({"type": "conversation.item.retrieve", "item_id": started["item_id"]})
    item = (await client.until("conversation.item.retrieved"))[-1]["item"]
    committed_ms = len(base64.b64decode(item["content"][0]["audio"])) / 48
    assert abs(committed_ms - (stopped["audio_end_ms"] - started["audio_start_ms"])) <= 1


# --- client_secrets: expiry and its allowed range ----------------------------------------


async def _client_secret(srv: LocalServer, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{srv.url}/realtime/client_secrets",
            json=body,
            headers={"Authorization": f"Bearer {KEY}"},
        ) as resp,
    ):
        data: dict[str, Any] = await resp.json()
        return resp.status, data


@pytest.mark.parametrize(("seconds", "ttl_s"), [(None, 600), (10, 10), (7200, 7200)])
async def test_client_secret_expires_after(
    server: LocalServer, seconds: int | None, ttl_s: int
) -> None:
    body: dict[str, Any] = {"session": {"type": "realtime", "model": "gpt-realtime"}}
    if seconds is not None:
        body["expires_after"] = {"anchor": "created_at", "seconds": seconds}
    before = time.time()
    status, data = await _client_secret(server, body)
    assert status == 200 and data["value"].startswith("ek_")
    assert int(before) + ttl_s - 1 <= data["expires_at"] <= time.time() + ttl_s
    # the session itself lasts the session limit, not the key's lifetime
    assert abs(data["session"]["expires_at"] - (before + 3600)) <= 2


@pytest.mark.parametrize(
    ("seconds", "code", "message"),
    [
        (
            9,
            "integer_below_min_value",
            "Invalid 'expires_after.seconds': integer below minimum value. Expected a value "
            ">= 10, but got 9 instead.",
        ),
        (
            7201,
            "integer_above_max_value",
            "Invalid 'expires_after.seconds': integer above maximum value. Expected a value "
            "<= 7200, but got 7201 instead.",
        ),
    ],
)
async def test_client_secret_ttl_out_of_range_is_refused(
    server: LocalServer, seconds: int, code: str, message: str
) -> None:
    status, data = await _client_secret(
        server, {"expires_after": {"anchor": "created_at", "seconds": seconds}}
    )
    assert status == 400
    assert data == {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": "expires_after.seconds",
            "code": code,
        }
    }


# --- smaller details: obfuscation, beta order, missing type, A-law, metadata ---------


async def test_an_event_without_type_gets_the_documented_error(client: Client) -> None:
    await client.send({"event_id": "evt_no_type", "audio": ""})
    assert (await client.recv())["error"] == {
        "type": "invalid_request_error",
        "code": "invalid_event",
        "message": "The 'type' field is missing.",
        "param": None,
        "event_id": "evt_no_type",
    }


async def test_alaw_input(client: Client) -> None:
    from realtime_client.audio.g711 import alaw_encode

    await client.update(
        {
            "type": "realtime",
            "audio": {"input": {"format": {"type": "audio/pcma"}, "turn_detection": None}},
        }
    )

    async def append_alaw(pcm8k: np.ndarray) -> None:
        codes = alaw_encode(pcm8k)
        await client.send(
            {"type": "input_audio_buffer.append", "audio": base64.b64encode(codes).decode()}
        )

    await append_alaw(speech(50, rate=8000))  # 400 bytes: 50 ms at 8,000 bytes/s
    await client.send({"type": "input_audio_buffer.commit"})
    err = (await client.recv())["error"]
    assert err["message"].endswith("but buffer only has 50.00ms of audio.")
    await append_alaw(speech(450, rate=8000))
    await client.send({"type": "input_audio_buffer.commit"})
    assert (await client.recv())["type"] == "input_audio_buffer.committed"
    await client.until("conversation.item.done")
    await client.send({"type": "response.create"})
    events = await client.until("response.done")
    echoed = np.frombuffer(
        b"".join(
            base64.b64decode(e["delta"])
            for e in events
            if e["type"] == "response.output_audio.delta"
        ),
        dtype="<i2",
    )
    assert len(echoed) == 500 * 24  # 500 ms at 24 kHz
    # decoded as A-law, the tone comes back at its level and pitch (read as µ-law, its
    # level would more than double)
    expected = speech(500)
    core = echoed[1200:-1200].astype(float)
    rms_ratio = np.sqrt(np.mean(core**2)) / np.sqrt(
        np.mean(expected[1200:-1200].astype(float) ** 2)
    )
    assert 0.95 < rms_ratio < 1.05
    spectrum = np.abs(np.fft.rfft(core))
    assert abs(np.argmax(spectrum) * 24000 / len(core) - 300) < 10


async def test_audio_transcript_deltas_carry_obfuscation(client: Client) -> None:
    await client.say("say something")
    events = await client.until("response.done")
    deltas = [e for e in events if e["type"] == "response.output_audio_transcript.delta"]
    assert len(deltas) > 1
    assert all(isinstance(d["obfuscation"], str) and d["obfuscation"] for d in deltas)
    # the padding makes every frame's delta + obfuscation a multiple of 16 bytes
    assert all((len(d["delta"].encode()) + len(d["obfuscation"])) % 16 == 0 for d in deltas)


async def test_beta_dialect_function_call_order(tmp_path: Path) -> None:
    script = weather_script(tmp_path, "Oslo", "It is 3 degrees in Oslo.")
    async with LocalServer(speed=0, responder=f"script:{script}") as srv:
        c = await open_client(
            srv, headers={"OpenAI-Beta": "realtime=v1"}, query="model=gpt-4o-realtime-preview"
        )
        await c.recv()
        await c.send({"type": "session.update", "session": {"modalities": ["text"]}})
        await c.until("session.updated")
        await c.say("What's the weather?")
        events = await c.until("response.done")
        # protocol.md §9.5, beta: conversation.item.created, no conversation.item.done,
        # rate_limits.updated right after response.created
        assert types(events) == [
            "conversation.item.created",
            "response.created",
            "rate_limits.updated",
            "response.output_item.added",
            "conversation.item.created",
            "response.function_call_arguments.delta*",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.done",
        ]
        added = events[3]["item"]
        assert added["object"] == "realtime.item" and added["type"] == "function_call"
        assert (added["status"], added["arguments"]) == ("in_progress", "")
        args_done = events[-3]
        assert "name" not in args_done  # GA adds name; beta does not
        assert json.loads(args_done["arguments"]) == {"city": "Oslo"}
        deltas = [e for e in events if e["type"] == "response.function_call_arguments.delta"]
        assert "".join(d["delta"] for d in deltas) == args_done["arguments"]
        assert all("obfuscation" not in d for d in deltas)
        call = events[-1]["response"]["output"][0]
        assert call["status"] == "completed" and call["call_id"] == args_done["call_id"]
        await c.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "function_call_output",
                    "call_id": call["call_id"],
                    "output": '{"temp_c": 3}',
                },
            }
        )
        created = await c.recv()
        assert created["type"] == "conversation.item.created"
        assert created["previous_item_id"] == call["id"]
        await c.send({"type": "response.create"})
        events = await c.until("response.done")
        assert events[-1]["response"]["output"][0]["content"] == [
            {"type": "text", "text": "It is 3 degrees in Oslo."}
        ]
        await c.ws.close()


@pytest.mark.parametrize("key_len", [64, 65])
async def test_metadata_keys_are_at_most_64_characters(client: Client, key_len: int) -> None:
    key = "k" * key_len
    await client.send(
        {
            "type": "response.create",
            "event_id": "evt_meta",
            "response": {
                "conversation": "none",
                "output_modalities": ["text"],
                "metadata": {key: "v"},
                "input": [],
            },
        }
    )
    ev = await client.recv()
    if key_len == 64:
        assert ev["type"] == "response.created" and ev["response"]["metadata"] == {key: "v"}
        await client.until("response.done")
        return
    assert ev["error"] == {
        "type": "invalid_request_error",
        "code": "string_above_max_length",
        "message": "Invalid 'response.metadata': string too long. Expected a string with "
        "maximum length 64, but got a string with length 65 instead.",
        "param": "response.metadata",
        "event_id": "evt_meta",
    }
    assert await client.quiet(0.2) == []  # nothing started

"""The local server over a real loopback WebSocket: connect, auth, session, turns, errors."""

from __future__ import annotations

import asyncio
import base64
import re

import numpy as np
import pytest
import websockets

from realtime_client.server import LocalServer, ServerConfigError

from .conftest import KEY, Client, open_client, silence, speech, types, user_text

ID_RE = re.compile(r"^(event|item|resp|sess|conv)_[0-9A-Za-z]{21}$")


# --- connect and auth ----------------------------------------------------------------------


async def test_session_created_has_the_real_ga_defaults(server: LocalServer) -> None:
    c = await open_client(server)
    ev = await c.recv()
    assert ev["type"] == "session.created"
    assert list(ev) == ["type", "event_id", "session"]
    s = ev["session"]
    assert list(s) == [
        "type",
        "object",
        "id",
        "model",
        "output_modalities",
        "instructions",
        "tools",
        "tool_choice",
        "max_output_tokens",
        "tracing",
        "truncation",
        "prompt",
        "expires_at",
        "audio",
        "include",
    ]
    assert s["type"] == "realtime" and s["object"] == "realtime.session"
    assert ID_RE.match(s["id"]) and s["id"].startswith("sess_")
    assert ID_RE.match(ev["event_id"])
    assert s["output_modalities"] == ["audio"]
    assert s["audio"]["input"]["turn_detection"] == {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    }
    assert s["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert s["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "alloy",
        "speed": 1.0,
    }
    assert 3590 < s["expires_at"] - __import__("time").time() <= 3600
    await c.ws.close()


async def _closed(c: Client) -> tuple[dict, int, str]:
    err = await c.recv()
    with pytest.raises(websockets.ConnectionClosed) as info:
        await c.recv()
    rcvd = info.value.rcvd
    assert rcvd is not None
    return err, rcvd.code, rcvd.reason


async def test_missing_key_gets_error_then_close_3000(server: LocalServer) -> None:
    c = await open_client(server, key=None)
    err, code, reason = await _closed(c)
    assert err["error"] == {
        "type": "invalid_request_error",
        "code": None,
        "message": "Missing bearer or basic authentication in header",
        "param": None,
        "event_id": None,
    }
    assert (code, reason) == (3000, "invalid_request_error")


async def test_wrong_key_is_refused_and_masked() -> None:
    async with LocalServer(api_keys=["sk-right-key-000000"], speed=0) as srv:
        c = await open_client(srv, key="sk-wrong-key-1234567890")
        err, code, reason = await _closed(c)
        assert err["error"]["code"] == "invalid_api_key"
        assert err["error"]["message"].startswith("Incorrect API key provided: sk-")
        assert "sk-wrong-key-1234567890" not in err["error"]["message"]
        assert err["error"]["message"].endswith(
            "7890. You can find your API key at https://platform.openai.com/account/api-keys."
        )
        assert (code, reason) == (3000, "invalid_request_error.invalid_api_key")
        ok = await open_client(srv, key="sk-right-key-000000")
        assert (await ok.recv())["type"] == "session.created"
        await ok.ws.close()


@pytest.mark.parametrize(
    ("query", "code", "message"),
    [
        (
            "",
            "missing_model",
            "You must provide a model parameter, for example "
            "wss://api.openai.com/v1/realtime?model=gpt-realtime-1.5",
        ),
        ("model=gpt-nope", "invalid_model", 'Model "gpt-nope" is not supported in realtime mode.'),
    ],
)
async def test_bad_model_closes_4000(
    server: LocalServer, query: str, code: str, message: str
) -> None:
    c = await open_client(server, query=query)
    err, close_code, reason = await _closed(c)
    assert err["error"]["code"] == code and err["error"]["message"] == message
    assert (close_code, reason) == (4000, f"invalid_request_error.{code}")


async def test_strict_ga_refuses_the_beta_header() -> None:
    async with LocalServer(strict_ga=True, speed=0) as srv:
        c = await open_client(srv, headers={"OpenAI-Beta": "realtime=v1"})
        err, code, reason = await _closed(c)
        assert err["error"]["code"] == "beta_api_shape_disabled"
        assert (code, reason) == (4000, "invalid_request_error.beta_api_shape_disabled")


async def test_browser_subprotocol_auth(server: LocalServer) -> None:
    ws = await websockets.connect(
        f"{server.ws_url}?model=gpt-realtime",
        subprotocols=[
            websockets.Subprotocol("realtime"),
            websockets.Subprotocol(f"openai-insecure-api-key.{KEY}"),
        ],
    )
    assert ws.subprotocol == "realtime"
    c = Client(ws)
    assert (await c.recv())["type"] == "session.created"
    await ws.close()


def test_public_bind_without_keys_is_refused() -> None:
    with pytest.raises(ServerConfigError, match="without API keys"):
        LocalServer(host="0.0.0.0")
    LocalServer(host="0.0.0.0", api_keys=["k"])  # with keys it is allowed


async def test_ephemeral_key_minted_and_expiring(server: LocalServer) -> None:
    ek = server.mint_client_secret(
        {"type": "realtime", "model": "gpt-realtime", "instructions": "Be brief."}
    )
    assert ek.startswith("ek_")
    c = await open_client(server, query="", key=ek)  # the key carries the model
    created = await c.recv()
    assert created["session"]["instructions"] == "Be brief."
    await c.ws.close()
    old = server.mint_client_secret(ttl_s=-1.0)
    c = await open_client(server, key=old)
    err, code, _ = await _closed(c)
    assert err["error"]["code"] == "invalid_api_key" and code == 3000


# --- session.update ----------------------------------------------------------------------


async def test_session_update_deep_merges_and_answers_full_state(client: Client) -> None:
    await client.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "instructions": "Talk like a pirate.",
                "audio": {
                    "input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500}},
                    "output": {"voice": "marin"},
                },
            },
        }
    )
    ev = await client.recv()
    assert ev["type"] == "session.updated"
    s = ev["session"]
    assert s["instructions"] == "Talk like a pirate."
    td = s["audio"]["input"]["turn_detection"]
    assert td["silence_duration_ms"] == 500 and td["threshold"] == 0.5
    assert td["prefix_padding_ms"] == 300 and td["create_response"] is True
    assert s["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "marin",
        "speed": 1.0,
    }
    assert s["tools"] == [] and s["model"] == "gpt-realtime"


@pytest.mark.parametrize(
    ("session", "code", "param", "message"),
    [
        (
            {"type": "realtime", "bogus_field": 1},
            "unknown_parameter",
            "session.bogus_field",
            "Unknown parameter: 'session.bogus_field'.",
        ),
        (
            {
                "type": "realtime",
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}},
            },
            "integer_below_min_value",
            "session.audio.input.format.rate",
            None,
        ),
        (
            {"instructions": "x"},
            "missing_required_parameter",
            "session.type",
            "Missing required parameter: 'session.type'.",
        ),
        (
            {"type": "realtime", "instructions": 5},
            "invalid_type",
            "session.instructions",
            "Invalid type for 'session.instructions': expected a string, but got an integer "
            "instead.",
        ),
        (
            {"type": "realtime", "audio": {"output": {"speed": 2.0}}},
            "decimal_above_max_value",
            "session.audio.output.speed",
            None,
        ),
        (
            {"type": "realtime", "output_modalities": ["text", "audio"]},
            "array_above_max_length",
            "session.output_modalities",
            None,
        ),
        (
            {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "smart_vad"}}}},
            "invalid_value",
            "session.audio.input.turn_detection.type",
            "Invalid value: 'smart_vad'. Supported values are: 'server_vad' and 'semantic_vad'.",
        ),
        (
            {"type": "transcription"},
            "invalid_value",
            "session.type",
            "Invalid value: 'transcription'. Supported values are: 'realtime'.",
        ),
    ],
)
async def test_invalid_session_update_is_discarded_whole(
    client: Client, session: dict, code: str, param: str, message: str | None
) -> None:
    bad = {**session}
    if "instructions" not in bad and bad.get("type") == "realtime":
        bad["instructions"] = "must not stick"  # valid part of an invalid update
    await client.send({"type": "session.update", "event_id": "evt_client_1", "session": bad})
    err = await client.recv()
    assert err["type"] == "error"
    assert err["error"]["code"] == code and err["error"]["param"] == param
    assert err["error"]["event_id"] == "evt_client_1"
    if message:
        assert err["error"]["message"] == message
    if code == "integer_below_min_value":
        assert "Expected a value >= 24000" in err["error"]["message"]
    await client.send({"type": "session.update", "session": {"type": "realtime"}})
    state = (await client.recv())["session"]
    assert state["instructions"] != "must not stick"
    assert state["audio"]["input"]["format"]["rate"] == 24000


# --- errors -----------------------------------------------------------------------------------


async def test_unknown_type_lists_the_accepted_types(client: Client) -> None:
    await client.send({"type": "nope"})
    err = (await client.recv())["error"]
    assert err["code"] == "invalid_value" and err["param"] == "type"
    assert err["message"] == (
        "Invalid value: 'nope'. Supported values are: 'session.update', 'session.close', "
        "'input_audio_buffer.append', 'session.input_audio_buffer.append', "
        "'input_audio_buffer.commit', 'input_audio_buffer.clear', 'conversation.item.create', "
        "'conversation.item.truncate', 'conversation.item.delete', 'conversation.item.retrieve', "
        "'response.create', and 'response.cancel'."
    )


async def test_bad_frames_are_non_fatal(client: Client) -> None:
    await client.ws.send("{not json")
    err = (await client.recv())["error"]
    assert err["code"] == "invalid_json"
    assert err["message"].startswith("Invalid event: failed to parse JSON value.")
    await client.ws.send(b"\x00\x01")
    err = (await client.recv())["error"]
    assert err == {
        "type": "invalid_request_error",
        "code": "invalid_event",
        "message": "Expected a text WebSocket message; binary frames are not supported.",
        "param": None,
        "event_id": None,
    }
    await client.send({"type": "input_audio_buffer.clear"})
    assert (await client.recv())["type"] == "input_audio_buffer.cleared"


async def test_commit_below_100ms_has_the_exact_text(client: Client) -> None:
    await client.send({"type": "input_audio_buffer.commit", "event_id": "e1"})
    err = (await client.recv())["error"]
    assert err["code"] == "input_audio_buffer_commit_empty" and err["event_id"] == "e1"
    assert err["message"] == (
        "Error committing input audio buffer: buffer too small. Expected at least 100ms of "
        "audio, but buffer only has 0.00ms of audio."
    )
    await client.append(silence(50))
    await client.send({"type": "input_audio_buffer.commit"})
    err = (await client.recv())["error"]
    assert err["message"].endswith("but buffer only has 50.00ms of audio.")


async def test_cancel_with_nothing_active(client: Client) -> None:
    await client.send({"type": "response.cancel"})
    err = (await client.recv())["error"]
    assert err["code"] == "response_cancel_not_active"
    assert err["message"] == "Cancellation failed: no active response found"


async def test_item_operations_and_their_errors(client: Client) -> None:
    await client.send(
        {
            "type": "conversation.item.create",
            "item": {
                "id": "item_mine",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hi"}],
            },
        }
    )
    added, done = await client.recv(), await client.recv()
    assert added["type"] == "conversation.item.added" and done["type"] == "conversation.item.done"
    assert added["item"] == {
        "id": "item_mine",
        "type": "message",
        "status": "completed",
        "role": "user",
        "content": [{"type": "input_text", "text": "hi"}],
    }
    await client.send(
        {
            "type": "conversation.item.create",
            "previous_item_id": "root",
            "item": {
                "type": "message",
                "role": "system",
                "content": [{"type": "input_text", "text": "sys"}],
            },
        }
    )
    added = await client.recv()
    await client.recv()
    assert added["previous_item_id"] is None
    await client.send({"type": "conversation.item.retrieve", "item_id": "item_mine"})
    got = await client.recv()
    assert got["type"] == "conversation.item.retrieved" and got["item"]["id"] == "item_mine"
    cases = [
        (
            {"type": "conversation.item.retrieve", "item_id": "item_x"},
            "item_retrieve_invalid_item_id",
            "Error retrieving item: the item with id 'item_x' does not exist.",
        ),
        (
            {"type": "conversation.item.delete", "item_id": "item_x"},
            "item_delete_invalid_item_id",
            "Error deleting item: the item with id 'item_x' does not exist.",
        ),
        (
            {
                "type": "conversation.item.truncate",
                "item_id": "item_x",
                "content_index": 0,
                "audio_end_ms": 0,
            },
            "item_truncate_invalid_item_id",
            "Error truncating item: the item with id 'item_x' does not exist.",
        ),
        (
            {
                "type": "conversation.item.truncate",
                "item_id": "item_mine",
                "content_index": 0,
                "audio_end_ms": 0,
            },
            "unsupported_content_type",
            "Only model output audio messages can be truncated",
        ),
        (
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": "call_nope", "output": "{}"},
            },
            "invalid_value",
            "Tool call ID 'call_nope' not found in conversation.",
        ),
        (
            {
                "type": "conversation.item.create",
                "previous_item_id": "item_x",
                "item": {"type": "message", "role": "user", "content": []},
            },
            "invalid_value",
            "Error adding item: the previous item with id 'item_x' does not exist.",
        ),
        (
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "output_text", "text": "x"}],
                },
            },
            "invalid_value",
            "Invalid value: 'output_text'. Supported values are: 'input_text', 'input_audio', and "
            "'input_image'.",
        ),
    ]
    for event, code, message in cases:
        await client.send(event)
        err = await client.recv()
        assert err["type"] == "error", event
        assert (err["error"]["code"], err["error"]["message"]) == (code, message)
    await client.send({"type": "conversation.item.delete", "item_id": "item_mine"})
    assert (await client.recv()) | {"event_id": None} == {
        "type": "conversation.item.deleted",
        "event_id": None,
        "item_id": "item_mine",
    }


# --- text and audio turns ------------------------------------------------------------------


GA_TEXT_TURN = [
    "conversation.item.added",
    "conversation.item.done",
    "response.created",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
    "response.output_text.delta*",
    "response.output_text.done",
    "response.content_part.done",
    "conversation.item.done",
    "response.output_item.done",
    "response.done",
    "rate_limits.updated",
]


async def test_text_turn_has_the_exact_ga_order(client: Client) -> None:
    await client.send(
        {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}}
    )
    await client.until("session.updated")
    await client.say("hello world")
    events = await client.until("rate_limits.updated")
    assert types(events) == GA_TEXT_TURN
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert all(isinstance(d["obfuscation"], str) and d["obfuscation"] for d in deltas)
    assert "".join(d["delta"] for d in deltas) == "Echo: hello world"
    done = events[-2]["response"]
    assert done["status"] == "completed" and done["status_details"] is None
    assert done["output"][0]["content"] == [{"type": "output_text", "text": "Echo: hello world"}]
    usage = done["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert usage["input_token_details"]["image_tokens"] == 0
    user_id = events[0]["item"]["id"]
    assert events[4]["previous_item_id"] == user_id
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == len(ids) and all(ID_RE.match(i) for i in ids)
    assert ID_RE.match(done["id"]) and done["id"].startswith("resp_")
    assert done["conversation_id"].startswith("conv_")
    limits = events[-1]["rate_limits"]
    assert [r["name"] for r in limits] == ["tokens"]
    assert limits[0]["remaining"] == limits[0]["limit"] - usage["total_tokens"]


GA_AUDIO_RESPONSE = [
    "response.created",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
]
GA_AUDIO_RESPONSE_END = [
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "response.content_part.done",
    "conversation.item.done",
    "response.output_item.done",
    "response.done",
    "rate_limits.updated",
]


def _audio_of(events: list[dict]) -> np.ndarray:
    chunks = [
        base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
    ]
    return np.frombuffer(b"".join(chunks), dtype="<i2")


async def test_push_to_talk_audio_turn_echoes_the_audio(client: Client) -> None:
    await client.update({"type": "realtime", "audio": {"input": {"turn_detection": None}}})
    sent = speech(700)
    await client.append(sent)
    await client.send({"type": "input_audio_buffer.commit"})
    committed = await client.until("conversation.item.done")
    assert types(committed) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    item_id = committed[0]["item_id"]
    assert committed[0]["previous_item_id"] is None
    assert committed[1]["item"] == {
        "id": item_id,
        "type": "message",
        "status": "completed",
        "role": "user",
        "content": [{"type": "input_audio", "transcript": None}],
    }
    await client.send({"type": "response.create"})
    events = await client.until("rate_limits.updated")
    kinds = types(events)
    assert kinds[:4] == GA_AUDIO_RESPONSE and kinds[-7:] == GA_AUDIO_RESPONSE_END
    assert set(kinds[4:-7]) == {
        "response.output_audio.delta*",
        "response.output_audio_transcript.delta*",
    }
    np.testing.assert_array_equal(_audio_of(events), sent)
    transcript = "".join(
        e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta"
    )
    assert transcript == "Echo of your 0.70 seconds of audio."
    final = events[-2]["response"]["output"][0]
    assert final["content"] == [{"type": "output_audio", "transcript": transcript}]
    usage = events[-2]["response"]["usage"]
    assert usage["input_token_details"]["audio_tokens"] == 7  # 10 tokens per second
    assert usage["output_token_details"]["audio_tokens"] == 14  # 20 tokens per second
    # the voice is fixed once assistant audio exists
    await client.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"output": {"voice": "cedar"}}},
        }
    )
    err = (await client.recv())["error"]
    assert err["code"] == "cannot_update_voice"
    assert err["message"] == "Cannot update a conversation's voice if assistant audio is present."


async def test_server_vad_turn(client: Client) -> None:
    await client.append(np.concatenate([silence(500), speech(1000), silence(600)]))
    events = await client.until("rate_limits.updated")
    kinds = types(events)
    assert kinds[:6] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
    ]
    started, stopped, committed = events[0], events[1], events[2]
    assert abs(started["audio_start_ms"] - 200) <= 20  # 500 ms minus 300 ms prefix padding
    assert abs(stopped["audio_end_ms"] - 1700) <= 30  # speech end + 200 ms silence
    assert started["item_id"] == stopped["item_id"] == committed["item_id"]
    assert events[3]["item"]["id"] == started["item_id"]
    echoed = _audio_of(events)
    expected_ms = stopped["audio_end_ms"] - started["audio_start_ms"]
    assert abs(len(echoed) / 24 - expected_ms) <= 1


async def test_semantic_vad_and_g711(client: Client) -> None:
    from realtime_client.audio.g711 import ulaw_encode

    s = await client.update(
        {
            "type": "realtime",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "turn_detection": {"type": "semantic_vad", "eagerness": "high"},
                },
                "output": {"format": {"type": "audio/pcma"}},
            },
        }
    )
    assert s["audio"]["input"]["turn_detection"] == {
        "type": "semantic_vad",
        "eagerness": "high",
        "create_response": True,
        "interrupt_response": True,
    }
    assert s["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    pcm8k = np.concatenate([silence(400, 8000), speech(800, rate=8000), silence(500, 8000)])
    codes = ulaw_encode(pcm8k)
    for i in range(0, len(codes), 800):
        await client.send(
            {
                "type": "input_audio_buffer.append",
                "audio": base64.b64encode(codes[i : i + 800].tobytes()).decode(),
            }
        )
    events = await client.until("response.done")
    started = next(e for e in events if e["type"] == "input_audio_buffer.speech_started")
    stopped = next(e for e in events if e["type"] == "input_audio_buffer.speech_stopped")
    assert abs(started["audio_start_ms"] - 100) <= 20
    assert abs(stopped["audio_end_ms"] - 1450) <= 30  # 250 ms silence for "high"
    out = b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
    )
    # A-law at 8 kHz: one byte per sample
    assert abs(len(out) / 8 - (stopped["audio_end_ms"] - started["audio_start_ms"])) <= 2


async def test_input_transcription_events(client: Client) -> None:
    await client.update(
        {
            "type": "realtime",
            "audio": {
                "input": {
                    "transcription": {"model": "gpt-4o-mini-transcribe"},
                    "turn_detection": None,
                }
            },
        }
    )
    await client.append(speech(500))
    await client.send({"type": "input_audio_buffer.commit"})
    events = await client.until("conversation.item.input_audio_transcription.completed")
    deltas = [e for e in events if e["type"].endswith("transcription.delta")]
    assert deltas and all("obfuscation" in d for d in deltas)
    done = events[-1]
    assert done["transcript"] == "".join(d["delta"] for d in deltas) == "[0.50 seconds of audio]"
    assert done["usage"]["type"] == "tokens" and done["usage"]["input_tokens"] == 5
    await client.send({"type": "conversation.item.retrieve", "item_id": done["item_id"]})
    item = (await client.recv())["item"]
    assert item["content"][0]["transcript"] == done["transcript"]
    pcm = np.frombuffer(base64.b64decode(item["content"][0]["audio"]), dtype="<i2")
    np.testing.assert_array_equal(pcm, speech(500))


async def test_transcription_session(server: LocalServer) -> None:
    c = await open_client(server, query="intent=transcription")
    created = await c.recv()
    s = created["session"]
    assert s["type"] == "transcription" and s["object"] == "realtime.transcription_session"
    assert list(s["audio"]["input"]["turn_detection"]) == [
        "type",
        "threshold",
        "prefix_padding_ms",
        "silence_duration_ms",
    ]
    await c.update(
        {
            "type": "transcription",
            "audio": {"input": {"transcription": {"model": "whisper-1"}}},
        }
    )
    await c.send({"type": "response.create"})
    assert (await c.recv())["type"] == "error"
    await c.append(np.concatenate([speech(600), silence(400)]))
    events = await c.until("conversation.item.input_audio_transcription.completed")
    assert "response.created" not in types(events)
    assert events[-1]["usage"] == {"type": "duration", "seconds": 0.8}
    await c.ws.close()


# --- responses: overrides, out-of-band, concurrency, cancel, barge-in -------------------------


async def test_out_of_band_response_with_metadata(client: Client) -> None:
    await client.send(
        {
            "type": "response.create",
            "response": {
                "conversation": "none",
                "metadata": {"topic": "summary"},
                "output_modalities": ["text"],
                "instructions": "Summarise.",
                "input": [
                    {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "classify me"}],
                    }
                ],
            },
        }
    )
    events = await client.until("rate_limits.updated")
    assert not [e for e in events if e["type"].startswith("conversation.item")]
    resp = events[-2]["response"]
    assert resp["conversation_id"] is None and resp["metadata"] == {"topic": "summary"}
    assert resp["output_modalities"] == ["text"]
    assert resp["output"][0]["content"][0]["text"] == "Echo: classify me"
    # the default conversation is untouched
    await client.send({"type": "conversation.item.retrieve", "item_id": resp["output"][0]["id"]})
    assert (await client.recv())["error"]["code"] == "item_retrieve_invalid_item_id"


async def test_second_response_is_refused_while_one_is_active() -> None:
    async with LocalServer(speed=1.0) as srv:
        c = await open_client(srv)
        await c.recv()
        await c.say("a long enough text")
        created = (await c.until("response.created"))[-1]["response"]
        await c.send({"type": "response.create", "event_id": "second"})
        err = await c.until("error")
        assert err[-1]["error"]["code"] == "conversation_already_has_active_response"
        assert err[-1]["error"]["message"] == (
            f"Conversation already has an active response in progress: {created['id']}. "
            "Wait until the response is finished before creating a new one."
        )
        assert err[-1]["error"]["event_id"] == "second"
        await c.send({"type": "response.cancel"})
        events = await c.until("rate_limits.updated")
        kinds = types(events)
        assert kinds[-7:] == GA_AUDIO_RESPONSE_END
        done = events[-2]["response"]
        assert done["status"] == "cancelled"
        assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
        assert done["output"][0]["status"] == "incomplete"
        await c.ws.close()


async def test_barge_in_cancels_and_truncate_cuts_the_audio() -> None:
    async with LocalServer(speed=1.0, audio_delta_ms=50) as srv:
        c = await open_client(srv)
        await c.recv()
        await c.append(np.concatenate([speech(1500), silence(300)]), chunk_ms=300)
        first = await c.until("response.output_audio.delta")
        assert first[-1]["type"] == "response.output_audio.delta"
        item_id = first[-1]["item_id"]
        await asyncio.sleep(0.3)
        await c.append(speech(300), chunk_ms=300)  # the user talks over the answer
        events = await c.until("response.done")
        started = [e for e in events if e["type"] == "input_audio_buffer.speech_started"]
        assert len(started) == 1
        idx = events.index(started[0])
        after = [e["type"] for e in events[idx + 1 :]]
        assert after == [
            "response.output_audio.done",
            "response.output_audio_transcript.done",
            "response.content_part.done",
            "conversation.item.done",
            "response.output_item.done",
            "response.done",
        ]
        done = events[-1]["response"]
        assert done["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
        assert done["output"][0]["status"] == "incomplete"
        sent_ms = len(_audio_of(first + events)) / 24
        assert 200 <= sent_ms < 1500
        await c.send(
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": int(sent_ms) + 1000,
            }
        )
        err = await c.until("error")
        assert err[-1]["error"]["message"] == (
            f"Audio content of {int(sent_ms)}ms is already shorter than {int(sent_ms) + 1000}ms"
        )
        await c.send(
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": 100,
            }
        )
        truncated = await c.until("conversation.item.truncated")
        assert truncated[-1]["audio_end_ms"] == 100 and truncated[-1]["item_id"] == item_id
        await c.send({"type": "conversation.item.retrieve", "item_id": item_id})
        item = (await c.until("conversation.item.retrieved"))[-1]["item"]
        assert len(base64.b64decode(item["content"][0]["audio"])) == 100 * 48
        await c.ws.close()


async def test_idle_timeout_triggers_a_response(client: Client) -> None:
    await client.update(
        {
            "type": "realtime",
            "output_modalities": ["text"],
            "audio": {"input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 150}}},
        }
    )
    await client.send({"type": "response.create"})
    await client.until("response.done")
    await client.append(silence(200))
    events = await client.until("response.created", timeout=3)
    assert types(events)[-5:] == [
        "input_audio_buffer.timeout_triggered",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
    ]
    trig = events[-5]
    assert (trig["audio_start_ms"], trig["audio_end_ms"]) == (0, 200)
    assert trig["item_id"] == events[-4]["item_id"]
    # the timeout re-arms after each response: switch it off before leaving
    await client.update(
        {
            "type": "realtime",
            "audio": {"input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": None}}},
        }
    )


async def test_max_output_tokens_makes_the_response_incomplete(client: Client) -> None:
    await client.send(user_text("one two three four five"))
    await client.send(
        {
            "type": "response.create",
            "response": {"output_modalities": ["text"], "max_output_tokens": 3},
        }
    )
    events = await client.until("response.done")
    resp = events[-1]["response"]
    assert resp["status"] == "incomplete"
    assert resp["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}
    assert resp["output"][0]["status"] == "incomplete"
    assert resp["output"][0]["content"][0]["text"] == "Echo: one two"


# --- beta dialect ----------------------------------------------------------------------------


async def test_beta_dialect_text_turn(server: LocalServer) -> None:
    c = await open_client(
        server, headers={"OpenAI-Beta": "realtime=v1"}, query="model=gpt-4o-realtime-preview"
    )
    s = (await c.recv())["session"]
    assert s["object"] == "realtime.session" and s["modalities"] == ["audio", "text"]
    assert s["turn_detection"]["silence_duration_ms"] == 200 and s["temperature"] == 0.8
    await c.send({"type": "session.update", "session": {"modalities": ["text"], "bogus": 1}})
    err = (await c.recv())["error"]
    assert err["code"] == "unknown_parameter" and err["param"] == "session.bogus"
    await c.send({"type": "session.update", "session": {"modalities": ["text"]}})
    await c.until("session.updated")
    await c.say("hi")
    events = await c.until("response.done")
    assert types(events) == [
        "conversation.item.created",
        "response.created",
        "rate_limits.updated",
        "response.output_item.added",
        "conversation.item.created",
        "response.content_part.added",
        "response.text.delta*",
        "response.text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
    ]
    assert events[0]["item"]["object"] == "realtime.item"
    assert all("obfuscation" not in e for e in events)
    assert [r["name"] for r in events[2]["rate_limits"]] == ["requests", "tokens"]
    assert events[-1]["response"]["output"][0]["content"] == [{"type": "text", "text": "Echo: hi"}]
    await c.ws.close()


# --- limits, keepalive ------------------------------------------------------------------------


async def test_session_limit_expires_with_1001() -> None:
    async with LocalServer(speed=0, session_limit_s=0.3) as srv:
        c = await open_client(srv)
        await c.recv()
        err = await c.recv(timeout=3)
        assert err["error"]["code"] == "session_expired"
        assert err["error"]["message"] == "Your session hit the maximum duration of 0.005 minutes."
        with pytest.raises(websockets.ConnectionClosed) as info:
            await c.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001


async def test_frame_and_buffer_limits() -> None:
    async with LocalServer(speed=0, max_frame_bytes=64 * 1024, max_buffer_ms=500) as srv:
        c = await open_client(srv)
        await c.recv()
        await c.update({"type": "realtime", "audio": {"input": {"turn_detection": None}}})
        await c.append(silence(400))
        await c.append(silence(200))
        err = (await c.recv())["error"]
        assert err["code"] == "input_audio_buffer_full"
        await c.send({"type": "input_audio_buffer.commit"})
        assert (await c.recv())["type"] == "input_audio_buffer.committed"  # 400 ms kept
        await c.ws.send("x" * (100 * 1024))
        with pytest.raises(websockets.ConnectionClosed) as info:
            await c.quiet(1.0)
            await c.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_keepalive_pings() -> None:
    import aiohttp

    async with LocalServer(speed=0, ping_interval_s=0.2) as srv, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(
            f"{srv.ws_url}?model=gpt-realtime",
            autoping=False,
            headers={"Authorization": f"Bearer {KEY}"},
        )
        first = await ws.receive(timeout=2)
        assert first.type == aiohttp.WSMsgType.TEXT
        ping = await ws.receive(timeout=2)
        assert ping.type == aiohttp.WSMsgType.PING
        await ws.pong(ping.data)
        await ws.close()


# --- ids and determinism ----------------------------------------------------------------------


async def test_same_seed_same_ids() -> None:
    ids = []
    for _ in range(2):
        async with LocalServer(speed=0, seed=42) as srv:
            c = await open_client(srv)
            ev = await c.recv()
            ids.append((ev["event_id"], ev["session"]["id"]))
            await c.ws.close()
    assert ids[0] == ids[1]


async def test_beta_dialect_vad_audio_turn(server: LocalServer) -> None:
    c = await open_client(
        server,
        headers={"OpenAI-Beta": "realtime=v1"},
        query="model=gpt-4o-realtime-preview-2024-12-17",
    )
    await c.recv()
    await c.append(np.concatenate([speech(600), silence(400)]))
    events = await c.until("response.done")
    kinds = types(events)
    assert kinds[:9] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.created",
        "response.created",
        "rate_limits.updated",
        "response.output_item.added",
        "conversation.item.created",
        "response.content_part.added",
    ]
    assert kinds[-5:] == [
        "response.audio.done",
        "response.audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
    ]
    assert {"response.audio.delta*", "response.audio_transcript.delta*"} <= set(kinds)
    assert events[-1]["response"]["output"][0]["content"][0]["type"] == "audio"
    assert events[-1]["response"]["usage"]["input_token_details"].get("image_tokens") is None
    await c.ws.close()


async def test_beta_transcription_session_update_switches_the_input_format(
    server: LocalServer,
) -> None:
    from realtime_client.audio.g711 import ulaw_encode

    c = await open_client(
        server, headers={"OpenAI-Beta": "realtime=v1"}, query="model=gpt-4o-realtime-preview"
    )
    await c.recv()
    await c.send(
        {
            "type": "transcription_session.update",
            "session": {"input_audio_format": "g711_ulaw", "include": None},
        }
    )
    updated = await c.recv()
    assert updated["type"] == "transcription_session.updated"
    assert updated["session"]["input_audio_format"] == "g711_ulaw"
    assert updated["session"]["turn_detection"]["type"] == "server_vad"
    # 8 kHz µ-law is now read at 8 kHz: VAD times are right, the item is 24 kHz audio.
    turn = np.concatenate([silence(500, 8000), speech(600, rate=8000), silence(600, 8000)])
    await c.send(
        {
            "type": "input_audio_buffer.append",
            "audio": base64.b64encode(bytes(ulaw_encode(turn))).decode(),
        }
    )
    events = await c.until("input_audio_buffer.committed")
    started, stopped = events[0], events[1]
    assert abs(started["audio_start_ms"] - (500 - 300)) <= 20
    assert abs(stopped["audio_end_ms"] - (500 + 600 + 200)) <= 20
    await c.until("response.done")  # server VAD answers the turn (a realtime session)
    await c.ws.close()

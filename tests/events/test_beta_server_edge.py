"""The server's side of the beta edge: beta client events in, GA server events out as beta.

These are the pure functions the local server maps its wire with
(:func:`client_from_beta_wire`, :func:`server_to_beta_wire`, :func:`session_from_beta`,
:func:`session_to_beta`). Unlike the client's canonical mapping they must be exact.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from openai.types.beta.realtime import RealtimeServerEvent as BetaServerEvent
from pydantic import TypeAdapter

from realtime_client.events.beta import (
    client_from_beta_wire,
    server_from_beta,
    server_to_beta_wire,
    session_from_beta,
    session_to_beta,
)
from tests.events.samples import SERVER_SAMPLES

BETA_SERVER = TypeAdapter(BetaServerEvent)

#: A beta session.created session as the beta service sends it (REC-BETA, key order kept).
BETA_SESSION: dict[str, Any] = {
    "id": "sess_AbcdEfGhIjKlMnOpQrStU",
    "object": "realtime.session",
    "model": "gpt-4o-realtime-preview",
    "expires_at": 1764000000,
    "modalities": ["audio", "text"],
    "instructions": "Be brief.",
    "voice": "alloy",
    "turn_detection": {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
        "create_response": True,
        "interrupt_response": True,
    },
    "input_audio_format": "g711_ulaw",
    "output_audio_format": "pcm16",
    "input_audio_transcription": None,
    "input_audio_noise_reduction": None,
    "tool_choice": "get_weather",
    "temperature": 0.8,
    "max_response_output_tokens": "inf",
    "speed": 1.0,
    "tracing": None,
    "client_secret": None,
    "tools": [],
}


def test_session_round_trip_is_exact_in_values_and_key_order() -> None:
    for modalities in (["audio", "text"], ["text", "audio"], ["text"], ["audio"], []):
        flat = {**BETA_SESSION, "modalities": modalities}
        before = copy.deepcopy(flat)
        nested = session_from_beta(flat)
        assert flat == before  # input untouched
        assert nested["output_modalities"] == modalities
        assert nested["audio"]["input"]["format"] == {"type": "audio/pcmu"}
        assert nested["audio"]["output"] == {
            "voice": "alloy",
            "speed": 1.0,
            "format": {"type": "audio/pcm", "rate": 24000},
        }
        assert nested["tool_choice"] == {"type": "function", "name": "get_weather"}
        assert nested["max_output_tokens"] == "inf" and nested["temperature"] == 0.8
        back = session_to_beta(nested)
        assert back == flat
        assert list(back) == list(flat)


def test_session_to_beta_orders_keys_like_the_beta_service() -> None:
    shuffled = dict(reversed(list(BETA_SESSION.items())))
    assert list(session_to_beta(session_from_beta(shuffled))) == list(BETA_SESSION)


def test_client_session_update_maps_exactly_and_drops_the_client_secret() -> None:
    event = {
        "type": "session.update",
        "event_id": "e1",
        "session": {
            "modalities": ["text"],
            "voice": "ash",
            "turn_detection": None,
            "output_audio_format": "g711_alaw",
            "client_secret": {"value": "ek_x"},
        },
    }
    before = copy.deepcopy(event)
    assert client_from_beta_wire(event) == {
        "type": "session.update",
        "event_id": "e1",
        "session": {
            "output_modalities": ["text"],
            "audio": {
                "output": {"voice": "ash", "format": {"type": "audio/pcma"}},
                "input": {"turn_detection": None},
            },
        },
    }
    assert event == before


def test_client_transcription_update_keeps_its_beta_type() -> None:
    event = {
        "type": "transcription_session.update",
        "session": {
            "input_audio_format": "g711_ulaw",
            "input_audio_transcription": {"model": "gpt-4o-transcribe"},
            "include": ["item.input_audio_transcription.logprobs"],
        },
    }
    assert client_from_beta_wire(event) == {
        "type": "transcription_session.update",
        "session": {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "transcription": {"model": "gpt-4o-transcribe"},
                }
            },
            "include": ["item.input_audio_transcription.logprobs"],
        },
    }


def test_client_response_create_and_items() -> None:
    response = client_from_beta_wire(
        {
            "type": "response.create",
            "response": {
                "modalities": ["text", "audio"],
                "max_response_output_tokens": 5,
                "temperature": 0.9,
                "input": [{"type": "message", "role": "assistant", "content": [{"type": "text"}]}],
            },
        }
    )["response"]
    assert response == {
        "output_modalities": ["text", "audio"],  # as listed: the server decides
        "max_output_tokens": 5,
        "temperature": 0.9,
        "input": [{"type": "message", "role": "assistant", "content": [{"type": "output_text"}]}],
    }
    created = client_from_beta_wire(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "assistant", "content": [{"type": "audio"}]},
        }
    )
    assert created["item"]["content"] == [{"type": "output_audio"}]


def _item(**extra: Any) -> dict[str, Any]:
    return {
        "id": "item_1",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_audio", "transcript": "hi"}],
        **extra,
    }


def test_server_item_events_become_beta_ones() -> None:
    added = {"type": "conversation.item.added", "event_id": "ev", "previous_item_id": None}
    added["item"] = _item()
    wire = server_to_beta_wire(added)
    assert wire == {
        "type": "conversation.item.created",
        "event_id": "ev",
        "previous_item_id": None,
        "item": {
            "id": "item_1",
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "audio", "transcript": "hi"}],
        },
    }
    assert list(wire["item"])[:3] == ["id", "object", "type"]
    assert added["item"] == _item()  # input untouched
    assert server_to_beta_wire({"type": "conversation.item.done", "item": _item()}) is None


def test_server_deltas_lose_the_ga_only_fields() -> None:
    delta = {"type": "response.output_text.delta", "delta": "Hi", "obfuscation": "abc"}
    assert server_to_beta_wire(delta) == {"type": "response.text.delta", "delta": "Hi"}
    audio = {"type": "response.output_audio.delta", "delta": "AAAA"}
    assert server_to_beta_wire(audio) == {"type": "response.audio.delta", "delta": "AAAA"}
    args = {
        "type": "response.function_call_arguments.done",
        "call_id": "call_1",
        "arguments": "{}",
        "name": "f",
    }
    assert server_to_beta_wire(args) == {
        "type": "response.function_call_arguments.done",
        "call_id": "call_1",
        "arguments": "{}",
    }
    heard = {
        "type": "conversation.item.input_audio_transcription.delta",
        "delta": "a",
        "obfuscation": "x",
    }
    assert server_to_beta_wire(heard) == {
        "type": "conversation.item.input_audio_transcription.delta",
        "delta": "a",
    }


def test_server_response_becomes_the_flat_beta_response() -> None:
    usage = {
        "total_tokens": 3,
        "input_tokens": 2,
        "output_tokens": 1,
        "input_token_details": {
            "text_tokens": 2,
            "audio_tokens": 0,
            "image_tokens": 0,
            "cached_tokens": 0,
            "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": 1, "audio_tokens": 0},
    }
    ga = {
        "type": "response.done",
        "response": {
            "object": "realtime.response",
            "id": "resp_1",
            "status": "completed",
            "status_details": None,
            "output": [_item()],
            "conversation_id": "conv_1",
            "output_modalities": ["audio"],
            "max_output_tokens": "inf",
            "audio": {"output": {"format": {"type": "audio/pcmu"}, "voice": "alloy"}},
            "usage": usage,
            "metadata": None,
            "temperature": 0.8,
        },
    }
    response = server_to_beta_wire(ga)["response"]  # type: ignore[index]
    # The key order of a recorded beta response (REC-BETA).
    recorded = (
        "object id status status_details output conversation_id modalities voice "
        "output_audio_format temperature max_output_tokens usage metadata"
    )
    assert list(response) == recorded.split()
    assert response["modalities"] == ["text", "audio"]
    assert response["output_audio_format"] == "g711_ulaw"
    assert response["output"][0]["object"] == "realtime.item"
    assert response["output"][0]["content"] == [{"type": "audio", "transcript": "hi"}]
    details = response["usage"]["input_token_details"]
    assert "image_tokens" not in details and "image_tokens" not in details["cached_tokens_details"]
    assert "image_tokens" in usage["input_token_details"]  # input untouched


def test_server_sessions_and_errors() -> None:
    created = server_to_beta_wire(
        {"type": "session.created", "session": session_from_beta(BETA_SESSION)}
    )
    assert created == {"type": "session.created", "session": BETA_SESSION}
    transcription = {
        "type": "transcription",
        "id": "sess_1",
        "object": "realtime.transcription_session",
        "modalities": ["text"],
        "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}}},
        "include": None,
    }
    updated = server_to_beta_wire({"type": "session.updated", "session": transcription})
    assert updated == {
        "type": "transcription_session.updated",
        "session": {
            "id": "sess_1",
            "object": "realtime.transcription_session",
            "modalities": ["text"],
            "input_audio_format": "pcm16",
            "include": None,
        },
    }
    error = {"type": "invalid_request_error", "code": "cannot_update_voice", "message": "m"}
    for ga_param, beta_param in [
        ("session.audio.output.voice", "session.voice"),
        ("session.audio.input.turn_detection.threshold", "session.turn_detection.threshold"),
        ("session.output_modalities", "session.modalities"),
        ("session.max_output_tokens", "session.max_response_output_tokens"),
        ("session.voice", "session.voice"),
        ("item.content[0].audio", "item.content[0].audio"),
        (None, None),
    ]:
        wire = server_to_beta_wire({"type": "error", "error": {**error, "param": ga_param}})
        assert wire is not None and wire["error"]["param"] == beta_param


_GA_ONLY = {
    "conversation.item.done",
    "conversation.item.input_audio_transcription.segment",
    "input_audio_buffer.timeout_triggered",
    "input_audio_buffer.dtmf_event_received",
}


@pytest.mark.parametrize(
    "sample",
    [
        s
        for s in SERVER_SAMPLES
        if s["type"] not in _GA_ONLY
        and "mcp" not in s["type"]
        and s.get("session", {}).get("type") != "transcription"
    ],
    ids=lambda s: str(s["type"]),
)
def test_what_the_server_writes_validates_as_sdk_beta(sample: dict[str, Any]) -> None:
    wire = server_to_beta_wire(sample)
    assert wire is not None
    sdk = BETA_SERVER.validate_python(wire)
    assert sdk.type == wire["type"]
    # ... and the client's reader takes it back to the same GA name.
    assert server_from_beta(wire)["type"] in (sample["type"], "conversation.item.created")

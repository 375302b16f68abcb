"""One realistic GA wire sample of every event type (shapes from shared/protocol.md).

Used by the round-trip, conformance and fuzz tests. Ids look like the real ones.
"""

from __future__ import annotations

from typing import Any

RESP = "resp_CAbcdEfGhIjKlMnOpQrSt"
ITEM = "item_CAbcdEfGhIjKlMnOpQrSu"
USER_ITEM = "item_CAbcdEfGhIjKlMnOpQrSv"
CALL = "call_sHlR7iaFwQ2YQOqm"

GA_SESSION: dict[str, Any] = {
    "type": "realtime",
    "object": "realtime.session",
    "id": "sess_CAbcdEfGhIjKlMnOpQrSw",
    "model": "gpt-realtime",
    "output_modalities": ["audio"],
    "instructions": "Be brief.",
    "tools": [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ],
    "tool_choice": "auto",
    "max_output_tokens": "inf",
    "tracing": None,
    "truncation": "auto",
    "prompt": None,
    "expires_at": 1764000000,
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": None,
            "noise_reduction": None,
            "turn_detection": {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 200,
                "idle_timeout_ms": None,
                "create_response": True,
                "interrupt_response": True,
            },
        },
        "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0},
    },
    "include": None,
}

TRANSCRIPTION_SESSION: dict[str, Any] = {
    "type": "transcription",
    "object": "realtime.transcription_session",
    "id": "sess_CAbcdEfGhIjKlMnOpQrSx",
    "expires_at": 1764000000,
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "transcription": {"model": "gpt-4o-mini-transcribe"},
            "noise_reduction": None,
            "turn_detection": {"type": "server_vad", "threshold": 0.5},
        }
    },
    "include": None,
}

ASSISTANT_ITEM: dict[str, Any] = {
    "id": ITEM,
    "type": "message",
    "status": "completed",
    "role": "assistant",
    "content": [{"type": "output_audio", "transcript": "Hello there."}],
}
USER_AUDIO_ITEM: dict[str, Any] = {
    "id": USER_ITEM,
    "type": "message",
    "status": "completed",
    "role": "user",
    "content": [{"type": "input_audio", "transcript": None}],
}
FUNCTION_CALL_ITEM: dict[str, Any] = {
    "id": ITEM,
    "type": "function_call",
    "status": "completed",
    "name": "get_weather",
    "call_id": CALL,
    "arguments": '{"city":"Paris"}',
}
USAGE: dict[str, Any] = {
    "total_tokens": 127,
    "input_tokens": 120,
    "output_tokens": 7,
    "input_token_details": {
        "text_tokens": 120,
        "audio_tokens": 0,
        "image_tokens": 0,
        "cached_tokens": 64,
        "cached_tokens_details": {"text_tokens": 64, "audio_tokens": 0, "image_tokens": 0},
    },
    "output_token_details": {"text_tokens": 7, "audio_tokens": 0},
}


def _ev(kind: str, n: int, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": f"event_CAbcdEfGhIjKlMnOp{n:04d}", **fields}


_PART = {"response_id": RESP, "item_id": ITEM, "output_index": 0, "content_index": 0}

SERVER_SAMPLES: list[dict[str, Any]] = [
    _ev(
        "error",
        1,
        error={
            "type": "invalid_request_error",
            "code": "response_cancel_not_active",
            "message": "Cancellation failed: no active response found",
            "param": None,
            "event_id": "client-7",
        },
    ),
    _ev("session.created", 2, session=GA_SESSION),
    _ev("session.updated", 3, session=TRANSCRIPTION_SESSION),
    _ev(
        "conversation.created", 4, conversation={"id": "conv_X", "object": "realtime.conversation"}
    ),
    _ev("conversation.item.created", 5, previous_item_id=None, item=USER_AUDIO_ITEM),
    _ev("conversation.item.added", 6, previous_item_id=USER_ITEM, item=ASSISTANT_ITEM),
    _ev("conversation.item.done", 7, previous_item_id=USER_ITEM, item=ASSISTANT_ITEM),
    _ev("conversation.item.retrieved", 8, item=FUNCTION_CALL_ITEM),
    _ev("conversation.item.truncated", 9, item_id=ITEM, content_index=0, audio_end_ms=1500),
    _ev("conversation.item.deleted", 10, item_id=ITEM),
    _ev(
        "conversation.item.input_audio_transcription.delta",
        11,
        item_id=USER_ITEM,
        content_index=0,
        delta="Hel",
        obfuscation="ab12",
    ),
    _ev(
        "conversation.item.input_audio_transcription.completed",
        12,
        item_id=USER_ITEM,
        content_index=0,
        transcript="Hello.",
        usage={"type": "duration", "seconds": 1.2},
    ),
    _ev(
        "conversation.item.input_audio_transcription.failed",
        13,
        item_id=USER_ITEM,
        content_index=0,
        error={"type": "transcription_error", "code": "audio_unintelligible", "message": "x"},
    ),
    _ev(
        "conversation.item.input_audio_transcription.segment",
        14,
        id="seg_1",
        item_id=USER_ITEM,
        content_index=0,
        text="Hello",
        speaker="A",
        start=0.0,
        end=0.8,
    ),
    _ev("input_audio_buffer.committed", 15, previous_item_id=None, item_id=USER_ITEM),
    _ev("input_audio_buffer.cleared", 16),
    _ev("input_audio_buffer.speech_started", 17, audio_start_ms=1200, item_id=USER_ITEM),
    _ev("input_audio_buffer.speech_stopped", 18, audio_end_ms=2600, item_id=USER_ITEM),
    _ev(
        "input_audio_buffer.timeout_triggered",
        19,
        item_id=USER_ITEM,
        audio_start_ms=3000,
        audio_end_ms=9000,
    ),
    _ev("input_audio_buffer.dtmf_event_received", 20, event="5", received_at=1764000000),
    _ev(
        "response.created",
        21,
        response={
            "object": "realtime.response",
            "id": RESP,
            "status": "in_progress",
            "status_details": None,
            "output": [],
            "conversation_id": "conv_CAbcdEfGhIjKlMnOpQrSy",
            "output_modalities": ["audio"],
            "max_output_tokens": "inf",
            "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"}},
            "usage": None,
            "metadata": None,
        },
    ),
    _ev(
        "response.done",
        22,
        response={
            "object": "realtime.response",
            "id": RESP,
            "status": "cancelled",
            "status_details": {"type": "cancelled", "reason": "turn_detected"},
            "output": [dict(ASSISTANT_ITEM, status="incomplete"), FUNCTION_CALL_ITEM],
            "conversation_id": "conv_CAbcdEfGhIjKlMnOpQrSy",
            "output_modalities": ["audio"],
            "max_output_tokens": "inf",
            "usage": USAGE,
            "metadata": {"topic": "weather"},
        },
    ),
    _ev(
        "response.output_item.added",
        23,
        response_id=RESP,
        output_index=0,
        item={**ASSISTANT_ITEM, "status": "in_progress", "content": []},
    ),
    _ev("response.output_item.done", 24, response_id=RESP, output_index=1, item=FUNCTION_CALL_ITEM),
    _ev("response.content_part.added", 25, **_PART, part={"type": "audio", "transcript": ""}),
    _ev("response.content_part.done", 26, **_PART, part={"type": "text", "text": "Hi."}),
    _ev("response.output_text.delta", 27, **_PART, delta="Hi", obfuscation="x1y2"),
    _ev("response.output_text.done", 28, **_PART, text="Hi."),
    _ev("response.output_audio.delta", 29, **_PART, delta="AAABAAIA"),
    _ev("response.output_audio.done", 30, **_PART),
    _ev("response.output_audio_transcript.delta", 31, **_PART, delta="Hel", obfuscation="q"),
    _ev("response.output_audio_transcript.done", 32, **_PART, transcript="Hello there."),
    _ev(
        "response.function_call_arguments.delta",
        33,
        response_id=RESP,
        item_id=ITEM,
        output_index=1,
        call_id=CALL,
        delta='{"ci',
    ),
    _ev(
        "response.function_call_arguments.done",
        34,
        response_id=RESP,
        item_id=ITEM,
        output_index=1,
        call_id=CALL,
        name="get_weather",
        arguments='{"city":"Paris"}',
    ),
    _ev(
        "response.mcp_call_arguments.delta",
        35,
        response_id=RESP,
        item_id=ITEM,
        output_index=0,
        delta="{",
    ),
    _ev(
        "response.mcp_call_arguments.done",
        36,
        response_id=RESP,
        item_id=ITEM,
        output_index=0,
        arguments="{}",
    ),
    _ev("response.mcp_call.in_progress", 37, item_id=ITEM, output_index=0),
    _ev("response.mcp_call.completed", 38, item_id=ITEM, output_index=0),
    _ev("response.mcp_call.failed", 39, item_id=ITEM, output_index=0),
    _ev("mcp_list_tools.in_progress", 40, item_id=ITEM),
    _ev("mcp_list_tools.completed", 41, item_id=ITEM),
    _ev("mcp_list_tools.failed", 42, item_id=ITEM),
    _ev(
        "rate_limits.updated",
        43,
        rate_limits=[
            {"name": "tokens", "limit": 15000000, "remaining": 14999716, "reset_seconds": 0.001}
        ],
    ),
    _ev("output_audio_buffer.started", 44, response_id=RESP),
    _ev("output_audio_buffer.stopped", 45, response_id=RESP),
    _ev("output_audio_buffer.cleared", 46, response_id=RESP),
    _ev("session.created", 49, session=TRANSCRIPTION_SESSION),
]

#: Beta wire events with no beta class of their own: the edge adapter maps each to the
#: canonical class named here (a transcription session in ``session.*`` events).
BETA_WIRE_SERVER_SAMPLES: list[tuple[dict[str, Any], str]] = [
    (
        _ev(
            "transcription_session.updated",
            47,
            session={
                "id": "sess_CAbcdEfGhIjKlMnOpQrSy",
                "object": "realtime.transcription_session",
                "expires_at": 1764000000,
                "modalities": ["text"],
                "input_audio_format": "pcm16",
                "input_audio_transcription": {
                    "model": "gpt-4o-transcribe",
                    "language": "en",
                    "prompt": "",
                },
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 200,
                },
                "input_audio_noise_reduction": {"type": "near_field"},
                "include": ["item.input_audio_transcription.logprobs"],
                "client_secret": {"value": "ek_abc", "expires_at": 1764000000},
            },
        ),
        "session.updated",
    ),
    (
        _ev(
            "transcription_session.created",
            48,
            session={
                "id": "sess_CAbcdEfGhIjKlMnOpQrSz",
                "object": "realtime.transcription_session",
                "expires_at": 1764000000,
                "modalities": ["audio", "text"],
                "input_audio_format": "g711_ulaw",
                "input_audio_transcription": None,
                "turn_detection": {"type": "server_vad"},
                "input_audio_noise_reduction": None,
                "include": None,
                "client_secret": None,
            },
        ),
        "session.created",
    ),
]

CLIENT_SAMPLES: list[dict[str, Any]] = [
    {
        "type": "session.update",
        "event_id": "c1",
        "session": {
            "type": "realtime",
            "instructions": "Be brief.",
            "output_modalities": ["text"],
            "audio": {
                "input": {"format": {"type": "audio/pcmu"}, "turn_detection": None},
                "output": {"voice": "marin"},
            },
            "tools": GA_SESSION["tools"],
            "tool_choice": {"type": "function", "name": "get_weather"},
        },
    },
    {
        "type": "session.update",
        "event_id": "c1t",
        "session": {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": {"model": "gpt-4o-mini-transcribe", "language": "en"},
                    "noise_reduction": {"type": "near_field"},
                    "turn_detection": {"type": "server_vad", "threshold": 0.6},
                }
            },
            "include": ["item.input_audio_transcription.logprobs"],
        },
    },
    {"type": "input_audio_buffer.append", "event_id": "c2", "audio": "AAABAAIA"},
    {"type": "input_audio_buffer.commit", "event_id": "c3"},
    {"type": "input_audio_buffer.clear"},
    {"type": "output_audio_buffer.clear", "event_id": "c5"},
    {
        "type": "conversation.item.create",
        "event_id": "c6",
        "previous_item_id": "root",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "What's the weather in Paris?"}],
        },
    },
    {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": CALL, "output": '{"temp_c": 18}'},
    },
    {"type": "conversation.item.retrieve", "event_id": "c8", "item_id": ITEM},
    {
        "type": "conversation.item.truncate",
        "event_id": "c9",
        "item_id": ITEM,
        "content_index": 0,
        "audio_end_ms": 1500,
    },
    {"type": "conversation.item.delete", "item_id": ITEM},
    {
        "type": "response.create",
        "event_id": "c11",
        "response": {
            "conversation": "none",
            "metadata": {"topic": "weather"},
            "output_modalities": ["text"],
            "instructions": "Summarise.",
            "input": [
                {
                    "type": "message",
                    "role": "system",
                    "content": [{"type": "input_text", "text": "One sentence."}],
                }
            ],
        },
    },
    {"type": "response.create"},
    {"type": "response.cancel", "event_id": "c13", "response_id": RESP},
]

#: Beta wire client events, each with the canonical type it maps to (see above).
BETA_WIRE_CLIENT_SAMPLES: list[tuple[dict[str, Any], str]] = [
    (
        {
            "type": "transcription_session.update",
            "session": {"input_audio_format": "pcm16", "turn_detection": {"type": "server_vad"}},
        },
        "session.update",
    ),
    (
        {
            "type": "transcription_session.update",
            "event_id": "c14",
            "session": {
                "input_audio_format": "g711_alaw",
                "input_audio_transcription": {"model": "whisper-1", "language": "fr"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                "input_audio_noise_reduction": {"type": "far_field"},
                "include": ["item.input_audio_transcription.logprobs"],
                "modalities": ["text"],
            },
        },
        "session.update",
    ),
]

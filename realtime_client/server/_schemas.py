"""Schemas of the client events the server accepts, per dialect.

Built from the ``openai`` 3.57.0 pydantic types (``types/realtime`` for GA,
``types/beta/realtime`` for beta) and protocol.md §3, §5, §6, §7, §13. Ranges the real
service enforces are encoded where a source gives them (PCM rate exactly 24000, speed
0.25 to 1.5, max output tokens 1 to 4096, beta temperature 0.6 to 1.2, metadata 16 pairs
of 64 / 512 characters, client-secret TTL 10 to 7200 s).
"""

from __future__ import annotations

from .validation import (
    Any_,
    Bool,
    Const,
    Int,
    List,
    Nullable,
    Num,
    Obj,
    OneOf,
    Sized,
    Spec,
    Str,
    Union,
)

__all__ = [
    "BETA_CLIENT_EVENT_TYPES",
    "BETA_EVENTS",
    "BETA_ITEM",
    "BETA_SESSION",
    "BETA_TRANSCRIPTION_SESSION",
    "BETA_VOICES",
    "CLIENT_SECRET_REQUEST",
    "GA_CALL_EVENTS",
    "GA_CLIENT_EVENT_TYPES",
    "GA_EVENTS",
    "GA_ITEM",
    "GA_MESSAGE_ROLES",
    "GA_REALTIME_SESSION",
    "GA_TRANSCRIPTION_SESSION",
    "GA_VOICES",
    "MAX_INSTRUCTIONS_CHARS",
    "MAX_TOOLS",
    "MAX_TOOLS_JSON_BYTES",
    "MAX_VAD_MS",
]

GA_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
)
BETA_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse")

#: The GA server's accepted ``type`` list, in the order of its ``invalid_value`` text [PROBE].
_EVENT_ID = Str()


def _event(fields: dict[str, Spec] | None = None, required: tuple[str, ...] = ()) -> Obj:
    base: dict[str, Spec] = {"type": Str(), "event_id": _EVENT_ID}
    base.update(fields or {})
    return Obj(base, required=frozenset(required))


# --- shared pieces -------------------------------------------------------------------

_MAX_TOKENS = OneOf([Int(min=1, max=4096), Str(enum=["inf"])], expected_text="an integer or 'inf'")
_TRACING = Nullable(
    OneOf(
        [
            Str(enum=["auto"]),
            Obj({"workflow_name": Str(), "group_id": Str(), "metadata": Any_()}),
        ],
        expected_text="'auto' or an object",
    )
)
_METADATA = Nullable(Obj(open=True, values=Str(max_length=512), max_keys=16, max_key_length=64))
_FUNCTION_TOOL = Obj(
    {"type": Const("function"), "name": Str(), "description": Str(), "parameters": Any_()},
    required=frozenset({"name"}),
)

# --- GA --------------------------------------------------------------------------------

_GA_FORMAT = Union(
    {
        "audio/pcm": Obj({"type": Const("audio/pcm"), "rate": Int(min=24000, max=24000)}),
        "audio/pcmu": Obj({"type": Const("audio/pcmu")}),
        "audio/pcma": Obj({"type": Const("audio/pcma")}),
    }
)
_GA_TRANSCRIPTION = Nullable(
    Obj(
        {
            "model": Str(),
            "language": Str(),
            "prompt": Str(),
            "delay": Str(enum=["minimal", "low", "medium", "high", "xhigh"]),
            "keywords": List(Str()),
            "languages": List(Str()),
        }
    )
)
_GA_NOISE = Nullable(
    Obj({"type": Str(enum=["near_field", "far_field"]), "strength": Num(min=0.0, max=1.0)})
)
#: Limits on what a session config may hold. protocol.md §13 knows of no numeric limit on
#: instructions or tools (the service bounds them by the model's context, 32k tokens in
#: the SDK's example): these are generous but finite, so that one client cannot make the
#: server copy or keep megabytes per update, per response or per ephemeral key.
#: ``instructions``: 256 Ki characters (about 64k tokens, twice that context).
MAX_INSTRUCTIONS_CHARS = 256 * 1024
#: ``tools``: 128 tools (the function-calling APIs' documented maximum) ...
MAX_TOOLS = 128
#: ... taking at most 256 KiB as compact JSON, all together.
MAX_TOOLS_JSON_BYTES = 256 * 1024
#: ``prefix_padding_ms`` and ``idle_timeout_ms``: protocol.md §8 gives defaults, no range;
#: neither can outlast a session (60 minutes, §13), so longer is refused
#: (``integer_above_max_value``).
MAX_VAD_MS = 3_600_000
_INSTRUCTIONS = Str(max_length=MAX_INSTRUCTIONS_CHARS)
_IDLE_TIMEOUT = Nullable(Int(min=0, max=MAX_VAD_MS))


def _tools(tool: Spec) -> Spec:
    return Sized(List(tool, max_items=MAX_TOOLS), max_bytes=MAX_TOOLS_JSON_BYTES, what="tools")


_SERVER_VAD_FIELDS: dict[str, Spec] = {
    "type": Const("server_vad"),
    "threshold": Num(min=0.0, max=1.0),
    "prefix_padding_ms": Int(min=0, max=MAX_VAD_MS),
    "silence_duration_ms": Int(min=0),
    "create_response": Bool(),
    "interrupt_response": Bool(),
}
_SEMANTIC_VAD_FIELDS: dict[str, Spec] = {
    "type": Const("semantic_vad"),
    "eagerness": Str(enum=["low", "medium", "high", "auto"]),
    "create_response": Bool(),
    "interrupt_response": Bool(),
}
_GA_TURN_DETECTION = Nullable(
    Union(
        {
            "server_vad": Obj({**_SERVER_VAD_FIELDS, "idle_timeout_ms": _IDLE_TIMEOUT}),
            "semantic_vad": Obj(_SEMANTIC_VAD_FIELDS),
        }
    )
)
_GA_AUDIO_INPUT = Obj(
    {
        "format": _GA_FORMAT,
        "transcription": _GA_TRANSCRIPTION,
        "noise_reduction": _GA_NOISE,
        "turn_detection": _GA_TURN_DETECTION,
    }
)
_GA_VOICE = OneOf([Str(), Obj({"id": Str()}, required=frozenset({"id"}))])
_GA_AUDIO_OUTPUT = Obj({"format": _GA_FORMAT, "voice": _GA_VOICE, "speed": Num(min=0.25, max=1.5)})
_MCP_TOOL = Obj(
    {
        "type": Const("mcp"),
        "server_label": Str(),
        "server_url": Str(),
        "connector_id": Str(),
        "tunnel_id": Str(),
        "server_description": Str(),
        "authorization": Str(),
        "headers": Nullable(Obj(open=True, values=Str())),
        "allowed_tools": Any_(),
        "allowed_callers": Any_(),
        "require_approval": Any_(),
        "defer_loading": Bool(),
    },
    required=frozenset({"server_label"}),
)
_GA_TOOL = Union({"function": _FUNCTION_TOOL, "mcp": _MCP_TOOL}, default="function")
_GA_TOOL_CHOICE = OneOf(
    [
        Str(enum=["none", "auto", "required"]),
        Union(
            {
                "function": Obj({"type": Const("function"), "name": Str()}, frozenset({"name"})),
                "mcp": Obj(
                    {"type": Const("mcp"), "server_label": Str(), "name": Str()},
                    frozenset({"server_label"}),
                ),
            }
        ),
    ],
    expected_text="a string or an object",
)
_GA_TRUNCATION = OneOf(
    [
        Str(enum=["auto", "disabled"]),
        Union(
            {
                "retention_ratio": Obj(
                    {
                        "type": Const("retention_ratio"),
                        "retention_ratio": Num(min=0.0, max=1.0),
                        "token_limits": Obj({"post_instructions": Int(min=0)}),
                    },
                    frozenset({"retention_ratio"}),
                )
            }
        ),
    ],
    expected_text="a string or an object",
)
_GA_PROMPT = Nullable(
    Obj({"id": Str(), "version": Nullable(Str()), "variables": Nullable(Any_())}, frozenset({"id"}))
)
_GA_INCLUDE = Nullable(List(Str(enum=["item.input_audio_transcription.logprobs"])))
_REASONING = Obj({"effort": Str(enum=["minimal", "low", "medium", "high", "xhigh"])})

GA_REALTIME_SESSION = Obj(
    {
        "type": Const("realtime"),
        "model": Str(),
        "output_modalities": List(Str(enum=["text", "audio"]), max_items=1),
        "instructions": _INSTRUCTIONS,
        "audio": Obj({"input": _GA_AUDIO_INPUT, "output": _GA_AUDIO_OUTPUT}),
        "include": _GA_INCLUDE,
        "tools": _tools(_GA_TOOL),
        "tool_choice": _GA_TOOL_CHOICE,
        "max_output_tokens": _MAX_TOKENS,
        "tracing": _TRACING,
        "truncation": _GA_TRUNCATION,
        "prompt": _GA_PROMPT,
        "reasoning": _REASONING,
        "parallel_tool_calls": Bool(),
    },
    required=frozenset({"type"}),
)

_GA_TRANSCRIPTION_TURN_DETECTION = Nullable(
    Union(
        {
            "server_vad": Obj({**_SERVER_VAD_FIELDS, "idle_timeout_ms": _IDLE_TIMEOUT}),
            "semantic_vad": Obj(_SEMANTIC_VAD_FIELDS),
        }
    )
)
GA_TRANSCRIPTION_SESSION = Obj(
    {
        "type": Const("transcription"),
        "audio": Obj(
            {
                "input": Obj(
                    {
                        "format": _GA_FORMAT,
                        "transcription": _GA_TRANSCRIPTION,
                        "noise_reduction": _GA_NOISE,
                        "turn_detection": _GA_TRANSCRIPTION_TURN_DETECTION,
                    }
                )
            }
        ),
        "include": _GA_INCLUDE,
    },
    required=frozenset({"type"}),
)

# GA conversation items (types/realtime/realtime_conversation_item_*.py).
_ITEM_COMMON: dict[str, Spec] = {
    "id": Str(),
    "object": Const("realtime.item"),
    "status": Str(enum=["completed", "incomplete", "in_progress"]),
}
_SYSTEM_PART = Union({"input_text": Obj({"type": Const("input_text"), "text": Str()})})
_USER_PART = Union(
    {
        "input_text": Obj({"type": Const("input_text"), "text": Str()}),
        "input_audio": Obj(
            {"type": Const("input_audio"), "audio": Str(), "transcript": Nullable(Str())}
        ),
        "input_image": Obj(
            {
                "type": Const("input_image"),
                "image_url": Str(),
                "detail": Str(enum=["auto", "low", "high"]),
            }
        ),
    }
)
_ASSISTANT_PART = Union(
    {
        "output_text": Obj({"type": Const("output_text"), "text": Str()}),
        "output_audio": Obj(
            {"type": Const("output_audio"), "audio": Str(), "transcript": Nullable(Str())}
        ),
    }
)


def _message(role: str, part: Spec) -> Obj:
    return Obj(
        {**_ITEM_COMMON, "type": Const("message"), "role": Const(role), "content": List(part)},
        required=frozenset({"type", "role", "content"}),
    )


GA_MESSAGE_ROLES: dict[str, Obj] = {
    "system": _message("system", _SYSTEM_PART),
    "user": _message("user", _USER_PART),
    "assistant": _message("assistant", _ASSISTANT_PART),
}
_GA_MESSAGE = Union(GA_MESSAGE_ROLES, key="role")
_GA_ITEM_VARIANTS: dict[str, Obj] = {
    "message": Obj(),  # listed for the error text; _GAItem dispatches messages on role
    "function_call": Obj(
        {
            **_ITEM_COMMON,
            "type": Const("function_call"),
            "call_id": Str(),
            "name": Str(),
            "arguments": Str(),
        },
        required=frozenset({"name", "arguments"}),
    ),
    "function_call_output": Obj(
        {
            **_ITEM_COMMON,
            "type": Const("function_call_output"),
            "call_id": Str(),
            "output": Str(),
        },
        required=frozenset({"call_id", "output"}),
    ),
    "mcp_approval_response": Obj(
        {
            "type": Const("mcp_approval_response"),
            "id": Str(),
            "approval_request_id": Str(),
            "approve": Bool(),
            "reason": Nullable(Str()),
        },
        required=frozenset({"id", "approval_request_id", "approve"}),
    ),
}


class _GAItem(Union):
    """GA items: ``message`` dispatches again on ``role``."""

    def check(self, value: object, path: str) -> object:
        if isinstance(value, dict) and value.get("type") == "message":
            return _GA_MESSAGE.check(value, path)
        return super().check(value, path)


GA_ITEM = _GAItem(_GA_ITEM_VARIANTS)
_GA_INPUT_ITEM = _GAItem(
    {
        **_GA_ITEM_VARIANTS,
        "item_reference": Obj(
            {"type": Const("item_reference"), "id": Str()}, required=frozenset({"id"})
        ),
    }
)

_GA_RESPONSE = Obj(
    {
        "conversation": Str(),
        "metadata": _METADATA,
        "output_modalities": List(Str(enum=["text", "audio"]), max_items=1),
        "instructions": _INSTRUCTIONS,
        "audio": Obj({"output": Obj({"format": _GA_FORMAT, "voice": _GA_VOICE})}),
        "tools": _tools(_GA_TOOL),
        "tool_choice": _GA_TOOL_CHOICE,
        "max_output_tokens": _MAX_TOKENS,
        "input": List(_GA_INPUT_ITEM),
        "prompt": _GA_PROMPT,
        "reasoning": _REASONING,
        "parallel_tool_calls": Bool(),
    }
)


def _dialect_events(
    item: Spec, response: Spec, appends: tuple[str, ...] = ("input_audio_buffer.append",)
) -> dict[str, Obj]:
    """The client events both dialects share, with each dialect's item and response."""
    return {
        **{name: _event({"audio": Str()}, ("audio",)) for name in appends},
        "input_audio_buffer.commit": _event(),
        "input_audio_buffer.clear": _event(),
        "conversation.item.create": _event(
            {"item": item, "previous_item_id": Nullable(Str())}, ("item",)
        ),
        "conversation.item.truncate": _event(
            {"item_id": Str(), "content_index": Int(min=0), "audio_end_ms": Int(min=0)},
            ("item_id", "content_index", "audio_end_ms"),
        ),
        "conversation.item.delete": _event({"item_id": Str()}, ("item_id",)),
        "conversation.item.retrieve": _event({"item_id": Str()}, ("item_id",)),
        "response.create": _event({"response": response}),
        "response.cancel": _event({"response_id": Str()}),
    }


#: Client events a WebRTC or SIP call accepts besides :data:`GA_EVENTS` (protocol.md §1.2).
GA_CALL_EVENTS: dict[str, Obj] = {
    "output_audio_buffer.clear": _event(),
}

GA_EVENTS: dict[str, Obj] = {
    "session.update": _event({"session": Any_()}, ("session",)),
    "session.close": _event(),
    **_dialect_events(
        GA_ITEM,
        _GA_RESPONSE,
        ("input_audio_buffer.append", "session.input_audio_buffer.append"),
    ),
    **GA_CALL_EVENTS,
}
#: The GA client event types in the order the service's error message lists them (the
#: call-only events are known but not listed there).
GA_CLIENT_EVENT_TYPES = tuple(t for t in GA_EVENTS if t not in GA_CALL_EVENTS)


CLIENT_SECRET_REQUEST = Obj(
    {
        "expires_after": Obj(
            {"anchor": Const("created_at"), "seconds": Int(min=10, max=7200)},
            required=frozenset({"anchor"}),
        ),
        "session": Any_(),
    }
)

# --- beta ----------------------------------------------------------------------------

_BETA_FORMAT = Str(enum=["pcm16", "g711_ulaw", "g711_alaw"])
_BETA_TURN_DETECTION = Nullable(
    Obj(
        {
            "type": Str(enum=["server_vad", "semantic_vad"]),
            "threshold": Num(min=0.0, max=1.0),
            "prefix_padding_ms": Int(min=0, max=MAX_VAD_MS),
            "silence_duration_ms": Int(min=0),
            "create_response": Bool(),
            "interrupt_response": Bool(),
            "eagerness": Str(enum=["low", "medium", "high", "auto"]),
        }
    )
)
_BETA_TRANSCRIPTION = Nullable(Obj({"model": Str(), "language": Str(), "prompt": Str()}))
_BETA_NOISE = Nullable(Obj({"type": Str(enum=["near_field", "far_field"])}))
_BETA_TOOL_CHOICE = Str()
_BETA_MODALITIES = List(Str(enum=["text", "audio"]), max_items=2)

BETA_SESSION = Obj(
    {
        "model": Str(),
        "modalities": _BETA_MODALITIES,
        "instructions": _INSTRUCTIONS,
        "voice": Str(),
        "input_audio_format": _BETA_FORMAT,
        "output_audio_format": _BETA_FORMAT,
        "input_audio_transcription": _BETA_TRANSCRIPTION,
        "input_audio_noise_reduction": _BETA_NOISE,
        "turn_detection": _BETA_TURN_DETECTION,
        "tools": _tools(_FUNCTION_TOOL),
        "tool_choice": _BETA_TOOL_CHOICE,
        "temperature": Num(min=0.6, max=1.2),
        "max_response_output_tokens": _MAX_TOKENS,
        "speed": Num(min=0.25, max=1.5),
        "tracing": _TRACING,
        "client_secret": Any_(),
    }
)

_BETA_PART = Obj(
    {
        "type": Str(enum=["input_text", "input_audio", "item_reference", "text", "audio"]),
        "text": Str(),
        "audio": Str(),
        "transcript": Nullable(Str()),
        "id": Str(),
    }
)
BETA_ITEM = Obj(
    {
        "id": Str(),
        "type": Str(enum=["message", "function_call", "function_call_output"]),
        "object": Const("realtime.item"),
        "status": Str(enum=["completed", "incomplete", "in_progress"]),
        "role": Str(enum=["user", "assistant", "system"]),
        "content": List(_BETA_PART),
        "call_id": Str(),
        "name": Str(),
        "arguments": Str(),
        "output": Str(),
    }
)
_BETA_INPUT_ITEM = Obj(
    {
        **BETA_ITEM.fields,
        "type": Str(enum=["message", "function_call", "function_call_output", "item_reference"]),
    }
)

_BETA_RESPONSE = Obj(
    {
        "conversation": Str(),
        "metadata": _METADATA,
        "modalities": _BETA_MODALITIES,
        "instructions": _INSTRUCTIONS,
        "voice": Str(),
        "output_audio_format": _BETA_FORMAT,
        "tools": _tools(_FUNCTION_TOOL),
        "tool_choice": _BETA_TOOL_CHOICE,
        "temperature": Num(min=0.6, max=1.2),
        "max_response_output_tokens": _MAX_TOKENS,
        "input": List(_BETA_INPUT_ITEM),
    }
)

BETA_TRANSCRIPTION_SESSION = Obj(
    {
        "input_audio_format": _BETA_FORMAT,
        "input_audio_transcription": _BETA_TRANSCRIPTION,
        "input_audio_noise_reduction": _BETA_NOISE,
        "turn_detection": _BETA_TURN_DETECTION,
        "modalities": _BETA_MODALITIES,
        "include": Nullable(List(Str())),
        "client_secret": Any_(),
    }
)

BETA_EVENTS: dict[str, Obj] = {
    "session.update": _event({"session": BETA_SESSION}, ("session",)),
    "transcription_session.update": _event({"session": BETA_TRANSCRIPTION_SESSION}, ("session",)),
    **_dialect_events(BETA_ITEM, _BETA_RESPONSE),
    **GA_CALL_EVENTS,
}
#: The beta client event types in the order the beta service's error message lists them.
BETA_CLIENT_EVENT_TYPES = tuple(t for t in BETA_EVENTS if t not in GA_CALL_EVENTS)

"""The beta dialect (``OpenAI-Beta: realtime=v1``) as an edge adapter.

Everything above this module speaks GA. Here, beta wire dicts are mapped to GA-shaped
dicts (and back) before the canonical models see them:

* event names: ``response.audio.delta`` ⇄ ``response.output_audio.delta``, likewise
  ``response.text.*`` and ``response.audio_transcript.*``; the early
  ``output_audio_buffer.audio_started/stopped/cleared`` read as ``started/stopped/cleared``;
* the flat session ⇄ the nested ``session.audio.input/output`` (``voice``,
  ``input_audio_format: "pcm16"`` ⇄ ``audio.input.format: {"type": "audio/pcm", …}``,
  ``turn_detection``, ``max_response_output_tokens`` ⇄ ``max_output_tokens`` …);
* ``modalities`` ⇄ ``output_modalities`` (GA allows one: ``["audio"]`` carries a transcript,
  so beta ``["text", "audio"]`` becomes ``["audio"]`` and comes back as ``["text", "audio"]``);
* assistant content parts ``text`` / ``audio`` ⇄ ``output_text`` / ``output_audio``;
* a forced tool: beta ``tool_choice: "get_weather"`` ⇄ GA
  ``{"type": "function", "name": "get_weather"}``;
* transcription sessions: beta ``transcription_session.update`` / ``.created`` /
  ``.updated`` with the flat transcription session (``input_audio_format``,
  ``input_audio_transcription``, ``turn_detection``, ``input_audio_noise_reduction``,
  ``include``) ⇄ ``session.update`` / ``session.created`` / ``session.updated`` with
  ``session.type == "transcription"`` and ``session.audio.input``. Above the edge a
  transcription session is a :class:`~realtime_client.events.TranscriptionSession` in
  the canonical session events; no beta-only class exists.

Fields with no GA counterpart (``temperature``, ``client_secret`` …) pass through
unchanged. The functions never mutate their input.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BETA_SERVER_TYPES",
    "BETA_TRANSCRIPTION_TYPES",
    "client_from_beta",
    "client_to_beta",
    "server_from_beta",
    "server_to_beta",
]

#: Beta server event type → canonical (GA) type, for the names that differ.
BETA_SERVER_TYPES: dict[str, str] = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "output_audio_buffer.audio_started": "output_audio_buffer.started",
    "output_audio_buffer.audio_stopped": "output_audio_buffer.stopped",
    "output_audio_buffer.audio_cleared": "output_audio_buffer.cleared",
}
#: Beta transcription-session event type → canonical type (the session is
#: ``type: "transcription"``). ``transcription_session.created`` is not in the SDK's beta
#: union, but beta servers send it as the first event of a transcription session.
BETA_TRANSCRIPTION_TYPES: dict[str, str] = {
    "transcription_session.update": "session.update",
    "transcription_session.created": "session.created",
    "transcription_session.updated": "session.updated",
}
_GA_TRANSCRIPTION_TYPES = {ga: beta for beta, ga in BETA_TRANSCRIPTION_TYPES.items()}
_GA_SERVER_TYPES: dict[str, str] = {
    ga: beta for beta, ga in BETA_SERVER_TYPES.items() if "audio_buffer" not in beta
}
_SERVER_SESSION_TYPES = frozenset(
    {
        "session.created",
        "session.updated",
        "transcription_session.created",
        "transcription_session.updated",
    }
)

_BETA_FORMATS: dict[str, dict[str, Any]] = {
    "pcm16": {"type": "audio/pcm", "rate": 24_000},
    "g711_ulaw": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
}
_GA_FORMATS = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}

_BETA_CONTENT = {"text": "output_text", "audio": "output_audio"}
_GA_CONTENT = {v: k for k, v in _BETA_CONTENT.items()}


def _format_from_beta(value: Any) -> Any:
    if isinstance(value, str):
        return dict(_BETA_FORMATS.get(value, {"type": value}))
    return value


def _format_to_beta(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return _GA_FORMATS.get(value["type"], value["type"])
    return value


_TOOL_CHOICE_WORDS = frozenset({"auto", "none", "required"})


def _tool_choice_from_beta(value: Any) -> Any:
    # Beta names a forced function by its bare name; GA uses {"type": "function", ...}.
    if isinstance(value, str) and value not in _TOOL_CHOICE_WORDS:
        return {"type": "function", "name": value}
    return value


def _tool_choice_to_beta(value: Any) -> Any:
    if isinstance(value, dict) and value.get("type") == "function" and "name" in value:
        return value["name"]
    return value


def _modalities_from_beta(value: Any) -> Any:
    if isinstance(value, list):
        return ["audio"] if "audio" in value else list(value)
    return value


def _modalities_to_beta(value: Any) -> Any:
    if isinstance(value, list):
        return ["text", "audio"] if "audio" in value else list(value)
    return value


def _item_map(item: Any, table: dict[str, str]) -> Any:
    if not isinstance(item, dict) or not isinstance(item.get("content"), list):
        return item
    content = [
        {**part, "type": table[part["type"]]}
        if isinstance(part, dict) and isinstance(part.get("type"), str) and part["type"] in table
        else part
        for part in item["content"]
    ]
    return {**item, "content": content}


def _items_map(items: Any, table: dict[str, str]) -> Any:
    if isinstance(items, list):
        return [_item_map(item, table) for item in items]
    return items


# Flat beta key → (GA audio direction or None for top level, GA key, value mapper).
_FLAT_TO_NESTED: dict[str, tuple[str | None, str, Any]] = {
    "modalities": (None, "output_modalities", _modalities_from_beta),
    "max_response_output_tokens": (None, "max_output_tokens", None),
    "tool_choice": (None, "tool_choice", _tool_choice_from_beta),
    "voice": ("output", "voice", None),
    "speed": ("output", "speed", None),
    "output_audio_format": ("output", "format", _format_from_beta),
    "input_audio_format": ("input", "format", _format_from_beta),
    "input_audio_transcription": ("input", "transcription", None),
    "input_audio_noise_reduction": ("input", "noise_reduction", None),
    "turn_detection": ("input", "turn_detection", None),
}
_NESTED_TO_FLAT: dict[tuple[str | None, str], tuple[str, Any]] = {
    (where, ga_key): (beta_key, None) for beta_key, (where, ga_key, _) in _FLAT_TO_NESTED.items()
}
_NESTED_TO_FLAT[(None, "output_modalities")] = ("modalities", _modalities_to_beta)
_NESTED_TO_FLAT[(None, "tool_choice")] = ("tool_choice", _tool_choice_to_beta)
_NESTED_TO_FLAT[("output", "format")] = ("output_audio_format", _format_to_beta)
_NESTED_TO_FLAT[("input", "format")] = ("input_audio_format", _format_to_beta)


def _flat_to_nested(obj: Any) -> Any:
    """A beta flat session / response / response params → the GA nested shape."""
    if not isinstance(obj, dict):
        return obj
    out: dict[str, Any] = {}
    audio: dict[str, dict[str, Any]] = {}
    for key, value in obj.items():
        rule = _FLAT_TO_NESTED.get(key)
        if rule is None:
            if key in ("output", "input"):
                value = _items_map(value, _BETA_CONTENT)
            out[key] = value
            continue
        where, ga_key, mapper = rule
        mapped = mapper(value) if mapper else value
        if where is None:
            out[ga_key] = mapped
        else:
            audio.setdefault(where, {})[ga_key] = mapped
    if audio:
        out["audio"] = audio
    return out


def _nested_to_flat(obj: Any, *, tokens_key: str = "max_response_output_tokens") -> Any:
    """A GA nested session / response / response params → the beta flat shape."""
    if not isinstance(obj, dict):
        return obj
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key == "audio" and isinstance(value, dict):
            for where in ("input", "output"):
                sub = value.get(where)
                if not isinstance(sub, dict):
                    continue
                for ga_key, ga_value in sub.items():
                    flat_key, mapper = _NESTED_TO_FLAT.get((where, ga_key), (ga_key, None))
                    out[flat_key] = mapper(ga_value) if mapper else ga_value
            continue
        if key == "type" and value == "realtime":
            continue  # beta sessions carry no type
        if key == "max_output_tokens":
            out[tokens_key] = value
        elif key == "output_modalities":
            out["modalities"] = _modalities_to_beta(value)
        elif key == "tool_choice":
            out[key] = _tool_choice_to_beta(value)
        elif key in ("output", "input"):
            out[key] = _items_map(value, _GA_CONTENT)
        else:
            out[key] = value
    return out


# Flat beta transcription-session key → GA ``audio.input`` key. Every other key
# (``include``, ``modalities``, ``client_secret``, ``id``, ``object`` …) passes through.
_TRANSCRIPTION_INPUT: dict[str, str] = {
    "input_audio_format": "format",
    "input_audio_transcription": "transcription",
    "input_audio_noise_reduction": "noise_reduction",
    "turn_detection": "turn_detection",
}


def _transcription_from_beta(obj: Any) -> Any:
    """A beta flat transcription session → the GA ``type: "transcription"`` shape."""
    if not isinstance(obj, dict):
        return obj
    out: dict[str, Any] = {"type": "transcription"}
    audio_in: dict[str, Any] = {}
    for key, value in obj.items():
        ga_key = _TRANSCRIPTION_INPUT.get(key)
        if ga_key is None:
            out[key] = value
        else:
            audio_in[ga_key] = _format_from_beta(value) if ga_key == "format" else value
    if audio_in:
        out["audio"] = {"input": audio_in}
    return out


def _transcription_to_beta(obj: dict[str, Any]) -> dict[str, Any]:
    """A GA transcription session → the beta flat transcription-session shape."""
    flat: dict[str, Any] = _nested_to_flat(obj)
    del flat["type"]  # "transcription"; beta sessions carry no type
    return flat


def _is_transcription(session: Any) -> bool:
    return isinstance(session, dict) and session.get("type") == "transcription"


def _session_from_beta(event: dict[str, Any], kind: Any) -> None:
    """Map a beta session event (client or server); ``event`` is a fresh copy, edited."""
    if kind in BETA_TRANSCRIPTION_TYPES:
        event["type"] = BETA_TRANSCRIPTION_TYPES[kind]
        if "session" in event:
            event["session"] = _transcription_from_beta(event["session"])
    elif "session" in event:
        event["session"] = _flat_to_nested(event["session"])


def _session_to_beta(event: dict[str, Any], kind: Any) -> None:
    """Map a canonical session event (client or server); ``event`` is a fresh copy, edited."""
    if "session" not in event:
        return
    if _is_transcription(event["session"]):
        event["type"] = _GA_TRANSCRIPTION_TYPES[kind]
        event["session"] = _transcription_to_beta(event["session"])
    else:
        event["session"] = _nested_to_flat(event["session"])


def server_from_beta(event: dict[str, Any]) -> dict[str, Any]:
    """Map a beta server event dict to its canonical (GA) shape."""
    kind = event.get("type")
    out = dict(event)
    if isinstance(kind, str) and kind in BETA_SERVER_TYPES:
        out["type"] = BETA_SERVER_TYPES[kind]
    if kind in _SERVER_SESSION_TYPES:
        _session_from_beta(out, kind)
    if "response" in out and kind in ("response.created", "response.done"):
        # The beta *response object* already says max_output_tokens.
        out["response"] = _flat_to_nested(out["response"])
    if "item" in out:
        out["item"] = _item_map(out["item"], _BETA_CONTENT)
    return out


def server_to_beta(event: dict[str, Any]) -> dict[str, Any]:
    """Map a canonical (GA) server event dict to the beta wire shape."""
    kind = event.get("type")
    out = dict(event)
    if isinstance(kind, str) and kind in _GA_SERVER_TYPES:
        out["type"] = _GA_SERVER_TYPES[kind]
    if kind in ("session.created", "session.updated"):
        _session_to_beta(out, kind)
    if "response" in out and kind in ("response.created", "response.done"):
        out["response"] = _nested_to_flat(out["response"], tokens_key="max_output_tokens")
    if "item" in out:
        out["item"] = _item_map(out["item"], _GA_CONTENT)
    return out


def client_from_beta(event: dict[str, Any]) -> dict[str, Any]:
    """Map a beta client event dict to its canonical (GA) shape."""
    kind = event.get("type")
    out = dict(event)
    if kind in ("session.update", "transcription_session.update"):
        _session_from_beta(out, kind)
    elif kind == "response.create" and isinstance(out.get("response"), dict):
        out["response"] = _flat_to_nested(out["response"])
    if "item" in out:
        out["item"] = _item_map(out["item"], _BETA_CONTENT)
    return out


def client_to_beta(event: dict[str, Any]) -> dict[str, Any]:
    """Map a canonical (GA) client event dict to the beta wire shape."""
    kind = event.get("type")
    out = dict(event)
    if kind == "session.update":
        _session_to_beta(out, kind)
    elif kind == "response.create" and isinstance(out.get("response"), dict):
        out["response"] = _nested_to_flat(out["response"])
    if "item" in out:
        out["item"] = _item_map(out["item"], _GA_CONTENT)
    return out

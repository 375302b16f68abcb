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

The client reads server events (:func:`server_from_beta`) and writes client events
(:func:`client_to_beta`). A server (the local one in :mod:`realtime_client.server`) does
the opposite and must be exact about it: :func:`client_from_beta_wire` reads a beta client
event into the GA shape without loss (the session keeps ``modalities`` as listed, through
:func:`session_from_beta`), and :func:`server_to_beta_wire` writes a GA server event as the
beta service sends it (``conversation.item.added`` as ``conversation.item.created``, no
``conversation.item.done``, items with ``object``, the flat session and response in the
beta key order, none of GA's ``obfuscation``, ``image_tokens`` or argument ``name``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BETA_SERVER_TYPES",
    "BETA_TRANSCRIPTION_TYPES",
    "client_from_beta",
    "client_from_beta_wire",
    "client_to_beta",
    "server_from_beta",
    "server_to_beta",
    "server_to_beta_wire",
    "session_from_beta",
    "session_to_beta",
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


def _flat_to_nested(obj: Any, *, exact: bool = False) -> Any:
    """A beta flat session / response / response params → the GA nested shape.

    ``exact`` keeps ``modalities`` as listed (a server echoes the client's list back).
    """
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
        if exact and key == "modalities":
            mapper = None
        mapped = mapper(value) if mapper else value
        if where is None:
            out[ga_key] = mapped
        else:
            audio.setdefault(where, {})[ga_key] = mapped
    if audio:
        out["audio"] = audio
    return out


def _nested_to_flat(
    obj: Any, *, tokens_key: str = "max_response_output_tokens", exact: bool = False
) -> Any:
    """A GA nested session / response / response params → the beta flat shape.

    ``exact`` keeps ``output_modalities`` as listed (the inverse of the exact
    :func:`_flat_to_nested`).
    """
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
            out["modalities"] = value if exact else _modalities_to_beta(value)
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


# --- the server's side of the edge -------------------------------------------------------
#
# A server reads beta *client* events and writes beta *server* events: the mirror of what
# the client does. The canonical mapping above serves the client's typed models, and a
# little loss is fine there (``["audio", "text"]`` reads as GA ``["audio"]``). A server
# must be exact instead: the session it echoes is the one the client set, and what it
# writes is the beta service's wire, GA-only details removed and beta-only ones added.

#: Key order of the beta service's session object (REC-BETA).
_BETA_SESSION_KEYS = (
    "id",
    "object",
    "model",
    "expires_at",
    "modalities",
    "instructions",
    "voice",
    "turn_detection",
    "input_audio_format",
    "output_audio_format",
    "input_audio_transcription",
    "input_audio_noise_reduction",
    "tool_choice",
    "temperature",
    "max_response_output_tokens",
    "speed",
    "tracing",
    "client_secret",
    "tools",
)
#: Key order of the beta service's response object (REC-BETA).
_BETA_RESPONSE_KEYS = (
    "object",
    "id",
    "status",
    "status_details",
    "output",
    "conversation_id",
    "modalities",
    "voice",
    "output_audio_format",
    "temperature",
    "max_output_tokens",
    "usage",
    "metadata",
)
#: GA server event type → what a beta server sends instead (``None``: nothing).
_GA_TO_BETA_SERVER: dict[str, str | None] = {
    **_GA_SERVER_TYPES,
    "conversation.item.added": "conversation.item.created",
    "conversation.item.done": None,
}


def _ordered(obj: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``obj`` with ``keys`` first, in that order; any other key after, as it was."""
    out = {key: obj[key] for key in keys if key in obj}
    out.update((key, value) for key, value in obj.items() if key not in out)
    return out


def session_from_beta(session: dict[str, Any]) -> dict[str, Any]:
    """A beta flat session (whole, or partial as in ``session.update``) in the GA shape.

    Lossless, unlike the canonical mapping: ``modalities`` stays as listed (under
    ``output_modalities``), so :func:`session_to_beta` gives back exactly ``session``.
    Fields with no GA counterpart (``temperature``, ``client_secret`` …) pass through.
    """
    nested: dict[str, Any] = _flat_to_nested(session, exact=True)
    return nested


def session_to_beta(session: dict[str, Any]) -> dict[str, Any]:
    """A GA-shaped session back to the beta flat session, keys in the beta service's order.

    The inverse of :func:`session_from_beta`.
    """
    flat: dict[str, Any] = _nested_to_flat(session, exact=True)
    return _ordered(flat, _BETA_SESSION_KEYS)


def client_from_beta_wire(event: dict[str, Any]) -> dict[str, Any]:
    """A beta client event as a server reads it: the GA shape, exactly.

    * ``session.update``: the flat session through :func:`session_from_beta`; a
      ``client_secret`` in it is dropped (the server owns the secret, it is not config).
    * ``transcription_session.update`` keeps its type (it has no GA counterpart a server
      could tell apart from a GA transcription ``session.update``); its session takes the
      GA ``{"type": "transcription", "audio": {"input": …}}`` shape.
    * ``response.create``: the flat response parameters nested, ``modalities`` as listed.
    * items: assistant content ``text`` / ``audio`` → ``output_text`` / ``output_audio``.
    """
    kind = event.get("type")
    out = dict(event)
    session = out.get("session")
    if kind == "session.update" and isinstance(session, dict):
        out["session"] = session_from_beta(
            {key: value for key, value in session.items() if key != "client_secret"}
        )
    elif kind == "transcription_session.update" and isinstance(session, dict):
        out["session"] = _transcription_from_beta(session)
    elif kind == "response.create" and isinstance(out.get("response"), dict):
        out["response"] = _flat_to_nested(out["response"], exact=True)
    if "item" in out:
        out["item"] = _item_map(out["item"], _BETA_CONTENT)
    return out


def _item_to_beta(item: Any) -> Any:
    """A GA item as the beta service shows it: beta content types, ``object`` after ``id``."""
    mapped = _item_map(item, _GA_CONTENT)
    if isinstance(mapped, dict) and "id" in mapped and "object" not in mapped:
        rest = {key: value for key, value in mapped.items() if key != "id"}
        return {"id": mapped["id"], "object": "realtime.item", **rest}
    return mapped


def _usage_to_beta(usage: Any) -> Any:
    """Beta usage has no ``image_tokens`` (GA added them)."""
    if not isinstance(usage, dict):
        return usage
    out = dict(usage)
    details = out.get("input_token_details")
    if isinstance(details, dict):
        details = {key: value for key, value in details.items() if key != "image_tokens"}
        cached = details.get("cached_tokens_details")
        if isinstance(cached, dict):
            details["cached_tokens_details"] = {
                key: value for key, value in cached.items() if key != "image_tokens"
            }
        out["input_token_details"] = details
    return out


def _response_to_beta(response: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = _nested_to_flat(
        {key: value for key, value in response.items() if key != "output"},
        tokens_key="max_output_tokens",
    )
    if "output" in response:
        output = response["output"]
        flat["output"] = (
            [_item_to_beta(item) for item in output] if isinstance(output, list) else output
        )
    if "usage" in flat:
        flat["usage"] = _usage_to_beta(flat["usage"])
    return _ordered(flat, _BETA_RESPONSE_KEYS)


def _param_to_beta(param: Any) -> Any:
    """An error's ``param`` path in GA session / response terms → the beta path."""
    if not isinstance(param, str):
        return param
    head, _, rest = param.partition(".")
    if head not in ("session", "response"):
        return param
    parts = rest.split(".")
    if len(parts) >= 3 and parts[0] == "audio" and parts[1] in ("input", "output"):
        rule = _NESTED_TO_FLAT.get((parts[1], parts[2]))
        if rule is not None:
            return ".".join([head, rule[0], *parts[3:]])
    elif parts[0] == "output_modalities":
        return ".".join([head, "modalities", *parts[1:]])
    elif parts[0] == "max_output_tokens" and head == "session":
        return ".".join([head, "max_response_output_tokens", *parts[1:]])
    return param


def server_to_beta_wire(event: dict[str, Any]) -> dict[str, Any] | None:
    """A GA server event as the beta service sends it, or ``None`` if it sends none.

    The server's mirror of :func:`server_from_beta`, exact where that one is lenient:

    * names: ``response.output_audio.delta`` → ``response.audio.delta`` (and the other
      renames); ``conversation.item.added`` → ``conversation.item.created``;
      ``conversation.item.done`` has no beta counterpart (``None``);
    * sessions: the flat session of :func:`session_to_beta`; a ``type: "transcription"``
      session is a ``transcription_session.created`` / ``.updated``;
    * responses: the flat response in the beta key order, without GA's ``image_tokens``;
    * items: beta content types and ``"object": "realtime.item"``;
    * fields GA added: ``obfuscation`` on deltas, ``name`` on
      ``response.function_call_arguments.done``;
    * an ``error`` whose ``param`` names a GA session path names the beta one.

    Never mutates ``event``; nested values it does not change are shared.
    """
    kind = event.get("type")
    if isinstance(kind, str) and kind in _GA_TO_BETA_SERVER:
        renamed = _GA_TO_BETA_SERVER[kind]
        if renamed is None:
            return None
    else:
        renamed = kind
    out = {key: value for key, value in event.items() if key != "obfuscation"}
    out["type"] = renamed
    if kind in ("session.created", "session.updated") and isinstance(out.get("session"), dict):
        if _is_transcription(out["session"]):
            out["type"] = _GA_TRANSCRIPTION_TYPES[kind]
            out["session"] = _transcription_to_beta(out["session"])
        else:
            out["session"] = session_to_beta(out["session"])
    elif kind in ("response.created", "response.done") and isinstance(out.get("response"), dict):
        out["response"] = _response_to_beta(out["response"])
    elif kind == "response.function_call_arguments.done":
        out.pop("name", None)
    elif kind == "error" and isinstance(out.get("error"), dict) and "param" in out["error"]:
        out["error"] = {**out["error"], "param": _param_to_beta(out["error"]["param"])}
    if "item" in out:
        out["item"] = _item_to_beta(out["item"])
    return out

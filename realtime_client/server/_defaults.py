"""Session defaults per dialect and kind, and how a partial config fills in.

The session keeps its config in the GA shape whatever the dialect. What the dialects do
differently beyond the wire shape is here, in :class:`SessionDefaults`: the initial config
(the real services' ``session.created``, protocol.md §5.2), the VAD defaults an update
implies, and the modality of a response when the session lists none.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from realtime_client.events.beta import session_from_beta

from ._common import Dialect, SessionKind

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "DEFAULTS",
    "MODEL_DEFAULTS",
    "ModelDefaults",
    "SessionDefaults",
    "beta_default_session",
    "ga_default_session",
    "merge_session",
    "model_defaults",
    "normalize_beta_session",
    "normalize_ga_session",
]

#: Opening of the real service's default instructions (protocol.md §5.2).
DEFAULT_INSTRUCTIONS = (
    "Your knowledge cutoff is 2023-10. You are a helpful, witty, and friendly AI. "
    "You are a local stand-in for the Realtime API, so your answers are scripted."
)


@dataclass(frozen=True)
class ModelDefaults:
    """What one model's ``session.created`` says by default (protocol.md §16.1).

    Attributes:
        voice: ``audio.output.voice``.
        silence_duration_ms: ``server_vad``'s silence that ends a turn.
        phase: Assistant messages carry ``phase`` (``commentary`` / ``final_answer``).
        reasoning: ``response.done`` usage reports ``reasoning_tokens``.
    """

    voice: str = "alloy"
    silence_duration_ms: int = 200
    phase: bool = False
    reasoning: bool = False


#: Defaults by model-name prefix; the longest matching prefix wins, anything else gets
#: ``ModelDefaults()`` (``gpt-realtime``, the preview models). Add a row for a new model.
MODEL_DEFAULTS: dict[str, ModelDefaults] = {
    "gpt-realtime-2": ModelDefaults(
        voice="marin", silence_duration_ms=500, phase=True, reasoning=True
    ),
}


def model_defaults(model: str | None) -> ModelDefaults:
    """The defaults of ``model`` (by the longest prefix in :data:`MODEL_DEFAULTS`)."""
    best = ""
    for prefix in MODEL_DEFAULTS:
        if (model or "").startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return MODEL_DEFAULTS[best] if best else ModelDefaults()


def _turn_detection_defaults(
    vad_type: str, *, silence_ms: int = 200, idle_timeout: bool = True, responds: bool = True
) -> dict[str, Any]:
    """A VAD config's defaults in the real key order.

    ``idle_timeout``: the GA realtime session's ``idle_timeout_ms``; ``responds``: the
    ``create_response`` / ``interrupt_response`` pair (not in a GA transcription session's
    ``server_vad``).
    """
    if vad_type == "semantic_vad":
        return {
            "type": "semantic_vad",
            "eagerness": "auto",
            "create_response": True,
            "interrupt_response": True,
        }
    out: dict[str, Any] = {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": silence_ms,
    }
    if idle_timeout:
        out["idle_timeout_ms"] = None
    if responds:
        out.update(create_response=True, interrupt_response=True)
    return out


def _ga_turn_detection_defaults(
    kind: SessionKind, vad_type: str, model: str | None = None
) -> dict[str, Any]:
    realtime = kind == "realtime"
    return _turn_detection_defaults(
        vad_type,
        silence_ms=model_defaults(model).silence_duration_ms,
        idle_timeout=realtime,
        responds=realtime,
    )


def _beta_turn_detection_defaults(vad_type: str) -> dict[str, Any]:
    return _turn_detection_defaults(vad_type, idle_timeout=False)


def _fill_turn_detection(holder: dict[str, Any], defaults: Callable[[str], dict[str, Any]]) -> None:
    """Fill ``holder["turn_detection"]`` (when an object) from ``defaults(vad_type)``."""
    td = holder.get("turn_detection")
    if isinstance(td, dict):
        holder["turn_detection"] = _fill(defaults(td.get("type", "server_vad")), td)


def ga_default_session(
    session_id: str, model: str, expires_at: int, kind: SessionKind = "realtime"
) -> dict[str, Any]:
    """The GA ``session.created`` payload, keys in the real order (protocol.md §5.2)."""
    audio_in = {
        "format": {"type": "audio/pcm", "rate": 24000},
        "transcription": None,
        "noise_reduction": None,
        "turn_detection": _ga_turn_detection_defaults(kind, "server_vad", model),
    }
    if kind == "transcription":
        return {
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": session_id,
            "expires_at": expires_at,
            "audio": {"input": audio_in},
            "include": None,
        }
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": expires_at,
        "audio": {
            "input": audio_in,
            "output": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "voice": model_defaults(model).voice,
                "speed": 1.0,
            },
        },
        "include": None,
    }


def beta_default_session(session_id: str, model: str, expires_at: int) -> dict[str, Any]:
    """The beta ``session.created`` payload, flat (protocol.md §5.2, REC-BETA)."""
    return {
        "id": session_id,
        "object": "realtime.session",
        "model": model,
        "expires_at": expires_at,
        "modalities": ["audio", "text"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "voice": "alloy",
        "turn_detection": _beta_turn_detection_defaults("server_vad"),
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "input_audio_transcription": None,
        "input_audio_noise_reduction": None,
        "tool_choice": "auto",
        "temperature": 0.8,
        "max_response_output_tokens": "inf",
        "speed": 1.0,
        "tracing": None,
        "client_secret": None,
        "tools": [],
    }


def merge_session(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``update`` into a copy of ``base``.

    Objects merge key by key, except that an object whose ``type`` changes is replaced
    (a new audio format or VAD type starts from its own defaults). Lists and scalars
    replace.
    """
    out = copy.deepcopy(base)
    for key, value in update.items():
        old = out.get(key)
        if (
            isinstance(value, dict)
            and isinstance(old, dict)
            and value.get("type", old.get("type")) == old.get("type")
        ):
            out[key] = merge_session(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _fill(template: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """``given`` on top of ``template``'s defaults, in the template's key order."""
    out = dict(template)
    out.update(given)
    return out


def normalize_ga_session(state: dict[str, Any], kind: SessionKind) -> dict[str, Any]:
    """Fill the defaults a partial GA session object implies (formats, VAD, tools)."""
    if isinstance(state.get("tools"), list):
        state["tools"] = [{"type": t.get("type", "function"), **t} for t in state["tools"]]
    audio = state.get("audio")
    if not isinstance(audio, dict):
        return state
    model = state.get("model")

    def ga_vad(vad_type: str) -> dict[str, Any]:
        return _ga_turn_detection_defaults(kind, vad_type, model)

    for side in ("input", "output"):
        part = audio.get(side)
        if not isinstance(part, dict):
            continue
        fmt = part.get("format")
        if isinstance(fmt, dict) and fmt.get("type", "audio/pcm") == "audio/pcm":
            part["format"] = {"type": "audio/pcm", "rate": fmt.get("rate", 24000)}
        _fill_turn_detection(part, ga_vad)
    return state


def normalize_beta_session(state: dict[str, Any]) -> dict[str, Any]:
    """Fill the defaults a partial beta session implies (flat shape)."""
    _fill_turn_detection(state, _beta_turn_detection_defaults)
    return state


@dataclass(frozen=True)
class SessionDefaults:
    """What one dialect's sessions start from and how their updates fill in (GA shape).

    Attributes:
        dialect: ``"ga"`` or ``"beta"``.
        empty_modalities: A response's modalities when the session and the response
            list none: GA falls back to its default (audio), beta speaks only when
            ``"audio"`` is listed.
    """

    dialect: Dialect
    empty_modalities: tuple[str, ...]

    def initial_state(
        self, session_id: str, model: str, expires_at: int, kind: SessionKind
    ) -> dict[str, Any]:
        """The config of ``session.created``, in the GA shape.

        A beta session starts from the beta service's defaults (flat, mapped to the GA
        shape), whatever the kind.
        """
        if self.dialect == "beta":
            return session_from_beta(beta_default_session(session_id, model, expires_at))
        return ga_default_session(session_id, model, expires_at, kind)

    def normalize(self, state: dict[str, Any], kind: SessionKind) -> dict[str, Any]:
        """Fill the defaults a merged GA-shaped config implies, in place; returns it.

        GA fills format rates, VAD fields and tool types; beta fills its own VAD
        fields only (a beta tool is echoed as given).
        """
        if self.dialect == "ga":
            return normalize_ga_session(state, kind)
        audio_in = (state.get("audio") or {}).get("input")
        if isinstance(audio_in, dict):
            _fill_turn_detection(audio_in, _beta_turn_detection_defaults)
        return state


#: The defaults of each dialect.
DEFAULTS: dict[Dialect, SessionDefaults] = {
    "ga": SessionDefaults("ga", ("audio",)),
    "beta": SessionDefaults("beta", ("text",)),
}

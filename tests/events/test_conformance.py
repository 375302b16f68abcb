"""Conformance with the official ``openai`` package's realtime types (the tie-breaker).

* Every event our models serialize validates against the SDK's own server / client
  event unions, GA and beta, and lands on the SDK class for the same wire type.
* Events built from the SDK's models parse into our specific classes, never the
  generic fallback.
* The beta transcription-session edge: what we send as ``transcription_session.update``
  is a valid ``TranscriptionSessionUpdateParam`` (no key the SDK does not know), and the
  server's ``transcription_session.updated`` built by the SDK parses into the canonical
  ``SessionUpdated`` with a transcription session.
"""

from __future__ import annotations

from typing import Any, get_type_hints

import pytest
from openai.types.beta.realtime import RealtimeServerEvent as BetaServerEvent
from openai.types.beta.realtime.realtime_client_event import (
    RealtimeClientEvent as BetaClientEvent,
)
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from pydantic import TypeAdapter

from realtime_client import events as ev
from tests.events.samples import (
    BETA_WIRE_CLIENT_SAMPLES,
    BETA_WIRE_SERVER_SAMPLES,
    CLIENT_SAMPLES,
    SERVER_SAMPLES,
)

GA_SERVER = TypeAdapter(RealtimeServerEvent)
GA_CLIENT = TypeAdapter(RealtimeClientEvent)
BETA_SERVER = TypeAdapter(BetaServerEvent)
BETA_CLIENT = TypeAdapter(BetaClientEvent)

# The GA SDK union lacks a few server types the protocol has (MCP argument/call
# events are typed elsewhere in the SDK, and beta-only events are not GA).
_GA_SDK_SERVER_TYPES = {
    args.__args__[0] if hasattr(args, "__args__") else None
    for args in (
        m.model_fields["type"].annotation for m in RealtimeServerEvent.__args__[0].__args__
    )
}


def _ids(sample: dict[str, Any]) -> str:
    return str(sample["type"])


def _our_server(sample: dict[str, Any]) -> ev.ServerEvent:
    event = ev.parse_server_event(sample)
    assert type(event) is not ev.UnknownServerEvent
    return event


_IN_SDK_GA = [s for s in SERVER_SAMPLES if s["type"] in _GA_SDK_SERVER_TYPES]


def test_sdk_ga_union_covers_most_of_our_samples() -> None:
    # The MCP argument/call events are the only GA server events outside the union.
    outside = {s["type"] for s in SERVER_SAMPLES} - _GA_SDK_SERVER_TYPES
    assert all("mcp" in kind for kind in outside), outside


@pytest.mark.parametrize("sample", _IN_SDK_GA, ids=_ids)
def test_our_ga_server_events_validate_against_sdk(sample: dict[str, Any]) -> None:
    wire = _our_server(sample).to_dict()
    sdk = GA_SERVER.validate_python(wire)
    assert sdk.type == wire["type"]


@pytest.mark.parametrize("sample", CLIENT_SAMPLES, ids=_ids)
def test_our_ga_client_events_validate_against_sdk(sample: dict[str, Any]) -> None:
    wire = ev.parse_client_event(sample).to_dict()
    sdk = GA_CLIENT.validate_python(wire)
    assert sdk.type == wire["type"]


_GA_ONLY_SERVER = {
    # GA-only server events: no beta counterpart to validate against.
    "conversation.item.added",
    "conversation.item.done",
    "conversation.item.input_audio_transcription.segment",
    "input_audio_buffer.timeout_triggered",
    "input_audio_buffer.dtmf_event_received",
    "response.mcp_call_arguments.delta",
    "response.mcp_call_arguments.done",
    "response.mcp_call.in_progress",
    "response.mcp_call.completed",
    "response.mcp_call.failed",
    "mcp_list_tools.in_progress",
    "mcp_list_tools.completed",
    "mcp_list_tools.failed",
}


def _beta_validatable(wire: dict[str, Any]) -> dict[str, Any]:
    """A beta server wire dict as the SDK's beta models insist on it."""
    if wire["type"] == "transcription_session.updated":
        # The SDK requires client_secret, which the WebSocket event leaves out (its own
        # docstring: only sessions created over REST carry one).
        return {
            **wire,
            "session": {
                "client_secret": {"value": "ek_x", "expires_at": 1764000000},
                **wire["session"],
            },
        }
    return wire


def _is_transcription_created(sample: dict[str, Any]) -> bool:
    # Beta servers send transcription_session.created, but the SDK's beta union lacks it.
    return bool(
        sample["type"] == "session.created" and sample["session"]["type"] == "transcription"
    )


@pytest.mark.parametrize(
    "sample",
    [
        s
        for s in SERVER_SAMPLES
        if s["type"] not in _GA_ONLY_SERVER and not _is_transcription_created(s)
    ],
    ids=_ids,
)
def test_our_beta_server_events_validate_against_sdk_beta(sample: dict[str, Any]) -> None:
    wire = _beta_validatable(ev.to_wire(_our_server(sample), dialect="beta"))
    sdk = BETA_SERVER.validate_python(wire)
    assert sdk.type == wire["type"]


@pytest.mark.parametrize("sample", CLIENT_SAMPLES, ids=_ids)
def test_our_beta_client_events_validate_against_sdk_beta(sample: dict[str, Any]) -> None:
    wire = ev.to_wire(ev.parse_client_event(sample), dialect="beta")
    sdk = BETA_CLIENT.validate_python(wire)
    assert sdk.type == wire["type"]


def test_transcription_session_update_validates_as_sdk_beta_param() -> None:
    beta_param = pytest.importorskip(
        "openai.types.beta.realtime.transcription_session_update_param"
    )
    param_type = beta_param.TranscriptionSessionUpdateParam
    known_keys = set(get_type_hints(beta_param.Session))
    # Canonical transcription updates (GA samples, and beta wire ones parsed back).
    events = [
        ev.parse_client_event(s)
        for s in CLIENT_SAMPLES
        if s["type"] == "session.update" and s["session"]["type"] == "transcription"
    ]
    events += [ev.parse_client_event(w, dialect="beta") for w, _ in BETA_WIRE_CLIENT_SAMPLES]
    assert len(events) >= 3
    for event in events:
        assert isinstance(event, ev.SessionUpdate)
        assert isinstance(event.session, ev.TranscriptionSession)
        wire = ev.to_wire(event, dialect="beta")
        assert wire["type"] == "transcription_session.update"
        TypeAdapter(param_type).validate_python(wire)
        # A TypedDict ignores unknown keys: check that every key we send is the SDK's.
        assert set(wire["session"]) <= known_keys, set(wire["session"]) - known_keys
        sdk = BETA_CLIENT.validate_python(wire)
        assert type(sdk).__name__ == "TranscriptionSessionUpdate"


@pytest.mark.parametrize(
    "case",
    [c for c in BETA_WIRE_SERVER_SAMPLES if c[0]["type"] == "transcription_session.updated"],
    ids=lambda c: str(c[0]["type"]),
)
def test_sdk_beta_transcription_session_updated_parses_canonical(
    case: tuple[dict[str, Any], str],
) -> None:
    sdk_event = BETA_SERVER.validate_python(case[0])
    assert type(sdk_event).__name__ == "TranscriptionSessionUpdatedEvent"
    wire = sdk_event.model_dump(mode="json", exclude_unset=True)
    ours = ev.parse_server_event(wire, dialect="beta")
    assert type(ours) is ev.SessionUpdated
    assert isinstance(ours.session, ev.TranscriptionSession)
    assert ev.to_wire(ours, dialect="beta") == wire


@pytest.mark.parametrize("sample", _IN_SDK_GA, ids=_ids)
def test_sdk_built_server_events_parse_into_our_classes(sample: dict[str, Any]) -> None:
    sdk_event = GA_SERVER.validate_python(sample)
    wire = sdk_event.model_dump(mode="json", exclude_unset=True)
    ours = ev.parse_server_event(wire)
    assert type(ours) is ev.server.SERVER_EVENT_CLASSES[sample["type"]]
    assert ours.to_dict() == wire


@pytest.mark.parametrize("sample", CLIENT_SAMPLES, ids=_ids)
def test_sdk_built_client_events_parse_into_our_classes(sample: dict[str, Any]) -> None:
    sdk_event = GA_CLIENT.validate_python(sample)
    wire = sdk_event.model_dump(mode="json", exclude_unset=True)
    ours = ev.parse_client_event(wire)
    assert type(ours) is ev.client.CLIENT_EVENT_CLASSES[sample["type"]]
    assert ours.to_dict() == wire


def test_every_sdk_server_event_type_has_our_class() -> None:
    missing = {t for t in _GA_SDK_SERVER_TYPES if t not in ev.server.SERVER_EVENT_CLASSES}
    assert not missing

"""Events: naming, round trips in both dialects, tolerance, typed errors, the fast paths."""

from __future__ import annotations

import copy
import pickle
import re
from typing import Any

import numpy as np
import orjson
import pybase64
import pytest

from realtime_client import events as ev
from realtime_client.audio.formats import float32_to_pcm16
from realtime_client.errors import InvalidEventError
from tests.events.samples import (
    BETA_WIRE_CLIENT_SAMPLES,
    BETA_WIRE_SERVER_SAMPLES,
    CLIENT_SAMPLES,
    SERVER_SAMPLES,
)


def _camel(wire_type: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[._]", wire_type))


def _ids(sample: dict[str, Any]) -> str:
    return str(sample["type"])


def _normalise_modalities(obj: Any) -> Any:
    """Beta ``modalities`` order is not kept (GA allows one modality); compare as sets."""
    if isinstance(obj, dict):
        return {
            k: sorted(v) if k == "modalities" else _normalise_modalities(v) for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_normalise_modalities(v) for v in obj]
    return obj


# --- names ---------------------------------------------------------------------------


def test_class_names_are_mechanical() -> None:
    for table in (ev.server.SERVER_EVENT_CLASSES, ev.client.CLIENT_EVENT_CLASSES):
        for wire_type, cls in table.items():
            assert cls.__name__ == _camel(wire_type), wire_type
            assert getattr(ev, cls.__name__) is cls


def test_every_sample_type_has_a_class_and_every_class_a_sample() -> None:
    server_types = {s["type"] for s in SERVER_SAMPLES}
    client_types = {s["type"] for s in CLIENT_SAMPLES}
    assert server_types == set(ev.server.SERVER_EVENT_CLASSES)
    assert client_types == set(ev.client.CLIENT_EVENT_CLASSES)


# --- GA round trips --------------------------------------------------------------------


@pytest.mark.parametrize("sample", SERVER_SAMPLES, ids=_ids)
def test_server_event_round_trip_ga(sample: dict[str, Any]) -> None:
    for data in (orjson.dumps(sample), orjson.dumps(sample).decode(), copy.deepcopy(sample)):
        event = ev.parse_server_event(data)
        assert type(event) is ev.server.SERVER_EVENT_CLASSES[sample["type"]]
        assert event.to_dict() == sample
        assert event.raw == sample
        assert orjson.loads(ev.dumps(event)) == sample


@pytest.mark.parametrize("sample", CLIENT_SAMPLES, ids=_ids)
def test_client_event_round_trip_ga(sample: dict[str, Any]) -> None:
    event = ev.parse_client_event(orjson.dumps(sample))
    assert type(event) is ev.client.CLIENT_EVENT_CLASSES[sample["type"]]
    assert event.to_dict() == sample
    assert event.raw == sample


# --- beta dialect ------------------------------------------------------------------------


@pytest.mark.parametrize("sample", SERVER_SAMPLES, ids=_ids)
def test_server_event_round_trip_beta(sample: dict[str, Any]) -> None:
    canonical = ev.parse_server_event(sample)
    beta_wire = ev.to_wire(canonical, dialect="beta")
    parsed = ev.parse_server_event(orjson.dumps(beta_wire), dialect="beta")
    assert type(parsed) is type(canonical)
    assert parsed.raw == beta_wire  # the original beta dict stays reachable
    assert ev.to_wire(parsed, dialect="beta") == beta_wire
    assert _normalise_modalities(parsed.to_dict()) == _normalise_modalities(sample)


@pytest.mark.parametrize("sample", CLIENT_SAMPLES, ids=_ids)
def test_client_event_round_trip_beta(sample: dict[str, Any]) -> None:
    canonical = ev.parse_client_event(sample)
    beta_wire = ev.to_wire(canonical, dialect="beta")
    parsed = ev.parse_client_event(beta_wire, dialect="beta")
    assert type(parsed) is type(canonical)
    assert ev.to_wire(parsed, dialect="beta") == beta_wire
    assert _normalise_modalities(parsed.to_dict()) == _normalise_modalities(sample)


def test_beta_names_map_to_canonical_classes() -> None:
    part = {"response_id": "r", "item_id": "i", "output_index": 0, "content_index": 0}
    cases = {
        "response.audio.delta": (ev.ResponseOutputAudioDelta, {"delta": "AAAA"}),
        "response.audio.done": (ev.ResponseOutputAudioDone, {}),
        "response.text.delta": (ev.ResponseOutputTextDelta, {"delta": "x"}),
        "response.text.done": (ev.ResponseOutputTextDone, {"text": "x"}),
        "response.audio_transcript.delta": (ev.ResponseOutputAudioTranscriptDelta, {"delta": "x"}),
        "response.audio_transcript.done": (
            ev.ResponseOutputAudioTranscriptDone,
            {"transcript": "x"},
        ),
    }
    for beta_type, (cls, extra) in cases.items():
        wire = {"type": beta_type, "event_id": "event_1", **part, **extra}
        event = ev.parse_server_event(orjson.dumps(wire), dialect="beta")
        assert type(event) is cls
        assert event.raw == wire
        assert ev.to_wire(event, dialect="beta") == wire
    for early in ("audio_started", "audio_stopped", "audio_cleared"):
        wire = {"type": f"output_audio_buffer.{early}", "event_id": "e", "response_id": "r"}
        event = ev.parse_server_event(wire, dialect="beta")
        assert event.type == f"output_audio_buffer.{early.removeprefix('audio_')}"


def test_beta_session_created_recording_maps_to_nested_session() -> None:
    # Shape of a real beta session.created (gpt-4o-realtime-preview-2024-12-17).
    wire = {
        "type": "session.created",
        "event_id": "event_AthMesa5kAl4QYCFSoTUg",
        "session": {
            "id": "sess_AthMeC3yLhlVHPIxJoVEv",
            "object": "realtime.session",
            "model": "gpt-4o-realtime-preview-2024-12-17",
            "expires_at": 1737630960,
            "modalities": ["audio", "text"],
            "instructions": "Your knowledge cutoff is 2023-10.",
            "voice": "verse",
            "turn_detection": {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 200,
                "create_response": True,
            },
            "input_audio_format": "pcm16",
            "output_audio_format": "g711_ulaw",
            "input_audio_transcription": None,
            "tool_choice": "auto",
            "temperature": 0.8,
            "max_response_output_tokens": "inf",
            "client_secret": None,
            "tools": [],
            "custom_voice_id": None,
        },
    }
    event = ev.parse_server_event(orjson.dumps(wire), dialect="beta")
    assert isinstance(event, ev.SessionCreated)
    session = event.session
    assert isinstance(session, ev.RealtimeSession)
    assert session.output_modalities == ["audio"]
    assert session.max_output_tokens == "inf"
    assert session.audio is not None
    assert session.audio.output is not None and session.audio.input is not None
    assert session.audio.output.voice == "verse"
    assert isinstance(session.audio.output.format, ev.PcmuFormat)
    assert isinstance(session.audio.input.format, ev.PcmFormat)
    assert isinstance(session.audio.input.turn_detection, ev.ServerVad)
    assert session.audio.input.turn_detection.silence_duration_ms == 200
    assert session.model_extra is not None and session.model_extra["temperature"] == 0.8
    back = ev.to_wire(event, dialect="beta")
    assert _normalise_modalities(back) == _normalise_modalities(wire)


def _wire_id(case: tuple[dict[str, Any], str]) -> str:
    return f"{case[0]['type']}->{case[1]}"


@pytest.mark.parametrize("case", BETA_WIRE_SERVER_SAMPLES, ids=_wire_id)
def test_beta_transcription_session_server_events_map_to_canonical(
    case: tuple[dict[str, Any], str],
) -> None:
    wire, canonical_type = case
    event = ev.parse_server_event(orjson.dumps(wire), dialect="beta")
    assert type(event) is ev.server.SERVER_EVENT_CLASSES[canonical_type]
    assert isinstance(event, ev.SessionCreated | ev.SessionUpdated)
    assert isinstance(event.session, ev.TranscriptionSession)
    assert event.raw == wire  # the beta dict stays reachable
    # canonical → beta wire → canonical: exact both ways (transcription modalities pass).
    assert ev.to_wire(event, dialect="beta") == wire
    again = ev.parse_server_event(ev.dumps(event, dialect="beta"), dialect="beta")
    assert again.to_dict() == event.to_dict()
    # The GA shape: type "transcription", the flat input keys under audio.input.
    ga = event.to_dict()
    flat = wire["session"]
    assert ga["type"] == canonical_type and ga["session"]["type"] == "transcription"
    audio_in = ga["session"]["audio"]["input"]
    assert audio_in["transcription"] == flat["input_audio_transcription"]
    assert audio_in["turn_detection"] == flat["turn_detection"]
    assert audio_in["noise_reduction"] == flat["input_audio_noise_reduction"]
    assert ga["session"]["include"] == flat["include"]
    assert not {"input_audio_format", "input_audio_transcription"} & set(ga["session"])


@pytest.mark.parametrize("case", BETA_WIRE_CLIENT_SAMPLES, ids=_wire_id)
def test_beta_transcription_session_update_maps_to_canonical(
    case: tuple[dict[str, Any], str],
) -> None:
    wire, canonical_type = case
    event = ev.parse_client_event(orjson.dumps(wire), dialect="beta")
    assert type(event) is ev.SessionUpdate and canonical_type == "session.update"
    assert isinstance(event.session, ev.TranscriptionSession)
    assert event.raw == wire
    assert ev.to_wire(event, dialect="beta") == wire
    assert ev.parse_client_event(ev.to_wire(event, dialect="beta"), dialect="beta") == event


def test_transcription_session_update_goes_out_as_beta_transcription_session_update() -> None:
    session = ev.TranscriptionSession(
        audio=ev.TranscriptionAudio(
            input=ev.TranscriptionAudioInput(
                format=ev.PcmuFormat(),
                transcription=ev.InputAudioTranscription(model="whisper-1", prompt="names"),
                noise_reduction=ev.NoiseReduction(type="far_field"),
                turn_detection=ev.ServerVad(threshold=0.7, silence_duration_ms=400),
            )
        ),
        include=["item.input_audio_transcription.logprobs"],
    )
    event = ev.SessionUpdate(session=session, event_id="c1")
    assert ev.to_wire(event) == {
        "type": "session.update",
        "event_id": "c1",
        "session": {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "transcription": {"model": "whisper-1", "prompt": "names"},
                    "noise_reduction": {"type": "far_field"},
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.7,
                        "silence_duration_ms": 400,
                    },
                }
            },
            "include": ["item.input_audio_transcription.logprobs"],
        },
    }
    assert ev.to_wire(event, dialect="beta") == {
        "type": "transcription_session.update",
        "event_id": "c1",
        "session": {
            "input_audio_format": "g711_ulaw",
            "input_audio_transcription": {"model": "whisper-1", "prompt": "names"},
            "input_audio_noise_reduction": {"type": "far_field"},
            "turn_detection": {"type": "server_vad", "threshold": 0.7, "silence_duration_ms": 400},
            "include": ["item.input_audio_transcription.logprobs"],
        },
    }
    back = ev.parse_client_event(ev.dumps(event, dialect="beta"), dialect="beta")
    assert type(back) is ev.SessionUpdate and back.to_dict() == event.to_dict()


def test_beta_transcription_edge_leaves_realtime_sessions_alone() -> None:
    update = ev.SessionUpdate(session=ev.RealtimeSession(instructions="Hi"))
    assert ev.to_wire(update, dialect="beta") == {
        "type": "session.update",
        "session": {"instructions": "Hi"},
    }
    created = ev.SessionCreated(session=ev.TranscriptionSession(id="sess_1"))
    assert ev.to_wire(created, dialect="beta") == {
        "type": "transcription_session.created",
        "session": {"id": "sess_1"},
    }
    # Above the edge the beta-only names do not exist: in GA they are unknown events.
    for kind in ("transcription_session.updated", "transcription_session.created"):
        assert type(ev.parse_server_event({"type": kind, "session": {}})) is (ev.UnknownServerEvent)
    raw = {"type": "transcription_session.update", "session": {}}
    assert type(ev.parse_client_event(raw)) is ev.UnknownClientEvent
    # The input dicts are not mutated by the adapter.
    wire = copy.deepcopy(BETA_WIRE_SERVER_SAMPLES[0][0])
    ev.parse_server_event(wire, dialect="beta")
    assert wire == BETA_WIRE_SERVER_SAMPLES[0][0]


def test_beta_assistant_content_maps_to_output_parts() -> None:
    wire = {
        "type": "conversation.item.created",
        "event_id": "e",
        "previous_item_id": "item_a",
        "item": {
            "id": "item_b",
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "audio", "transcript": "Hi"}, {"type": "text", "text": "Yo"}],
        },
    }
    event = ev.parse_server_event(wire, dialect="beta")
    assert isinstance(event, ev.ConversationItemCreated)
    assert isinstance(event.item, ev.MessageItem)
    assert [p.type for p in event.item.content] == ["output_audio", "output_text"]
    assert ev.to_wire(event, dialect="beta") == wire


def test_item_references_parse_in_response_input() -> None:
    wire = {
        "type": "response.create",
        "response": {"conversation": "none", "input": [{"type": "item_reference", "id": "item_a"}]},
    }
    event = ev.parse_client_event(wire)
    assert isinstance(event, ev.ResponseCreate) and event.response and event.response.input
    assert isinstance(event.response.input[0], ev.ItemReference)
    assert event.to_dict() == wire


def test_beta_response_create_overrides() -> None:
    beta = {
        "type": "response.create",
        "response": {
            "modalities": ["text"],
            "voice": "sage",
            "output_audio_format": "pcm16",
            "max_response_output_tokens": 200,
            "temperature": 0.7,
        },
    }
    event = ev.parse_client_event(beta, dialect="beta")
    assert isinstance(event, ev.ResponseCreate) and event.response is not None
    assert event.response.output_modalities == ["text"]
    assert event.response.max_output_tokens == 200
    assert event.response.audio is not None and event.response.audio.output is not None
    assert event.response.audio.output.voice == "sage"
    assert ev.to_wire(event, dialect="beta") == beta


# --- tolerance -------------------------------------------------------------------------


def test_unknown_event_type_keeps_raw_dict() -> None:
    wire = {"type": "response.future_thing.delta", "event_id": "e", "x": {"y": [1, 2]}}
    event = ev.parse_server_event(orjson.dumps(wire))
    assert type(event) is ev.UnknownServerEvent
    assert event.type == "response.future_thing.delta"
    assert event.raw == wire
    assert event.to_dict() == wire
    client = ev.parse_client_event({"type": "session.close"})
    assert type(client) is ev.UnknownClientEvent


def test_unknown_fields_survive_nested() -> None:
    sample = copy.deepcopy(SERVER_SAMPLES[1])  # session.created
    sample["session"]["audio"]["output"]["brand_new"] = {"a": 1}
    sample["session"]["future"] = True
    sample["obfuscation"] = "pad"
    event = ev.parse_server_event(orjson.dumps(sample))
    assert event.to_dict() == sample


def test_unknown_nested_kinds_fall_back() -> None:
    sample = copy.deepcopy(SERVER_SAMPLES[1])
    sample["session"]["audio"]["input"]["format"] = {"type": "audio/opus", "rate": 48000}
    sample["session"]["audio"]["input"]["turn_detection"] = {"type": "neural_vad", "x": 1}
    sample["session"]["tools"].append({"type": "mcp", "server_label": "s", "server_url": "u"})
    event = ev.parse_server_event(sample)
    assert isinstance(event, ev.SessionCreated)
    session = event.session
    assert isinstance(session, ev.RealtimeSession) and session.audio and session.audio.input
    assert isinstance(session.audio.input.format, ev.UnknownAudioFormat)
    assert isinstance(session.audio.input.turn_detection, ev.UnknownTurnDetection)
    assert session.tools is not None and isinstance(session.tools[1], ev.OtherTool)
    assert event.to_dict() == sample
    item_event = {"type": "conversation.item.added", "event_id": "e", "item": {"type": "x_call"}}
    parsed = ev.parse_server_event(item_event)
    assert isinstance(parsed, ev.ConversationItemAdded)
    assert isinstance(parsed.item, ev.UnknownItem)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b'{"event_id": "e"}', "no 'type'"),
        (b'{"type": 5}', "'type' must be a string"),
        (b'{"type": "error", "event_id": "e"}', "error: Field required"),
        (b'{"type": "response.output_audio.delta", "delta": 5}', "invalid"),
        (
            b'{"type": "input_audio_buffer.speech_started", "audio_start_ms": "soon",'
            b' "item_id": "i"}',
            "audio_start_ms",
        ),
        (b'{"type": "session.created", "session": []}', "session"),
    ],
)
def test_malformed_input_raises_typed_error(data: bytes, message: str) -> None:
    with pytest.raises(InvalidEventError, match=message) as info:
        ev.parse_server_event(data)
    assert info.value.raw is not None
    assert isinstance(info.value, ValueError)


def test_bad_dialect_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="dialect"):
        ev.parse_server_event(b'{"type":"x"}', dialect="v2")  # type: ignore[arg-type]


# --- building events locally -------------------------------------------------------------


def test_discriminators_reach_the_wire_when_left_default() -> None:
    update = ev.SessionUpdate(
        session=ev.RealtimeSession(
            audio=ev.AudioConfig(input=ev.AudioInputConfig(turn_detection=ev.ServerVad()))
        )
    )
    assert update.to_dict() == {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "audio": {"input": {"turn_detection": {"type": "server_vad"}}},
        },
    }
    truncate = ev.ConversationItemTruncate(item_id="item_1", audio_end_ms=120)
    assert truncate.to_dict()["content_index"] == 0
    # ...but optional fields left unset stay off the wire.
    assert "event_id" not in truncate.to_dict()
    assert ev.ResponseCreate().to_dict() == {"type": "response.create"}


def _plain_delta(samples: Any) -> dict[str, Any]:
    """A GA audio delta with exactly its seven fields (the parser's fast path)."""
    return {
        "type": "response.output_audio.delta",
        "event_id": "event_1",
        "response_id": "r",
        "item_id": "i",
        "output_index": 0,
        "content_index": 0,
        "delta": pybase64.b64encode(np.asarray(samples, "<i2").tobytes()).decode(),
    }


def test_audio_delta_fast_path_matches_validating_path() -> None:
    samples = np.array([0, 1, -1, 32767, -32768, 1234], dtype=np.int16)
    wire = _plain_delta(samples)
    fast = ev.parse_server_event(orjson.dumps(wire))
    slow = ev.ResponseOutputAudioDelta.model_validate(wire)
    assert isinstance(fast, ev.ResponseOutputAudioDelta)
    assert fast == slow
    assert fast.model_fields_set == slow.model_fields_set
    np.testing.assert_array_equal(fast.pcm16(), samples)
    # extra fields and a missing event_id survive the fast path too
    for variant in (
        {**wire, "obfuscation": "zz"},
        {k: v for k, v in wire.items() if k != "event_id"},
    ):
        event = ev.parse_server_event(orjson.dumps(variant))
        assert event.to_dict() == variant
        assert event.raw == variant
    # wrong types fall back to the validating path and its typed error
    with pytest.raises(InvalidEventError, match="output_index"):
        ev.parse_server_event(orjson.dumps({**wire, "output_index": "0"}) + b" ")
    with pytest.raises(InvalidEventError, match="event_id"):
        ev.parse_server_event(orjson.dumps({**wire, "event_id": 7}))


def _delta_pair() -> tuple[ev.ResponseOutputAudioDelta, ev.ResponseOutputAudioDelta]:
    """The same plain delta through the fast path and through validation."""
    wire = _plain_delta([1, 2])
    fast = ev.parse_server_event(orjson.dumps(wire))
    assert type(fast) is ev.ResponseOutputAudioDelta
    return fast, ev.ResponseOutputAudioDelta.model_validate(wire)


@pytest.mark.parametrize(
    "use",
    [
        pytest.param(lambda e: e.model_fields_set, id="fields_set"),
        pytest.param(lambda e: e.model_extra, id="extra"),
        pytest.param(lambda e: e.model_dump(), id="dump"),
        pytest.param(lambda e: e.model_dump(exclude_unset=True), id="dump_unset"),
        pytest.param(lambda e: e.model_dump_json(), id="dump_json"),
        pytest.param(lambda e: e.to_dict(), id="to_dict"),
        pytest.param(lambda e: repr(e), id="repr"),
        pytest.param(lambda e: copy.copy(e).model_dump(), id="copy"),
        pytest.param(lambda e: copy.deepcopy(e).model_dump(), id="deepcopy"),
        pytest.param(lambda e: e.model_copy(update={"x": 1}).model_extra, id="copy_update"),
        pytest.param(lambda e: pickle.loads(pickle.dumps(e)).model_dump(), id="pickle"),
        pytest.param(lambda e: e.__getstate__(), id="getstate"),
    ],
)
def test_fast_delta_acts_as_a_validated_one(use: Any) -> None:
    # The fast path leaves pydantic's bookkeeping slots to be filled on first use; every
    # way of reaching them must see what validation would have set.
    fast, slow = _delta_pair()
    assert use(fast) == use(slow)
    assert fast == slow and slow == fast


def test_fast_delta_mutations_act_as_on_a_validated_one() -> None:
    for first_touch in ("field", "extra", "none"):
        fast, slow = _delta_pair()
        for event in (fast, slow):
            if first_touch == "field":
                event.item_id = "j"
            elif first_touch == "extra":
                event.note = "n"  # type: ignore[attr-defined]  # extra="allow" keeps it
        assert fast == slow
        assert fast.model_fields_set == slow.model_fields_set
        assert fast.to_dict() == slow.to_dict()
        assert fast.model_extra == slow.model_extra
    fast, _ = _delta_pair()
    with pytest.raises(AttributeError, match="no_such"):
        fast.no_such  # type: ignore[attr-defined]  # noqa: B018
    # each event gets its own sets: touching one leaves the next untouched
    one, _ = _delta_pair()
    two, _ = _delta_pair()
    one.extra_thing = 1  # type: ignore[attr-defined]
    assert "extra_thing" not in two.model_fields_set
    assert two.model_extra == {}


def test_audio_delta_bad_payload_raises_typed_error() -> None:
    base = {"response_id": "r", "item_id": "i", "output_index": 0, "content_index": 0}
    for delta in ("not*base64", "AA=="):  # bad alphabet; 1 byte (odd PCM16 count)
        event = ev.parse_server_event(
            {"type": "response.output_audio.delta", **base, "delta": delta}
        )
        assert isinstance(event, ev.ResponseOutputAudioDelta)
        with pytest.raises(InvalidEventError):
            event.pcm16()


def test_build_append_matches_the_model() -> None:
    rng = np.random.default_rng(1)
    block = rng.uniform(-1.2, 1.2, 480).astype(np.float32)
    wire = ev.build_append(block)
    event = ev.parse_client_event(wire)
    assert isinstance(event, ev.InputAudioBufferAppend)
    decoded = np.frombuffer(pybase64.b64decode(event.audio), dtype="<i2")
    np.testing.assert_array_equal(decoded, float32_to_pcm16(block))
    # int16, raw bytes and an event id that needs escaping
    ints = float32_to_pcm16(block)
    assert ev.build_append(ints) == wire
    assert ev.build_append(ints.tobytes()) == wire
    # strided, big-endian and 2-D samples, and a strided memoryview, as their samples
    assert ev.build_append(np.repeat(ints, 2)[::2]) == wire
    assert ev.build_append(ints.astype(">i2")) == wire
    assert ev.build_append(ints.reshape(-1, 1)) == wire
    assert ev.build_append(memoryview(np.repeat(ints, 2))[::2]) == wire
    tricky = ev.parse_client_event(ev.build_append(ints, event_id='a"b\\c'))
    assert tricky.event_id == 'a"b\\c'
    with pytest.raises(InvalidEventError):
        ev.build_append(np.zeros(4, dtype=np.int32))


# --- lossless beta round trip (protocol.md §5: what a beta server sent comes back) --------

LOSSLESS_BETA = [
    {
        "type": "session.created",
        "event_id": "event_1",
        "session": {
            "id": "sess_1",
            "object": "realtime.session",
            "model": "gpt-4o-realtime-preview",
            "modalities": ["audio", "text"],
            "voice": "alloy",
            "input_audio_format": "pcm16",
            "output_audio_format": "pcm16",
        },
    },
    {
        "type": "response.created",
        "event_id": "event_2",
        "response": {
            "object": "realtime.response",
            "id": "resp_1",
            "status": "in_progress",
            "status_details": None,
            "output": [],
            "modalities": ["audio", "text"],
            "voice": "alloy",
            "output_audio_format": "pcm16",
            "max_output_tokens": "inf",
            "usage": None,
            "metadata": None,
        },
    },
    {"type": "output_audio_buffer.audio_started", "event_id": "event_3", "response_id": "r"},
    {"type": "output_audio_buffer.audio_stopped", "event_id": "event_4", "response_id": "r"},
    {"type": "output_audio_buffer.audio_cleared", "event_id": "event_5", "response_id": "r"},
]


@pytest.mark.parametrize("wire", LOSSLESS_BETA, ids=_ids)
def test_a_beta_event_serialises_back_to_exactly_what_was_received(wire: dict[str, Any]) -> None:
    event = ev.parse_server_event(orjson.dumps(wire), dialect="beta")
    assert ev.to_wire(event, dialect="beta") == wire
    assert orjson.loads(ev.dumps(event, dialect="beta")) == wire
    # A GA view is still the canonical one.
    assert event.to_dict()["type"] in ev.server.SERVER_EVENT_CLASSES


def test_a_beta_event_changed_after_parsing_is_serialised_from_its_new_state() -> None:
    event = ev.parse_server_event(orjson.dumps(LOSSLESS_BETA[0]), dialect="beta")
    assert isinstance(event, ev.SessionCreated) and isinstance(event.session, ev.RealtimeSession)
    event.session.instructions = "Changed."
    back = ev.to_wire(event, dialect="beta")
    assert back["session"]["instructions"] == "Changed."


def test_a_beta_client_event_round_trips_exactly() -> None:
    wire = {
        "type": "session.update",
        "session": {"modalities": ["audio", "text"], "voice": "verse"},
    }
    event = ev.parse_client_event(wire, dialect="beta")
    assert ev.to_wire(event, dialect="beta") == wire


# --- wide or huge events are refused before validation (hardening issue, item 3) ----------


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ([0] * 1_000_000, "an array of 1000000 elements (at most 8192)"),
        ([{}] * 1_000_000, "more than 16384 arrays and objects"),
        ([[]] * 30_000, "more than 16384 arrays and objects"),
        ([{"type": "message", "content": [{}] * 100}] * 300, "more than 16384 arrays"),
    ],
)
@pytest.mark.parametrize("as_text", [False, True])
def test_a_too_wide_event_is_refused_with_a_typed_error(
    payload: list[Any], why: str, as_text: bool
) -> None:
    frame = orjson.dumps(
        {"type": "response.done", "event_id": "e", "response": {"output": payload}}
    )
    data: bytes | str = frame.decode() if as_text else frame
    with pytest.raises(InvalidEventError, match=re.escape(why)):
        ev.parse_server_event(data)
    # A decoded dict is walked instead of scanned: refused by whichever limit it meets first.
    with pytest.raises(InvalidEventError, match=r"an array of \d+ elements|more than 16384"):
        ev.parse_server_event(orjson.loads(frame))


@pytest.mark.parametrize("as_text", [False, True])
def test_brackets_inside_strings_do_not_count_against_the_limit(as_text: bool) -> None:
    # A tool call whose JSON arguments hold 18,000 brackets is an ordinary event: only
    # arrays and objects of the event itself count (it was refused before).
    arguments = orjson.dumps([{"a": [1], "s": 'q"uote'} for _ in range(9_000)]).decode()
    frame = orjson.dumps(
        {
            "type": "response.function_call_arguments.done",
            "event_id": "e",
            "response_id": "r",
            "item_id": "i",
            "output_index": 0,
            "call_id": "c",
            "name": "n",
            "arguments": arguments,
        }
    )
    assert frame.count(b"{") + frame.count(b"[") > 16_384
    event = ev.parse_server_event(frame.decode() if as_text else frame)
    assert event.to_dict()["arguments"] == arguments


def test_events_just_inside_the_limits_parse() -> None:
    logprobs = [{"token": "a", "logprob": -0.1, "bytes": [97]}] * 4_000
    event = ev.parse_server_event(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "event_id": "e",
            "item_id": "item_1",
            "content_index": 0,
            "transcript": "a" * 4_000,
            "logprobs": logprobs,
        }
    )
    assert len(event.to_dict()["logprobs"]) == 4_000

"""The sans-I/O protocol core, driven by hand-written cassettes (no event loop)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pybase64
import pytest

from realtime_client import events as ev
from realtime_client.errors import InvalidEventError, InvalidStateError, LocalProtocolError
from realtime_client.protocol import RealtimeProtocol
from realtime_client.recording import read_recording, server_events
from realtime_client.server import ServerSession, SessionOptions, make_responder

from ..server.conftest import ListSink

SESSIONS = Path(__file__).parent / "sessions"


def _server_events(name: str) -> list[dict[str, Any]]:
    return list(server_events(read_recording(SESSIONS / name)))


def _replay(name: str, proto: RealtimeProtocol | None = None) -> RealtimeProtocol:
    proto = proto or RealtimeProtocol()
    proto.replay_jsonl((SESSIONS / name).read_text())
    return proto


def test_text_turn() -> None:
    proto = _replay("text_turn.jsonl")
    conv = proto.conversation
    assert conv.order == ["item_U1", "item_A1"]
    user, assistant = list(conv)
    assert user.role == "user" and user.text == "Say hi."
    assert assistant.role == "assistant" and assistant.status == "completed"
    assert assistant.text == "Hi there!"
    assert assistant.response_id == "resp_R1"
    response = proto.responses["resp_R1"]
    assert response.status == "completed" and response.done
    assert response.output_item_ids == ["item_A1"]
    assert proto.active_response_id is None
    assert proto.usage.total_tokens == 30 and proto.usage.output_text_tokens == 10
    assert proto.rate_limits[0].remaining == 14999970
    assert isinstance(proto.session, ev.RealtimeSession)


def test_text_deltas_accumulate_before_done() -> None:
    lines = _server_events("text_turn.jsonl")
    proto = RealtimeProtocol()
    proto.receive_all(lines[:9])  # through the second text delta
    assistant = proto.conversation.get("item_A1")
    assert assistant is not None and assistant.text == "Hi there!"
    assert proto.active_response is not None and proto.active_response.id == "resp_R1"


def test_audio_turn_with_server_vad_and_late_transcription() -> None:
    proto = _replay("audio_turn_vad.jsonl")
    user = proto.conversation.get("item_U1")
    assistant = proto.conversation.get("item_A1")
    assert user is not None and assistant is not None
    assert (user.speech_start_ms, user.speech_end_ms) == (700, 2300)
    # The transcription completed *after* response.done and replaced the partial delta.
    assert user.input_transcript == "What time is it?" and user.input_transcript_done
    assert assistant.parts[0].type == "output_audio"
    assert assistant.parts[0].transcript == "It is noon."
    assert proto.audio_received_ms("item_A1") == pytest.approx(200.0)
    assert proto.usage.input_audio_tokens == 90 and proto.usage.cached_text_tokens == 5
    assert proto.usage.output_audio_tokens == 38


def test_transcription_arriving_before_its_item_is_kept() -> None:
    proto = RealtimeProtocol()
    proto.receive(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "event_id": "e1",
            "item_id": "item_X",
            "content_index": 0,
            "transcript": "early bird",
        }
    )
    assert proto.conversation.get("item_X") is None
    proto.receive(
        {
            "type": "conversation.item.added",
            "event_id": "e2",
            "item": {"id": "item_X", "type": "message", "role": "user", "content": []},
        }
    )
    item = proto.conversation.get("item_X")
    assert item is not None and item.input_transcript == "early bird"


def test_g711_output_counts_8_bytes_per_ms() -> None:
    proto = RealtimeProtocol()
    proto.receive(
        {
            "type": "session.created",
            "event_id": "e",
            "session": {
                "type": "realtime",
                "audio": {"output": {"format": {"type": "audio/pcmu"}}},
            },
        }
    )
    proto.receive(
        {
            "type": "response.output_audio.delta",
            "event_id": "e2",
            "response_id": "r",
            "item_id": "i",
            "output_index": 0,
            "content_index": 0,
            "delta": pybase64.b64encode(b"\xff" * 800).decode(),  # 100 ms of µ-law
        }
    )
    assert proto.audio_received_ms("i") == pytest.approx(100.0)


def test_function_call_round_trip() -> None:
    proto = _replay("function_call.jsonl")
    calls = proto.function_calls("resp_R1")
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("call_aaaaaaaaaaaaaaaa", "get_weather", '{"city":"Paris"}'),
        ("call_bbbbbbbbbbbbbbbb", "get_weather", '{"city":"Rome"}'),
    ]
    assert proto.conversation.order == ["item_U1", "item_F1", "item_F2", "item_O1"]
    output = proto.conversation.get("item_O1")
    assert output is not None and output.output == '{"temp_c":18}'
    # Building an output for an unknown call is refused locally.
    with pytest.raises(LocalProtocolError, match="call_id"):
        proto.build_function_call_output("call_nope", "{}")
    event = proto.build_function_call_output("call_bbbbbbbbbbbbbbbb", '{"temp_c":21}')
    wire = orjson.loads(proto.serialize(event))
    assert wire["item"] == {
        "type": "function_call_output",
        "id": wire["item"]["id"],
        "call_id": "call_bbbbbbbbbbbbbbbb",
        "output": '{"temp_c":21}',
    }


def test_barge_in_cancel_and_truncate() -> None:
    proto = _replay("barge_in.jsonl")
    response = proto.responses["resp_R1"]
    assert response.status == "cancelled"
    assert response.status_details is not None and response.status_details.reason == "turn_detected"
    assistant = proto.conversation.get("item_A1")
    assert assistant is not None and assistant.status == "incomplete"
    assert proto.audio_received_ms("item_A1") == pytest.approx(300.0)
    # Nothing active any more: a cancel is refused locally (the server would say
    # response_cancel_not_active).
    with pytest.raises(InvalidStateError):
        proto.build_response_cancel()
    # A truncate past what was received is clamped to it.
    clamped = proto.build_truncate("item_A1", 10_000)
    assert clamped.audio_end_ms == 300
    proto.forget(clamped.event_id or "")
    truncate = proto.build_truncate("item_A1", 120.7)
    assert truncate.audio_end_ms == 120
    assert truncate.to_dict()["content_index"] == 0
    results = proto.replay_jsonl((SESSIONS / "barge_in_after.jsonl").read_text())
    assert results[0].answered == [(truncate.event_id, truncate)]
    assert assistant.truncated_at_ms == 120
    assert proto.audio_received_ms("item_A1") == pytest.approx(120.0)
    assert proto.conversation.order == ["item_U1", "item_A1", "item_U2"]
    user2 = proto.conversation.get("item_U2")
    assert user2 is not None and (user2.speech_start_ms, user2.speech_end_ms) == (5300, 6100)


def test_failed_and_incomplete_responses() -> None:
    lines = _server_events("failed_and_incomplete.jsonl")
    proto = RealtimeProtocol()
    proto.receive_all(lines[:4])  # through the first response.created
    assert proto.active_response is not None and proto.active_response.status == "in_progress"
    assert proto.responses["resp_F1"].status_details is None
    proto.receive_all(lines[4:])
    conv = proto.conversation
    # failed: status_details.error carries the reason; nothing was produced
    failed = proto.responses["resp_F1"]
    assert failed.status == "failed" and failed.done
    details = failed.status_details
    assert details is not None and details.type == "failed" and details.reason is None
    assert details.error is not None
    assert (details.error.type, details.error.code) == ("tokens", "rate_limit_exceeded")
    assert details.error.message is not None and "Limit 20000" in details.error.message
    assert failed.output_item_ids == [] and proto.function_calls("resp_F1") == []
    assert failed.usage is not None and failed.usage.total_tokens == 0
    # incomplete: reason max_output_tokens, the partial output kept and marked incomplete
    cut = proto.responses["resp_I1"]
    assert cut.status == "incomplete" and cut.done
    assert cut.status_details is not None
    assert (cut.status_details.type, cut.status_details.reason) == (
        "incomplete",
        "max_output_tokens",
    )
    assert cut.status_details.error is None
    assert cut.output_item_ids == ["item_A1"]
    assistant = conv.get("item_A1")
    assert assistant is not None and assistant.status == "incomplete"
    assert assistant.response_id == "resp_I1" and assistant.text == "Once upon a time,"
    assert conv.order == ["item_U1", "item_A1"]
    # Neither is active any more: a cancel is refused locally.
    assert proto.active_response_id is None
    with pytest.raises(InvalidStateError):
        proto.build_response_cancel()
    with pytest.raises(InvalidStateError):
        proto.build_response_cancel("resp_F1")
    assert proto.usage.responses == 2 and proto.usage.output_text_tokens == 5
    assert proto.rate_limits[0].remaining == 19970


def test_truncate_refuses_illegal_targets() -> None:
    proto = _replay("text_turn.jsonl")
    with pytest.raises(LocalProtocolError, match="unknown item"):
        proto.build_truncate("item_nope", 10)
    with pytest.raises(LocalProtocolError, match="only assistant audio"):
        proto.build_truncate("item_U1", 10)
    with pytest.raises(LocalProtocolError, match="no audio"):
        proto.build_truncate("item_A1", 10)  # a text-only answer
    assert proto.pending_requests() == {}


def test_requests_are_settled_by_their_answers() -> None:
    proto = RealtimeProtocol()
    update = proto.build_session_update({"type": "realtime", "instructions": "Be brief."})
    commit = proto.build_commit()
    create = proto.build_response_create({"output_modalities": ["text"]})
    message = proto.build_text_message("hello")
    assert set(proto.pending_requests()) == {
        update.event_id,
        commit.event_id,
        create.event_id,
        message.event_id,
    }
    got = proto.receive(
        {"type": "session.updated", "event_id": "e1", "session": {"type": "realtime"}}
    )
    assert got.answered == [(update.event_id, update)]
    item_id = orjson.loads(proto.serialize(message))["item"]["id"]
    got = proto.receive(
        {
            "type": "conversation.item.added",
            "event_id": "e2",
            "previous_item_id": None,
            "item": {"id": item_id, "type": "message", "role": "user", "content": []},
        }
    )
    assert got.answered == [(message.event_id, message)]
    # The commit fails: the error names its event_id.
    got = proto.receive(
        {
            "type": "error",
            "event_id": "e3",
            "error": {
                "type": "invalid_request_error",
                "code": "input_audio_buffer_commit_empty",
                "message": "Error committing input audio buffer: buffer too small.",
                "param": None,
                "event_id": commit.event_id,
            },
        }
    )
    assert len(got.failed) == 1
    failed_id, failed_event, error = got.failed[0]
    assert failed_id == commit.event_id and failed_event is commit
    assert error.code == "input_audio_buffer_commit_empty"
    got = proto.receive(
        {
            "type": "response.created",
            "event_id": "e4",
            "response": {"id": "resp_1", "status": "in_progress", "conversation_id": "conv_1"},
        }
    )
    assert got.answered == [(create.event_id, create)]
    assert proto.pending_requests() == {}
    cancel = proto.build_response_cancel()
    assert proto.serialize(cancel) == orjson.dumps(
        {"type": "response.cancel", "event_id": cancel.event_id}
    )
    got = proto.receive(
        {
            "type": "response.done",
            "event_id": "e5",
            "response": {"id": "resp_1", "status": "cancelled", "conversation_id": "conv_1"},
        }
    )
    assert got.answered == [(cancel.event_id, cancel)]


def test_out_of_band_response_is_not_active_and_not_in_conversation() -> None:
    proto = RealtimeProtocol()
    proto.receive(
        {
            "type": "response.created",
            "event_id": "e1",
            "response": {
                "id": "resp_oob",
                "status": "in_progress",
                "conversation_id": None,
                "metadata": {"topic": "summary"},
            },
        }
    )
    assert proto.active_response_id is None
    proto.receive(
        {
            "type": "response.output_item.added",
            "event_id": "e2",
            "response_id": "resp_oob",
            "output_index": 0,
            "item": {"id": "item_o", "type": "message", "role": "assistant", "content": []},
        }
    )
    assert proto.conversation.order == []
    item = proto.conversation.get("item_o")
    assert item is not None and not item.in_conversation
    assert proto.responses["resp_oob"].metadata == {"topic": "summary"}


def test_previous_item_id_orders_items_and_delete_removes() -> None:
    proto = RealtimeProtocol()

    def added(item_id: str, prev: str | None) -> None:
        proto.receive(
            {
                "type": "conversation.item.added",
                "event_id": f"e_{item_id}",
                "previous_item_id": prev,
                "item": {"id": item_id, "type": "message", "role": "user", "content": []},
            }
        )

    added("a", None)
    added("c", "a")
    added("b", "a")  # inserted between a and c
    added("z", None)  # null previous id: at the root
    assert proto.conversation.order == ["z", "a", "b", "c"]
    delete = proto.build_item_delete("b")
    got = proto.receive({"type": "conversation.item.deleted", "event_id": "e", "item_id": "b"})
    assert got.answered == [(delete.event_id, delete)]
    assert proto.conversation.order == ["z", "a", "c"]
    with pytest.raises(LocalProtocolError):
        proto.build_item_delete("b")
    with pytest.raises(LocalProtocolError, match="previous_item_id"):
        proto.build_item_create(
            {"type": "message", "role": "user", "content": []}, previous_item_id="b"
        )


def test_malformed_frame_leaves_state_unchanged() -> None:
    proto = _replay("text_turn.jsonl")
    before = proto.conversation.order
    with pytest.raises(InvalidEventError):
        proto.receive(b'{"type": "conversation.item.added", "item": 5}')
    assert proto.conversation.order == before


def test_beta_dialect_recording() -> None:
    proto = RealtimeProtocol(dialect="beta")
    beta = [
        {
            "type": "session.created",
            "event_id": "e0",
            "session": {"voice": "verse", "output_audio_format": "g711_ulaw"},
        },
        {
            "type": "response.created",
            "event_id": "e1",
            "response": {"id": "r1", "status": "in_progress", "conversation_id": "c"},
        },
        {
            "type": "conversation.item.created",
            "event_id": "e2",
            "previous_item_id": None,
            "item": {
                "id": "i1",
                "object": "realtime.item",
                "type": "message",
                "role": "assistant",
                "content": [],
            },
        },
        {
            "type": "response.content_part.added",
            "event_id": "e3",
            "response_id": "r1",
            "item_id": "i1",
            "output_index": 0,
            "content_index": 0,
            "part": {"type": "audio", "transcript": ""},
        },
        {
            "type": "response.audio.delta",
            "event_id": "e4",
            "response_id": "r1",
            "item_id": "i1",
            "output_index": 0,
            "content_index": 0,
            "delta": pybase64.b64encode(b"\xff" * 1600).decode(),
        },
        {
            "type": "response.audio_transcript.delta",
            "event_id": "e5",
            "response_id": "r1",
            "item_id": "i1",
            "output_index": 0,
            "content_index": 0,
            "delta": "Hello",
        },
    ]
    proto.receive_all(orjson.dumps(e) for e in beta)
    assert proto.audio_received_ms("i1") == pytest.approx(200.0)  # 1,600 µ-law bytes
    item = proto.conversation.get("i1")
    assert item is not None and item.parts[0].transcript == "Hello"
    wire = orjson.loads(
        proto.serialize(
            proto.build_session_update({"type": "realtime", "audio": {"output": {"voice": "ash"}}})
        )
    )
    assert wire["session"] == {"voice": "ash"}


def test_retained_audio_is_capped() -> None:
    proto = RealtimeProtocol(retain_audio_ms=150)
    proto.replay_jsonl((SESSIONS / "audio_turn_vad.jsonl").read_text())
    part = proto.conversation.get("item_A1")
    assert part is not None
    audio = part.parts[0].audio
    assert audio is not None
    assert audio.nbytes == 150 * 48 and audio.dropped_bytes == 50 * 48
    assert audio.data() == b"\x01\x00" * (150 * 24)


def test_vad_turn_response_is_not_mistaken_for_ours() -> None:
    proto = RealtimeProtocol()
    proto.receive(
        {
            "type": "session.created",
            "event_id": "e0",
            "session": {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "server_vad"}}},
            },
        }
    )
    ours = proto.build_response_create()
    proto.receive({"type": "input_audio_buffer.committed", "event_id": "e1", "item_id": "item_u"})
    vad = proto.receive(
        {
            "type": "response.created",
            "event_id": "e2",
            "response": {"id": "resp_vad", "status": "in_progress", "conversation_id": "c"},
        }
    )
    assert vad.answered == []  # server VAD's own response
    mine = proto.receive(
        {
            "type": "response.created",
            "event_id": "e3",
            "response": {"id": "resp_me", "status": "in_progress", "conversation_id": "c"},
        }
    )
    assert mine.answered == [(ours.event_id, ours)]


def test_push_to_talk_commit_expects_no_auto_response() -> None:
    proto = RealtimeProtocol()
    proto.receive(
        {
            "type": "session.created",
            "event_id": "e0",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
        }
    )
    commit = proto.build_commit()
    ours = proto.build_response_create()
    got = proto.receive(
        {"type": "input_audio_buffer.committed", "event_id": "e1", "item_id": "item_u"}
    )
    assert got.answered == [(commit.event_id, commit)]
    got = proto.receive(
        {
            "type": "response.created",
            "event_id": "e2",
            "response": {"id": "resp_1", "status": "in_progress", "conversation_id": "c"},
        }
    )
    assert got.answered == [(ours.event_id, ours)]


# --- beta transcription sessions -----------------------------------------------------------

_TRANSCRIPTION_CONFIG: dict[str, Any] = {
    "type": "transcription",
    "audio": {
        "input": {
            "format": {"type": "audio/pcmu"},
            "transcription": {"model": "gpt-4o-mini-transcribe", "language": "en"},
            "noise_reduction": {"type": "near_field"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 400},
        }
    },
    "include": ["item.input_audio_transcription.logprobs"],
}


def test_beta_transcription_session_update_uses_the_beta_names() -> None:
    proto = RealtimeProtocol(dialect="beta")
    created = proto.receive(
        {
            "type": "transcription_session.created",
            "event_id": "e0",
            "session": {"id": "sess_T", "input_audio_format": "pcm16", "turn_detection": None},
        }
    )
    assert type(created.event) is ev.SessionCreated
    assert isinstance(proto.session, ev.TranscriptionSession)
    update = proto.build_session_update(_TRANSCRIPTION_CONFIG)
    assert type(update) is ev.SessionUpdate  # canonical above the edge
    assert isinstance(update.session, ev.TranscriptionSession)
    wire = orjson.loads(proto.serialize(update))
    assert wire == {
        "type": "transcription_session.update",
        "event_id": update.event_id,
        "session": {
            "input_audio_format": "g711_ulaw",
            "input_audio_transcription": {"model": "gpt-4o-mini-transcribe", "language": "en"},
            "input_audio_noise_reduction": {"type": "near_field"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 400},
            "include": ["item.input_audio_transcription.logprobs"],
        },
    }
    # GA keeps the canonical name and shape.
    ga = RealtimeProtocol()
    assert (
        orjson.loads(ga.serialize(ga.build_session_update(_TRANSCRIPTION_CONFIG)))["session"]
        == _TRANSCRIPTION_CONFIG
    )
    # The server's transcription_session.updated settles the canonical session.update.
    got = proto.receive(
        orjson.dumps(
            {
                "type": "transcription_session.updated",
                "event_id": "e1",
                "session": {
                    "id": "sess_T",
                    "object": "realtime.transcription_session",
                    **wire["session"],
                    "modalities": ["text"],
                },
            }
        )
    )
    assert type(got.event) is ev.SessionUpdated
    assert got.event.raw["type"] == "transcription_session.updated"
    assert got.answered == [(update.event_id, update)]
    assert proto.pending_requests() == {}
    session = proto.session
    assert isinstance(session, ev.TranscriptionSession)
    assert session.audio is not None and session.audio.input is not None
    assert session.audio.input.transcription is not None
    assert session.audio.input.transcription.model == "gpt-4o-mini-transcribe"
    assert isinstance(proto.input_format, ev.PcmuFormat)
    # canonical → beta wire → canonical
    assert ev.parse_client_event(wire, dialect="beta").to_dict() == update.to_dict()


async def test_beta_transcription_update_is_accepted_by_the_local_server_core() -> None:
    # In process, no socket: the local server's session core in the beta dialect.
    sink = ListSink()
    server = ServerSession(
        SessionOptions(dialect="beta", kind="transcription", speed=0, seed=3),
        make_responder("echo"),
        sink,
    )
    proto = RealtimeProtocol(dialect="beta")
    update = proto.build_session_update(_TRANSCRIPTION_CONFIG)
    server.receive_text(proto.serialize(update))
    assert [e["type"] for e in sink.events] == ["transcription_session.updated"]
    got = proto.receive(sink.events[0])
    assert got.answered == [(update.event_id, update)]
    session = proto.session
    assert isinstance(session, ev.TranscriptionSession)
    assert session.audio is not None and session.audio.input is not None
    assert isinstance(session.audio.input.format, ev.PcmuFormat)
    td = session.audio.input.turn_detection
    assert isinstance(td, ev.ServerVad) and td.silence_duration_ms == 400
    assert session.include == ["item.input_audio_transcription.logprobs"]
    await server.aclose()

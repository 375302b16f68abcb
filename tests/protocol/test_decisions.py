"""Decisions the sans-I/O core makes (no event loop): driven from cassette lines.

The response queue and the races it absorbs, which responses VAD started, whether VAD
cancels on speech, the truncate clamp, the restore plan, and faults in server events.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from realtime_client import events as ev
from realtime_client.errors import InvalidStateError, RemoteProtocolError
from realtime_client.protocol import RealtimeProtocol, restorable


def cassette(*events: dict[str, Any]) -> str:
    """Server events as cassette lines (the one recording format)."""
    return "\n".join(
        json.dumps({"t": i * 0.01, "direction": "server", "event": e}) for i, e in enumerate(events)
    )


def session_created(turn_detection: Any = "default") -> dict[str, Any]:
    session: dict[str, Any] = {"type": "realtime", "id": "sess_1"}
    if turn_detection != "default":
        session["audio"] = {"input": {"turn_detection": turn_detection}}
    return {"type": "session.created", "event_id": "e0", "session": session}


def created(rid: str) -> dict[str, Any]:
    return {
        "type": "response.created",
        "event_id": f"c_{rid}",
        "response": {"id": rid, "status": "in_progress", "conversation_id": "conv_1"},
    }


def done(rid: str) -> dict[str, Any]:
    return {
        "type": "response.done",
        "event_id": f"d_{rid}",
        "response": {"id": rid, "status": "completed", "conversation_id": "conv_1"},
    }


def error(code: str, event_id: str | None) -> dict[str, Any]:
    return {
        "type": "error",
        "event_id": f"err_{code}",
        "error": {
            "type": "invalid_request_error",
            "code": code,
            "message": code,
            "event_id": event_id,
        },
    }


# --- the response queue -----------------------------------------------------------------


def sent_create() -> tuple[RealtimeProtocol, ev.ResponseCreate]:
    """A core with one queued ``response.create`` (token ``"mine"``) sent."""
    proto = RealtimeProtocol()
    proto.replay_jsonl(cassette(session_created()))
    proto.queue_response(ev.ResponseCreate(), "mine")
    sent = proto.next_response()
    assert sent is not None
    return proto, sent[0]


def test_one_create_at_a_time_and_none_while_a_response_is_active() -> None:
    proto = RealtimeProtocol()
    proto.replay_jsonl(cassette(session_created()))
    proto.queue_response(ev.ResponseCreate(), "first")
    proto.queue_response(ev.ResponseCreate(), "second")
    sent = proto.next_response()
    assert sent is not None and sent[1] == "first" and sent[0].event_id
    assert proto.awaiting_created == 1
    assert proto.next_response() is None  # ours awaits its response.created
    [received] = proto.replay_jsonl(cassette(created("resp_1")))
    assert received.answered == [(sent[0].event_id, sent[0])]
    assert proto.awaiting_created == 0
    assert proto.next_response() is None  # resp_1 is active
    proto.replay_jsonl(cassette(done("resp_1")))
    assert proto.next_response(ready=False) is None  # the shell says: not connected
    second = proto.next_response()
    assert second is not None and second[1] == "second"
    assert proto.queued_responses == 0


def test_a_create_that_races_an_active_response_is_requeued_under_the_same_token() -> None:
    proto, event = sent_create()
    [refused] = proto.replay_jsonl(
        cassette(error("conversation_already_has_active_response", event.event_id))
    )
    assert refused.failed == [] and refused.absorbed == [(event.event_id, event)]
    assert not refused.surfaced  # the app never sees this error
    assert proto.awaiting_created == 0 and proto.queued_responses == 1
    proto.replay_jsonl(cassette(created("resp_vad"), done("resp_vad")))
    retry = proto.next_response()
    assert retry is not None and retry[1] == "mine"
    assert retry[0].event_id != event.event_id  # a fresh request


def test_without_race_absorption_the_error_fails_the_request() -> None:
    proto, event = sent_create()
    proto.absorb_response_races = False
    [refused] = proto.replay_jsonl(
        cassette(error("conversation_already_has_active_response", event.event_id))
    )
    assert [f[0] for f in refused.failed] == [event.event_id] and refused.surfaced
    assert proto.queued_responses == 0 and proto.awaiting_created == 0


def test_a_cancel_that_finds_the_response_finished_is_absorbed() -> None:
    proto = RealtimeProtocol()
    proto.replay_jsonl(cassette(session_created(), created("resp_1")))
    cancel = proto.build_response_cancel()
    [late] = proto.replay_jsonl(cassette(error("response_cancel_not_active", cancel.event_id)))
    assert late.absorbed == [(cancel.event_id, cancel)] and not late.surfaced


def test_a_send_that_failed_awaits_nothing_and_drain_returns_tokens() -> None:
    proto = RealtimeProtocol()
    proto.replay_jsonl(cassette(session_created()))
    proto.queue_response(ev.ResponseCreate(), "a")
    proto.queue_response(ev.ResponseCreate(), "b")
    event, _ = proto.next_response() or (None, None)
    assert event is not None and event.event_id
    proto.response_not_sent(event.event_id)
    assert proto.awaiting_created == 0 and event.event_id not in proto.pending_requests()
    assert proto.drain_responses() == ["b"] and proto.queued_responses == 0


# --- VAD ----------------------------------------------------------------------------------


def test_a_vad_commit_credits_the_next_response_created_to_vad_not_to_us() -> None:
    proto, event = sent_create()
    committed = {"type": "input_audio_buffer.committed", "event_id": "e_c", "item_id": "i_u"}
    vad = proto.replay_jsonl(cassette(committed, created("resp_vad")))[1]
    assert vad.answered == []  # server VAD's own response
    # Ours met the VAD response: refused, absorbed, queued again.
    [refused] = proto.replay_jsonl(
        cassette(error("conversation_already_has_active_response", event.event_id))
    )
    assert refused.absorbed and proto.queued_responses == 1
    proto.replay_jsonl(cassette(done("resp_vad")))
    retry = proto.next_response()
    assert retry is not None and retry[1] == "mine"
    [ours] = proto.replay_jsonl(cassette(created("resp_mine")))
    assert ours.answered == [(retry[0].event_id, retry[0])]


def test_a_response_credited_to_vad_that_ends_with_ours_unanswered_was_ours() -> None:
    # The service answers each response.create (created or error) before it ends another
    # response: if neither came, the response credited to VAD answered ours.
    proto, event = sent_create()
    committed = {"type": "input_audio_buffer.committed", "event_id": "e_c", "item_id": "i_u"}
    proto.replay_jsonl(cassette(committed, created("resp_1")))
    [finished] = proto.replay_jsonl(cassette(done("resp_1")))
    assert finished.answered == [(event.event_id, event)]
    answer = finished.answer_events[event.event_id]
    assert isinstance(answer, ev.ResponseCreated) and answer.response.id == "resp_1"
    assert proto.awaiting_created == 0


@pytest.mark.parametrize(
    ("turn_detection", "cancels", "creates"),
    [
        ("default", True, True),
        ({"type": "server_vad"}, True, True),
        ({"type": "server_vad", "interrupt_response": False}, False, True),
        ({"type": "semantic_vad", "create_response": False}, True, False),
        (None, False, False),
    ],
)
def test_what_server_vad_does_by_itself(turn_detection: Any, cancels: bool, creates: bool) -> None:
    proto = RealtimeProtocol()
    proto.replay_jsonl(cassette(session_created(turn_detection)))
    assert proto.server_cancels_on_speech() is cancels
    assert proto._vad_creates_responses() is creates


# --- truncation ---------------------------------------------------------------------------


def assistant_audio(ms: int) -> list[dict[str, Any]]:
    import base64

    delta = base64.b64encode(bytes(48 * ms)).decode()
    return [
        created("resp_1"),
        {
            "type": "response.output_item.added",
            "event_id": "e1",
            "response_id": "resp_1",
            "output_index": 0,
            "item": {"id": "item_a", "type": "message", "role": "assistant", "content": []},
        },
        {
            "type": "response.content_part.added",
            "event_id": "e2",
            "response_id": "resp_1",
            "item_id": "item_a",
            "output_index": 0,
            "content_index": 0,
            "part": {"type": "audio", "transcript": ""},
        },
        {
            "type": "response.output_audio.delta",
            "event_id": "e3",
            "response_id": "resp_1",
            "item_id": "item_a",
            "output_index": 0,
            "content_index": 0,
            "delta": delta,
        },
    ]


def truncated(ms: int) -> dict[str, Any]:
    return {
        "type": "conversation.item.truncated",
        "event_id": "t1",
        "item_id": "item_a",
        "content_index": 0,
        "audio_end_ms": ms,
    }


def test_a_second_truncate_is_clamped_to_the_first_cut() -> None:
    proto = RealtimeProtocol()
    proto.replay_jsonl(cassette(session_created(), *assistant_audio(1000)))
    assert proto.build_truncate("item_a", 5000).audio_end_ms == 1000  # what arrived
    proto.replay_jsonl(cassette(truncated(400)))
    # More audio of the item still streams in after the cut...
    proto.replay_jsonl(cassette(assistant_audio(200)[-1]))
    again = proto.build_truncate("item_a", 800)
    assert again.audio_end_ms == 400  # ...but the server already cut at 400 ms


def test_plan_truncate_sends_nothing_when_there_is_nothing_to_cut() -> None:
    proto = RealtimeProtocol()
    proto.replay_jsonl(cassette(session_created(), *assistant_audio(600)))
    assert proto.plan_truncate("item_a", 0) is None  # nothing played
    assert proto.plan_truncate("unknown", 100) is None
    planned = proto.plan_truncate("item_a", 250)
    assert planned is not None and planned.audio_end_ms == 250
    proto.replay_jsonl(cassette(truncated(0)))
    assert proto.plan_truncate("item_a", 300) is None  # already cut to nothing


def test_cut_after_stop_skips_a_finished_reply_heard_in_full() -> None:
    proto = RealtimeProtocol()
    proto.replay_jsonl(cassette(session_created(), *assistant_audio(500)))
    assert proto.cut_after_stop("item_a", 500.0) == 500.0  # still streaming: cut
    proto.replay_jsonl(cassette(done("resp_1")))
    assert proto.cut_after_stop("item_a", 500.0) is None
    assert proto.cut_after_stop("item_a", 200.0) == 200.0


# --- restore plan -------------------------------------------------------------------------


def conversation_events() -> list[dict[str, Any]]:
    def added(item: dict[str, Any], previous: str | None) -> dict[str, Any]:
        return {
            "type": "conversation.item.added",
            "event_id": f"a_{item['id']}",
            "previous_item_id": previous,
            "item": item,
        }

    return [
        session_created(),
        added(
            {
                "id": "u1",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hi"}],
            },
            None,
        ),
        added(
            {
                "id": "a1",
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "hello"}],
            },
            "u1",
        ),
        added(
            {
                "id": "c1",
                "type": "function_call",
                "call_id": "call_1",
                "name": "f",
                "arguments": "{}",
            },
            "a1",
        ),
        added(
            {"id": "o1", "type": "function_call_output", "call_id": "call_1", "output": "42"}, "c1"
        ),
    ]


def test_restore_plan_is_data_and_finish_decides_the_local_conversation() -> None:
    proto = RealtimeProtocol()
    proto.replay_jsonl(cassette(*conversation_events()))
    plan = proto.restore_plan()
    assert [item_id for item_id, _ in plan.creates] == ["u1", "a1", "c1", "o1"]
    assert [e.item.id for _, e in plan.creates] == ["u1", "a1", "c1", "o1"]
    plan.begin()
    assert proto.conversation.order == []  # mirrors the new, empty server conversation
    # The answers arrive in order: u1 kept, a1 renumbered, c1 refused, o1 kept.
    proto.replay_jsonl(
        cassette(
            {
                "type": "conversation.item.added",
                "event_id": "r1",
                "previous_item_id": None,
                "item": {"id": "u1", "type": "message", "role": "user", "content": []},
            },
            {
                "type": "conversation.item.added",
                "event_id": "r2",
                "previous_item_id": "u1",
                "item": {"id": "srv_9", "type": "message", "role": "assistant", "content": []},
            },
            {
                "type": "conversation.item.added",
                "event_id": "r4",
                "previous_item_id": "srv_9",
                "item": {
                    "id": "o1",
                    "type": "function_call_output",
                    "call_id": "call_1",
                    "output": "42",
                },
            },
        )
    )
    count = plan.finish([("u1", "u1"), ("a1", "srv_9"), ("c1", None), ("o1", "o1")])
    assert count == 3
    assert proto.conversation.order == ["u1", "srv_9", "c1", "o1"]
    assert proto.conversation.get("u1").text == "hi"  # type: ignore[union-attr]
    assert proto.item_id_map == {"a1": "srv_9", "c1": None}
    assert proto.server_item_id("a1") == "srv_9"
    assert proto.item_lost("c1")


def test_an_aborted_restore_puts_the_conversation_back_and_stops_waiting() -> None:
    proto = RealtimeProtocol()
    proto.replay_jsonl(cassette(*conversation_events()))
    before = proto.conversation.order
    plan = proto.restore_plan()
    plan.begin()
    plan.abort()
    assert proto.conversation.order == before
    assert not any(e.event_id in proto.pending_requests() for _, e in plan.creates)


def test_restorable_keeps_the_heard_share_of_a_truncated_reply() -> None:
    proto = RealtimeProtocol()
    events = assistant_audio(1000)
    events.append(
        {
            "type": "response.output_audio_transcript.done",
            "event_id": "tr",
            "response_id": "resp_1",
            "item_id": "item_a",
            "output_index": 0,
            "content_index": 0,
            "transcript": "abcdefghij",
        }
    )
    proto.replay_jsonl(cassette(session_created(), *events, truncated(500)))
    item = proto.conversation.get("item_a")
    assert item is not None
    wire = restorable(item)
    assert wire is not None and wire["content"][0]["text"] == "abcde"


# --- media audio and remote faults ----------------------------------------------------------


def test_media_audio_is_counted_on_the_playing_responses_audio_item() -> None:
    proto = RealtimeProtocol()
    proto.replay_jsonl(cassette(session_created(), *assistant_audio(0)[:3]))
    assert proto.audio_item_of("resp_1") == ("item_a", 0)
    assert proto.audio_item_of("resp_none") is None
    proto.add_output_audio_ms("item_a", 0, 320.0)
    assert proto.audio_received_ms("item_a") == 320.0
    assert proto.build_truncate("item_a", 1000).audio_end_ms == 320


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "response.created", "event_id": "x", "response": {"status": "in_progress"}},
        {"type": "response.done", "event_id": "x", "response": {"status": "completed"}},
        {
            "type": "conversation.item.added",
            "event_id": "x",
            "previous_item_id": None,
            "item": {"type": "message", "role": "user", "content": []},
        },
    ],
)
def test_faults_in_server_events_are_remote_protocol_errors(bad: dict[str, Any]) -> None:
    proto = RealtimeProtocol()
    with pytest.raises(RemoteProtocolError, match="server sent"):
        proto.receive(bad)


def test_an_item_with_nothing_to_restore_is_marked_lost_not_left_diverging() -> None:
    proto = RealtimeProtocol()
    # An assistant reply cut before any transcript arrived: audio only.
    added = {
        "type": "conversation.item.added",
        "event_id": "a1",
        "previous_item_id": None,
        "item": {"id": "item_a", "type": "message", "role": "assistant", "content": []},
    }
    proto.replay_jsonl(cassette(session_created(), *assistant_audio(300), added, truncated(100)))
    plan = proto.restore_plan()
    assert plan.creates == [] and [i for i, _ in plan.skipped] == ["item_a"]
    plan.begin()
    plan.finish([])
    assert proto.item_lost("item_a")
    with pytest.raises(InvalidStateError, match="could not be re-created"):
        proto.server_item_id("item_a")


# --- a gpt-realtime-2.x tool turn (protocol.md §16.2), from a cassette ---------------------


def test_a_2x_tool_turn_from_its_cassette_keeps_every_item_and_phase() -> None:
    proto = RealtimeProtocol()
    text = (Path(__file__).parent / "sessions" / "preamble_2x.jsonl").read_text()
    proto.replay_jsonl(text)
    items = [
        (i.type, i.role, i.phase, i.text or i.arguments or i.output) for i in proto.conversation
    ]
    assert items == [
        ("message", "user", None, "What's the weather in Oslo?"),
        ("message", "assistant", "commentary", "Let me check the forecast."),
        ("function_call", None, None, '{"city": "Oslo"}'),
        ("function_call_output", None, None, '{"celsius": 3}'),
        ("message", "assistant", "final_answer", "It is three degrees in Oslo."),
    ]
    first, second = list(proto.responses.values())
    assert first.status == second.status == "completed"
    # Two items in the first response, interleaved on the wire, each complete.
    outputs = [proto.conversation.get(i) for i in first.output_item_ids]
    assert [(o.type, o.status) for o in outputs if o is not None] == [
        ("message", "completed"),
        ("function_call", "completed"),
    ]
    assert first.usage is not None and first.usage.output_token_details is not None
    assert (first.usage.output_token_details.reasoning_tokens or 0) > 0
    # Reasoning is counted and priced (as output text).
    assert proto.usage.output_reasoning_tokens > 0

"""Memory stays flat over a long conversation (#14 item 13): every per-turn store is capped.

Many turns are driven fast through a real session on the in-memory pair (a scripted
server answers its requests) and the sizes of the stores are asserted, never timings.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from typing import Any

import pytest

from realtime_client import connect, memory_pair
from realtime_client import responding as responding_module
from realtime_client.protocol import RealtimeProtocol
from realtime_client.protocol import state as state_module
from realtime_client.transports import MemoryTransport

from .conftest import until

_AUDIO = base64.b64encode(b"\x00\x01" * 2400).decode()  # 100 ms of 24 kHz PCM16


class _Server:
    """A scripted server: VAD turns on demand; answers item creates and response creates."""

    def __init__(self, end: MemoryTransport) -> None:
        self.end = end
        self.ids = itertools.count(1)
        self.responses = 0
        self.tool_calls = 0

    async def send(self, event: dict[str, Any]) -> None:
        event.setdefault("event_id", f"event_{next(self.ids)}")
        await self.end.send_event(event)

    async def user_turn(self, n: int) -> None:
        item_id = f"item_user_{n}"
        await self.send(
            {"type": "input_audio_buffer.speech_started", "audio_start_ms": n, "item_id": item_id}
        )
        await self.send(
            {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": n + 5, "item_id": item_id}
        )
        await self.send({"type": "input_audio_buffer.committed", "item_id": item_id})
        item = {
            "id": item_id,
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": f"user says {n}"}],
        }
        await self.send({"type": "conversation.item.added", "item": item})
        await self.send({"type": "conversation.item.done", "item": item})
        await self.respond(tool=n % 3 == 0)

    async def respond(self, *, tool: bool) -> None:
        self.responses += 1
        rid = f"resp_{self.responses}"
        item_id = f"item_out_{self.responses}"
        await self.send(
            {
                "type": "response.created",
                "response": {"id": rid, "status": "in_progress", "conversation_id": "conv_1"},
            }
        )
        if tool:
            self.tool_calls += 1
            item = {
                "id": item_id,
                "type": "function_call",
                "status": "completed",
                "name": "tick",
                "call_id": f"call_{self.responses}",
                "arguments": "{}",
            }
        else:
            item = {
                "id": item_id,
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_audio", "transcript": f"reply {rid}"}],
            }
        common = {"response_id": rid, "output_index": 0}
        await self.send({"type": "response.output_item.added", **common, "item": item})
        if not tool:
            for _ in range(3):
                await self.send(
                    {
                        "type": "response.output_audio.delta",
                        **common,
                        "item_id": item_id,
                        "content_index": 0,
                        "delta": _AUDIO,
                    }
                )
        await self.send({"type": "response.output_item.done", **common, "item": item})
        usage = {"total_tokens": 30, "input_tokens": 10, "output_tokens": 20}
        await self.send(
            {
                "type": "response.done",
                "response": {
                    "id": rid,
                    "status": "completed",
                    "conversation_id": "conv_1",
                    "output": [item],
                    "usage": usage,
                },
            }
        )

    async def answer_requests(self) -> None:
        """Answer the session's tool outputs and response.create requests."""
        while True:
            sent = await self.end.recv_event()
            if sent["type"] == "conversation.item.create":
                item = dict(sent["item"], id=sent["item"].get("id") or f"item_fco_{next(self.ids)}")
                await self.send({"type": "conversation.item.added", "item": item})
                await self.send({"type": "conversation.item.done", "item": item})
            elif sent["type"] == "response.create":
                await self.respond(tool=False)
            elif sent["type"] == "session.update":
                await self.send(
                    {"type": "session.updated", "session": dict(sent["session"], type="realtime")}
                )


async def test_many_turns_keep_every_per_turn_store_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(responding_module, "_HANDLED_CALLS_KEPT", 16)
    calls = 0

    def tick() -> str:
        """Count a call."""
        nonlocal calls
        calls += 1
        return "ok"

    client_end, end = memory_pair()
    server = _Server(end)
    answering = asyncio.ensure_future(server.answer_requests())
    opening = asyncio.ensure_future(connect(transport=client_end, tools=[tick], keep_responses=8))
    await server.send({"type": "session.created", "session": {"type": "realtime"}})
    session = await opening
    session._max_queue = 50  # nobody iterates: the queue keeps the latest events only
    turns = 300
    for n in range(turns):
        await server.user_turn(n)
        if n % 3 == 0:  # the tool ran and its follow-up response finished
            await until(
                lambda: session.stats.turns_total == server.responses and calls == server.tool_calls
            )
    await until(lambda: session.stats.turns_total == server.responses)
    answering.cancel()

    protocol = session.protocol
    assert server.responses == turns + server.tool_calls == 400
    assert calls == server.tool_calls == 100  # every tool call ran once
    # Per-response bookkeeping is capped; the totals are counters over every response.
    assert len(protocol.responses) <= 8
    assert len(session.stats.turns) == 8
    assert session.stats.turns[-1].response_id == f"resp_{server.responses}"
    assert session.stats.turns_total == 400
    assert session.stats.usage.responses == 400 and session.stats.usage.output_tokens == 8000
    assert len(session._turns) == 0 and len(session._t_created) == 0
    assert len(session._first_audio) == 0
    assert len(session._handled_calls) <= 16
    assert len(protocol._speech_times) == 0  # moved into their items
    assert len(protocol._finished) == len(protocol._finished_set) <= 8
    assert len(session._queue._items) <= 50
    # The conversation itself (its text) stays whole, VAD times included.
    assert len(protocol.conversation.items) == turns + server.responses + server.tool_calls == 800
    first = protocol.conversation.get("item_user_0")
    assert first is not None and (first.speech_start_ms, first.speech_end_ms) == (0, 5)
    assert protocol.speech_times("item_user_7") == (7, 12)
    await session.close()


def test_finished_responses_are_forgotten_oldest_first_active_ones_never() -> None:
    proto = RealtimeProtocol(keep_responses=2)
    proto.receive(
        {
            "type": "response.created",
            "event_id": "a",
            "response": {"id": "resp_live", "conversation_id": None},
        }
    )
    for n in range(5):
        proto.receive(
            {
                "type": "response.created",
                "event_id": f"c{n}",
                "response": {"id": f"resp_{n}", "conversation_id": "conv"},
            }
        )
        proto.receive(
            {
                "type": "response.done",
                "event_id": f"d{n}",
                "response": {"id": f"resp_{n}", "status": "completed", "conversation_id": "conv"},
            }
        )
    # A repeated response.done does not count the response twice.
    proto.receive(
        {
            "type": "response.done",
            "event_id": "again",
            "response": {"id": "resp_4", "status": "completed", "conversation_id": "conv"},
        }
    )
    assert list(proto.responses) == ["resp_live", "resp_3", "resp_4"]
    assert proto.usage.responses == 0  # no usage was reported
    # An abandoned response is finished too.
    assert proto.abandon_responses() == ["resp_live"]
    assert sorted(proto.responses) == ["resp_4", "resp_live"]


def test_keep_responses_must_be_positive() -> None:
    with pytest.raises(ValueError, match="keep_responses"):
        RealtimeProtocol(keep_responses=0)


def test_speech_times_and_early_transcripts_for_items_that_never_come_are_bounded() -> None:
    proto = RealtimeProtocol()
    for n in range(1000):
        proto.receive(
            {
                "type": "input_audio_buffer.speech_started",
                "event_id": f"s{n}",
                "audio_start_ms": n,
                "item_id": f"ghost_{n}",
            }
        )
        proto.receive(
            {
                "type": "conversation.item.input_audio_transcription.delta",
                "event_id": f"t{n}",
                "item_id": f"ghost_{n}",
                "content_index": 0,
                "delta": "x",
            }
        )
    assert len(proto._speech_times) <= 64
    assert len(proto.conversation._orphan_transcripts) <= state_module.MAX_DEFERRED_ITEMS
    # The latest ones still wait for their items, and land in them.
    assert proto.speech_times("ghost_999") == (999, None)
    proto.receive(
        {
            "type": "conversation.item.added",
            "event_id": "x",
            "item": {
                "id": "ghost_999",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_audio"}],
            },
        }
    )
    item = proto.conversation.get("ghost_999")
    assert item is not None and item.speech_start_ms == 999 and item.input_transcript == "x"


def test_one_item_keeps_a_bounded_number_of_early_transcription_events() -> None:
    proto = RealtimeProtocol()
    for n in range(state_module.MAX_DEFERRED_EVENTS + 100):
        proto.receive(
            {
                "type": "conversation.item.input_audio_transcription.delta",
                "event_id": f"t{n}",
                "item_id": "late",
                "content_index": 0,
                "delta": "x",
            }
        )
    assert len(proto.conversation._orphan_transcripts["late"]) == state_module.MAX_DEFERRED_EVENTS


def test_item_part_and_response_state_have_no_per_instance_dict() -> None:
    # An instance __dict__ was a large share of an item's bookkeeping: over a long
    # conversation, most of the growth beyond the text.
    kept = (
        state_module.ItemState(id="x", type="message"),
        state_module.PartState(type="output_audio"),
        state_module.ResponseState(id="r"),
    )
    assert not any(hasattr(obj, "__dict__") for obj in kept)

"""gpt-realtime-2.x replies through a session (protocol.md §16.2): a spoken preamble, a tool
call interleaved with it, the final answer; several audio items in one response, each
played and truncated on its own."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np

from realtime_client import connect
from realtime_client import events as ev
from realtime_client.audio.playback import PlaybackBuffer
from realtime_client.server import LocalServer

from ..conftest import until
from .conftest import next_event
from .test_session import errors_of, send_blocks, silence, speech_like


async def test_a_spoken_preamble_a_tool_and_the_final_answer(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    call = {"name": "get_weather", "arguments": {"city": "Oslo"}}
    path.write_text(
        json.dumps(
            {
                "rules": [
                    {
                        "match": "weather",
                        "reply": {"function_call": call, "preamble": "Let me look that up."},
                    }
                ],
                "default": {"text": "It is three degrees in Oslo."},
            }
        )
    )
    calls: list[str] = []

    def get_weather(city: str) -> dict[str, Any]:
        """The weather in a city."""
        calls.append(city)
        return {"celsius": 3}

    sink = PlaybackBuffer(24_000, prebuffer_ms=0)
    async with LocalServer(responder=f"script:{path}", speed=0) as server:
        async with connect("gpt-realtime-2.1", url=server.url, tools=[get_weather]) as session:
            errors = errors_of(session)
            session.attach(sink=sink)
            await session.send_text("What's the weather in Oslo?")
            first = await next_event(session, ev.ResponseDone)
            second = await next_event(session, ev.ResponseDone)
            assert calls == ["Oslo"]
            said = [
                (i.role, i.phase, i.type, i.text)
                for i in session.conversation
                if i.type != "function_call_output"
            ]
            assert said == [
                ("user", None, "message", "What's the weather in Oslo?"),
                ("assistant", "commentary", "message", "Let me look that up."),
                (None, None, "function_call", ""),
                ("assistant", "final_answer", "message", "It is three degrees in Oslo."),
            ]
            preamble_id = first.response.output[0].id
            answer_id = second.response.output[0].id
            assert preamble_id is not None and answer_id is not None
            # Each audio item reached the speaker whole and on its own.
            for item_id in (preamble_id, answer_id):
                received = session.protocol.audio_received_ms(item_id)
                assert received > 500
                assert abs(sink.received_ms(item_id) - received) <= 1
            assert errors == []


async def test_a_barge_in_during_the_second_audio_item_truncates_that_item(
    tmp_path: Path,
) -> None:
    path = tmp_path / "script.json"
    reply = [
        {"tone": {"frequency_hz": 300, "duration_ms": 600}, "text": "First part."},
        {"tone": {"frequency_hz": 500, "duration_ms": 3000}, "text": "Second, longer part."},
    ]
    path.write_text(json.dumps({"turns": [{"reply": reply}]}))
    sink = PlaybackBuffer(24_000, prebuffer_ms=0)
    async with LocalServer(responder=f"script:{path}", speed=4.0) as server:
        async with connect("gpt-realtime-2.1", url=server.url) as session:
            errors = errors_of(session)
            session.attach(sink=sink)
            await session.send_text("go")
            added = []
            while len(added) < 2:
                event = await next_event(session, ev.ResponseOutputItemAdded)
                added.append(event.item.id)
            first_id, second_id = added
            await until(lambda: session.protocol.audio_received_ms(second_id) >= 600)
            # The "device" plays all of the first item and 400 ms of the second.
            sink.read(24 * (600 + 400))
            position = sink.position()
            assert position is not None and position.item_id == second_id
            await send_blocks(session, np.concatenate([speech_like(0.6), silence(0.6)]), 24_000)
            truncated = await next_event(session, ev.ConversationItemTruncated)
            assert truncated.item_id == second_id
            assert 400 <= truncated.audio_end_ms <= 400 + 5  # + the clear's fade-out
            await asyncio.sleep(0.05)
            first = session.conversation.get(first_id)
            second = session.conversation.get(second_id)
            assert first is not None and second is not None
            assert first.truncated_at_ms is None and first.text == "First part."
            assert second.truncated_at_ms == truncated.audio_end_ms
            assert first.phase == second.phase == "final_answer"
            assert errors == []

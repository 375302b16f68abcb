"""``await session.respond(...)``: one call for a finished reply, tools included."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from realtime_client import Answer, RealtimeError, connect, memory_pair
from realtime_client import events as ev
from realtime_client.errors import ServerError
from realtime_client.server import LocalServer

from ..conftest import weather_script
from .conftest import next_event
from .test_session import errors_of


async def test_respond_returns_the_text_status_and_usage() -> None:
    async with LocalServer(responder="echo", speed=0) as server:
        async with connect("gpt-realtime", url=server.url) as session:
            answer = await session.respond("Hello there", output_modalities=["text"])
            assert isinstance(answer, Answer)
            assert answer.text == "Echo: Hello there"
            assert answer.status == "completed" and len(answer.response_ids) == 1
            assert answer.usage.output_tokens > 0 and answer.audio_ms == 0
            assert answer.tool_calls == [] and answer.preambles == []
            # Spoken: the transcript and the audio received.
            spoken = await session.respond("Say it out loud")
            assert spoken.text == "Echo: Say it out loud" and spoken.audio_ms > 500


@pytest.mark.parametrize("model", ["gpt-realtime", "gpt-realtime-2.1"])
async def test_respond_runs_the_tools_and_returns_after_the_final_answer(
    tmp_path: Path, model: str
) -> None:
    script = weather_script(tmp_path, "Oslo", "It is three degrees in Oslo.")

    def get_weather(city: str) -> dict[str, Any]:
        """The weather in a city."""
        return {"city": city, "celsius": 3}

    async with LocalServer(responder=f"script:{script}", speed=0) as server:
        async with connect(model, url=server.url, tools=[get_weather]) as session:
            errors = errors_of(session)
            answer = await session.respond("What's the weather in Oslo?")
            assert answer.text == "It is three degrees in Oslo."
            assert answer.status == "completed" and len(answer.response_ids) == 2
            (call,) = answer.tool_calls
            assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Oslo"})
            assert call.output is not None and json.loads(call.output) == {
                "city": "Oslo",
                "celsius": 3,
            }
            if model == "gpt-realtime-2.1":
                assert answer.preambles == ["Let me check that."]
                assert [i.phase for i in answer.items] == ["commentary", "final_answer"]
            else:
                assert answer.preambles == [] and len(answer.items) == 1
            assert answer.usage.responses == 2
            assert errors == []


async def test_respond_with_nothing_answers_the_conversation_as_it_is() -> None:
    async with LocalServer(responder="echo", speed=0) as server:
        async with connect("gpt-realtime", url=server.url) as session:
            await session.send_text("first words", respond=False)
            answer = await session.respond(output_modalities=["text"])
            assert answer.text == "Echo: first words"


async def test_respond_timeout_cancels_the_response() -> None:
    async with LocalServer(responder="echo", speed=1.0) as server:
        async with connect("gpt-realtime", url=server.url) as session:
            with pytest.raises(asyncio.TimeoutError):
                await session.respond("please tell me a long story about the sea", timeout=0.3)
            done = await next_event(session, ev.ResponseDone)
            assert done.response.status == "cancelled"
            # The session goes on.
            answer = await session.respond("again", output_modalities=["text"])
            assert answer.text == "Echo: again"


async def test_cancelling_the_awaiting_task_cancels_the_response() -> None:
    async with LocalServer(responder="echo", speed=1.0) as server:
        async with connect("gpt-realtime", url=server.url) as session:
            task = asyncio.create_task(session.respond("a long answer please, a long one"))
            await next_event(session, ev.ResponseOutputAudioDelta)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            done = await next_event(session, ev.ResponseDone)
            assert done.response.status == "cancelled"


async def test_respond_fails_fast_when_the_session_closes() -> None:
    async with LocalServer(responder="echo", speed=1.0) as server:
        session = await connect("gpt-realtime", url=server.url, reconnect=None)
        task = asyncio.create_task(session.respond("a long answer please", timeout=30))
        await next_event(session, ev.ResponseCreated)
        await session.close()
        with pytest.raises(RealtimeError):
            await asyncio.wait_for(task, 5)


async def test_a_refused_follow_up_after_the_tools_fails_respond_at_once() -> None:
    """The server refuses the ``response.create`` that follows the tool outputs: respond()
    raises its error (it used to wait for a follow-up that never came, for ever)."""

    def get_weather(city: str) -> dict[str, Any]:
        """The weather in a city."""
        return {"city": city, "celsius": 3}

    client_end, server = memory_pair()
    call = {
        "id": "item_fc",
        "type": "function_call",
        "status": "completed",
        "name": "get_weather",
        "call_id": "call_1",
        "arguments": '{"city": "Oslo"}',
    }
    response = {"object": "realtime.response", "id": "resp_1", "status": "in_progress"}

    async def serve() -> None:
        await server.send_event(
            {"type": "session.created", "event_id": "s0", "session": {"type": "realtime"}}
        )
        while True:
            sent = await server.recv_event()
            if sent["type"] == "session.update":
                await server.send_event(
                    {"type": "session.updated", "event_id": "su", "session": {"type": "realtime"}}
                )
            elif (
                sent["type"] == "response.create" and sent.get("event_id") and not call.get("done")
            ):
                call["done"] = True
                await server.send_event(
                    {"type": "response.created", "event_id": "s1", "response": response}
                )
                done = {**response, "status": "completed", "output": [call]}
                for kind in ("response.output_item.added", "response.output_item.done"):
                    await server.send_event(
                        {
                            "type": kind,
                            "event_id": kind,
                            "response_id": "resp_1",
                            "output_index": 0,
                            "item": call,
                        }
                    )
                await server.send_event(
                    {"type": "response.done", "event_id": "s3", "response": done}
                )
            elif sent["type"] == "response.create":
                await server.send_event(
                    {
                        "type": "error",
                        "event_id": "s4",
                        "error": {
                            "type": "invalid_request_error",
                            "code": "invalid_value",
                            "message": "refused",
                            "param": None,
                            "event_id": sent["event_id"],
                        },
                    }
                )
            elif sent["type"] == "conversation.item.create":
                item = {"id": f"item_{sent['event_id']}", **sent["item"], "status": "completed"}
                for kind in ("conversation.item.added", "conversation.item.done"):
                    await server.send_event(
                        {
                            "type": kind,
                            "event_id": f"{kind}{item['id']}",
                            "previous_item_id": None,
                            "item": item,
                        }
                    )

    serving = asyncio.ensure_future(serve())
    session = await connect(transport=client_end, tools=[get_weather])
    try:
        with pytest.raises(ServerError) as info:
            await session.respond("What's the weather in Oslo?", timeout=10)
        assert info.value.code == "invalid_value"
        assert not session.closed  # the session goes on
    finally:
        serving.cancel()
        await session.close()

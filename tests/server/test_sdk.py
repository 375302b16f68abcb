"""The official ``openai`` SDK as the client: a real client nobody here wrote.

Every server event the SDK receives is validated against the SDK's own pydantic types
(``RealtimeServerEvent`` for GA, the beta union for beta). Extra fields such as
``obfuscation`` are allowed by those models, as on the real service.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.beta.realtime import RealtimeServerEvent as BetaServerEvent
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter

from realtime_client.server import LocalServer

from ..conftest import weather_script
from .conftest import KEY, speech

GA_EVENTS: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)
BETA_EVENTS: TypeAdapter[Any] = TypeAdapter(BetaServerEvent)


class Recv:
    """Receives raw frames through the SDK connection and validates each one strictly."""

    def __init__(self, conn: Any, adapter: TypeAdapter[Any]) -> None:
        self.conn = conn
        self.adapter = adapter
        self.events: list[dict[str, Any]] = []

    async def until(self, type_: str) -> list[dict[str, Any]]:
        out = []
        while True:
            raw = json.loads(await self.conn.recv_bytes())
            model = self.adapter.validate_python(raw)
            assert model.type == raw["type"]
            parsed = self.conn.parse_event(json.dumps(raw))  # the SDK's own parse path
            assert parsed.type == raw["type"]
            out.append(raw)
            self.events.append(raw)
            if raw["type"] == type_:
                return out


@pytest.fixture
async def fast() -> Any:
    async with LocalServer(speed=0, seed=3) as srv:
        yield srv


async def _say(conn: Any, text: str) -> None:
    """A user text message through the SDK's typed helpers, then ``response.create``."""
    await conn.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    )
    await conn.response.create()


def _client(srv: LocalServer) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=srv.url, api_key=KEY, max_retries=0)


async def test_sdk_text_turn(fast: LocalServer) -> None:
    async with _client(fast).realtime.connect(model="gpt-realtime") as conn:
        r = Recv(conn, GA_EVENTS)
        await r.until("session.created")
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        await r.until("session.updated")
        await _say(conn, "Say hello")
        events = await r.until("rate_limits.updated")
        done = next(e for e in events if e["type"] == "response.done")
        assert done["response"]["output"][0]["content"][0]["text"] == "Echo: Say hello"


async def test_sdk_audio_turn_append_commit_response(fast: LocalServer) -> None:
    async with _client(fast).realtime.connect(model="gpt-realtime") as conn:
        r = Recv(conn, GA_EVENTS)
        await r.until("session.created")
        await conn.session.update(
            session={"type": "realtime", "audio": {"input": {"turn_detection": None}}}
        )
        await r.until("session.updated")
        audio = speech(400)
        for i in range(0, len(audio), 2400):
            await conn.input_audio_buffer.append(
                audio=base64.b64encode(audio[i : i + 2400].astype("<i2").tobytes()).decode()
            )
        await conn.input_audio_buffer.commit()
        await r.until("conversation.item.done")
        await conn.response.create()
        events = await r.until("rate_limits.updated")
        pcm = b"".join(
            base64.b64decode(e["delta"])
            for e in events
            if e["type"] == "response.output_audio.delta"
        )
        np.testing.assert_array_equal(np.frombuffer(pcm, dtype="<i2"), audio)
        # the SDK's typed iterator sees the same stream
        assert any(e["type"] == "response.output_audio_transcript.done" for e in events)


def _script(tmp_path: Path) -> Path:
    return weather_script(tmp_path, "Paris", "It is 18 degrees in Paris.", answer_key="turns")


async def test_sdk_function_call_round_trip(tmp_path: Path) -> None:
    async with LocalServer(speed=0, responder=f"script:{_script(tmp_path)}") as srv:
        async with _client(srv).realtime.connect(model="gpt-realtime") as conn:
            r = Recv(conn, GA_EVENTS)
            await r.until("session.created")
            await conn.session.update(
                session={
                    "type": "realtime",
                    "output_modalities": ["text"],
                    "tools": [
                        {
                            "type": "function",
                            "name": "get_weather",
                            "description": "Weather for a city",
                            "parameters": {
                                "type": "object",
                                "properties": {"city": {"type": "string"}},
                            },
                        }
                    ],
                }
            )
            await r.until("session.updated")
            await _say(conn, "What's the weather?")
            events = await r.until("rate_limits.updated")
            kinds = [e["type"] for e in events if not e["type"].endswith(".delta")]
            assert kinds[2:] == [
                "response.created",
                "response.output_item.added",
                "conversation.item.added",
                "response.function_call_arguments.done",
                "conversation.item.done",
                "response.output_item.done",
                "response.done",
                "rate_limits.updated",
            ]
            args_done = next(
                e for e in events if e["type"] == "response.function_call_arguments.done"
            )
            assert args_done["name"] == "get_weather"
            assert json.loads(args_done["arguments"]) == {"city": "Paris"}
            deltas = "".join(
                e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"
            )
            assert deltas == args_done["arguments"]
            call = next(e for e in events if e["type"] == "response.done")["response"]["output"][0]
            assert call["type"] == "function_call" and call["call_id"].startswith("call_")
            assert len(call["call_id"]) == len("call_") + 16
            await conn.conversation.item.create(
                item={
                    "type": "function_call_output",
                    "call_id": call["call_id"],
                    "output": json.dumps({"temp_c": 18}),
                }
            )
            await r.until("conversation.item.done")
            await conn.response.create()
            events = await r.until("response.done")
            text = events[-1]["response"]["output"][0]["content"][0]["text"]
            assert text == "It is 18 degrees in Paris."


async def test_sdk_validates_a_2x_spoken_tool_turn_with_its_preamble(tmp_path: Path) -> None:
    # gpt-realtime-2.1: a spoken commentary message, the call interleaved, then the final
    # answer; every event passes the SDK's strict types (``phase`` is an extra field there).
    async with LocalServer(speed=0, responder=f"script:{_script(tmp_path)}") as srv:
        async with _client(srv).realtime.connect(model="gpt-realtime-2.1") as conn:
            r = Recv(conn, GA_EVENTS)
            created = (await r.until("session.created"))[-1]["session"]
            assert created["audio"]["output"]["voice"] == "marin"
            await _say(conn, "What's the weather?")
            done = (await r.until("response.done"))[-1]["response"]
            message, call = done["output"]
            assert message["phase"] == "commentary" and message["content"][0]["transcript"]
            assert done["usage"]["output_token_details"]["reasoning_tokens"] > 0
            await conn.conversation.item.create(
                item={"type": "function_call_output", "call_id": call["call_id"], "output": "{}"}
            )
            await conn.response.create()
            answer = (await r.until("response.done"))[-1]["response"]["output"]
            assert [o["phase"] for o in answer] == ["final_answer"]
            assert any(e["type"] == "response.output_audio.delta" for e in r.events)


async def test_sdk_cancel() -> None:
    async with LocalServer(speed=1.0) as srv:
        async with _client(srv).realtime.connect(model="gpt-realtime") as conn:
            r = Recv(conn, GA_EVENTS)
            await r.until("session.created")
            await _say(conn, "tell me a long story please")
            await r.until("response.output_audio.delta")
            await conn.response.cancel()
            events = await r.until("rate_limits.updated")
            done = next(e for e in events if e["type"] == "response.done")["response"]
            assert done["status"] == "cancelled"
            assert done["status_details"]["reason"] == "client_cancelled"
            await conn.response.cancel()
            err = await r.until("error")
            assert err[-1]["error"]["code"] == "response_cancel_not_active"


async def test_sdk_client_secret_then_connect(fast: LocalServer) -> None:
    client = _client(fast)
    secret = await client.realtime.client_secrets.create(
        expires_after={"anchor": "created_at", "seconds": 60},
        session={"type": "realtime", "model": "gpt-realtime", "instructions": "Be brief."},
    )
    assert secret.value.startswith("ek_")
    assert secret.session.type == "realtime" and secret.session.instructions == "Be brief."
    ek_client = AsyncOpenAI(base_url=fast.url, api_key=secret.value, max_retries=0)
    async with ek_client.realtime.connect(model="gpt-realtime") as conn:
        r = Recv(conn, GA_EVENTS)
        created = await r.until("session.created")
        assert created[0]["session"]["instructions"] == "Be brief."
    with pytest.raises(openai.BadRequestError, match="Unknown parameter: 'session.bogus'"):
        await client.realtime.client_secrets.create(session={"type": "realtime", "bogus": 1})  # type: ignore[typeddict-unknown-key]
    await client.close()
    await ek_client.close()


async def test_sdk_beta_dialect(fast: LocalServer) -> None:
    client = AsyncOpenAI(
        base_url=fast.url,
        api_key=KEY,
        max_retries=0,
        websocket_base_url=fast.url.replace("http://", "ws://"),
    )
    async with client.beta.realtime.connect(model="gpt-4o-realtime-preview") as conn:
        r = Recv(conn, BETA_EVENTS)
        created = await r.until("session.created")
        assert created[0]["session"]["modalities"] == ["audio", "text"]
        await conn.session.update(session={"modalities": ["text"], "instructions": "Be brief."})
        await r.until("session.updated")
        await _say(conn, "hi beta")
        events = await r.until("response.done")
        assert events[-1]["response"]["output"][0]["content"] == [
            {"type": "text", "text": "Echo: hi beta"}
        ]
        assert "response.text.delta" in {e["type"] for e in events}


async def test_sdk_beta_ephemeral_session(fast: LocalServer) -> None:
    async with AsyncOpenAI(base_url=fast.url, api_key=KEY, max_retries=0) as client:
        sess = await client.beta.realtime.sessions.create(
            model="gpt-4o-realtime-preview", modalities=["text"], instructions="Beta brief."
        )
        assert sess.client_secret.value.startswith("ek_")
        assert sess.modalities == ["text"] and sess.instructions == "Beta brief."
        with pytest.raises(openai.BadRequestError, match="Invalid value: 'celsius'"):
            await client.beta.realtime.sessions.create(input_audio_format="celsius")  # type: ignore[arg-type]
    ek = AsyncOpenAI(
        base_url=fast.url,
        api_key=sess.client_secret.value,
        max_retries=0,
        websocket_base_url=fast.url.replace("http://", "ws://"),
    )
    async with ek.beta.realtime.connect(model="gpt-4o-realtime-preview") as conn:
        created = await Recv(conn, BETA_EVENTS).until("session.created")
        assert created[0]["session"]["instructions"] == "Beta brief."
        assert created[0]["session"]["modalities"] == ["text"]
    await ek.close()

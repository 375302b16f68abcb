"""The session manager against the local server over real loopback WebSockets."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from realtime_client import (
    AudioDropped,
    Reconnected,
    Reconnecting,
    ReconnectPolicy,
    Session,
    connect,
)
from realtime_client import events as ev
from realtime_client.audio.playback import PlaybackBuffer
from realtime_client.errors import (
    AudioFormatError,
    AuthenticationError,
    ConnectError,
    ConnectionClosedError,
    InvalidModelError,
    InvalidStateError,
    SessionExpiredError,
)
from realtime_client.server import LocalServer

from .conftest import next_event

FAST = ReconnectPolicy(base_delay_s=0.05, max_delay_s=0.2, recycle_before_expiry_s=0)


def speech_like(seconds: float, rate: int = 24_000, level: float = 0.2) -> np.ndarray:
    """A voiced tone burst loud enough for the energy VAD."""
    t = np.arange(int(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * 220 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))).astype(
        np.float32
    )


def silence(seconds: float, rate: int = 24_000) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)


async def send_blocks(session: Session, samples: np.ndarray, rate: int, block_ms: int = 20) -> None:
    step = rate * block_ms // 1000
    for start in range(0, len(samples), step):
        await session.send_audio(samples[start : start + step], rate)


def errors_of(session: Session) -> list[ev.Error]:
    found: list[ev.Error] = []
    session.on("error", found.append)
    return found


@pytest.fixture
async def server() -> Any:
    async with LocalServer(responder="echo", speed=0) as srv:
        yield srv


def script(tmp_path: Path, data: dict[str, Any]) -> str:
    path = tmp_path / "script.json"
    path.write_text(json.dumps(data))
    return f"script:{path}"


async def test_text_turn(server: LocalServer) -> None:
    async with connect("gpt-realtime", url=server.url, instructions="Be brief.") as session:
        errors = errors_of(session)
        assert isinstance(session.server_session, ev.RealtimeSession)
        assert session.server_session.instructions == "Be brief."
        created = await session.send_text("Hello there", respond=False)
        assert isinstance(created, ev.ConversationItemAdded)
        response = await session.create_response()
        assert isinstance(response, ev.ResponseCreated)
        done = await next_event(session, ev.ResponseDone)
        assert done.response.status == "completed"
        texts = [(item.role, item.text) for item in session.conversation]
        assert texts == [("user", "Hello there"), ("assistant", "Echo: Hello there")]
        turn = session.stats.last_turn()
        assert turn is not None and turn.create_to_delta_ms is not None and turn.duration_ms
        assert session.stats.usage.total_tokens > 0 and session.stats.cost_usd > 0
        assert errors == []


async def test_audio_turn_with_server_vad_plays_into_the_sink(server: LocalServer) -> None:
    sink = PlaybackBuffer(24_000, prebuffer_ms=0)
    async with connect("gpt-realtime", url=server.url) as session:
        errors = errors_of(session)
        session.attach(sink=sink)
        # 48 kHz device audio: resampled to 24 kHz by send_audio.
        await send_blocks(
            session,
            np.concatenate([silence(0.3, 48_000), speech_like(1.0, 48_000), silence(0.8, 48_000)]),
            48_000,
        )
        stopped = await next_event(session, ev.InputAudioBufferSpeechStopped)
        done = await next_event(session, ev.ResponseDone)
        assistant = session.conversation.get(done.response.output[0].id)
        assert assistant is not None and assistant.role == "assistant"
        user = session.conversation.get(stopped.item_id)
        assert user is not None and user.speech_start_ms is not None
        # The echo responder plays back the committed turn; all of it reached the sink.
        received = session.protocol.audio_received_ms(assistant.id)
        assert received > 900
        assert sink.received_ms(assistant.id) == pytest.approx(received, abs=1)
        turn = session.stats.last_turn()
        assert turn is not None and turn.speech_to_audio_ms is not None
        assert session.stats.audio_sent_ms == pytest.approx(2100, abs=25)
        assert errors == []


async def test_tools_several_calls_in_one_response(tmp_path: Path) -> None:
    spec = script(
        tmp_path,
        {
            "turns": [
                {
                    "reply": [
                        {"function_call": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                        {"function_call": {"name": "add", "arguments": {"a": 2, "b": 40}}},
                    ]
                },
                {"reply": {"text": "Paris is mild and the sum is 42."}},
            ]
        },
    )
    calls: list[tuple[str, Any]] = []

    async def get_weather(city: str) -> dict[str, Any]:
        """Current weather for a city."""
        calls.append(("get_weather", city))
        return {"city": city, "temp_c": 18}

    def add(a: int, b: int) -> int:
        """Add two integers."""
        calls.append(("add", (a, b)))
        return a + b

    async with LocalServer(responder=spec, speed=0) as server:
        async with connect(url=server.url, tools=[get_weather, add]) as session:
            errors = errors_of(session)
            tools = session.server_session.tools  # type: ignore[union-attr]
            assert tools is not None and {t.name for t in tools} == {"get_weather", "add"}
            await session.send_text("Weather in Paris, and 2 + 40?")
            first = await next_event(session, ev.ResponseDone)
            # The default model (gpt-realtime-2.1) opens with a spoken preamble.
            shape = [(o.type, getattr(o, "phase", None)) for o in first.response.output]
            assert shape == [
                ("message", "commentary"),
                ("function_call", None),
                ("function_call", None),
            ]
            second = await next_event(session, ev.ResponseDone)
            assert second.response.status == "completed"
            assert sorted(calls) == [("add", (2, 40)), ("get_weather", "Paris")]
            outputs = [i.output for i in session.conversation if i.type == "function_call_output"]
            assert outputs == ['{"city":"Paris","temp_c":18}', "42"]
            assert session.conversation.last().text == "Paris is mild and the sum is 42."
            assert session.stats.tool_calls == 2 and session.stats.tool_errors == 0
            assert errors == []


async def test_tool_error_is_sent_as_output_not_fatal(tmp_path: Path) -> None:
    spec = script(
        tmp_path,
        {
            "turns": [
                {"reply": {"function_call": {"name": "boom", "arguments": {}}}},
                {"reply": {"text": "ok"}},
            ]
        },
    )

    def boom() -> str:
        """Always fails."""
        raise RuntimeError("kaput")

    async with LocalServer(responder=spec, speed=0) as server:
        async with connect(url=server.url, tools=[boom]) as session:
            await session.send_text("go")
            await next_event(session, ev.ResponseDone)
            await next_event(session, ev.ResponseDone)
            output = next(i for i in session.conversation if i.type == "function_call_output")
            assert "kaput" in (output.output or "")
            assert session.stats.tool_errors == 1


async def test_concurrent_creates_are_queued_not_errors(server: LocalServer) -> None:
    async with connect(url=server.url) as session:
        errors = errors_of(session)
        await session.send_text("one", respond=False)
        results = await asyncio.gather(*(session.create_response() for _ in range(3)))
        ids = {r.response.id for r in results}
        assert len(ids) == 3
        for _ in range(3):
            await next_event(session, ev.ResponseDone)
        assert errors == []


async def test_cancel_is_a_noop_when_idle_and_cancels_when_active() -> None:
    async with LocalServer(responder="echo", speed=1.0) as server:
        async with connect(url=server.url) as session:
            errors = errors_of(session)
            assert await session.cancel_response() is False
            await session.send_text("a reasonably long sentence to speak slowly")
            await next_event(session, ev.ResponseOutputAudioDelta)
            assert await session.cancel_response() is True
            done = await next_event(session, ev.ResponseDone)
            assert done.response.status == "cancelled"
            assert done.response.status_details is not None
            assert done.response.status_details.reason == "client_cancelled"
            assert await session.cancel_response() is False
            assert errors == []


@pytest.mark.parametrize("seed", range(4))
async def test_barge_in_at_random_moments_never_errors(seed: int) -> None:
    rng = random.Random(seed)
    sink = PlaybackBuffer(24_000, prebuffer_ms=0)
    async with LocalServer(responder="echo", speed=4.0) as server:
        async with connect(url=server.url) as session:
            errors = errors_of(session)
            session.attach(sink=sink, iterate_audio=True)  # to wait for the audio
            await session.send_text("please say something long enough to interrupt it")
            await next_event(session, ev.ResponseOutputAudioDelta)
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            sink.read(int(24 * rng.uniform(0, 400)))  # the "device" plays a random amount
            position = sink.position()
            await send_blocks(session, np.concatenate([speech_like(0.6), silence(0.6)]), 24_000)
            await next_event(session, ev.InputAudioBufferSpeechStarted)
            await next_event(session, ev.InputAudioBufferCommitted)
            await asyncio.sleep(0.1)
            truncated = [
                i
                for i in session.conversation
                if i.role == "assistant" and i.truncated_at_ms is not None
            ]
            if position is not None and position.played_ms >= 1:
                # Truncated where the listener stopped hearing it: the played position
                # plus the fade-out (5 ms) the clear appends.
                assert len(truncated) == 1
                assert int(position.played_ms) <= truncated[0].truncated_at_ms
                assert truncated[0].truncated_at_ms <= int(position.played_ms) + 5
            assert errors == []


async def test_push_to_talk_commit_and_respond(server: LocalServer) -> None:
    async with connect(
        url=server.url, session={"audio": {"input": {"turn_detection": None}}}
    ) as session:
        errors = errors_of(session)
        await session.push_to_talk_press()
        await send_blocks(session, speech_like(0.5), 24_000)
        committed = await session.push_to_talk_release()
        assert isinstance(committed, ev.InputAudioBufferCommitted)
        done = await next_event(session, ev.ResponseDone)
        assert done.response.status == "completed"
        assert errors == []


async def test_late_transcription_reaches_the_user_item(tmp_path: Path) -> None:
    spec = script(
        tmp_path, {"turns": [{"transcript": "turn on the lights", "reply": {"text": "Done."}}]}
    )
    async with LocalServer(responder=spec, speed=0, faults="reorder") as server:
        config = {"audio": {"input": {"transcription": {"model": "gpt-4o-mini-transcribe"}}}}
        async with connect(url=server.url, session=config) as session:
            await send_blocks(session, np.concatenate([speech_like(0.8), silence(0.8)]), 24_000)
            committed = await next_event(session, ev.InputAudioBufferCommitted)
            await next_event(session, ev.ConversationItemInputAudioTranscriptionCompleted)
            user = session.conversation.get(committed.item_id)
            assert user is not None and user.input_transcript == "turn on the lights"


async def test_connection_drop_mid_response_restores_state_and_audio() -> None:
    async with LocalServer(responder="echo", speed=0) as server:
        # The first connection is cut where the first audio delta would go.
        server.push_faults("drop_at=response.output_audio.delta")
        async with connect(url=server.url, reconnect=FAST) as session:
            errors = errors_of(session)
            added = await session.send_text("first turn", respond=False)
            created = await session.create_response()
            assert isinstance(created, ev.ResponseCreated)
            reconnecting = await next_event(session, Reconnecting)
            assert reconnecting.attempt == 1
            # Audio captured during the outage is kept and flushed afterwards.
            await session.send_audio(silence(0.2))
            reconnected = await next_event(session, Reconnected)
            assert reconnected.items >= 1
            assert reconnected.flushed_audio_ms == pytest.approx(200, abs=1)
            # The restored items exist on the new server session under the same ids.
            got = await session.retrieve_item(added.item.id)
            assert got.item.id == added.item.id
            assert got.item.content[0].text == "first turn"
            await session.send_text("third turn")
            await next_event(session, ev.ResponseDone)
            assert session.conversation.last().text == "Echo: third turn"
            assert session.stats.dropped_audio_ms == 0
            assert session.stats.reconnects == 1
            assert errors == []


async def test_outage_overflow_is_counted_and_reported() -> None:
    policy = ReconnectPolicy(
        base_delay_s=0.5, max_delay_s=0.5, outage_buffer_ms=100, recycle_before_expiry_s=0
    )
    async with LocalServer(responder="echo", speed=0) as server:
        server.push_faults("drop_at=conversation.item.added")
        async with connect(url=server.url, reconnect=policy) as session:
            text = asyncio.ensure_future(session.send_text("cut", respond=False))
            await next_event(session, Reconnecting)
            with pytest.raises(ConnectionClosedError):
                await text  # the request in flight fails; the session goes on
            await send_blocks(session, silence(0.3), 24_000)
            dropped = await next_event(session, AudioDropped)
            assert dropped.dropped_ms == pytest.approx(20, abs=1)  # one block at a time
            assert session.stats.dropped_audio_ms == pytest.approx(200, abs=1)
            reconnected = await next_event(session, Reconnected)
            assert reconnected.flushed_audio_ms == pytest.approx(100, abs=1)


async def test_session_expiry_ends_the_session_without_reconnect() -> None:
    async with LocalServer(responder="echo", speed=0, session_limit_s=0.5) as server:
        session = await connect(url=server.url, reconnect=False)
        with pytest.raises(SessionExpiredError):
            async for _ in session:
                pass
        assert session.closed
        with pytest.raises(InvalidStateError):
            await session.send_text("too late")


async def test_session_expiry_reconnects_with_a_policy() -> None:
    async with LocalServer(responder="echo", speed=0, session_limit_s=0.7) as server:
        async with connect(url=server.url, reconnect=FAST) as session:
            await session.send_text("remember me", respond=False)
            await next_event(session, Reconnected, timeout=5)
            await session.send_text("still here?")
            await next_event(session, ev.ResponseDone)


async def test_bad_key_and_bad_model_fail_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    async with LocalServer(responder="echo", speed=0, api_keys=["sk-good"]) as server:
        with pytest.raises(AuthenticationError, match="Incorrect API key") as info:
            await connect(url=server.url, api_key="sk-bad")
        assert "sk-bad" not in str(info.value).replace("sk-bad"[:3], "")
        with pytest.raises(InvalidModelError, match="gpt-nope"):
            await connect("gpt-nope", url=server.url, api_key="sk-good")
        session = await connect(url=server.url, api_key="sk-good")
        assert "sk-good" not in repr(session) and "sk-good" not in repr(session._transport)
        await session.close()
        # No key at all: say so, not which placeholder key the loopback server refused.
        with pytest.raises(AuthenticationError) as none:
            await connect(url=server.url, api_key=None)
        assert str(none.value) == (
            "the server wants an API key and none was given: set OPENAI_API_KEY or pass api_key="
        )


async def test_a_url_without_v1_says_where_the_endpoint_is(server: LocalServer) -> None:
    with pytest.raises(ConnectError, match=r"HTTP 404\): a base URL ends in /v1") as info:
        await connect(url=server.url.removesuffix("/v1"), reconnect=False)
    assert info.value.retryable is False


async def test_beta_dialect_speaks_canonical_events(server: LocalServer) -> None:
    async with connect(
        "gpt-4o-realtime-preview", url=server.url, dialect="beta", voice="verse"
    ) as session:
        errors = errors_of(session)
        deltas: list[ev.ResponseOutputAudioDelta] = []
        session.on(ev.ResponseOutputAudioDelta, deltas.append)
        await session.send_text("hello beta")
        await next_event(session, ev.ResponseDone)
        assert deltas and all(isinstance(d, ev.ResponseOutputAudioDelta) for d in deltas)
        assert deltas[0].raw["type"] == "response.audio.delta"  # the beta wire name
        assert session.conversation.last().text == "Echo: hello beta"
        assert errors == []


async def test_iterating_from_two_tasks_is_refused(server: LocalServer) -> None:
    async with connect(url=server.url) as session:
        async for event in session:  # session.created: now the queue is empty
            assert isinstance(event, ev.SessionCreated)
            break
        first = asyncio.ensure_future(session.__aiter__().__anext__())
        await asyncio.sleep(0.01)
        assert not first.done()
        with pytest.raises(InvalidStateError, match="already being iterated"):
            await session.__aiter__().__anext__()
        first.cancel()
        # A loop left with break can be followed by another one at once.
        await session.send_text("hi")
        async for event in session:
            if isinstance(event, ev.ResponseCreated):
                break
        async for event in session:
            if isinstance(event, ev.ResponseDone):
                break


async def test_bad_audio_is_a_typed_error(server: LocalServer) -> None:
    async with connect(url=server.url) as session:
        with pytest.raises(AudioFormatError):
            await session.send_audio(np.zeros((4, 2, 2), dtype=np.float32))
        with pytest.raises(AudioFormatError):
            await session.send_audio(np.zeros(10, dtype=np.float32), sample_rate=0)


async def test_g711_session_round_trip(server: LocalServer) -> None:
    sink = PlaybackBuffer(24_000, prebuffer_ms=0)
    config = {
        "audio": {
            "input": {"format": {"type": "audio/pcmu"}},
            "output": {"format": {"type": "audio/pcmu"}},
        }
    }
    async with connect(url=server.url, session=config) as session:
        errors = errors_of(session)
        session.attach(sink=sink)
        await send_blocks(
            session, np.concatenate([speech_like(0.8, 8_000), silence(0.8, 8_000)]), 8_000
        )
        done = await next_event(session, ev.ResponseDone)
        item_id = done.response.output[0].id
        assert session.protocol.audio_received_ms(item_id) > 600
        assert sink.received_ms(item_id) == pytest.approx(
            session.protocol.audio_received_ms(item_id), abs=2
        )
        assert errors == []


async def test_connection_is_recycled_before_the_session_expires() -> None:
    policy = ReconnectPolicy(base_delay_s=0.01, max_delay_s=0.05, recycle_before_expiry_s=3.0)
    async with LocalServer(responder="echo", speed=0, session_limit_s=4.0) as server:
        async with connect(url=server.url, reconnect=policy) as session:
            errors = errors_of(session)
            await session.send_text("keep this", respond=False)
            reconnected = await next_event(session, Reconnected, timeout=3.5)
            assert reconnected.items == 1
            assert server.connection_count == 2
            await session.send_text("after the recycle")
            await next_event(session, ev.ResponseDone)
            assert session.conversation.last().text == "Echo: after the recycle"
            assert errors == []


async def test_a_drop_during_the_reconnect_is_retried_by_one_loop() -> None:
    async with LocalServer(responder="echo", speed=0) as server:
        server.push_faults("drop_at=response.output_audio.delta")
        server.push_faults("drop_at=conversation.item.added")  # cut again while restoring
        async with connect(url=server.url, reconnect=FAST) as session:
            errors = errors_of(session)
            await session.send_text("first turn")
            reconnected = await next_event(session, Reconnected)
            assert reconnected.attempt == 2
            assert server.connection_count == 3
            assert session.stats.reconnects == 2
            await session.send_text("after")
            await next_event(session, ev.ResponseDone)
            assert session.conversation.last().text == "Echo: after"
            assert errors == []


async def test_transcription_session(tmp_path: Path) -> None:
    spec = script(
        tmp_path, {"turns": [{"transcript": "book a table for two", "reply": {"text": "-"}}]}
    )
    config = {
        "type": "transcription",
        "audio": {
            "input": {
                "transcription": {"model": "gpt-4o-mini-transcribe"},
                "turn_detection": {"type": "server_vad"},
            }
        },
    }
    async with LocalServer(responder=spec, speed=0) as server:
        async with connect(None, url=server.url, intent="transcription", session=config) as session:
            errors = errors_of(session)
            assert isinstance(session.server_session, ev.TranscriptionSession)
            await send_blocks(session, np.concatenate([speech_like(1.0), silence(0.8)]), 24_000)
            done = await next_event(session, ev.ConversationItemInputAudioTranscriptionCompleted)
            assert done.transcript == "book a table for two"
            item = session.conversation.get(done.item_id)
            assert item is not None and item.input_transcript == "book a table for two"
            assert session.protocol.responses == {}  # transcription sessions never respond
            assert errors == []


async def test_reconnect_restores_every_item_in_order(tmp_path: Path) -> None:
    spec = script(
        tmp_path,
        {
            "turns": [
                {"reply": {"text": "Hello!"}},
                {"reply": {"function_call": {"name": "add", "arguments": {"a": 1, "b": 2}}}},
                {"reply": {"text": "It is 3."}},
                {"reply": {"text": "(cut)"}},
            ]
        },
    )

    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    async with LocalServer(responder=spec, speed=0) as server:
        async with connect(url=server.url, tools=[add], reconnect=FAST) as session:
            await session.send_text("hi")
            await next_event(session, ev.ResponseDone)
            await session.send_text("1 + 2?")
            await next_event(session, ev.ResponseDone)  # the function call
            await next_event(session, ev.ResponseDone)  # the answer after the tool output
            before = [(i.id, i.type, i.role) for i in session.conversation]
            assert [t for _, t, _ in before] == [
                "message",
                "message",
                "message",
                "message",  # the default model's (gpt-realtime-2.1) spoken preamble
                "function_call",
                "function_call_output",
                "message",
            ]
            server.sessions[-1].sink.close(1011, "server restart")  # cut the live connection
            reconnected = await next_event(session, Reconnected)
            assert reconnected.items == len(before)
            assert server.connection_count == 2
            restored = server.sessions[-1]
            assert list(restored.order) == [item_id for item_id, _, _ in before]

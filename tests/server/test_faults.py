"""Fault injection and recording, seen from a raw client."""

from __future__ import annotations

import asyncio
import time

import pytest
import websockets

from realtime_client.server import FaultPlan, FaultSpecError, LocalServer, read_recording

from .conftest import open_client, types


def test_fault_spec_parsing() -> None:
    plan = FaultPlan.parse(
        "drop_after=5, delay=0.01,stall_after=2,stall=1.5,reorder,"
        "error_after=3,error_code=boom,drop_at=response.done,close_code=1011"
    )
    assert plan == FaultPlan(
        drop_after=5,
        delay_s=0.01,
        stall_after=2,
        stall_s=1.5,
        reorder=True,
        error_after=3,
        error_code="boom",
        drop_at="response.done",
        close_code=1011,
    )
    assert plan.active and not FaultPlan().active
    assert FaultPlan.parse("rate_limit_tokens=500") == FaultPlan(rate_limit_tokens=500)
    with pytest.raises(FaultSpecError, match="unknown fault"):
        FaultPlan.parse("explode=1")
    with pytest.raises(FaultSpecError, match="bad value"):
        FaultPlan.parse("drop_after=soon")


async def test_drop_after_n_events_cuts_without_close_frame(server: LocalServer) -> None:
    server.push_faults("drop_after=3")
    c = await open_client(server)
    await c.say("hi", response={"output_modalities": ["text"]})
    got = []
    with pytest.raises(websockets.ConnectionClosed) as info:
        while True:
            got.append(await c.recv())
    assert types(got) == ["session.created", "conversation.item.added", "conversation.item.done"]
    assert info.value.rcvd is None  # abnormal closure: no close frame (1006)
    # the queue applied to one connection only
    c2 = await open_client(server)
    assert (await c2.recv())["type"] == "session.created"
    await c2.say("hi", response={"output_modalities": ["text"]})
    await c2.until("response.done")
    await c2.ws.close()


async def test_drop_at_type_with_close_code_from_query(server: LocalServer) -> None:
    c = await open_client(
        server, query="model=gpt-realtime&fault=drop_at=response.done,close_code=1011"
    )
    await c.recv()
    await c.say("hi", response={"output_modalities": ["text"]})
    got = []
    with pytest.raises(websockets.ConnectionClosed) as info:
        while True:
            got.append((await c.recv())["type"])
    assert got[-1] == "response.output_item.done" and "response.done" not in got
    assert info.value.rcvd is not None and info.value.rcvd.code == 1011


async def test_bad_fault_query_is_refused(server: LocalServer) -> None:
    c = await open_client(server, query="model=gpt-realtime&fault=explode")
    err = await c.recv()
    assert err["error"]["code"] == "invalid_value"
    with pytest.raises(websockets.ConnectionClosed) as info:
        await c.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 4000


async def test_injected_error_delay_and_stall(server: LocalServer) -> None:
    server.set_faults(FaultPlan(error_after=1, delay_s=0.02, stall_after=2, stall_s=0.3))
    c = await open_client(server)
    t0 = time.monotonic()
    created = await c.recv()
    err = await c.recv()
    assert created["type"] == "session.created"
    assert err["error"]["type"] == "server_error" and err["error"]["code"] is None
    await c.say("hi", response={"output_modalities": ["text"]})
    await c.recv()  # item.added: the 2nd event; the stall follows it
    t1 = time.monotonic()
    await c.recv()
    assert time.monotonic() - t1 >= 0.25  # stalled
    assert t1 - t0 >= 0.04  # two delayed events
    server.set_faults(None)
    await c.ws.close()


async def test_reorder_sends_transcription_after_the_response(server: LocalServer) -> None:
    from .conftest import speech

    c = await open_client(server, query="model=gpt-realtime&fault=reorder")
    await c.recv()
    await c.update(
        {
            "type": "realtime",
            "audio": {"input": {"transcription": {"model": "whisper-1"}, "turn_detection": None}},
        }
    )
    await c.append(speech(300))
    await c.send({"type": "input_audio_buffer.commit"})
    await c.send({"type": "response.create"})
    events = await c.until("conversation.item.input_audio_transcription.completed", timeout=5)
    kinds = [e["type"] for e in events]
    assert kinds.index("response.done") < kinds.index(
        "conversation.item.input_audio_transcription.completed"
    )
    # transcript deltas trail their audio delta
    first_audio = kinds.index("response.output_audio.delta")
    first_transcript = kinds.index("response.output_audio_transcript.delta")
    assert first_audio < first_transcript
    await c.ws.close()


async def test_recording_has_every_frame(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "rec.jsonl"
    async with LocalServer(speed=0, record_path=path) as srv:
        c = await open_client(srv)
        await c.recv()
        await c.send({"type": "input_audio_buffer.clear", "event_id": "c1"})
        await c.recv()
        await c.ws.send(b"\x01\x02")
        await c.recv()
        await c.ws.close()
        await asyncio.sleep(0.1)
    lines = read_recording(path)
    assert [(ln["direction"], ln["event"]["type"]) for ln in lines[:6]] == [
        ("meta", "connection.opened"),
        ("server", "session.created"),
        ("client", "input_audio_buffer.clear"),
        ("server", "input_audio_buffer.cleared"),
        ("client", "recording.binary_frame"),
        ("server", "error"),
    ]
    assert lines[0]["event"]["dialect"] == "ga"
    assert lines[4]["event"]["data"] == "AQI="  # the exact bytes, kept
    assert lines[-1]["direction"] == "meta" and lines[-1]["event"]["type"] == "connection.closed"
    assert [ln["t"] for ln in lines] == sorted(ln["t"] for ln in lines)
    assert all(ln["conn"] == 1 for ln in lines)
    assert "sk-test" not in path.read_text()

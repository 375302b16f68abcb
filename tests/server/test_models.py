"""Per-model session defaults (protocol.md §16.1): the session, client secrets and calls."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from realtime_client import events as ev
from realtime_client._ids import IdGenerator
from realtime_client.server import (
    TIMINGS,
    LocalServer,
    ResponderError,
    ServerConfigError,
    ServerSession,
    SessionOptions,
    make_responder,
)
from realtime_client.server._defaults import MODEL_DEFAULTS, ModelDefaults, model_defaults
from realtime_client.server._dialect import make_edge

from ..conftest import until
from ..events.samples import CLIENT_SAMPLES
from .conftest import KEY, Client, ListSink, open_client, types, user_text


def _voice_and_silence(session: dict[str, Any]) -> tuple[str, int]:
    audio = session["audio"]
    return audio["output"]["voice"], audio["input"]["turn_detection"]["silence_duration_ms"]


@pytest.mark.parametrize(
    ("model", "voice", "silence"),
    [
        ("gpt-realtime", "alloy", 200),
        ("gpt-realtime-2.1", "marin", 500),
        ("gpt-realtime-2.1-mini", "marin", 500),
        ("gpt-4o-realtime-preview", "alloy", 200),
    ],
)
async def test_session_created_has_the_models_defaults(
    server: LocalServer, model: str, voice: str, silence: int
) -> None:
    c = await open_client(server, query=f"model={model}")
    created = await c.recv()
    assert created["session"]["model"] == model
    assert _voice_and_silence(created["session"]) == (voice, silence)
    # A partial VAD update fills in the model's silence, not the generic one.
    updated = await c.update(
        {
            "type": "realtime",
            "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 0.7}}},
        }
    )
    td = updated["audio"]["input"]["turn_detection"]
    assert td["threshold"] == 0.7 and td["silence_duration_ms"] == silence
    await c.ws.close()


def test_the_longest_prefix_wins_and_a_new_row_is_one_line() -> None:
    assert model_defaults("gpt-realtime-2.1").voice == "marin"
    assert model_defaults(None) == ModelDefaults()
    MODEL_DEFAULTS["gpt-realtime-2.1-mini"] = ModelDefaults(voice="cedar")
    try:
        assert model_defaults("gpt-realtime-2.1-mini-2026-10-01").voice == "cedar"
        assert model_defaults("gpt-realtime-2.1").voice == "marin"
    finally:
        del MODEL_DEFAULTS["gpt-realtime-2.1-mini"]


def _post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result


async def test_client_secrets_carry_the_models_defaults(server: LocalServer) -> None:
    secret = await asyncio.to_thread(
        _post_json,
        f"{server.url}/realtime/client_secrets",
        {"session": {"type": "realtime", "model": "gpt-realtime-2.1"}},
    )
    assert _voice_and_silence(secret["session"]) == ("marin", 500)
    plain = await asyncio.to_thread(
        _post_json,
        f"{server.url}/realtime/client_secrets",
        {"session": {"type": "realtime", "model": "gpt-realtime"}},
    )
    assert _voice_and_silence(plain["session"]) == ("alloy", 200)


# --- gpt-realtime-2.x: preambles, interleaved items, phase (protocol.md §16.2) ----------


def _tool_script(folder: Path, preamble: str | None) -> Path:
    call: dict[str, Any] = {"function_call": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
    if preamble is not None:
        call["preamble"] = preamble
    path = folder / "script.json"
    path.write_text(
        json.dumps(
            {
                "rules": [{"match": "weather", "reply": call}],
                "default": {"text": "It is 3 degrees in Oslo."},
            }
        )
    )
    return path


async def text_client(srv: LocalServer, model: str) -> Client:
    """A client of ``model``, past its ``session.created``, with text output."""
    c = await open_client(srv, query=f"model={model}")
    await c.recv()
    await c.update({"type": "realtime", "output_modalities": ["text"]})
    return c


RECORDED_2X_TOOL_TURN = [
    "response.created",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
    "response.output_text.delta*",
    "response.output_item.added",
    "conversation.item.added",
    "response.function_call_arguments.delta*",
    "response.output_text.done",
    "response.content_part.done",
    "conversation.item.done",
    "response.output_item.done",
    "response.function_call_arguments.done",
    "conversation.item.done",
    "response.output_item.done",
    "response.done",
]


async def test_a_2x_tool_turn_opens_with_a_preamble_and_interleaves_the_call(
    tmp_path: Path,
) -> None:
    script = _tool_script(tmp_path, "Let me look that up.")
    async with LocalServer(speed=1.0, seed=2, responder=f"script:{script}") as srv:
        c = await text_client(srv, "gpt-realtime-2.1")
        await c.say("What's the weather?")
        await c.until("conversation.item.done")  # the user's message
        events = []
        call: dict[str, Any] = {}
        while not events or events[-1]["type"] != "response.done":
            events.append(await c.recv())
            ev = events[-1]
            if ev["type"] == "response.output_item.added" and ev["item"]["type"] == "function_call":
                call = ev["item"]
                # Sent while the response still streams, as the recorded client did.
                await c.send(
                    {
                        "type": "conversation.item.create",
                        "item": {
                            "type": "function_call_output",
                            "call_id": call["call_id"],
                            "output": '{"celsius": 3}',
                        },
                    }
                )
        assert types(events) == RECORDED_2X_TOOL_TURN
        added = [e["item"] for e in events if e["type"] == "response.output_item.added"]
        assert added[0]["phase"] == "commentary" and added[0]["role"] == "assistant"
        assert "phase" not in added[1]
        text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        assert text == "Let me look that up."
        done = events[-1]["response"]
        assert [o["type"] for o in done["output"]] == ["message", "function_call"]
        assert done["output"][0]["phase"] == "commentary"
        assert done["usage"]["output_token_details"]["reasoning_tokens"] > 0
        # The function output is acknowledged only with the client's next event.
        assert (await c.recv())["type"] == "rate_limits.updated"
        assert await c.quiet(0.1) == []
        await c.send({"type": "response.create"})
        answer = await c.until("response.done")
        assert types(answer)[:3] == [
            "conversation.item.added",
            "conversation.item.done",
            "response.created",
        ]
        assert answer[0]["item"]["call_id"] == call["call_id"]
        final = answer[-1]["response"]["output"]
        assert [(o["type"], o.get("phase")) for o in final] == [("message", "final_answer")]
        await c.ws.close()


async def test_a_held_function_output_is_acknowledged_after_a_grace_without_a_next_event(
    tmp_path: Path,
) -> None:
    script = _tool_script(tmp_path, None)
    async with LocalServer(speed=1.0, seed=2, responder=f"script:{script}") as srv:
        c = await text_client(srv, "gpt-realtime-2.1")
        await c.say("weather?")
        events = []
        while (
            not events
            or events[-1]["type"] != "response.output_item.added"
            or (events[-1]["item"]["type"] != "function_call")
        ):
            events.append(await c.recv())
        call_id = events[-1]["item"]["call_id"]
        await c.send(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": call_id, "output": "{}"},
            }
        )
        streamed = await c.until("response.done", timeout=3)
        assert "function_call_output" not in {
            e["item"]["type"] for e in streamed if e["type"] == "conversation.item.added"
        }
        rest = await c.until("conversation.item.done", timeout=3)
        assert [e["type"] for e in rest] == [
            "rate_limits.updated",
            "conversation.item.added",
            "conversation.item.done",
        ]
        assert rest[-1]["item"]["type"] == "function_call_output"
        preamble = next(e for e in events if e["type"] == "response.output_item.added")
        assert preamble["item"]["phase"] == "commentary"
        await c.ws.close()


async def test_gpt_realtime_has_no_phase_and_no_preamble(tmp_path: Path) -> None:
    script = _tool_script(tmp_path, "Unused words.")
    async with LocalServer(speed=0, seed=2, responder=f"script:{script}") as srv:
        c = await text_client(srv, "gpt-realtime")
        await c.say("What's the weather?")
        done = (await c.until("response.done"))[-1]["response"]
        assert [o["type"] for o in done["output"]] == ["function_call"]
        assert "reasoning_tokens" not in done["usage"]["output_token_details"]
        await c.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "function_call_output",
                    "call_id": done["output"][0]["call_id"],
                    "output": "{}",
                },
            }
        )
        await c.until("conversation.item.done")
        await c.send({"type": "response.create"})
        answer = (await c.until("response.done"))[-1]["response"]["output"]
        assert all("phase" not in o for o in answer)
        await c.ws.close()


async def test_a_script_mixes_several_items_and_sets_their_phase(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    reply = [
        {"text": "First, some context.", "phase": "commentary"},
        {"tone": {"frequency_hz": 300, "duration_ms": 200}, "text": "beep"},
        {"function_call": {"name": "a", "arguments": {}}},
        {"function_call": {"name": "b", "arguments": {}}},
        {"text": "Done."},
    ]
    path.write_text(json.dumps({"turns": [{"reply": reply}]}))
    async with LocalServer(speed=0, seed=2, responder=f"script:{path}") as srv:
        c = await open_client(srv, query="model=gpt-realtime-2.1")
        await c.recv()
        await c.say("go")
        done = (await c.until("response.done"))[-1]["response"]
        shape = [(o["type"], o.get("phase"), o.get("name")) for o in done["output"]]
        assert shape == [
            ("message", "commentary", None),
            ("message", "commentary", None),
            ("function_call", None, "a"),
            ("function_call", None, "b"),
            ("message", "final_answer", None),
        ]
        assert all(o["content"][0]["type"] == "output_audio" for o in done["output"][::4])
        await c.ws.close()


async def test_a_bad_phase_in_a_script_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"default": {"text": "x", "phase": "thinking"}}))
    with pytest.raises(ResponderError, match="phase must be"):
        make_responder(f"script:{path}")


async def test_beta_sends_no_rate_limits_for_a_response_cancelled_before_output() -> None:
    sink = ListSink()
    session = ServerSession(
        SessionOptions(dialect="beta", model="gpt-4o-realtime-preview", speed=0, seed=2),
        make_responder("echo"),
        sink,
    )
    session.start()
    session.receive_event({"type": "response.create"})
    session.receive_event({"type": "response.cancel"})  # before the task ever ran
    await asyncio.sleep(0.05)
    assert [e["type"] for e in sink.events] == [
        "session.created",
        "response.created",
        "response.done",
    ]
    assert sink.events[-1]["response"]["status"] == "cancelled"
    session.receive_event(user_text("hello"))
    session.receive_event({"type": "response.create"})
    await until(lambda: sink.of("response.done")[1:])
    after = [e["type"] for e in sink.events[3:]]
    assert after[:4] == [
        "conversation.item.created",
        "response.created",
        "rate_limits.updated",
        "response.output_item.added",
    ]
    await session.aclose()


# --- every client event the library builds is known to the server (protocol.md §16.3) ---


def _kind(sample: dict[str, Any]) -> str:
    return (
        "transcription" if sample.get("session", {}).get("type") == "transcription" else "realtime"
    )


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_every_client_event_the_library_builds_passes_the_servers_validator(
    dialect: str,
) -> None:
    covered = set()
    for sample in CLIENT_SAMPLES:
        event = ev.parse_client_event(sample)
        covered.add(event.type)
        wire = json.loads(ev.dumps(event, dialect=dialect))  # type: ignore[arg-type]
        edge = make_edge(dialect, IdGenerator(1), _kind(sample))  # type: ignore[arg-type]
        ga = edge.read(wire)  # raises ValidationError if the server does not know it
        beta_transcription = dialect == "beta" and _kind(sample) == "transcription"
        assert ga["type"] == ("transcription_session.update" if beta_transcription else event.type)
    assert covered == set(ev.CLIENT_EVENT_CLASSES)


async def test_output_audio_buffer_clear_on_a_websocket_is_refused_with_a_reason(
    client: Client,
) -> None:
    await client.send({"type": "output_audio_buffer.clear", "event_id": "oc1"})
    err = (await client.recv())["error"]
    assert (err["code"], err["param"], err["event_id"]) == ("invalid_value", "type", "oc1")
    assert "only supported for WebRTC" in err["message"]


# --- the realistic timing profile (protocol.md §16; instant stays the default) -----------


async def test_realistic_timing_delays_the_answers_as_the_service_does() -> None:
    loop = asyncio.get_running_loop()
    async with LocalServer(speed=1.0, seed=4, timing="realistic") as srv:
        c = await open_client(srv)
        await c.recv()
        sent = loop.time()
        await c.update({"type": "realtime", "output_modalities": ["audio"]})
        assert loop.time() - sent >= 0.19  # 250 ms ± 20 %
        await c.send(user_text("tell me a long story please"))
        await c.until("conversation.item.done")
        sent = loop.time()
        await c.send({"type": "response.create"})
        await c.until("response.created")
        created = loop.time()
        assert created - sent >= 0.19
        deltas = await c.until("response.output_audio.delta")
        first = loop.time()
        assert first - created >= 0.15  # 200 ms ± 20 %
        assert types(deltas)[0] == "response.output_item.added"
        rest = await c.until("response.done")
        done = loop.time()
        audio_s = rest[-1]["response"]["usage"]["output_token_details"]["audio_tokens"] / 20
        assert audio_s > 1.0
        # Generated three times faster than it plays.
        assert done - first < 0.8 * audio_s
        await c.ws.close()


async def test_a_response_cancelled_while_thinking_is_still_created_first() -> None:
    async with LocalServer(speed=1.0, seed=4, timing="realistic") as srv:
        c = await open_client(srv)
        await c.recv()
        await c.send({"type": "response.create"})
        await c.send({"type": "response.cancel"})
        events = await c.until("response.done")
        assert types(events) == ["response.created", "response.done"]
        assert events[-1]["response"]["status"] == "cancelled"
        await c.ws.close()


def test_timing_jitter_is_seeded_and_scaled_by_speed() -> None:
    def delays(seed: int, speed: float) -> list[float]:
        options = SessionOptions(speed=speed, seed=seed, timing=TIMINGS["realistic"])
        session = ServerSession(options, make_responder("echo"), ListSink())
        return [session.delay_s(250) for _ in range(20)]

    first = delays(7, 1.0)
    assert first == delays(7, 1.0) and first != delays(8, 1.0)
    assert all(0.2 <= d <= 0.3 for d in first) and len(set(first)) > 1
    assert [round(d * 4, 9) for d in delays(7, 4.0)] == [round(d, 9) for d in first]
    assert delays(7, 0.0) == [0.0] * 20
    instant = ServerSession(SessionOptions(speed=1.0), make_responder("echo"), ListSink())
    assert instant.delay_s(instant.options.timing.response_created_ms) == 0.0


def test_an_unknown_timing_is_a_config_error() -> None:
    with pytest.raises(ServerConfigError, match="unknown timing 'slow'"):
        LocalServer(timing="slow")

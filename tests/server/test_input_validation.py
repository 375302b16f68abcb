"""Input validation: odd PCM16 byte counts, deep nesting, bad SDP bytes, bad options."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import numpy as np
import orjson
import pytest

from realtime_client.server import (
    FaultPlan,
    LocalServer,
    ServerConfigError,
    ServerSession,
    SessionOptions,
    TimingProfile,
    make_responder,
)
from realtime_client.server import __main__ as cli
from realtime_client.server.__main__ import main
from realtime_client.server._audio import CODECS, decode
from realtime_client.server.faults import FaultSpecError

from .conftest import KEY, ListSink, open_client


def _session(sink: ListSink, **options: Any) -> ServerSession:
    session = ServerSession(SessionOptions(seed=3, **options), make_responder("echo"), sink)
    session.start()
    return session


def _input(session: ServerSession, fmt: dict[str, Any] | None = None) -> None:
    audio: dict[str, Any] = {"turn_detection": None}
    if fmt is not None:
        audio["format"] = fmt
    session.receive_event(
        {"type": "session.update", "session": {"type": "realtime", "audio": {"input": audio}}}
    )


def _append(session: ServerSession, raw: bytes, event_id: str | None = None) -> None:
    event: dict[str, Any] = {
        "type": "input_audio_buffer.append",
        "audio": base64.b64encode(raw).decode(),
    }
    if event_id is not None:
        event["event_id"] = event_id
    session.receive_event(event)


def _tone(samples: int) -> bytes:
    t = np.arange(samples) / 24_000
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


def _item_audio(session: ServerSession, sink: ListSink, item_id: str) -> bytes:
    session.receive_event({"type": "conversation.item.retrieve", "item_id": item_id})
    item = sink.of("conversation.item.retrieved")[-1]["item"]
    return base64.b64decode(item["content"][0]["audio"])


# --- odd PCM16 byte counts -----------------------------------------------------------------


async def test_pcm16_appends_of_odd_length_lose_no_byte_and_stay_aligned() -> None:
    sink = ListSink()
    session = _session(sink, speed=0)
    _input(session)
    pcm = _tone(24_000)  # 1 s, 48,000 bytes
    for i in range(0, len(pcm), 4801):  # every chunk but the last of odd length
        _append(session, pcm[i : i + 4801])
    assert session.buffer.samples == 24_000
    session.receive_event({"type": "input_audio_buffer.commit"})
    assert not sink.of("error")
    item_id = sink.of("input_audio_buffer.committed")[-1]["item_id"]
    assert _item_audio(session, sink, item_id) == pcm
    await session.aclose()


async def test_a_half_sample_waits_for_its_other_half_across_a_commit() -> None:
    sink = ListSink()
    session = _session(sink, speed=0)
    _input(session)
    pcm = _tone(4_801)
    _append(session, pcm[:4801])  # 2,400 samples and half of one
    session.receive_event({"type": "input_audio_buffer.commit"})
    first = sink.of("input_audio_buffer.committed")[-1]["item_id"]
    _append(session, pcm[4801:])  # the other half, then the rest
    session.receive_event({"type": "input_audio_buffer.commit"})
    second = sink.of("input_audio_buffer.committed")[-1]["item_id"]
    assert not sink.of("error")
    assert _item_audio(session, sink, first) + _item_audio(session, sink, second) == pcm
    await session.aclose()


async def test_clear_and_a_new_format_drop_a_pending_half_sample() -> None:
    sink = ListSink()
    session = _session(sink, speed=0)
    _input(session)
    pcm = _tone(2_400)
    _append(session, b"\x7f")
    session.receive_event({"type": "input_audio_buffer.clear"})
    _append(session, pcm)  # a new stream: aligned from its first byte
    session.receive_event({"type": "input_audio_buffer.commit"})
    item_id = sink.of("input_audio_buffer.committed")[-1]["item_id"]
    assert _item_audio(session, sink, item_id) == pcm
    _append(session, b"\x7f")
    _input(session, {"type": "audio/pcmu"})
    _input(session, {"type": "audio/pcm", "rate": 24_000})
    _append(session, pcm)
    session.receive_event({"type": "input_audio_buffer.commit"})
    item_id = sink.of("input_audio_buffer.committed")[-1]["item_id"]
    assert _item_audio(session, sink, item_id) == pcm
    assert not sink.of("error")
    await session.aclose()


async def test_a_refused_append_keeps_the_pending_half_sample() -> None:
    sink = ListSink()
    session = _session(sink, speed=0, max_buffer_ms=100.0)
    _input(session)
    pcm = _tone(2_400)  # exactly the 100 ms the buffer holds
    _append(session, pcm[:1])
    _append(session, pcm[1:] + pcm, "full")  # over the cap: refused whole
    assert sink.of("error")[-1]["error"]["code"] == "input_audio_buffer_full"
    _append(session, pcm[1:])
    assert session.buffer.samples == 2_400
    session.receive_event({"type": "input_audio_buffer.commit"})
    item_id = sink.of("input_audio_buffer.committed")[-1]["item_id"]
    assert _item_audio(session, sink, item_id) == pcm
    await session.aclose()


async def test_g711_appends_of_odd_length_keep_every_byte() -> None:
    for fmt in ("audio/pcmu", "audio/pcma"):
        sink = ListSink()
        session = _session(sink, speed=0)
        _input(session, {"type": fmt})
        raw = bytes(range(256)) * 32  # 8,192 bytes = 8,192 samples at 8 kHz
        for i in range(0, len(raw), 1001):
            _append(session, raw[i : i + 1001])
        assert session.buffer.samples == len(raw)
        assert session.buffer.pending_byte == b""
        buffered = np.concatenate(session.buffer._native)
        assert np.array_equal(buffered, decode(raw, CODECS[fmt]))
        session.receive_event({"type": "input_audio_buffer.commit"})
        item_id = sink.of("input_audio_buffer.committed")[-1]["item_id"]
        assert len(_item_audio(session, sink, item_id)) == len(raw)  # 1 s at 8 kHz
        assert not sink.of("error")
        await session.aclose()


async def test_an_input_audio_item_of_odd_length_is_refused() -> None:
    sink = ListSink()
    session = _session(sink, speed=0)
    session.receive_event(
        {
            "type": "conversation.item.create",
            "event_id": "odd",
            "item": {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "listen"},
                    {"type": "input_audio", "audio": base64.b64encode(_tone(100)[:-1]).decode()},
                ],
            },
        }
    )
    assert sink.events[-1]["type"] == "error"
    err = sink.events[-1]["error"]
    assert (err["type"], err["code"], err["param"], err["event_id"]) == (
        "invalid_request_error",
        "invalid_value",
        "item.content[1].audio",
        "odd",
    )
    assert err["message"] == (
        "Invalid 'item.content[1].audio': audio/pcm audio must be a whole number of 16-bit "
        "samples (an even number of bytes), but got 199 bytes."
    )
    assert not sink.of("conversation.item.added")
    await session.aclose()


# --- bytes that are not text in a call's offer ----------------------------------------------


def _form(sdp: bytes, session: bytes) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("sdp", sdp, content_type="application/sdp", filename="offer.sdp")
    form.add_field("session", session, content_type="application/json", filename="s.json")
    return form


_SESSION = b'{"type": "realtime", "model": "gpt-realtime"}'


@pytest.mark.parametrize(
    ("body", "content_type", "param", "code", "message"),
    [
        (b"v=0\r\n\xff\xfe\r\n", "application/sdp", None, "invalid_offer", "Invalid SDP"),
        (b"v=0\r\n", "application/sdp; charset=no-such-charset", None, "invalid_offer", "Invalid"),
        ((b"v=0\r\n\xff\r\n", _SESSION), None, None, "invalid_offer", "Invalid SDP"),
        ((b"v=0\r\n", b'{"type": "\xff"}'), None, "session", None, "could not parse"),
    ],
    ids=["sdp", "sdp-charset", "form-sdp", "form-session"],
)
async def test_an_offer_that_is_not_text_gets_a_400(
    body: Any, content_type: str | None, param: str | None, code: str | None, message: str
) -> None:
    if isinstance(body, tuple):
        body = _form(*body)
    headers = {"Authorization": f"Bearer {KEY}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    async with (
        LocalServer(speed=0) as server,
        aiohttp.ClientSession() as http,
        http.post(
            f"{server.url}/realtime/calls?model=gpt-realtime", data=body, headers=headers
        ) as response,
    ):
        assert response.status == 400
        error = orjson.loads(await response.read())["error"]
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request_error",
            code,
            param,
        )
        assert message in error["message"]
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert server.calls == {} and server.sessions == []


# --- events and bodies nested too deep -----------------------------------------------------


def _nested(levels: int) -> str:
    """JSON objects nested ``levels`` deep (``{"a":{"a":…1…}}``)."""
    return '{"a":' * levels + "1" + "}" * levels


def _deep_update(levels: int) -> str:
    """A ``session.update`` whose tool's ``parameters`` start at level 5 of the event."""
    return (
        '{"type":"session.update","event_id":"deep","session":{"type":"realtime",'
        '"instructions":"NEW","tools":[{"type":"function","name":"f","parameters":'
        + _nested(levels)
        + "}]}}"
    )


async def test_an_event_nested_too_deep_is_refused_and_changes_nothing(
    server: LocalServer,
) -> None:
    c = await open_client(server)
    await c.until("session.created")
    # 124 levels of parameters: the event is 128 deep, the limit; accepted and echoed.
    await c.ws.send(_deep_update(124))
    updated = (await c.until("session.updated"))[-1]["session"]
    assert updated["instructions"] == "NEW" and len(updated["tools"]) == 1
    for levels in (125, 600):  # one past the limit, and deep enough to break deep copies
        await c.ws.send(_deep_update(levels).replace("NEW", "NEWER"))
        err = (await c.until("error"))[-1]["error"]
        assert (err["type"], err["code"], err["param"], err["event_id"]) == (
            "invalid_request_error",
            "invalid_value",
            "session",
            "deep",
        )
        assert err["message"] == (
            "Invalid 'session': too deeply nested. Expected at most 128 levels of nested "
            "objects and arrays in the event, but got more."
        )
    assert server.sessions[0].state["instructions"] == "NEW"
    # Every event type, known or not, is checked first; the session goes on.
    await c.ws.send('{"type":"conversation.item.create","item":' + _nested(600) + "}")
    assert (await c.until("error"))[-1]["error"]["param"] == "item"
    await c.ws.send('{"type":"no.such.event","x":[' + _nested(600) + "]}")
    assert (await c.until("error"))[-1]["error"]["param"] == "x"
    await c.say("still here", {"output_modalities": ["text"]})
    done = (await c.until("response.done"))[-1]["response"]
    assert done["status"] == "completed"
    await c.ws.close()


@pytest.mark.parametrize("path", ["/realtime/client_secrets", "/realtime/sessions"])
async def test_a_rest_body_nested_too_deep_gets_a_400(path: str) -> None:
    tool = '{"type":"function","name":"f","parameters":' + _nested(600) + "}"
    if path.endswith("client_secrets"):
        body, param = '{"session":{"type":"realtime","tools":[' + tool + "]}}", "session"
    else:
        body, param = '{"model":"gpt-4o-realtime-preview","tools":[' + tool + "]}", "tools"
    async with (
        LocalServer(speed=0) as server,
        aiohttp.ClientSession() as http,
        http.post(
            server.url + path,
            data=body,
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        ) as response,
    ):
        assert response.status == 400
        error = orjson.loads(await response.read())["error"]
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request_error",
            "invalid_value",
            param,
        )
        assert error["message"] == (
            f"Invalid '{param}': too deeply nested. Expected at most 128 levels of nested "
            "objects and arrays in the request body, but got more."
        )
        assert server._ephemeral == {}


async def test_a_call_session_part_nested_too_deep_gets_a_400() -> None:
    session = (
        '{"type":"realtime","model":"gpt-realtime","tools":[{"type":"function","name":"f",'
        '"parameters":' + _nested(600) + "}]}"
    )
    form = aiohttp.FormData()
    form.add_field("sdp", "v=0\r\n", content_type="application/sdp")
    form.add_field("session", session, content_type="application/json")
    async with (
        LocalServer(speed=0) as server,
        aiohttp.ClientSession() as http,
        http.post(
            f"{server.url}/realtime/calls", data=form, headers={"Authorization": f"Bearer {KEY}"}
        ) as response,
    ):
        assert response.status == 400
        error = orjson.loads(await response.read())["error"]
        assert (error["code"], error["param"]) == ("invalid_value", "session.tools")
        assert error["message"] == (
            "Invalid 'session.tools': too deeply nested. Expected at most 128 levels of "
            "nested objects and arrays in the 'session' part, but got more."
        )
        assert server.calls == {} and server.sessions == []


# --- numeric options ------------------------------------------------------------------------

_NAN, _INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("option", "bad"),
    [
        *[("port", v) for v in (-1, 65_536, 1.5, True, _NAN)],
        *[("speed", v) for v in (_NAN, _INF, -1, 1e7, "fast")],
        *[("audio_delta_ms", v) for v in (0, -5, 2.5, _NAN, True)],
        *[("session_limit_s", v) for v in (1e300, _NAN, _INF, -1, 0, 1e9 + 1)],
        *[("seed", v) for v in (1.5, True, _NAN)],
        *[("ping_interval_s", v) for v in (_NAN, _INF, -1)],
        *[("max_frame_bytes", v) for v in (0, -1, 1.5, _NAN)],
        *[("max_buffer_ms", v) for v in (_NAN, _INF, 0, -1)],
        *[("handshake_timeout_s", v) for v in (_NAN, _INF, 0)],
        *[("max_errors_per_s", v) for v in (_NAN, _INF, 0)],
        *[("audio_items_kept", v) for v in (_NAN, 0, 2.5)],
        *[("audio_kept_s", v) for v in (_NAN, _INF, 0)],
        *[("max_outbox_bytes", v) for v in (_NAN, 0, 1.5)],
        ("timing", TimingProfile(response_created_ms=_NAN)),
        ("timing", TimingProfile(first_output_ms=-1)),
        ("timing", TimingProfile(session_updated_ms=_INF)),
        ("timing", TimingProfile(jitter=2)),
        ("timing", TimingProfile(generation_speed=_INF)),
        ("timing", TimingProfile(generation_speed=0)),
    ],
)
def test_every_numeric_option_refuses_a_value_that_would_break_sessions(
    option: str, bad: Any
) -> None:
    with pytest.raises(ServerConfigError, match=f"^{option}"):
        LocalServer(**{option: bad})


def test_the_edges_of_the_numeric_options_are_accepted() -> None:
    LocalServer(port=0, speed=0, ping_interval_s=0, seed=None, max_errors_per_s=None)
    LocalServer(port=65_535, speed=1e6, session_limit_s=1e9, seed=-3, audio_delta_ms=1)
    LocalServer(session_limit_s=0.05, max_buffer_ms=0.5, timing=TimingProfile(jitter=1))


async def test_the_longest_session_limit_works() -> None:
    async with LocalServer(speed=0, session_limit_s=1e9) as server:
        c = await open_client(server)
        created = (await c.until("session.created"))[-1]
        assert isinstance(created["session"]["expires_at"], int)
        await c.say("hi", {"output_modalities": ["text"]})
        assert (await c.until("response.done"))[-1]["response"]["status"] == "completed"
        await c.ws.close()


@pytest.mark.parametrize(
    "spec",
    [
        "close_code=99999",
        "close_code=1005",
        "close_code=2000",
        "delay=nan",
        "delay=inf",
        "delay=-1",
        "stall=nan",
        "drop_after=-1",
        "stall_after=-2",
        "error_after=-1",
        "rate_limit_tokens=-5",
    ],
)
async def test_a_fault_plan_that_would_break_every_session_is_refused(spec: str) -> None:
    with pytest.raises(FaultSpecError, match="must be"):
        FaultPlan.parse(spec)
    with pytest.raises(FaultSpecError, match="must be"):
        LocalServer(faults=spec)
    server = LocalServer()
    with pytest.raises(FaultSpecError):
        server.set_faults(spec)
    with pytest.raises(FaultSpecError):
        server.push_faults(spec)


def test_sendable_close_codes_are_accepted() -> None:
    for code in (1000, 1001, 1003, 1007, 1011, 1014, 3000, 4000, 4999):
        assert FaultPlan.parse(f"close_code={code}").close_code == code
    with pytest.raises(FaultSpecError):
        FaultPlan(close_code=1006)


@pytest.mark.parametrize(
    ("flags", "name"),
    [
        (["--speed", "nan"], "speed"),
        (["--speed", "inf"], "speed"),
        (["--session-limit", "1e300"], "session_limit_s"),
        (["--session-limit", "nan"], "session_limit_s"),
        (["--session-limit", "-1"], "session_limit_s"),
        (["--audio-delta-ms", "0"], "audio_delta_ms"),
        (["--handshake-timeout", "inf"], "handshake_timeout_s"),
        (["--max-errors-per-s", "nan"], "max_errors_per_s"),
        (["--max-errors-per-s", "-1"], "max_errors_per_s"),
        (["--faults", "close_code=99999"], "close_code"),
        (["--faults", "delay=nan"], "delay_s"),
    ],
)
def test_cli_refuses_bad_numbers_with_exit_2(
    flags: list[str], name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def serve(server: LocalServer) -> None:
        raise AssertionError("a server with a bad option was started")

    monkeypatch.setattr(cli, "_serve", serve)
    assert main(["--port", "0", *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("realtime-server: error: ") and name in err
    assert "Traceback" not in err and "cannot listen" not in err

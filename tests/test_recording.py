"""The one recording format: writer, reader, legacy lines, and a server cassette rebuilt."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from realtime_client import connect
from realtime_client.apps.replay import rebuild
from realtime_client.errors import RecordingError
from realtime_client.protocol import RealtimeProtocol
from realtime_client.recording import (
    MAX_ELIDED_BYTES,
    MAX_ELIDED_TOTAL,
    RecordingWriter,
    frame_event,
    iter_records,
    read_recording,
    server_events,
)
from realtime_client.server import LocalServer


def test_writer_and_reader_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    with RecordingWriter(path) as writer:
        writer.write("meta", {"type": "recording.started"})
        writer.write_frame("client", '{"type":"response.create","event_id":"c1"}')
        writer.write_frame("server", b'{"type":"response.created"}')
        writer.write_frame("server", "not json {")
        writer.write_frame("server", b"\xff\xfe")
        writer.write("server", {"type": "x"}, conn=2, elided={"delta": 4})
    writer.write("server", {"type": "after close"})  # a no-op, not an error
    records = read_recording(path)
    assert [(r["direction"], r["event"]["type"]) for r in records] == [
        ("meta", "recording.started"),
        ("client", "response.create"),
        ("server", "response.created"),
        ("server", "recording.unparsable_frame"),
        ("server", "recording.binary_frame"),
        ("server", "x"),
    ]
    assert records[1]["event"]["event_id"] == "c1"
    assert records[3]["event"]["text"] == "not json {"
    assert records[4]["event"]["data"] == "//4="
    assert records[5]["conn"] == 2
    assert all("ts" in r for r in records)
    assert [r["t"] for r in records] == sorted(r["t"] for r in records)
    # Elided audio comes back as silence of the recorded length.
    assert list(server_events(records))[-1] == {"type": "x", "delta": "AAAAAA=="}


def test_frame_event_keeps_non_objects_verbatim() -> None:
    assert frame_event("[1, 2]") == {"type": "recording.unparsable_frame", "text": "[1, 2]"}
    assert frame_event('{"type": "a"}') == {"type": "a"}


def test_reader_maps_the_servers_earlier_lines_and_bare_events() -> None:
    lines = [
        '{"t": 0.1, "conn": 1, "dir": "out", "text": "{\\"type\\": \\"session.created\\"}"}',
        '{"t": 0.2, "conn": 1, "dir": "in", "binary": "AQI="}',
        '{"t": 0.3, "conn": 1, "dir": "out", "close": {"code": 1001, "reason": "bye"}}',
        '{"type": "response.done"}',
    ]
    records = list(iter_records(lines))
    assert [(r["direction"], r["event"]["type"]) for r in records] == [
        ("server", "session.created"),
        ("client", "recording.binary_frame"),
        ("meta", "connection.closed"),
        ("server", "response.done"),
    ]
    assert records[2]["event"]["code"] == 1001 and records[2]["event"]["by"] == "server"


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("{oops", "not JSON"),
        ('{"direction": "sideways", "event": {}}', "direction"),
        ('{"direction": "server", "event": {}, "t": NaN}', "not JSON"),
        ('{"direction": "server", "event": {}, "t": "soon"}', "t must be a number"),
        ('{"direction": "server", "event": {}, "elided": {"delta": -1}}', "byte count"),
        (
            '{"direction": "server", "event": {}, "elided": {"delta": 16777217}}',
            "claims 16777217 bytes, more than an event can carry",
        ),
        ('{"dir": "up", "text": "{}"}', "dir must be"),
        ("[1]", "not an object"),
    ],
)
def test_bad_lines_name_the_line_and_the_reason(line: str, why: str) -> None:
    with pytest.raises(RecordingError, match=why) as info:
        list(iter_records(['{"type": "ok"}', line], source="f.jsonl"))
    assert "f.jsonl:2" in str(info.value)


def test_elided_audio_is_bounded_in_total_over_the_server_records() -> None:
    """A small file cannot claim gigabytes of silence: past the total, the line is named."""
    per_line = MAX_ELIDED_TOTAL // MAX_ELIDED_BYTES
    claim = json.dumps({"direction": "server", "event": {}, "elided": {"delta": MAX_ELIDED_BYTES}})
    sent = json.dumps({"direction": "client", "event": {}, "elided": {"audio": MAX_ELIDED_BYTES}})
    # Exactly the total is accepted; what the client sent is never rebuilt, so not counted.
    assert len(list(iter_records([sent] * 5 + [claim] * per_line))) == per_line + 5
    with pytest.raises(RecordingError, match="more than 536870912 bytes of elided audio") as info:
        list(iter_records([sent] * 5 + [claim] * (per_line + 1), source="f.jsonl"))
    assert f"f.jsonl:{per_line + 6}:" in str(info.value)


@pytest.mark.parametrize("nbytes", [0, 1, 2, 3, 4, 5, 4800, 4801, 4802])
def test_elided_audio_comes_back_as_exact_silence(nbytes: int) -> None:
    records = [
        {"direction": "server", "event": {"type": "x"}, "elided": {"delta": n}}
        for n in (nbytes, nbytes, 7)
    ]
    silences = [e["delta"] for e in server_events(records)]
    assert [base64.b64decode(s) for s in silences] == [bytes(nbytes), bytes(nbytes), bytes(7)]


def test_protocol_replays_a_cassette_skipping_client_and_meta(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    with RecordingWriter(path) as writer:
        writer.write("meta", {"type": "connection.opened", "dialect": "ga"})
        writer.write("client", {"type": "conversation.item.delete", "item_id": "nope"})
        writer.write("server", {"type": "session.created", "event_id": "e1", "session": {}})
    proto = RealtimeProtocol()
    received = proto.replay_jsonl(path.read_text())
    assert [r.event.type for r in received] == ["session.created"]


async def test_a_server_recording_rebuilds_with_realtime_replay(tmp_path: Path) -> None:
    cassette = tmp_path / "server.jsonl"
    async with LocalServer(responder="echo", speed=0, record_path=cassette) as server:
        async with connect("gpt-realtime", url=server.url, api_key="sk-local") as session:
            await session.send_text("hello from the cassette")
            async for event in session:
                if event.type == "response.done":
                    break
    result = rebuild(cassette, tmp_path / "rebuilt")
    assert result.texts("user") == ["hello from the cassette"]
    assert result.texts("assistant") == ["Echo: hello from the cassette"]
    transcript = json.loads((tmp_path / "rebuilt" / "transcript.json").read_text())
    assert [t["role"] for t in transcript["turns"]] == ["user", "assistant"]
    # And from the command line.
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "realtime_client.apps.replay", "--replay", str(cassette)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Echo: hello from the cassette" in proc.stdout
    assert "sk-local" not in cassette.read_text()

"""``realtime-replay`` end to end: the CLI as a subprocess and the Python API, local server."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from realtime_client.apps.replay import ReplayError, _failures, rebuild, replay
from realtime_client.audio.wav import read_wav, write_wav
from realtime_client.protocol import RealtimeProtocol
from realtime_client.server import LocalServer

from ..conftest import clean_env, speech_wav

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "data" / "hello.wav"
SCRIPT = ROOT / "examples" / "data" / "demo_script.json"
ENV = clean_env()


def run_cli(*args: str, timeout: float = 50.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "realtime_client.apps.replay", *args],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def run_cli_async(*args: str) -> tuple[int, str, str]:
    """The CLI as a subprocess while this test's event loop keeps serving."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "realtime_client.apps.replay",
        *args,
        cwd=ROOT,
        env=ENV,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 50)
    return proc.returncode or 0, out.decode(), err.decode()


def utterance(path: Path, seconds: float, rate: int) -> Path:
    """0.2 s silence, a voiced burst, 0.1 s silence."""
    return speech_wav(path, seconds, rate, lead_s=0.2, tail_s=0.1, amplitude=0.25)


@pytest.fixture(scope="module")
def halves(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The bundled WAV cut between its two sentences: one sentence per input file."""
    samples, rate = read_wav(HELLO)
    cut = int(3.2 * rate)
    d = tmp_path_factory.mktemp("halves")
    write_wav(d / "one.wav", samples[:cut], rate)
    write_wav(d / "two.wav", samples[cut:], rate)
    return d / "one.wav", d / "two.wav"


@pytest.fixture(scope="module")
def scripted_run(
    tmp_path_factory: pytest.TempPathFactory, halves: tuple[Path, Path]
) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("scripted") / "out"
    proc = run_cli(
        str(halves[0]),
        str(halves[1]),
        "--out",
        str(out),
        "--speed",
        "0",
        "--responder",
        f"script:{SCRIPT}",
    )
    return proc, out


def test_bundled_wav_is_small_spoken_mono() -> None:
    samples, rate = read_wav(HELLO)
    assert HELLO.stat().st_size < 300_000
    assert samples.ndim == 1 and rate == 16_000
    assert 4.0 < len(samples) / rate < 8.0
    assert float(np.abs(samples).max()) > 0.3  # not silence


def test_cli_writes_every_output(scripted_run: tuple[Any, Path]) -> None:
    proc, out = scripted_run
    assert proc.returncode == 0, proc.stderr
    assert "embedded local server" in proc.stderr
    script = json.loads(SCRIPT.read_text())
    transcript = json.loads((out / "transcript.json").read_text())
    turns = transcript["turns"]
    users = [t["text"] for t in turns if t["role"] == "user"]
    assistants = [t for t in turns if t["role"] == "assistant"]
    assert users == [turn["transcript"] for turn in script["turns"]]
    assert [t["text"] for t in assistants] == [turn["reply"]["text"] for turn in script["turns"]]
    assert all(t["status"] == "completed" and t["audio_ms"] > 500 for t in assistants)
    # User turns carry the server's VAD times; they lie inside the input.
    for t in turns:
        if t["role"] == "user":
            assert 0 <= t["start_ms"] < t["end_ms"]
    md = (out / "transcript.md").read_text()
    assert script["turns"][0]["reply"]["text"] in md and "**user**" in md

    # One 24 kHz WAV per response item, as long as the audio received for it.
    wavs = sorted(out.glob("response-*.wav"))
    assert len(wavs) == 2
    for wav, turn in zip(wavs, assistants, strict=True):
        samples, rate = read_wav(wav)
        assert rate == 24_000
        assert turn["item_id"] in wav.name
        assert len(samples) / 24.0 == pytest.approx(turn["audio_ms"], abs=1.0)

    report = json.loads((out / "report.json").read_text())
    assert report["ok"] is True and report["failures"] == []
    assert len(report["turns"]) == 2
    for lat in report["turns"]:
        assert lat["status"] == "completed"
        assert lat["speech_to_audio_ms"] is not None and lat["speech_to_audio_ms"] >= 0
        assert lat["duration_ms"] is not None and lat["duration_ms"] >= 0
        assert "create_to_delta_ms" in lat and lat["usage"]["output_tokens"] > 0
        # Server VAD started these responses: no response.create, and the report says so.
        assert lat["create_to_delta_ms"] is None
        assert "server VAD started this response" in lat["why_null"]["create_to_delta_ms"]
        measured = {k for k, v in lat.items() if k.endswith("_ms") and k != "truncated_at_ms"}
        assert set(lat["why_null"]) == {k for k in measured if lat[k] is None}
    assert set(report["clocks"]) == {"wall", "device"}
    assert "speech_to_audio_ms" in report["clocks"]["wall"]
    assert "first_delta_at_ms" in report["clocks"]["device"]
    # A headless speaker never runs dry: no underruns are reported for it.
    assert "underruns" not in report["playback"] and report["playback"]["frames_out"] > 0
    assert report["usage"]["responses"] == 2 and report["cost_usd"] > 0
    assert report["audio_sent_ms"] >= 5000

    # The PNG is a real picture (read by Pillow, matplotlib's dependency) of the size the
    # report gives, with something drawn in the lanes' colours.
    image = pytest.importorskip("PIL.Image").open(out / "timeline.png")
    assert image.format == "PNG"
    assert image.size == (report["timeline_png"]["width"], report["timeline_png"]["height"])
    assert image.size == (1400, 520)
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(int)
    assert len(np.unique(pixels, axis=0)) > 50  # anti-aliased text and shapes
    for colour in ((0x28, 0x58, 0xC8), (0xE1, 0x78, 0x14)):  # input blue, output orange
        assert (np.abs(pixels - colour).sum(axis=1) < 12).sum() > 500, colour

    # events.jsonl: both directions, timestamped, audio elided to its length.
    records = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    directions = {r["direction"] for r in records}
    assert {"client", "server", "meta"} <= directions
    appends = [r for r in records if r["event"].get("type") == "input_audio_buffer.append"]
    assert appends and all(r["event"]["audio"] == "" and r["elided"]["audio"] > 0 for r in appends)
    assert all("t" in r and "at_ms" in r for r in records)
    # Every 20 ms block went out: 960 bytes at 24 kHz (a few blocks can be a sample off).
    sent_ms = sum(r["elided"]["audio"] for r in appends) / 48
    assert sent_ms == pytest.approx(report["audio_sent_ms"], abs=1)


def test_cli_replay_rebuilds_the_same_transcript(
    scripted_run: tuple[Any, Path], tmp_path: Path
) -> None:
    _, out = scripted_run
    proc = run_cli("--replay", str(out / "events.jsonl"), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    live = json.loads((out / "transcript.json").read_text())["turns"]
    rebuilt = json.loads((tmp_path / "transcript.json").read_text())["turns"]
    assert rebuilt == live
    assert (tmp_path / "transcript.md").read_text() == (out / "transcript.md").read_text()
    assert "What is the weather like in Paris today?" in proc.stdout


def test_demo_command(tmp_path: Path) -> None:
    """What ``make demo`` runs: the bundled WAV, paced, against the scripted responder."""
    proc = run_cli(
        str(HELLO),
        "--out",
        str(tmp_path),
        "--speed",
        "8",
        "--responder",
        f"script:{SCRIPT}",
    )
    assert proc.returncode == 0, proc.stderr
    assert "user [" in proc.stdout and "outputs in" in proc.stdout
    turns = json.loads((tmp_path / "transcript.json").read_text())["turns"]
    # Two sentences, two VAD turns; the second may interrupt the first answer.
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]
    assert turns[2]["text"] == "Great thank you very much."
    assert turns[3]["status"] == "completed"


async def test_api_barge_in_truncates_playback(tmp_path: Path) -> None:
    a = utterance(tmp_path / "a.wav", 0.8, 24_000)
    b = utterance(tmp_path / "b.wav", 0.6, 16_000)
    result = await replay([a, b], tmp_path / "out", responder="echo", speed=0, barge_in_at=[1.8])
    assert result.ok, result.failures
    first = next(t for t in result.turns if t.role == "assistant")
    # The echo answer is ~1.2 s long; the barge-in cut it where it had been played.
    assert first.truncated_at_ms is not None
    assert 0 < first.truncated_at_ms < first.audio_ms - 100
    assert result.report["barge_ins_at_ms"] == [1800.0]
    assert result.report["playback"]["cleared_ms"] > 0  # queued audio was dropped
    assert len(result.texts("assistant")) == 2


async def test_api_barge_in_burst_without_next_file(tmp_path: Path) -> None:
    a = utterance(tmp_path / "a.wav", 0.8, 24_000)
    result = await replay([a], None, responder="echo", speed=0, barge_in_at=[1.7, 60])
    assert result.ok, result.failures
    users = [t for t in result.turns if t.role == "user"]
    assert len(users) == 2  # the file, then the injected burst
    first = next(t for t in result.turns if t.role == "assistant")
    assert first.truncated_at_ms is not None and first.truncated_at_ms < first.audio_ms
    assert result.report["barge_ins_skipped_at_ms"] == [60000.0]
    assert result.paths == {}


async def test_api_push_to_talk(tmp_path: Path) -> None:
    files = [utterance(tmp_path / f"{i}.wav", 0.5, 16_000) for i in range(2)]
    result = await replay(
        files, None, responder="echo", speed=0, push_to_talk=True, transcription_model=None
    )
    assert result.ok, result.failures
    assert [t.role for t in result.turns] == ["user", "assistant"] * 2
    # Push-to-talk asks for each response: create -> first delta is measured.
    assert all(t["create_to_delta_ms"] is not None for t in result.report["turns"])
    assert not any(
        r["event"].get("type") == "input_audio_buffer.speech_started" for r in result.records
    )


async def test_api_keep_audio_rebuild_writes_same_wavs(tmp_path: Path) -> None:
    a = utterance(tmp_path / "a.wav", 0.5, 24_000)
    live = await replay([a], tmp_path / "live", responder="echo", speed=0, keep_audio=True)
    assert live.ok
    again = rebuild(live.paths["events.jsonl"], tmp_path / "again")
    assert again.transcript() == live.transcript()
    assert list(again.audio_files) == list(live.audio_files)
    for item_id, path in live.audio_files.items():
        assert again.audio_files[item_id].read_bytes() == path.read_bytes()


def test_cli_unreachable_server(tmp_path: Path) -> None:
    wav = utterance(tmp_path / "a.wav", 0.3, 24_000)
    proc = run_cli(str(wav), "--out", str(tmp_path / "o"), "--url", "http://127.0.0.1:9/v1")
    assert proc.returncode == 3
    assert "could not connect" in proc.stderr
    assert "Traceback" not in proc.stderr


async def test_cli_api_key_and_the_errors_a_newcomer_meets(tmp_path: Path) -> None:
    wav = utterance(tmp_path / "a.wav", 0.3, 24_000)
    async with LocalServer(responder="echo", speed=0, api_keys=["sk-replay-good"]) as server:
        out = str(tmp_path / "o")
        rc, _, err = await run_cli_async(str(wav), "--out", out, "--url", server.url)
        assert rc == 3 and "the server wants an API key and none was given" in err
        assert "loc" not in err.split("error:")[1][:60]  # no placeholder key quoted
        rc, _, err = await run_cli_async(
            str(wav),
            "--out",
            out,
            "--url",
            server.url,
            "--api-key",
            "sk-replay-good",
            "--push-to-talk",
            "--speed",
            "0",
        )
        assert rc == 0, err
        assert "sk-replay-good" not in (tmp_path / "o" / "report.json").read_text()
        # A URL without /v1: the path is named, the server is not blamed.
        rc, _, err = await run_cli_async(
            str(wav), "--out", out, "--url", server.url.removesuffix("/v1"), "--api-key", "k"
        )
        assert rc == 3 and "a base URL ends in /v1" in err
        assert "is the server running" not in err


def test_cli_bad_inputs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav file at all")
    proc = run_cli(str(bad), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "cannot read" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli("--replay", str(bad))
    assert proc.returncode == 2 and "not JSON" in proc.stderr
    proc = run_cli()
    assert proc.returncode == 2 and "no input files" in proc.stderr


def test_cli_no_response_fails(tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.wav"
    write_wav(quiet, np.zeros(12_000, np.float32), 24_000)
    proc = run_cli(str(quiet), "--out", str(tmp_path / "o"), "--speed", "0", "--turn-timeout", "1")
    assert proc.returncode == 1
    assert "turn failed: input 1 (quiet.wav): no response within 1 s" in proc.stderr
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["ok"] is False


async def test_cli_server_error_fails(tmp_path: Path) -> None:
    wav = utterance(tmp_path / "a.wav", 0.5, 24_000)
    async with LocalServer(responder="echo", speed=0) as server:
        code, out, err = await run_cli_async(
            str(wav),
            "--out",
            str(tmp_path / "o"),
            "--speed",
            "0",
            "--url",
            f"{server.url}?fault=error_after=6",
        )
    assert code == 1, err
    assert "turn failed: server error" in err
    assert "Traceback" not in err


async def test_api_rejects_bad_options(tmp_path: Path) -> None:
    wav = utterance(tmp_path / "a.wav", 0.3, 24_000)
    with pytest.raises(ReplayError, match="speed"):
        await replay([wav], responder="echo", speed=-1)
    with pytest.raises(ReplayError, match="no input"):
        await replay([])
    with pytest.raises(ReplayError, match="cannot read script"):
        await replay([wav], responder="script:/nonexistent.json")


# --- regressions: bad input is refused up front, with exit status 2 and no traceback -----------


def test_cli_unsupported_rate_refused_before_the_server_starts(tmp_path: Path) -> None:
    odd = tmp_path / "odd.wav"
    write_wav(odd, np.zeros(44_101 // 2, np.float32), 44_101)  # 24000/44101: terms > 1024
    proc = run_cli(str(odd), "--out", str(tmp_path / "o"), "--speed", "0")
    assert proc.returncode == 2, proc.stderr
    assert "unsupported sample rate 44101 Hz" in proc.stderr
    assert "embedded local server" not in proc.stderr  # refused before anything started
    assert "Traceback" not in proc.stderr


def _float_wav(path: Path, samples: np.ndarray, rate: int, dtype: str = "<f4") -> Path:
    """A float WAV (format 3) holding exactly these samples, whatever their values."""
    data = np.asarray(samples, dtype=dtype).tobytes()
    width = np.dtype(dtype).itemsize
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * width, width, 8 * width)
    chunks = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(chunks)) + chunks)
    return path


@pytest.mark.parametrize(
    ("value", "rate", "dtype", "why"),
    [
        (np.nan, 24_000, "<f4", "audio holds NaN or infinite samples (the first at 0.250 s)"),
        (-np.inf, 48_000, "<f4", "audio holds NaN or infinite samples (the first at 0.125 s)"),
        (1e300, 24_000, "<f8", "audio holds NaN or infinite samples"),  # past float32: inf
    ],
)
def test_cli_wav_with_nan_or_inf_refused_before_the_run(
    tmp_path: Path, value: float, rate: int, dtype: str, why: str
) -> None:
    samples = 0.3 * np.sin(np.arange(rate // 2) / 10)
    samples[6_000] = value
    bad = _float_wav(tmp_path / "bad.wav", samples, rate, dtype)
    out = tmp_path / "o"
    proc = run_cli(str(bad), "--out", str(out), "--speed", "0")
    assert proc.returncode == 2, proc.stderr
    # One line naming the file, nothing else (no traceback, no numpy warning, no server).
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"realtime-replay: error: {bad}: {why}"), line
    assert not out.exists()


@pytest.mark.parametrize("module", ["realtime_client.errors", "realtime_client.audio.errors"])
def test_cli_audio_refused_during_the_run_is_bad_input_not_a_traceback(
    module: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The backstop behind the checks before the run: either AudioFormatError exits 2."""
    from realtime_client.apps.replay import _cli

    error = importlib.import_module(module).AudioFormatError

    async def refused(*args: Any, **kwargs: Any) -> Any:
        raise error("samples must be finite: got NaN or inf")

    monkeypatch.setattr(_cli, "replay", refused)
    assert _cli.main([str(HELLO), "--out", "unused"]) == 2
    assert capsys.readouterr().err == (
        "realtime-replay: error: bad input audio: samples must be finite: got NaN or inf\n"
    )


@pytest.mark.parametrize("peak", [1.5, 1e35])
async def test_api_float_wav_beyond_full_scale_is_clipped_not_refused(
    tmp_path: Path, peak: float
) -> None:
    """Finite samples past 1.0 are clipped, as a sound card clips (no overflow anywhere)."""
    samples = 0.3 * np.sin(np.arange(24_000) / 10)
    samples[100:200] = peak
    loud = _float_wav(tmp_path / "loud.wav", samples, 48_000)
    result = await replay([loud], tmp_path / "o", responder="echo", speed=0, echo=True)
    assert (tmp_path / "o" / "report.json").exists() and not result.failures
    sent, _ = read_wav(tmp_path / "o" / "input.wav")
    assert float(np.max(np.abs(sent))) <= 1.0


def test_cli_bad_out_refused_before_the_run(tmp_path: Path) -> None:
    wav = utterance(tmp_path / "a.wav", 0.3, 24_000)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    proc = run_cli(str(wav), "--out", str(not_a_dir), "--speed", "0")
    assert proc.returncode == 2, proc.stderr
    assert "cannot write to output directory" in proc.stderr
    assert "embedded local server" not in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "option",
    [
        ("--turn-timeout", "inf"),
        ("--turn-timeout", "nan"),
        ("--barge-in-at", "nan"),
        ("--barge-in-at", "inf"),
        ("--url", "ftp://127.0.0.1:9/v1"),
    ],
)
def test_cli_bad_option_values_exit_2(tmp_path: Path, option: tuple[str, str]) -> None:
    wav = utterance(tmp_path / "a.wav", 0.3, 24_000)
    proc = run_cli(str(wav), "--out", str(tmp_path / "o"), *option)
    assert proc.returncode == 2, proc.stderr
    assert "realtime-replay: error:" in proc.stderr and "Traceback" not in proc.stderr


def test_benign_race_errors_are_not_failed_turns() -> None:
    def error(code: str) -> dict[str, Any]:
        event = {"type": "error", "error": {"type": "invalid_request_error", "code": code}}
        return {"direction": "server", "at_ms": 0, "event": event}

    protocol = RealtimeProtocol()
    benign = [
        error("response_cancel_not_active"),
        error("conversation_already_has_active_response"),
    ]
    assert _failures(protocol, benign) == []
    failures = _failures(protocol, [*benign, error("invalid_value")])
    assert failures == ["server error invalid_value: "]


def test_silence_between_files_keeps_exact_time_at_odd_rates(tmp_path: Path) -> None:
    """11025 Hz: 220.5 frames per block; silence must not lose the half frame per block."""
    wav = utterance(tmp_path / "a.wav", 0.5, 11_025)
    result = replay_sync_echo(wav)
    assert result.ok, result.failures
    # Every device tick sent 20 ms: what was sent matches the device clock.
    assert result.report["audio_sent_ms"] == pytest.approx(result.report["duration_ms"], abs=0.5)


def replay_sync_echo(wav: Path) -> Any:
    return asyncio.run(replay([wav], None, responder="echo", speed=0, transcription_model=None))


def test_rebuild_never_overwrites_a_live_run(scripted_run: tuple[Any, Path]) -> None:
    _, out = scripted_run
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = run_cli("--replay", str(out / "events.jsonl"), "--out", str(out))
    assert proc.returncode == 2 and "rebuild into another --out" in proc.stderr
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before  # WAVs and report.json untouched


def test_rebuild_refuses_another_live_run_but_redoes_a_rebuild(
    scripted_run: tuple[Any, Path], tmp_path: Path
) -> None:
    _, out = scripted_run
    live_copy = tmp_path / "live"
    live_copy.mkdir()
    (live_copy / "report.json").write_bytes((out / "report.json").read_bytes())
    with pytest.raises(ReplayError, match="live run"):
        rebuild(out / "events.jsonl", live_copy)
    assert (live_copy / "report.json").read_bytes() == (out / "report.json").read_bytes()
    again = tmp_path / "again"
    first = rebuild(out / "events.jsonl", again)
    second = rebuild(out / "events.jsonl", again)  # a rebuilt report may be replaced
    assert second.transcript() == first.transcript()
    assert json.loads((again / "report.json").read_text())["rebuilt_from"]


@pytest.mark.parametrize(
    ("record", "why"),
    [
        ({"event": "x", "direction": "server"}, "event must be an object"),
        (
            {
                "event": {"type": "response.output_audio.delta", "delta": "", "item_id": "i"},
                "direction": "server",
                "elided": {"delta": -5},
            },
            "byte count",
        ),
        ({"event": {"type": 3}, "direction": "server"}, "type must be a string"),
        ({"event": {"type": "x"}, "direction": "server", "at_ms": "soon"}, "at_ms"),
        ({"event": {"type": "x"}, "direction": "server", "elided": [1]}, "elided"),
        ({"event": {"type": "x"}, "direction": "sideways"}, "direction"),
        (
            {
                "event": {"type": "response.output_audio.delta", "delta": "", "item_id": "i"},
                "direction": "server",
                "elided": {"delta": 16 * 1024 * 1024 + 1},
            },
            "more than an event can carry",
        ),
    ],
)
def test_cli_malformed_recording_exits_2(tmp_path: Path, record: dict[str, Any], why: str) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(record) + "\n")
    with pytest.raises(ReplayError, match=why):
        rebuild(events)
    proc = run_cli("--replay", str(events))
    assert proc.returncode == 2 and why in proc.stderr
    assert "Traceback" not in proc.stderr


def test_rebuild_keeps_no_elided_silence(tmp_path: Path) -> None:
    """Elided audio is rebuilt one delta at a time: memory is one delta's, not the file's."""
    item = {"id": "item_1", "type": "message", "role": "assistant", "content": []}
    head = [
        {"type": "session.created", "event_id": "e0", "session": {"type": "realtime"}},
        {
            "type": "response.created",
            "event_id": "e1",
            "response": {"object": "realtime.response", "id": "resp_1", "status": "in_progress"},
        },
        {
            "type": "response.output_item.added",
            "event_id": "e2",
            "response_id": "resp_1",
            "output_index": 0,
            "item": item,
        },
        {"type": "conversation.item.added", "event_id": "e3", "item": item},
    ]
    lines = [{"t": 0.0, "direction": "server", "event": e} for e in head]
    sizes = [4 * 1024 * 1024 + 48 * k for k in range(16)]  # 64 MiB, no two alike
    for k, nbytes in enumerate(sizes):
        delta = {
            "type": "response.output_audio.delta",
            "event_id": f"d{k}",
            "response_id": "resp_1",
            "item_id": "item_1",
            "output_index": 0,
            "content_index": 0,
            "delta": "",
        }
        lines.append({"t": 0.1, "direction": "server", "event": delta, "elided": {"delta": nbytes}})
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(line) + "\n" for line in lines))
    tracemalloc.start()
    try:
        result = rebuild(events)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 24 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"  # one delta: 5.3 MiB
    (turn,) = [t for t in result.turns if t.role == "assistant"]
    assert turn.audio_ms == pytest.approx(sum(sizes) / 48)


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal stderr, the CLI draws a progress bar that fills, then clears it."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "realtime_client.apps.replay",
                str(HELLO),
                "--out",
                str(tmp_path / "out"),
                "--speed",
                "8",
                "--responder",
                f"script:{SCRIPT}",
            ],
            cwd=ROOT,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=slave,
        )
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(timeout=50) == 0
        assert proc.stdout is not None
        proc.stdout.close()
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    err = b"".join(chunks).decode("utf-8", "replace")
    bars = re.findall(r"\r\[([#-]{30})\] +(\d+\.\d) s \(input (\d+\.\d) s\)", err)
    assert len(bars) >= 3, err
    filled = [bar.count("#") for bar, _, _ in bars]
    assert filled == sorted(filled) and filled[-1] > filled[0]  # it moves forward
    assert {total for _, _, total in bars} == {"6.0"}  # hello.wav's length
    # Cleared at the end: the summary never lands on a half-drawn bar.
    assert "\r" + " " * 90 + "\r" in err


async def test_the_same_scenario_over_websocket_and_webrtc_gives_the_same_transcript(
    tmp_path: Path,
) -> None:
    pytest.importorskip("aiortc", reason="the webrtc extra is not installed")
    responder = f"script:{SCRIPT}"
    ws = await replay([HELLO], tmp_path / "ws", responder=responder, speed=1)
    rtc = await replay([HELLO], tmp_path / "rtc", responder=responder, speed=1, transport="webrtc")
    assert ws.ok, ws.failures
    assert rtc.ok, rtc.failures
    assert rtc.texts("user") == ws.texts("user")
    assert rtc.texts("assistant") == ws.texts("assistant")
    # Over WebRTC no audio deltas came: the reply was recorded where it was played.
    assert not any(r["event"].get("type") == "response.output_audio.delta" for r in rtc.records)
    assistants = [t for t in rtc.turns if t.role == "assistant"]
    assert len(assistants) == 2 and all(t.audio_ms > 500 for t in assistants)
    assert any(p.name.startswith("response-") for p in (tmp_path / "rtc").iterdir())
    with pytest.raises(ReplayError, match="speed 1"):
        await replay([HELLO], None, responder=responder, speed=4, transport="webrtc")


async def test_api_transcript_shows_the_phase_of_2x_messages(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    reply = [{"text": "One moment.", "phase": "commentary"}, {"text": "Here it is."}]
    script.write_text(json.dumps({"default": reply}))
    wav = utterance(tmp_path / "a.wav", 0.5, 24_000)
    result = await replay(
        [wav],
        None,
        responder=f"script:{script}",
        model="gpt-realtime-2.1",
        speed=0,
        push_to_talk=True,
        transcription_model=None,
    )
    assert result.ok, result.failures
    said = [(t.role, t.phase, t.text) for t in result.turns if t.role == "assistant"]
    assert said == [
        ("assistant", "commentary", "One moment."),
        ("assistant", "final_answer", "Here it is."),
    ]
    assert "**assistant, commentary**" in result.markdown()
    assert result.transcript()[1]["phase"] == "commentary"


def test_ctrl_c_writes_what_was_recorded_and_says_so(tmp_path: Path) -> None:
    a = utterance(tmp_path / "a.wav", 1.0, 24_000)
    b = utterance(tmp_path / "b.wav", 1.0, 24_000)
    out = tmp_path / "o"
    out.mkdir()
    (out / "timeline.png").write_bytes(b"an older run's picture")
    (out / "response-09-item_old.wav").write_bytes(b"an older run's reply")
    proc = subprocess.Popen(
        [sys.executable, "-m", "realtime_client.apps.replay", str(a), str(b), "--out", str(out)],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    # Real time: wait until the first answer is done, then Ctrl-C during the second file.
    deadline = time.monotonic() + 30
    seen = ""
    while time.monotonic() < deadline and "input 2/2" not in seen:
        seen += proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, seen + err
    assert f"what was recorded until then is in {out}" in err
    report = json.loads((out / "report.json").read_text())
    assert report["interrupted"] is True and report["ok"] is False
    assert any("interrupted" in f for f in report["failures"])
    transcript = (out / "transcript.md").read_text()
    assert "**assistant" in transcript  # the first turn's answer was kept
    assert (out / "events.jsonl").stat().st_size > 0
    assert not (out / "response-09-item_old.wav").exists()
    assert (out / "timeline.png").read_bytes() != b"an older run's picture"


def test_cli_without_matplotlib_writes_the_rest(tmp_path: Path) -> None:
    """Without the ``report`` extra: every other output, and a one-line note, no traceback."""
    a = utterance(tmp_path / "a.wav", 0.6, 24_000)
    out = tmp_path / "out"
    out.mkdir()
    (out / "timeline.png").write_bytes(b"stale")  # an earlier run's picture must not stay
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from realtime_client.apps.replay import main\n"
        f"sys.exit(main([{str(a)!r}, '--out', {str(out)!r}, '--speed', '0', '--quiet']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=50
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    notes = [line for line in proc.stderr.splitlines() if "note:" in line]
    assert notes == [
        "realtime-replay: note: timeline.png needs the report extra (matplotlib): "
        "pip install 'realtime-client[report]'"
    ]
    assert not (out / "timeline.png").exists()
    for name in ("transcript.json", "transcript.md", "events.jsonl", "conversation.wav"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    assert report["ok"] is True and report["timeline_png"] is None

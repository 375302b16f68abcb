"""Responders on their own, and through the server (script audio, tones, TTS)."""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from realtime_client.audio.wav import write_wav
from realtime_client.server import (
    EchoResponder,
    FunctionCallReply,
    LocalServer,
    MessageReply,
    ResponderError,
    ResponseContext,
    ScriptResponder,
    TTSResponder,
    make_responder,
    placeholder_speech,
    tone,
)

from .conftest import open_client


def _ctx(
    text: str | None = None, audio: np.ndarray | None = None, function_output: dict | None = None
) -> ResponseContext:
    return ResponseContext(
        response_index=0,
        items=[],
        user_text=text,
        user_audio=audio,
        function_output=function_output,
        instructions="",
        tools=[],
        output_modalities=("audio",),
        metadata=None,
        rng=random.Random(0),
    )


async def test_echo_replies() -> None:
    echo = EchoResponder()
    audio = tone(300, 250)
    reply = await echo.respond(_ctx(audio=audio, text="hi"))
    (msg,) = reply.outputs
    assert isinstance(msg, MessageReply) and msg.audio is not None
    np.testing.assert_array_equal(msg.audio, audio)
    assert msg.text == 'Echo of your 0.25 seconds of audio "hi".'
    (msg,) = (await echo.respond(_ctx(text="hello"))).outputs
    assert isinstance(msg, MessageReply) and msg.text == "Echo: hello" and msg.audio is None


def test_placeholder_speech_is_deterministic_and_tracks_length() -> None:
    a = placeholder_speech("hello there world")
    assert np.array_equal(a, placeholder_speech("hello there world"))
    assert len(placeholder_speech("a much longer sentence than before")) > len(a)
    assert a.dtype == np.int16 and np.abs(a).max() > 1000


def _write(tmp_path: Path, data: object) -> Path:
    p = tmp_path / "script.json"
    p.write_text(json.dumps(data))
    return p


async def test_script_rules_turns_and_default(tmp_path: Path) -> None:
    write_wav(tmp_path / "clip.wav", np.full(4800, 0.25, dtype=np.float32), 48000)
    path = _write(
        tmp_path,
        {
            "rules": [{"match": "^bye", "regex": True, "reply": {"text": "Goodbye!"}}],
            "turns": [
                {
                    "transcript": "hello there",
                    "reply": [
                        {"text": "one"},
                        {"function_call": {"name": "f", "arguments": {"x": 1}}},
                    ],
                },
                {"reply": {"audio": "clip.wav", "text": "clip"}},
                {"reply": {"tone": {"frequency_hz": 500, "duration_ms": 100}}},
            ],
            "default": {"text": "nothing more"},
        },
    )
    s = ScriptResponder(path)
    assert s.transcribe(np.zeros(10, np.int16), item_index=0) == "hello there"
    r = await s.respond(_ctx(text="hello"))
    assert r.outputs == (MessageReply("one"), FunctionCallReply("f", '{"x": 1}'))
    assert (await s.respond(_ctx(text="bye now"))).outputs == (MessageReply("Goodbye!"),)
    (clip,) = (await s.respond(_ctx(text="x"))).outputs
    assert isinstance(clip, MessageReply) and clip.audio is not None
    assert abs(len(clip.audio) - 2400) <= 2  # 0.1 s resampled from 48 kHz to 24 kHz
    (beep,) = (await s.respond(_ctx())).outputs
    assert isinstance(beep, MessageReply) and beep.audio is not None and len(beep.audio) == 2400
    assert (await s.respond(_ctx())).outputs == (MessageReply("nothing more"),)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"turns": [{"reply": {"say": "x"}}]}, "needs one of text, audio, tone, function_call"),
        ({"turns": [{"match": 3, "reply": {"text": "x"}}]}, "match must be a string"),
        ({"bogus": []}, "unknown keys"),
        ({"turns": [{"reply": {"audio": "missing.wav"}}]}, "cannot read audio"),
        ({"turns": [{"reply": {"function_call": {"arguments": {}}}}]}, "needs a name"),
    ],
)
def test_script_errors_are_clear(tmp_path: Path, data: object, message: str) -> None:
    with pytest.raises(ResponderError, match=message):
        ScriptResponder(_write(tmp_path, data))


def _script_with_audio(folder: Path, audio: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "script.json"
    script.write_text(json.dumps({"turns": [{"reply": {"audio": audio}}]}))
    return script


def test_script_audio_inside_its_folder_is_read(tmp_path: Path) -> None:
    (tmp_path / "s" / "clips").mkdir(parents=True)
    write_wav(tmp_path / "s" / "clips" / "a.wav", np.zeros(2400, np.float32), 24_000)
    ScriptResponder(_script_with_audio(tmp_path / "s", "clips/a.wav"))
    ScriptResponder(_script_with_audio(tmp_path / "s", str(tmp_path / "s" / "clips" / "a.wav")))


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_script_audio_outside_its_folder_is_refused(tmp_path: Path, how: str) -> None:
    outside = tmp_path / "secret.wav"
    write_wav(outside, np.zeros(2400, np.float32), 24_000)
    folder = tmp_path / "s"
    folder.mkdir()
    if how == "symlink":
        (folder / "link.wav").symlink_to(outside)
    audio = {"dotdot": "../secret.wav", "absolute": str(outside), "symlink": "link.wav"}[how]
    with pytest.raises(ResponderError, match="outside the script's folder"):
        ScriptResponder(_script_with_audio(folder, audio))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.timeout(10)
def test_script_fifos_and_folders_are_refused_without_blocking(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    os.mkfifo(folder / "pipe.wav")  # nobody ever writes it: opening it blocked forever
    (folder / "dir.wav").mkdir()
    for audio in ("pipe.wav", "dir.wav"):
        with pytest.raises(ResponderError, match="not a regular file"):
            ScriptResponder(_script_with_audio(folder, audio))
    os.mkfifo(tmp_path / "script.json")
    with pytest.raises(ResponderError, match="cannot read script .*not a regular file"):
        make_responder(f"script:{tmp_path / 'script.json'}")


def test_script_not_json(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_text("{nope")
    with pytest.raises(ResponderError, match="not valid JSON"):
        make_responder(f"script:{p}")
    with pytest.raises(ResponderError, match="unknown responder"):
        make_responder("parrot")


async def test_script_audio_reply_through_server(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "turns": [
                {"reply": {"tone": {"frequency_hz": 440, "duration_ms": 300}, "text": "a beep"}}
            ]
        },
    )
    async with LocalServer(speed=0, responder=f"script:{path}", audio_delta_ms=40) as srv:
        c = await open_client(srv)
        await c.recv()
        await c.send({"type": "response.create"})
        events = await c.until("response.done")
        deltas = [
            base64.b64decode(e["delta"])
            for e in events
            if e["type"] == "response.output_audio.delta"
        ]
        assert [len(d) for d in deltas] == [1920] * 7 + [960]  # 40 ms deltas, 300 ms total
        pcm = np.frombuffer(b"".join(deltas), dtype="<i2")
        np.testing.assert_array_equal(pcm, tone(440, 300))
        assert events[-1]["response"]["output"][0]["content"][0]["transcript"] == "a beep"
        await c.ws.close()


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None and shutil.which("espeak") is None,
    reason="espeak-ng is not installed (apt-get install espeak-ng)",
)
async def test_tts_speaks_with_espeak() -> None:
    tts = TTSResponder()
    (msg,) = (await tts.respond(_ctx(text="testing one two three"))).outputs
    assert isinstance(msg, MessageReply) and msg.audio is not None
    assert msg.text == "You said: testing one two three"
    seconds = len(msg.audio) / 24000
    assert 0.8 < seconds < 5.0
    assert np.abs(msg.audio.astype(np.int32)).max() > 3000  # real speech, not silence


def test_tts_without_espeak_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ResponderError, match="apt-get install espeak-ng"):
        TTSResponder()

"""A regression test for a voice app, written with ``replay``: WAV in, assertions out.

    pytest examples/voice_app_regression_test.py

``replay()`` streams WAV files through a session exactly as a microphone would (20 ms
blocks, resampling, barge-in) and returns the transcript, per-turn latency and usage; given
a directory it also writes transcript.md, report.json, events.jsonl and timeline.png to
look at when a test fails. Here the "app" is a scripted model on the embedded local
server; set REALTIME_URL (or OPENAI_API_KEY) to test your real stack.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from realtime_client.apps.replay import replay
from realtime_client.endpoint import use_local_server

pytestmark = pytest.mark.asyncio

QUESTION = Path(__file__).parent / "data" / "hello.wav"  # "What is the weather like in Paris…"


@pytest.fixture
def responder(tmp_path: Path) -> str | None:
    """The stand-in model's script, used when no real server is configured."""
    if not use_local_server(os.environ.get("REALTIME_URL") or None):
        return None
    script = tmp_path / "model.json"
    reply = {"text": "It is sunny and eighteen degrees in Paris."}
    script.write_text(
        json.dumps({"turns": [{"transcript": "What is the weather?", "reply": reply}]})
    )
    return f"script:{script}"


async def test_weather_question_gets_a_prompt_answer(responder: str | None, tmp_path: Path) -> None:
    result = await replay(
        [QUESTION],
        tmp_path / "run",
        url=os.environ.get("REALTIME_URL"),
        responder=responder,
        speed=0,  # as fast as the server answers
        push_to_talk=True,  # one file = one turn, whatever the VAD would do
    )
    assert result.ok, result.failures
    (answer,) = result.texts("assistant")
    assert "Paris" in answer
    (turn,) = result.report["turns"]
    assert turn["status"] == "completed"
    assert turn["create_to_delta_ms"] < 2_000  # the latency budget of this app, in ms
    assert turn["audio_ms"] > 0  # it answered with speech
    assert (tmp_path / "run" / "timeline.png").stat().st_size > 0

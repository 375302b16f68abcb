"""Against the real OpenAI Realtime API: opt-in (``pytest -m live``, needs OPENAI_API_KEY).

Not part of the normal run (nobody here can reach the real API); a user with a key can
check that what the local server emulates is what the service does today.
"""

from __future__ import annotations

import os

import pytest

from realtime_client import connect

pytestmark = pytest.mark.live


@pytest.fixture
def api_key() -> str:
    key = os.environ.get("OPENAI_API_KEY")
    if not key:
        pytest.skip("OPENAI_API_KEY is not set")
    return key


async def test_a_text_reply_from_the_real_service(api_key: str) -> None:
    async with connect(api_key=api_key, reconnect=False) as session:
        assert session.server_session is not None
        answer = await session.respond(
            "Answer with one word: what colour is the sky?",
            output_modalities=["text"],
            timeout=30,
        )
        assert answer.status == "completed" and answer.text.strip()
        assert answer.usage.output_tokens > 0


async def test_a_spoken_reply_from_the_real_service(api_key: str) -> None:
    async with connect(api_key=api_key, reconnect=False) as session:
        answer = await session.respond("Say hello.", timeout=30)
        assert answer.status == "completed" and answer.audio_ms > 200

"""Per-model session defaults (protocol.md §16.1): the session, client secrets and calls."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

import pytest

from realtime_client.server import LocalServer
from realtime_client.server._defaults import MODEL_DEFAULTS, ModelDefaults, model_defaults

from .conftest import KEY, open_client


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

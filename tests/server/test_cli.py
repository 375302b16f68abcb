"""``python -m realtime_client.server``: the first line is the base URL."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest
import websockets

from realtime_client.server import LocalServer, ServerConfigError
from realtime_client.server.__main__ import build_parser, main

from .conftest import Client


async def _start(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "realtime_client.server",
        "--port",
        "0",
        "--speed",
        "0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


async def test_cli_prints_base_url_first_and_serves() -> None:
    proc = await _start()
    assert proc.stdout is not None
    try:
        url = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        note = (await proc.stdout.readline()).decode()
        assert "accepting any non-empty API key" in note
        ws_url = url.replace("http://", "ws://") + "/realtime?model=gpt-realtime"
        async with websockets.connect(
            ws_url, additional_headers={"Authorization": "Bearer anything"}
        ) as ws:
            assert (await Client(ws).recv())["type"] == "session.created"
    finally:
        proc.send_signal(signal.SIGINT)
        rc = await asyncio.wait_for(proc.wait(), 20)
    assert rc == 0


async def test_cli_keys_from_environment() -> None:
    proc = await _start(env={"REALTIME_SERVER_API_KEYS": "sk-one,sk-two"})
    assert proc.stdout is not None
    try:
        url = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
        assert "2 configured key(s)" in (await proc.stdout.readline()).decode()
        ws_url = url.replace("http://", "ws://") + "/realtime?model=gpt-realtime"
        async with websockets.connect(
            ws_url, additional_headers={"Authorization": "Bearer sk-three"}
        ) as ws:
            err = await Client(ws).recv()
            assert err["error"]["code"] == "invalid_api_key"
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    stderr = await proc.stderr.read() if proc.stderr else b""
    assert b"sk-three" not in stderr and b"sk-one" not in stderr


def test_cli_refuses_public_bind_without_keys(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--host", "0.0.0.0", "--port", "0"]) == 2
    assert "without API keys" in capsys.readouterr().err


def test_cli_bad_responder(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--port", "0", "--responder", "script:/nonexistent.json"]) == 2
    assert "cannot read script" in capsys.readouterr().err


def test_cli_flags() -> None:
    args = build_parser().parse_args(
        [
            "--port",
            "0",
            "--responder",
            "tts",
            "--speed",
            "10",
            "--api-key",
            "a",
            "--api-key",
            "b",
            "--strict-ga",
            "--record",
            "x.jsonl",
            "--faults",
            "delay=0.1",
        ]
    )
    assert (
        args.port,
        args.responder,
        args.speed,
        args.api_key,
        args.strict_ga,
        args.record,
        args.faults,
    ) == (0, "tts", 10.0, ["a", "b"], True, "x.jsonl", "delay=0.1")


def test_a_port_out_of_range_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    for bad, why in (("70000", "port must be 0 to 65535, got 70000"), ("abc", "not a port")):
        with pytest.raises(SystemExit) as info:
            build_parser().parse_args(["--port", bad])
        assert info.value.code == 2
        assert why in capsys.readouterr().err
    with pytest.raises(ServerConfigError, match="port must be 0 to 65535"):
        LocalServer(port=70000)

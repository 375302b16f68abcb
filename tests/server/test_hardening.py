"""Server hardening (#14 item 21): slow handshakes, garbage floods, a bad recording path."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from realtime_client.server import LocalServer, ServerConfigError
from realtime_client.server.__main__ import build_parser, main

from .conftest import KEY, open_client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def test_a_record_path_that_cannot_be_opened_leaves_nothing_listening(
    tmp_path: Path,
) -> None:
    port = _free_port()
    server = LocalServer(port=port, record_path=tmp_path / "missing" / "rec.jsonl")
    with pytest.raises(ServerConfigError, match="cannot open the recording file"):
        await server.start()
    assert not _listening(port)
    assert server.recorder is None
    await server.stop()  # harmless after a failed start
    # A good path afterwards works, on the same port.
    server.record_path = tmp_path / "rec.jsonl"
    async with server:
        assert _listening(port)
    assert not _listening(port)


def test_cli_says_the_recording_file_cannot_be_opened(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--port", "0", "--record", str(tmp_path / "missing" / "rec.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "cannot open the recording file" in err and "cannot listen" not in err


# --- the handshake timeout -----------------------------------------------------------------


async def _slowloris(port: int, stop: asyncio.Event) -> float | None:
    """Trickle an upgrade's headers, never ending them; when the server hung up, or None."""
    start = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: x\r\n")
        line = 0
        while not stop.is_set():
            try:
                if await asyncio.wait_for(reader.read(100), 0.05) == b"":
                    return time.monotonic() - start
            except asyncio.TimeoutError:
                pass
            writer.write(f"X-Slow-{line}: y\r\n".encode())
            line += 1
            await writer.drain()
        return None
    except ConnectionError:
        return time.monotonic() - start
    finally:
        writer.close()


async def test_sockets_that_never_finish_the_upgrade_are_closed() -> None:
    async with LocalServer(speed=0, handshake_timeout_s=0.3) as server:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(_slowloris(server.port, stop)) for _ in range(50)]
        await asyncio.sleep(1.5)
        stop.set()
        closed = await asyncio.gather(*tasks)
    assert all(t is not None and 0.25 <= t <= 1.5 for t in closed), closed


async def test_an_upgraded_websocket_outlives_the_handshake_timeout() -> None:
    async with LocalServer(speed=0, handshake_timeout_s=0.2) as server:
        client = await open_client(server)
        assert (await client.recv())["type"] == "session.created"
        await asyncio.sleep(0.6)
        await client.send({"type": "session.update", "session": {"type": "realtime"}})
        assert (await client.recv())["type"] == "session.updated"
        await client.ws.close()


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v1/realtime/client_secrets", "application/json"),
        ("/v1/realtime/sessions", "application/json"),
        ("/v1/realtime/calls", "application/sdp"),
    ],
)
async def test_a_rest_body_that_never_arrives_gets_408(path: str, content_type: str) -> None:
    async with LocalServer(speed=0, handshake_timeout_s=0.3) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n".encode()
            + f"Content-Type: {content_type}\r\nContent-Length: 100\r\n\r\n{{".encode()
        )
        start = time.monotonic()
        head = await asyncio.wait_for(reader.read(200), 3)
        assert head.startswith(b"HTTP/1.1 408"), head
        assert time.monotonic() - start < 1.5
        writer.close()


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan")])
def test_a_bad_handshake_timeout_is_refused(bad: float) -> None:
    with pytest.raises(ServerConfigError, match="handshake_timeout_s"):
        LocalServer(handshake_timeout_s=bad)


def test_cli_handshake_timeout_flag() -> None:
    assert build_parser().parse_args(["--handshake-timeout", "2.5"]).handshake_timeout == 2.5
    assert build_parser().parse_args([]).handshake_timeout == 10.0

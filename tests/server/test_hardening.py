"""Server hardening (#14 item 21): slow handshakes, garbage floods, a bad recording path."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from realtime_client.server import LocalServer, ServerConfigError
from realtime_client.server.__main__ import main


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

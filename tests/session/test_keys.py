"""API keys as people pass them: read from a file, with a newline; never shown on failure."""

from __future__ import annotations

import logging

import pytest

from realtime_client import connect
from realtime_client.errors import AuthenticationError, ConnectError
from realtime_client.server import LocalServer
from realtime_client.transports.websocket import WebSocketTransport

SECRET = "sk-proj-THISISMYSECRETKEY0123456789"


@pytest.mark.parametrize("transport", ["websocket", "webrtc"])
async def test_a_key_with_its_newline_connects(transport: str) -> None:
    if transport == "webrtc":
        pytest.importorskip("aiortc", reason="the webrtc extra is not installed")
    async with (
        LocalServer(speed=0, responder="echo", api_keys=[SECRET]) as server,
        connect(
            url=server.url, api_key=SECRET + "\n", transport=transport, reconnect=False
        ) as session,
    ):
        assert not session.closed


async def test_a_key_that_cannot_be_sent_fails_at_once_and_is_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with LocalServer(speed=0, responder="echo") as server:
        with caplog.at_level(logging.DEBUG), pytest.raises(AuthenticationError) as info:
            await connect(url=server.url, api_key=SECRET + "\nX-Injected: 1")
    assert not info.value.retryable  # no retries of a hopeless key
    assert SECRET not in str(info.value)
    assert all(SECRET not in record.getMessage() for record in caplog.records)


async def test_a_refused_credential_header_is_masked_in_the_error() -> None:
    # A transport given raw headers: websockets refuses the value and quotes it; we do not.
    async with LocalServer(speed=0) as server:
        transport = WebSocketTransport(
            server.ws_url + "?model=gpt-realtime",
            headers={"Authorization": f"Bearer {SECRET}\x01"},
        )
        with pytest.raises(ConnectError) as info:
            await transport.connect()
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None  # the cause would quote it

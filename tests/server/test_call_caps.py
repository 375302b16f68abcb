"""A WebRTC call whose peer freezes cannot make the server queue events without bound.

The peer is our own client in another process, stopped with SIGSTOP once the call is up:
it no longer acknowledges anything, so the server's data channel holds every event it
sends. A sideband keeps the call busy meanwhile (it reads; the frozen peer does not).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

pytest.importorskip("aiortc", reason="the webrtc extra is not installed")

import websockets

from realtime_client.server import LocalServer

from ..conftest import until
from .conftest import sideband, user_text

KEY = "sk-test-call-caps-0123"

_PEER = """
import asyncio, sys
from realtime_client import connect

async def main() -> None:
    async with connect(
        "gpt-realtime", url=sys.argv[1], api_key=sys.argv[2], transport="webrtc", reconnect=False
    ):
        print("connected", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP (POSIX)")
async def test_a_frozen_peer_ends_its_call_not_a_growing_buffer() -> None:
    cap = 256 * 1024
    async with LocalServer(responder="echo", speed=0, max_outbox_bytes=cap) as server:
        peer = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _PEER,
            server.url,
            KEY,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            assert peer.stdout is not None
            line = await asyncio.wait_for(peer.stdout.readline(), 60)
            assert line.strip() == b"connected"
            [call] = server.calls.values()
            os.kill(peer.pid, signal.SIGSTOP)
            async with sideband(server, call.id, KEY) as band:
                item = user_text("x" * 10_000)
                peak = 0
                for _ in range(400):  # each is echoed twice: up to 8 MB of events
                    if call.ended:
                        break
                    await band.send(item)
                    await asyncio.sleep(0.005)
                    if call.channel is not None:
                        peak = max(peak, call.channel.bufferedAmount)
                await until(lambda: call.ended, timeout=10)
                assert call.closed_reason == "client not reading"
                assert peak <= cap + 25_000  # at most one event past the cap
                # The sideband read everything and is closed with the call's reason.
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(asyncio.shield(band.reader), 10)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
                assert sum(e["type"] == "conversation.item.done" for e in band.seen) > 5
            assert server.calls == {} and server.sessions == []
        finally:
            peer.kill()
            await asyncio.wait_for(peer.wait(), 10)

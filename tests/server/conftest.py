"""Fixtures for the local server tests: a running server and a raw WebSocket client."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
import websockets

from realtime_client.server import LocalServer

KEY = "sk-test-local-0123456789"


class Client:
    """A thin raw client: JSON in, JSON out, with helpers to wait for event types."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(event))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        event: dict[str, Any] = json.loads(raw)
        self.received.append(event)
        return event

    async def until(self, type_: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Receive events up to and including the first of ``type_``; return them all."""
        out = []
        while True:
            ev = await self.recv(timeout)
            out.append(ev)
            if ev["type"] == type_:
                return out

    async def quiet(self, seconds: float = 0.2) -> list[dict[str, Any]]:
        """Whatever arrives within ``seconds``."""
        out = []
        try:
            while True:
                out.append(await self.recv(seconds))
        except (asyncio.TimeoutError, TimeoutError):
            return out

    async def update(self, session: dict[str, Any]) -> dict[str, Any]:
        """Send ``session.update``; return the session of the ``session.updated`` it gets."""
        await self.send({"type": "session.update", "session": session})
        updated = await self.until("session.updated")
        session_out: dict[str, Any] = updated[-1]["session"]
        return session_out

    async def say(self, text: str, response: dict[str, Any] | None = None) -> None:
        """A user text message, then ``response.create`` (with ``response`` when given)."""
        await self.send(user_text(text))
        create: dict[str, Any] = {"type": "response.create"}
        if response is not None:
            create["response"] = response
        await self.send(create)

    async def append(self, samples: np.ndarray, chunk_ms: int = 100) -> None:
        step = 24 * chunk_ms
        for i in range(0, len(samples), step):
            chunk = samples[i : i + step].astype("<i2").tobytes()
            await self.send(
                {"type": "input_audio_buffer.append", "audio": base64.b64encode(chunk).decode()}
            )


class Sideband:
    """A WebSocket joined to a WebRTC call (``?call_id=``), reading into :attr:`seen`."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []
        #: Reads until the socket closes (then fails with ``ConnectionClosed``).
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        while True:
            self.seen.append(json.loads(await self.ws.recv()))

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(event))


@contextlib.asynccontextmanager
async def sideband(srv: LocalServer, call_id: str, key: str = KEY) -> AsyncIterator[Sideband]:
    """Join the call ``call_id`` on ``srv`` as a sideband, for the ``async with`` block."""
    url = f"{srv.ws_url}?call_id={call_id}"
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        band = Sideband(ws)
        try:
            yield band
        finally:
            band.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await band.reader


class ListSink:
    """A :class:`ServerSession` sink that keeps what the session sends, for in-process tests."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None

    def send_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def of(self, type_: str) -> list[dict[str, Any]]:
        """The events of one type, in order."""
        return [e for e in self.events if e["type"] == type_]


def user_text(text: str) -> dict[str, Any]:
    """The ``conversation.item.create`` event for a user text message."""
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
    }


def speech(ms: int, *, freq: float = 300.0, amp: float = 0.3, rate: int = 24000) -> np.ndarray:
    """A loud tone that the energy VAD reads as speech."""
    t = np.arange(rate * ms // 1000) / rate
    return (amp * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def silence(ms: int, rate: int = 24000) -> np.ndarray:
    return np.zeros(rate * ms // 1000, dtype=np.int16)


def types(events: list[dict[str, Any]], *, skip_deltas: bool = True) -> list[str]:
    """Event types, with runs of delta events collapsed to one ``…delta*`` entry."""
    out: list[str] = []
    for ev in events:
        t = ev["type"]
        if skip_deltas and t.endswith(".delta"):
            t += "*"
            if t in out[-3:]:
                continue
        out.append(t)
    return out


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer(speed=0, seed=1) as srv:
        yield srv


async def open_client(
    srv: LocalServer,
    query: str = "model=gpt-realtime",
    headers: dict[str, str] | None = None,
    key: str | None = KEY,
    **kwargs: Any,
) -> Client:
    h = dict(headers or {})
    if key is not None:
        h["Authorization"] = f"Bearer {key}"
    ws = await websockets.connect(f"{srv.ws_url}?{query}", additional_headers=h, **kwargs)
    return Client(ws)


@pytest.fixture
async def client(server: LocalServer) -> AsyncIterator[Client]:
    c = await open_client(server)
    created = await c.recv()
    assert created["type"] == "session.created"
    yield c
    await c.ws.close()

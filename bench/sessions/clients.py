"""The three clients driving the same load: ours, a bare loop, the openai SDK."""

from __future__ import annotations

import abc
import asyncio
import base64
import contextlib
import time
from typing import Any

import numpy as np
import orjson
import pybase64
from openai import AsyncOpenAI
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from realtime_client import Session, connect
from realtime_client.audio import VirtualMicrophone
from realtime_client.audio.formats import float32_to_pcm16
from realtime_client.audio.resample import Resampler
from realtime_client.transports import Transport, WebSocketTransport

from .config import _API_KEY, _APPEND_HEAD, _MODEL, _SESSION_CONFIG, API_RATE, DEVICE_RATE
from .devices import _capture_block, _device, _Probe, _Speaker
from .server import _Urls

__all__: list[str] = []


async def _sleep_until(t: float) -> None:
    """Sleep until ``t`` on ``time.monotonic()`` (the event loop's clock)."""
    await asyncio.sleep(max(0.0, t - time.monotonic()))


class _Client(abc.ABC):
    """One benchmarked session: open it, start its device and responses, close it."""

    def __init__(self, urls: _Urls, probe: _Probe, index: int) -> None:
        self.urls = urls
        self.probe = probe
        self.speaker = _Speaker(probe)
        self.block = _capture_block(index)
        self.device: VirtualMicrophone | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.opened = False

    async def open(self) -> None:
        """Open the speaker, connect and configure the session (turn detection off)."""
        await self.speaker.open()
        await self._open()

    @abc.abstractmethod
    async def _open(self) -> None: ...

    @abc.abstractmethod
    def start(self, t0: float, first_turn: float) -> None:
        """Start the device at ``t0`` and the responses at ``first_turn`` (monotonic s)."""

    async def close(self) -> None:
        """Stop the tasks, close the session and the speaker."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(BaseException):
                await task
        await self._close()
        await self.speaker.close()

    @abc.abstractmethod
    async def _close(self) -> None: ...

    def new_device(self, t0: float) -> VirtualMicrophone:
        """The session's device, its first tick due at ``t0`` (monotonic s)."""
        self.device = _device(self.probe, self.speaker, t0, self.block)
        return self.device


class _LoopClient(_Client):
    """A client written as two loops: one pumps the device's blocks, one reads events."""

    def start(self, t0: float, first_turn: float) -> None:
        """Start the device at ``t0`` and the responses at ``first_turn`` (monotonic s)."""
        loop = asyncio.get_running_loop()
        device = self.new_device(t0)
        self.tasks.append(loop.create_task(self._pump(device)))
        self.tasks.append(loop.create_task(self._read(first_turn)))

    @abc.abstractmethod
    async def _pump(self, device: VirtualMicrophone) -> None: ...

    @abc.abstractmethod
    async def _read(self, t0: float) -> None: ...


class _TimedTransport(WebSocketTransport):
    """Our WebSocket transport, timestamping appends leaving and frames arriving.

    ``send`` and ``recv`` repeat the library's own bodies (four lines each) with the probe
    added, rather than wrapping the transport: a wrapper would add a coroutine layer per
    frame that the bare and SDK clients, timed inline, do not pay.
    """

    def __init__(self, url: str, probe: _Probe, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self._probe = probe

    async def connect(self) -> None:
        await super().connect()
        self._probe.hook_arrivals(self._ws)

    async def send(self, data: bytes | str) -> None:
        await super().send(data)
        if type(data) is bytes and data.startswith(_APPEND_HEAD):
            self._probe.sent()

    async def recv(self) -> bytes | str:
        ws = self._conn()
        try:
            frame = await ws.recv(decode=False)
        except ConnectionClosed as exc:
            raise self._closed(exc) from exc
        self._probe.received()
        return frame


class _OursClient(_Client):
    """``connect`` + ``attach(device, speaker)`` + ``async for event in session``."""

    session: Session

    async def _open(self) -> None:
        def make_transport() -> Transport:
            return _TimedTransport(
                self.urls.ws, self.probe, headers={"Authorization": f"Bearer {_API_KEY}"}
            )

        self.session = await connect(
            _MODEL, transport=make_transport, session=_SESSION_CONFIG, reconnect=False
        )

    def start(self, t0: float, first_turn: float) -> None:
        self.session.attach(self.new_device(t0), self.speaker)
        self.tasks.append(asyncio.get_running_loop().create_task(self._converse(first_turn)))

    async def _converse(self, t0: float) -> None:
        session = self.session
        await _sleep_until(t0)
        await session.create_response()
        async for event in session:
            if event.type == "response.done":
                await session.clear_input()
                await session.create_response()

    async def _close(self) -> None:
        await self.session.close()


class _BareClient(_LoopClient):
    """The reference: websockets + orjson + pybase64, nothing else."""

    ws: Any

    async def _open(self) -> None:
        self.ws = await ws_connect(
            self.urls.ws,
            additional_headers={"Authorization": f"Bearer {_API_KEY}"},
            compression=None,
            max_size=None,
            max_queue=None,
            user_agent_header=None,
        )
        self.probe.hook_arrivals(self.ws)
        update = {"type": "session.update", "session": _SESSION_CONFIG}
        await self.ws.send(orjson.dumps(update), text=True)
        while True:
            obj = orjson.loads(await self.ws.recv(decode=False))
            self.probe.received()
            if obj.get("type") == "session.updated":
                return
            if obj.get("type") == "error":
                raise RuntimeError(f"bare client: session.update failed: {obj}")

    async def _pump(self, device: VirtualMicrophone) -> None:
        resampler = Resampler(DEVICE_RATE, API_RATE)
        ws, probe = self.ws, self.probe
        async for block in device:
            pcm = float32_to_pcm16(resampler.process(block.samples))
            await ws.send(_APPEND_HEAD + pybase64.b64encode(pcm.tobytes()) + b'"}', text=True)
            probe.sent()

    async def _read(self, t0: float) -> None:
        ws, probe, speaker = self.ws, self.probe, self.speaker
        await _sleep_until(t0)
        await ws.send(b'{"type":"response.create"}', text=True)
        while True:
            obj = orjson.loads(await ws.recv(decode=False))
            probe.received()
            kind = obj.get("type")
            if kind == "response.output_audio.delta":
                pcm = np.frombuffer(pybase64.b64decode(obj["delta"], validate=True), "<i2")
                speaker.write(pcm, obj["item_id"], obj["content_index"])
            elif kind == "response.done":
                await ws.send(b'{"type":"input_audio_buffer.clear"}', text=True)
                await ws.send(b'{"type":"response.create"}', text=True)

    async def _close(self) -> None:
        await self.ws.close()


class _SdkClient(_LoopClient):
    """The official SDK, used as its README shows, with stdlib base64."""

    openai: AsyncOpenAI
    conn: Any

    async def _open(self) -> None:
        self._manager = self.openai.realtime.connect(model=_MODEL)
        self.conn = await self._manager.__aenter__()
        self.probe.hook_arrivals(getattr(self.conn, "_connection", None))
        await self.conn.session.update(session=_SESSION_CONFIG)
        while True:
            event = await self.conn.recv()
            self.probe.received()
            if event.type == "session.updated":
                return
            if event.type == "error":
                raise RuntimeError(f"sdk client: session.update failed: {event}")

    async def _pump(self, device: VirtualMicrophone) -> None:
        resampler = Resampler(DEVICE_RATE, API_RATE)
        conn, probe = self.conn, self.probe
        async for block in device:
            pcm = float32_to_pcm16(resampler.process(block.samples))
            await conn.input_audio_buffer.append(audio=base64.b64encode(pcm.tobytes()).decode())
            probe.sent()

    async def _read(self, t0: float) -> None:
        conn, probe, speaker = self.conn, self.probe, self.speaker
        await _sleep_until(t0)
        await conn.response.create()
        async for event in conn:
            probe.received()
            if event.type == "response.output_audio.delta":
                pcm = np.frombuffer(base64.b64decode(event.delta), dtype=np.int16)
                speaker.write(pcm, event.item_id, event.content_index)
            elif event.type == "response.done":
                await conn.input_audio_buffer.clear()
                await conn.response.create()

    async def _close(self) -> None:
        await self._manager.__aexit__(None, None, None)


_CLIENTS: dict[str, type[_Client]] = {
    "ours": _OursClient,
    "bare": _BareClient,
    "sdk": _SdkClient,
}

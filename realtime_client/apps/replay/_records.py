"""The replay's recording: every frame both ways as cassette records, written and read back."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ...recording import frame_event
from ...transports import MediaChannel, Transport

_AUDIO_FIELDS = {
    # event type: the field that carries base64 audio
    "input_audio_buffer.append": "audio",
    "response.output_audio.delta": "delta",
    "response.audio.delta": "delta",
}


class _Recorder:
    """Keeps every event both ways with timestamps, audio elided unless asked to keep it."""

    def __init__(self, clock: Callable[[], float], keep_audio: bool) -> None:
        self.records: list[dict[str, Any]] = []
        self._clock = clock
        self._keep_audio = keep_audio
        self._t0 = time.monotonic()

    def add(self, direction: str, event: dict[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = {
            "t": round(time.monotonic() - self._t0, 6),
            "at_ms": round(self._clock(), 3),
            "direction": direction,
            "event": event,
        }
        key = _AUDIO_FIELDS.get(str(event.get("type", "")))
        if key is not None and not self._keep_audio and isinstance(event.get(key), str):
            record["event"] = {**event, key: ""}
            record["elided"] = {key: _b64_len(event[key])}
        self.records.append(record)
        return record

    def frame(self, direction: str, data: bytes | str) -> None:
        self.add(direction, frame_event(data))


def _b64_len(data: str) -> int:
    """Bytes a base64 string decodes to, without decoding it."""
    pad = 2 if data.endswith("==") else 1 if data.endswith("=") else 0
    return len(data) * 3 // 4 - pad if data else 0


class _RecordingTransport(Transport):
    """Delegates to another transport and records every frame both ways."""

    def __init__(self, inner: Transport, recorder: _Recorder) -> None:
        self._inner = inner
        self._recorder = recorder

    async def connect(self) -> None:
        await self._inner.connect()

    async def send(self, data: bytes | str) -> None:
        await self._inner.send(data)
        self._recorder.frame("client", data)

    async def recv(self) -> bytes | str:
        data = await self._inner.recv()
        self._recorder.frame("server", data)
        return data

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._inner.close(code, reason)

    @property
    def media(self) -> MediaChannel | None:
        """The inner transport's media channel (WebRTC), if it has one."""
        return self._inner.media

    @property
    def closed(self) -> bool:
        return self._inner.closed


def _write_events(records: list[dict[str, Any]], path: Path) -> None:
    with path.open("wb") as f:
        for rec in records:
            f.write(orjson.dumps(rec) + b"\n")


def _one_connection(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first connection's records of a server recording that holds several."""
    first = next((r["conn"] for r in records if "conn" in r), None)
    if first is None:
        return records
    return [r for r in records if r.get("conn", first) == first]

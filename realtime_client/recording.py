"""The one recording format (a *cassette*): JSONL, one event a line.

Every JSONL file the project writes or reads uses it: the local server's ``--record``,
``realtime-replay``'s ``events.jsonl``, the protocol core's :meth:`replay_jsonl
<realtime_client.protocol.RealtimeProtocol.replay_jsonl>` and ``realtime-replay
--replay``. Keep them as regression fixtures.

One line a record::

    {"t": 0.0123, "direction": "server", "event": {"type": "session.created", ...}}

- ``t``: seconds since the recording started (monotonic clock), never decreasing.
- ``direction``: who sent it: ``"client"``, ``"server"``, or ``"meta"`` for a note by the
  recorder itself (``recording.started``, ``connection.closed``, ``replay.started``).
- ``event``: the event as sent, a JSON object.

Optional keys: ``ts`` (wall-clock Unix time), ``conn`` (connection number, for a server
that records many), ``at_ms`` (the replay's audio clock), ``elided`` (``{"delta": 9600}``:
an audio field left out and how many bytes it held; readers replay it as silence of that
length, at most :data:`MAX_ELIDED_BYTES` (16 MiB) a field and :data:`MAX_ELIDED_TOTAL`
(512 MiB) over a file's server records, so a small file cannot claim gigabytes). A frame
that is not a JSON object keeps its exact text as
``{"type": "recording.unparsable_frame", "text": ...}`` and a binary frame its bytes as
``{"type": "recording.binary_frame", "data": <base64>}``, so nothing is lost. API keys
never appear: headers are not events.

:func:`read_recording` also reads files the local server wrote before this format
(``{"dir": "in" | "out", "text": ...}``) and bare event lines, mapping them onto records.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

import orjson
import pybase64

from .errors import RecordingError

__all__ = [
    "DIRECTIONS",
    "MAX_ELIDED_BYTES",
    "MAX_ELIDED_TOTAL",
    "Direction",
    "RecordingError",
    "RecordingWriter",
    "frame_event",
    "iter_records",
    "read_recording",
    "server_events",
]

Direction = Literal["client", "server", "meta"]
DIRECTIONS: tuple[Direction, ...] = ("client", "server", "meta")

#: The most bytes one ``elided`` field may claim (16 MiB). No real event holds more: a
#: base64 field decodes to 3/4 of its length, the service refuses events past 15 MiB and
#: the client frames past 8 MiB (a delta of at most 6 MiB). Past it a line is refused.
MAX_ELIDED_BYTES = 16 * 1024 * 1024
#: The most bytes the ``elided`` fields of one file's server records may claim together
#: (512 MiB: over three hours of 24 kHz PCM16, three times the service's longest session).
#: :func:`server_events` rebuilds them as silence; a caller that keeps every event (e.g.
#: :meth:`~realtime_client.protocol.RealtimeProtocol.replay_jsonl`) keeps that much.
MAX_ELIDED_TOTAL = 512 * 1024 * 1024

# Directions of the server's recordings before the common format: "in" reached the server.
_LEGACY_DIR: dict[str, Direction] = {"in": "client", "out": "server"}


def frame_event(data: str | bytes) -> dict[str, Any]:
    """The event a raw frame carries; frames that are not a JSON object are kept verbatim.

    Args:
        data: A text frame (``str``, or JSON as ``bytes``) as it crossed the wire.

    Returns:
        The parsed object, or a ``recording.unparsable_frame`` event holding the exact
        text (``recording.binary_frame`` with base64 ``data`` for bytes that are not UTF-8).
    """
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        event = None
    if isinstance(event, dict):
        return event
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return {
                "type": "recording.binary_frame",
                "data": pybase64.b64encode(data).decode("ascii"),
            }
    else:
        text = data
    return {"type": "recording.unparsable_frame", "text": text}


class RecordingWriter:
    """Appends records to a cassette file, flushing each line.

    Args:
        path: The file; created, or appended to.
        wall_clock: Add ``ts`` (Unix time) to every record.

    Use as a context manager or call :meth:`close`. Writing after close does nothing.
    """

    def __init__(self, path: str | os.PathLike[str], *, wall_clock: bool = True) -> None:
        self.path = Path(path)
        self._file: IO[bytes] | None = self.path.open("ab")
        self._t0 = time.monotonic()
        self._wall_clock = wall_clock

    def write(
        self,
        direction: Direction,
        event: dict[str, Any],
        *,
        conn: int | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Append one record and return it.

        Args:
            direction: ``"client"``, ``"server"`` or ``"meta"``.
            event: The event as sent.
            conn: The connection number, where one file holds many connections.
            **extra: Further optional keys (``at_ms``, ``elided``).
        """
        record: dict[str, Any] = {"t": round(time.monotonic() - self._t0, 6)}
        if self._wall_clock:
            record["ts"] = round(time.time(), 6)
        if conn is not None:
            record["conn"] = conn
        record["direction"] = direction
        record["event"] = event
        record.update(extra)
        if self._file is not None:
            self._file.write(orjson.dumps(record) + b"\n")
            self._file.flush()
        return record

    def write_frame(
        self, direction: Direction, data: str | bytes, *, conn: int | None = None
    ) -> dict[str, Any]:
        """Append a raw frame as it crossed the wire (see :func:`frame_event`)."""
        return self.write(direction, frame_event(data), conn=conn)

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _problem(rec: dict[str, Any]) -> str | None:
    """Why a record is not usable (``None`` when it is)."""
    if rec.get("direction") not in DIRECTIONS:
        return "direction must be client, server or meta"
    event = rec.get("event")
    if not isinstance(event, dict):
        return "event must be an object"
    if not isinstance(event.get("type", ""), str):
        return "event type must be a string"
    for key in ("t", "at_ms"):
        value = rec.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{key} must be a number"
        if not math.isfinite(value):
            return f"{key} must be finite"
    elided = rec.get("elided")
    if elided is not None:
        if not isinstance(elided, dict):
            return "elided must be an object"
        for key, nbytes in elided.items():
            if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0:
                return f"elided {key!r} must be a byte count >= 0"
            if nbytes > MAX_ELIDED_BYTES:
                return (
                    f"elided {key!r} claims {nbytes} bytes, more than an event can carry "
                    f"(at most {MAX_ELIDED_BYTES})"
                )
    return None


def _from_legacy(line: dict[str, Any]) -> dict[str, Any]:
    """A record from the server's earlier ``{"dir", "text" | "binary" | "close"}`` lines."""
    direction = _LEGACY_DIR.get(str(line.get("dir")))
    if direction is None:
        raise ValueError("dir must be in or out")
    if "close" in line:
        close = line["close"] if isinstance(line["close"], dict) else {}
        event: dict[str, Any] = {"type": "connection.closed", **close, "by": direction}
        direction = "meta"
    elif isinstance(line.get("text"), str):
        event = frame_event(line["text"])
    elif isinstance(line.get("binary"), str):
        event = {"type": "recording.binary_frame", "data": line["binary"]}
    else:
        raise ValueError("a legacy line needs text, binary or close")
    record: dict[str, Any] = {k: line[k] for k in ("t", "ts", "conn") if k in line}
    record.update(direction=direction, event=event)
    return record


def _normalise(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ValueError("not an object")
    record: dict[str, Any]
    if "direction" in obj and "event" in obj:
        record = obj
    elif "dir" in obj:
        record = _from_legacy(obj)
    elif isinstance(obj.get("type"), str):
        # A bare event (hand-written fixtures): the server sent it.
        record = {"direction": "server", "event": obj}
    else:
        raise ValueError("neither a record nor an event")
    problem = _problem(record)
    if problem is not None:
        raise ValueError(problem)
    return record


def iter_records(
    lines: Iterable[str | bytes], *, source: str = "<recording>"
) -> Iterator[dict[str, Any]]:
    """Parse cassette lines into records, skipping blank lines.

    Args:
        lines: The file's lines.
        source: A name for error messages (the file path).

    Raises:
        RecordingError: A line is not JSON or not a usable record (names the line), e.g.
            an ``elided`` field past :data:`MAX_ELIDED_BYTES`, or server records whose
            ``elided`` fields together pass :data:`MAX_ELIDED_TOTAL`.
    """
    elided_total = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise RecordingError(f"{source}:{number}: not JSON: {exc}") from None
        try:
            record = _normalise(obj)
        except ValueError as exc:
            raise RecordingError(f"{source}:{number}: not a recording record: {exc}") from None
        if record["direction"] == "server" and record.get("elided"):
            elided_total += sum(record["elided"].values())
            if elided_total > MAX_ELIDED_TOTAL:
                raise RecordingError(
                    f"{source}:{number}: server records claim more than {MAX_ELIDED_TOTAL} "
                    "bytes of elided audio in total"
                )
        yield record


def read_recording(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Load a cassette (or an earlier server recording) as a list of records.

    Raises:
        RecordingError: The file cannot be read, or a line is not a usable record.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise RecordingError(f"cannot read {path}: {exc}") from exc
    return list(iter_records(raw.splitlines(), source=str(path)))


def server_events(records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The events the server sent, in order (what drives the protocol core).

    Elided audio fields come back as silence of the recorded length (base64, built one
    event at a time; :func:`iter_records` bounds the lengths), so audio durations and
    truncation bounds are the same as in the live run. Apply each event as it comes
    rather than keeping them all, and the silence in memory is one event's.
    """
    silence = ("", 0)  # the last silence built: consecutive deltas often match in length
    for rec in records:
        if rec["direction"] != "server":
            continue
        event: dict[str, Any] = rec["event"]
        for key, nbytes in (rec.get("elided") or {}).items():
            if silence[1] != nbytes:
                silence = (_b64_silence(int(nbytes)), nbytes)
            event = {**event, key: silence[0]}
        yield event


def _b64_silence(nbytes: int) -> str:
    """Base64 of ``nbytes`` zero bytes, built without the bytes."""
    return "A" * (4 * (nbytes // 3)) + ("", "AA==", "AAA=")[nbytes % 3]

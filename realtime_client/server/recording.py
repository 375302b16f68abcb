"""JSONL recording of every frame, both directions, with timestamps.

One line per frame::

    {"t": 0.003412, "ts": 1764089000.123, "conn": 1, "dir": "out", "text": "{\\"type\\":..."}

``t`` is seconds since the recorder opened (monotonic), ``ts`` the wall-clock time,
``conn`` the connection number, ``dir`` ``"in"`` (client → server) or ``"out"``. Text
frames keep their exact text in ``text``; binary frames go to ``binary`` as base64;
a close is ``{"dir": "out", "close": {"code": 1001, "reason": "..."}}``. Keys never
appear: the Authorization header and subprotocols are not frames.

:func:`read_recording` loads a file back, parsing each text frame into ``event``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import IO, Any

import orjson
import pybase64

__all__ = ["Recorder", "read_recording"]


class Recorder:
    """Appends frames to a JSONL file.

    Args:
        path: The file; created or appended to.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: IO[bytes] | None = self.path.open("ab")
        self._t0 = time.monotonic()

    def record(
        self,
        conn: int,
        direction: str,
        data: str | bytes | None = None,
        *,
        close: tuple[int, str] | None = None,
    ) -> None:
        """Write one frame (``data``) or a close (``close=(code, reason)``)."""
        if self._file is None:
            return
        line: dict[str, Any] = {
            "t": round(time.monotonic() - self._t0, 6),
            "ts": round(time.time(), 6),
            "conn": conn,
            "dir": direction,
        }
        if close is not None:
            line["close"] = {"code": close[0], "reason": close[1]}
        elif isinstance(data, str):
            line["text"] = data
        elif data is not None:
            line["binary"] = pybase64.b64encode(data).decode("ascii")
        self._file.write(orjson.dumps(line) + b"\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None


def read_recording(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Load a recording; text frames that are JSON also get their parsed ``event``."""
    out: list[dict[str, Any]] = []
    for raw in Path(path).read_bytes().splitlines():
        if not raw.strip():
            continue
        line = orjson.loads(raw)
        if "text" in line:
            try:
                line["event"] = orjson.loads(line["text"])
            except orjson.JSONDecodeError:
                pass
        out.append(line)
    return out

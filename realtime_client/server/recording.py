"""The server's ``--record``: every frame of every connection, in the common cassette format.

See :mod:`realtime_client.recording` for the format. The server writes ``client`` records
for frames it received, ``server`` records for frames it sent, and ``meta`` records
``connection.opened`` (``conn``, ``dialect``, ``model``) and ``connection.closed``
(``code``, ``reason``, ``by``: who closed) around them, each with the connection number
in ``conn``. Keys never appear: the Authorization header and subprotocols are not frames.
"""

from __future__ import annotations

import pybase64

from ..recording import Direction, RecordingWriter, read_recording

__all__ = ["Recorder", "read_recording"]


class Recorder(RecordingWriter):
    """Appends every frame the local server sends or receives to a cassette file.

    Args:
        path: The file; created or appended to.
    """

    def record(
        self,
        conn: int,
        direction: Direction,
        data: str | bytes | None = None,
        *,
        close: tuple[int, str] | None = None,
    ) -> None:
        """Write one frame (``data``) or the server's close (``close=(code, reason)``)."""
        if close is not None:
            event = {"type": "connection.closed", "code": close[0], "reason": close[1]}
            event["by"] = direction
            self.write("meta", event, conn=conn)
        elif isinstance(data, bytes):  # a binary WebSocket frame (the API sends none)
            event = {"type": "recording.binary_frame", "data": pybase64.b64encode(data).decode()}
            self.write(direction, event, conn=conn)
        elif data is not None:
            self.write_frame(direction, data, conn=conn)

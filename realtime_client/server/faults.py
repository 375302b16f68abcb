"""Fault injection, so a client's tests can meet a bad network or a misbehaving server.

A :class:`FaultPlan` applies to one connection. Choose it on the server
(``LocalServer.set_faults`` for every new connection, ``LocalServer.push_faults`` for the
next one only) or from the client with the ``fault`` query parameter, e.g.
``ws://127.0.0.1:8000/v1/realtime?model=gpt-realtime&fault=drop_after=5,delay=0.01``.
WebRTC calls take the same plans (on ``POST /v1/realtime/calls``, ``?fault=``), applied to
their ``oai-events`` channel; there a drop drops the peer, or with ``close_code`` closes
only the data channel (:mod:`.calls`).

Spec syntax (comma-separated, any order):

=========================  =====================================================================
``drop_after=N``           after N server events, cut the TCP connection (no close frame: 1006)
``drop_at=TYPE``           cut it instead of sending the first server event of type TYPE
``close_code=CODE``        with ``drop_*``: send a close frame with CODE instead of cutting
``delay=S``                hold every server event S seconds (added latency; order kept)
``stall_after=N``          after N server events, send nothing for ``stall`` seconds
``stall=S``                length of that stall, in seconds (default 5)
``error_after=N``          after N server events, inject an ``error`` event (server_error)
``error_code=CODE``        the injected error's code (default null)
``reorder``                use the protocol's ordering freedom: input transcriptions arrive
                           late and transcript deltas trail their audio
``rate_limit_tokens=N``    a tokens-per-minute budget of N: ``rate_limits.updated`` counts it
                           down, and a response whose input would overrun it fails the way the
                           real service's do (``response.done`` with status ``failed`` and
                           ``status_details.error.code`` ``rate_limit_exceeded``, protocol.md
                           §7.2 and §10)
=========================  =====================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from ..errors import RealtimeError

__all__ = ["FaultPlan", "FaultSpecError"]


def _sendable_close_code(code: int) -> bool:
    """Whether an endpoint may send ``code`` in a close frame (RFC 6455 §7.4)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


class FaultSpecError(RealtimeError, ValueError):
    """A fault spec string could not be parsed."""


@dataclass(frozen=True)
class FaultPlan:
    """Faults for one connection (see the module docstring for the meaning of each).

    Attributes:
        drop_after: Server events to send before cutting the connection.
        drop_at: Server event type at which to cut the connection (not sent).
        close_code: Close code to send on a drop instead of cutting the socket.
        delay_s: Extra delay before each server event, in seconds.
        stall_after: Server events to send before stalling.
        stall_s: Stall length, in seconds.
        error_after: Server events to send before injecting an ``error`` event.
        error_code: ``error.code`` of the injected error.
        reorder: Reorder within the protocol's freedom.
        rate_limit_tokens: Tokens-per-minute budget; ``None`` for the real service's
            practically unlimited default.
    """

    drop_after: int | None = None
    drop_at: str | None = None
    close_code: int | None = None
    delay_s: float = 0.0
    stall_after: int | None = None
    stall_s: float = 5.0
    error_after: int | None = None
    error_code: str | None = None
    reorder: bool = False
    rate_limit_tokens: int | None = None

    _ALIASES = {"delay": "delay_s", "stall": "stall_s"}

    def __post_init__(self) -> None:
        for name in ("drop_after", "stall_after", "error_after", "rate_limit_tokens"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 0):
                raise FaultSpecError(f"fault {name!r} must be an integer >= 0, got {value!r}")
        for name in ("delay_s", "stall_s"):
            value = getattr(self, name)
            if type(value) not in (int, float) or not 0 <= value < math.inf:
                raise FaultSpecError(f"fault {name!r} must be a finite number >= 0, got {value!r}")
        code = self.close_code
        if code is not None and (type(code) is not int or not _sendable_close_code(code)):
            raise FaultSpecError(
                f"fault 'close_code' must be a WebSocket close code an endpoint may send "
                f"(1000-1003, 1007-1014 or 3000-4999), got {code!r}"
            )

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """Parse ``"drop_after=5,delay=0.01,reorder"``.

        Raises:
            FaultSpecError: Unknown key or bad value.
        """
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for raw in spec.split(","):
            token = raw.strip()
            if not token:
                continue
            key, sep, value = token.partition("=")
            key = cls._ALIASES.get(key.strip(), key.strip())
            if key not in known:
                raise FaultSpecError(f"unknown fault {key!r} in {spec!r}")
            if key == "reorder":
                values[key] = value.strip().lower() not in ("0", "false", "no") if sep else True
                continue
            if not sep:
                raise FaultSpecError(f"fault {key!r} needs a value")
            value = value.strip()
            try:
                if key in (
                    "drop_after",
                    "close_code",
                    "stall_after",
                    "error_after",
                    "rate_limit_tokens",
                ):
                    values[key] = int(value)
                elif key in ("delay_s", "stall_s"):
                    values[key] = float(value)
                else:
                    values[key] = value
            except ValueError as exc:
                raise FaultSpecError(f"bad value for fault {key!r}: {value!r}") from exc
        return cls(**values)

    @property
    def active(self) -> bool:
        """Whether this plan changes anything."""
        return self != FaultPlan()

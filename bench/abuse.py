"""Server-abuse campaign: abusive connections beside a well-behaved client's text turns.

Run it with ``python -m bench.abuse`` (``--quick`` for a smoke run). The local server
(speed 0) serves one well-behaved session running text turns, first alone, then while
these connections abuse it, all in the same run:

* **idle**: WebSocket sessions that never send anything (no idle limit is documented:
  they must stay open and cost nothing);
* **half-open**: TCP connections that never send a byte, and **slowloris** sockets that
  send an HTTP upgrade one header byte at a time: closed at the handshake timeout
  (``handshake_timeout_s``);
* **invalid JSON** and **binary** floods: WebSocket sessions sending garbage as fast as
  they can: each frame is answered with an error until the error budget
  (``max_errors_per_s``) is spent, then the connection is closed with 1008;
* **never reads**: a session that asks for large events and never reads them: closed
  with 1008 ``client not reading`` once its outbox passes ``max_outbox_bytes``, then cut
  when that close frame cannot get through (the client sees 1006, or 1008 if it does).

Reported: the well-behaved client's turn latency p50 / p99 alone and under abuse (and
their ratio), and for each abusive kind whether every connection was closed (or left
open) as documented.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from realtime_client import connect
from realtime_client import events as ev
from realtime_client.server import LocalServer
from realtime_client.server._connection import _CLOSE_TIMEOUT_S

__all__ = ["AbuseResult", "main", "run_abuse"]

_KEY = "sk-abuse"
#: Messages a non-reader sends at least: each is echoed twice (20 kB), so 16 MB of events
#: for it, past any kernel buffering and the campaign's 1 MiB cap.
_NEVER_READS_SENDS = 800


@dataclass
class AbuseResult:
    """What the campaign measured.

    Attributes:
        alone_ms: Turn latencies (send_text → response.done) without abuse, in ms.
        abused_ms: The same under abuse, in ms.
        verdicts: Per abusive kind: (connections, handled as documented, what happened).
        loop_errors: Errors the event loop caught outside any task's result (a failing
            callback or a task whose exception nobody retrieved): each one a failure.
    """

    alone_ms: list[float] = field(default_factory=list)
    abused_ms: list[float] = field(default_factory=list)
    verdicts: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    loop_errors: list[str] = field(default_factory=list)

    @property
    def failures(self) -> int:
        """Abusive connections not handled as documented, and errors in the loop."""
        return sum(n - ok for n, ok, _ in self.verdicts.values()) + len(self.loop_errors)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values) or [0.0]
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def _turns(url: str, turns: int) -> list[float]:
    """``turns`` text turns of a well-behaved session; each one's latency in ms."""
    latencies = []
    async with connect(url=url, api_key=_KEY, request_timeout=30) as session:
        done = asyncio.Event()

        def on_done(_event: Any) -> None:
            done.set()

        session.on(ev.ResponseDone, on_done)
        for n in range(turns):
            done.clear()
            started = time.perf_counter()
            await session.send_text(f"turn {n}")
            await asyncio.wait_for(done.wait(), 30)
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


async def _close_code(ws: Any, timeout_s: float) -> int | None:
    """Read until the server closes ``ws``; its close code (``None``: still open)."""

    async def drain() -> None:
        while True:
            await ws.recv()

    try:
        await asyncio.wait_for(drain(), timeout_s)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else 1006
    except asyncio.TimeoutError:
        return None
    return None


async def _tcp_closed_after(host: str, port: int, trickle: bytes, timeout_s: float) -> float | None:
    """Open a TCP connection, send ``trickle`` a byte per 50 ms; seconds until it is closed."""
    reader, writer = await asyncio.open_connection(host, port)
    started = time.perf_counter()

    async def until_closed() -> None:
        for byte in trickle:
            writer.write(bytes([byte]))
            await writer.drain()
            with contextlib.suppress(asyncio.TimeoutError):
                if await asyncio.wait_for(reader.read(1024), 0.05) == b"":
                    return
        while await reader.read(1024):
            pass

    try:
        await asyncio.wait_for(until_closed(), timeout_s)
    except asyncio.TimeoutError:
        return None
    except ConnectionError:
        pass
    finally:
        writer.close()
    return time.perf_counter() - started


async def _flood(url: str, frame: str | bytes, seconds: float) -> int | None:
    """Send ``frame`` as fast as the socket takes it; the close code that ends it."""
    async with ws_connect(url, additional_headers={"Authorization": f"Bearer {_KEY}"}) as ws:
        reader = asyncio.ensure_future(_close_code(ws, seconds + 10))
        deadline = time.perf_counter() + seconds  # the budget closes a sustained flood sooner
        with contextlib.suppress(ConnectionClosed):
            while time.perf_counter() < deadline and not reader.done():
                await ws.send(frame)
                await asyncio.sleep(0)
        return await reader


async def _never_reads(url: str, seconds: float) -> int | None:
    """Ask for large events and never read them; the close code once read at last.

    A real non-reader: a 64 KiB receive buffer (loopback autotuning would grow it to tens
    of MB first), no compression, and a client library that stops reading at once. The
    server closes it with 1008 behind the events it never read and cuts it when the close
    cannot get through, so reading at last usually ends in an abnormal closure (1006).
    """
    host, _, rest = url.removeprefix("ws://").partition("/")
    name, _, port = host.rpartition(":")
    sock = socket.create_connection((name, int(port)))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    async with ws_connect(
        url,
        additional_headers={"Authorization": f"Bearer {_KEY}"},
        sock=sock,
        max_queue=1,
        max_size=None,
        compression=None,
    ) as ws:
        text = "x" * 10_000  # within the service's limit: each is echoed twice
        create = {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": text}],
            },
        }
        # At least ``seconds``, and at least enough to fill the kernel's buffers (a few
        # MB) and the cap: a loop busy with the floods sends slowly (once, all 20 sent too
        # little in the window to be closed). Half a minute at most.
        started = time.perf_counter()
        sent = 0
        with contextlib.suppress(ConnectionClosed, OSError):
            while True:
                elapsed = time.perf_counter() - started
                if elapsed > seconds + 30 or (elapsed > seconds and sent >= _NEVER_READS_SENDS):
                    break
                await ws.send(json.dumps(create))
                sent += 1
                await asyncio.sleep(0.001)
        return await _close_code(ws, 15)


async def _idle(url: str, seconds: float) -> int | None:
    """Connect and say nothing for ``seconds``; ``None`` if still open then."""
    async with ws_connect(url, additional_headers={"Authorization": f"Bearer {_KEY}"}) as ws:
        return await _close_code(ws, seconds)


async def run_abuse(
    turns: int = 200,
    each: int = 10,
    handshake_timeout_s: float = 2.0,
    max_outbox_bytes: int = 1 << 20,
) -> AbuseResult:
    """Measure the well-behaved client alone, then with ``each`` connections of every kind."""
    result = AbuseResult()
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def caught(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        detail = f": {type(error).__name__}: {error}" if error is not None else ""
        result.loop_errors.append(f"{context.get('message', 'error')}{detail}")

    loop.set_exception_handler(caught)
    try:
        await _campaign(result, turns, each, handshake_timeout_s, max_outbox_bytes)
        await asyncio.sleep(_CLOSE_TIMEOUT_S + 0.5)  # timers left by the closes run too
    finally:
        loop.set_exception_handler(previous)
    return result


async def _campaign(
    result: AbuseResult,
    turns: int,
    each: int,
    handshake_timeout_s: float,
    max_outbox_bytes: int,
) -> None:
    """The two phases and the verdicts, into ``result``."""
    async with LocalServer(
        speed=0,
        responder="echo",
        ping_interval_s=0,
        handshake_timeout_s=handshake_timeout_s,
        max_outbox_bytes=max_outbox_bytes,
    ) as server:
        sinks: list[Any] = []
        server.on_session = lambda session: sinks.append(session.sink)
        url = server.url
        ws_url = server.ws_url + "?model=gpt-realtime"
        host, port = "127.0.0.1", server.port
        result.alone_ms = await _turns(url, turns)
        window = handshake_timeout_s + 2.0  # the abuse lasts past the handshake timeout
        upgrade = (
            f"GET /v1/realtime HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nX-Slow: " + "a" * 200
        ).encode()
        kinds: dict[str, Callable[[], Awaitable[Any]]] = {
            "idle": lambda: _idle(ws_url, window),
            "half-open": lambda: _tcp_closed_after(host, port, b"", window + 5),
            "slowloris": lambda: _tcp_closed_after(host, port, upgrade, window + 5),
            "invalid JSON flood": lambda: _flood(ws_url, "{not json", 60),
            "binary flood": lambda: _flood(ws_url, b"\x00\x01binary", 60),
            "never reads": lambda: _never_reads(ws_url, window),
        }
        tasks = {
            name: [asyncio.ensure_future(make()) for _ in range(each)]
            for name, make in kinds.items()
        }
        await asyncio.sleep(0.2)  # every abuser connected and at it
        result.abused_ms = await _turns(url, turns)
        outcomes = {
            name: await asyncio.gather(*group, return_exceptions=True)
            for name, group in tasks.items()
        }
    not_reading = sum(getattr(s, "closed_reason", None) == "client not reading" for s in sinks)
    for name, got in outcomes.items():
        result.verdicts[name] = _verdict(name, got, handshake_timeout_s, not_reading)


def _verdict(
    name: str, got: list[Any], handshake_timeout_s: float, not_reading: int = 0
) -> tuple[int, int, str]:
    """How many of one kind's connections ended as documented, and a summary.

    ``not_reading`` is how many connections the server closed as ``client not reading``.
    """
    if name == "idle":
        ok = sum(g is None for g in got)
        return len(got), ok, "still open, as no idle limit is documented"
    if name in ("half-open", "slowloris"):
        ok = sum(
            isinstance(g, float) and handshake_timeout_s - 0.2 <= g <= handshake_timeout_s + 2
            for g in got
        )
        closed = [g for g in got if isinstance(g, float)]
        when = f"{min(closed):.1f}-{max(closed):.1f} s" if closed else "never"
        return len(got), ok, f"closed after {when} (handshake timeout {handshake_timeout_s:g} s)"
    codes = sorted({str(g) if not isinstance(g, BaseException) else type(g).__name__ for g in got})
    if name == "never reads":
        ended = sum(g in (1008, 1006) for g in got)
        return (
            len(got),
            min(ended, not_reading),
            f"{not_reading} closed by the server as not reading; close codes seen "
            f"{', '.join(codes)} (1006: cut behind the unread events)",
        )
    ok = sum(g == 1008 for g in got)
    return len(got), ok, f"close codes {', '.join(codes)} (documented: 1008)"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "n/a"


def render(r: AbuseResult) -> str:
    """The report, as plain text."""
    a50, a99 = _pct(r.alone_ms, 0.5), _pct(r.alone_ms, 0.99)
    b50, b99 = _pct(r.abused_ms, 0.5), _pct(r.abused_ms, 0.99)
    lines = [
        f"server abuse: {len(r.alone_ms)} text turns alone, {len(r.abused_ms)} under abuse",
        f"turn latency alone p50 {a50:.1f} ms, p99 {a99:.1f} ms; under abuse p50 {b50:.1f} ms, "
        f"p99 {b99:.1f} ms (ratio p50 {_ratio(b50, a50)}, p99 {_ratio(b99, a99)})",
        "| abuse | connections | as documented | what happened |",
        "|---|---|---|---|",
    ]
    for name, (n, ok, what) in r.verdicts.items():
        lines.append(f"| {name} | {n} | {ok} | {what} |")
    lines.append(f"errors caught by the event loop: {len(r.loop_errors)}")
    lines.extend(f"  {error}" for error in r.loop_errors[:5])
    lines.append(f"failures: {r.failures}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the campaign and print its figures; 1 if an abusive connection was not handled."""
    parser = argparse.ArgumentParser(prog="python -m bench.abuse", description=__doc__)
    parser.add_argument("--turns", type=int, default=300, help="text turns per phase")
    parser.add_argument("--each", type=int, default=20, help="connections per abusive kind")
    parser.add_argument("--handshake-timeout-s", type=float, default=3.0)
    parser.add_argument("--quick", action="store_true", help="40 turns, 3 connections each")
    args, _ = parser.parse_known_args(argv)
    if args.turns <= 0 or args.each <= 0 or args.handshake_timeout_s <= 0:
        parser.error("--turns, --each and --handshake-timeout-s must be > 0")
    turns, each, timeout = (
        (40, 3, 1.0) if args.quick else (args.turns, args.each, args.handshake_timeout_s)
    )
    result = asyncio.run(run_abuse(turns, each, timeout))
    print(render(result), flush=True)
    return 1 if result.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())

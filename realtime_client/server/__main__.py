"""``python -m realtime_client.server`` / ``realtime-server``: run the local server.

The first line printed is the base URL to give a client (``http://127.0.0.1:8000/v1``);
the lines after it say how keys are checked and where the WebSocket is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from ..errors import MissingExtraError
from ._common import TIMINGS
from .app import _ENV_KEYS, LocalServer, ServerConfigError
from .faults import FaultSpecError
from .responders import ResponderError

__all__ = ["build_parser", "main"]


def _port(text: str) -> int:
    """An argparse type: a TCP port number, 0 to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0 to 65535, got {port}")
    return port


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (exposed so the README's flag list can be tested)."""
    p = argparse.ArgumentParser(
        prog="realtime-server",
        description="A local, strict stand-in for the OpenAI Realtime API (WebSocket and "
        "WebRTC calls).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--port", type=_port, default=8000, help="port; 0 picks a free one (default 8000)"
    )
    p.add_argument(
        "--responder",
        default="echo",
        help="echo | script:FILE | tts | tts:script:FILE (default echo)",
    )
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="output pacing: 1 real time, 10 ten times faster, 0 unpaced (default 1)",
    )
    p.add_argument(
        "--timing",
        choices=sorted(TIMINGS),
        default="instant",
        help="instant (default) or realistic: response.created ~250 ms after a turn, first "
        "audio ~200 ms later, audio generated 3x faster than real time",
    )
    p.add_argument(
        "--audio-delta-ms",
        type=int,
        default=100,
        help="audio per output delta, in ms (default 100)",
    )
    p.add_argument(
        "--api-key",
        action="append",
        default=None,
        metavar="KEY",
        help=f"accepted API key (repeatable; also ${_ENV_KEYS}, comma-separated)",
    )
    p.add_argument(
        "--strict-ga",
        action="store_true",
        help="refuse the beta dialect (OpenAI-Beta: realtime=v1) like the real API",
    )
    p.add_argument(
        "--session-limit",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="maximum session length in seconds (default 3600)",
    )
    p.add_argument(
        "--handshake-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="close a connection that has not sent a whole request head (the WebSocket "
        "upgrade) by then (default 10)",
    )
    p.add_argument(
        "--max-errors-per-s",
        type=float,
        default=100.0,
        metavar="N",
        help="error events a connection's invalid events may draw per second before they "
        "are dropped and a flood is closed with 1008; 0 = no limit (default 100)",
    )
    p.add_argument(
        "--vad",
        choices=("energy", "silero"),
        default="energy",
        help="turn detector for server_vad / semantic_vad: energy (default; tracks the noise "
        "floor) or silero (a speech model that holds up in noise; the aec extra)",
    )
    p.add_argument("--record", metavar="FILE", help="record every frame to this JSONL file")
    p.add_argument("--seed", type=int, default=0, help="seed for ids and responders (default 0)")
    p.add_argument(
        "--faults",
        metavar="SPEC",
        help="fault plan for every connection, e.g. drop_after=20,delay=0.05",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    return p


async def _serve(server: LocalServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with server:
        print(server.url, flush=True)
        if server.api_keys is None:
            print(
                "auth: accepting any non-empty API key (loopback only; use --api-key to "
                "require one)",
                flush=True,
            )
        else:
            print(
                f"auth: {len(server.api_keys)} configured key(s) plus minted ek_ keys", flush=True
            )
        print(f"websocket: {server.ws_url}?model=gpt-realtime", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until interrupted; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    keys = args.api_key
    if keys is None and os.environ.get(_ENV_KEYS):
        keys = [k.strip() for k in os.environ[_ENV_KEYS].split(",") if k.strip()]
    try:
        server = LocalServer(
            args.host,
            args.port,
            responder=args.responder,
            speed=args.speed,
            timing=args.timing,
            audio_delta_ms=args.audio_delta_ms,
            api_keys=keys,
            strict_ga=args.strict_ga,
            session_limit_s=args.session_limit,
            record_path=args.record,
            seed=args.seed,
            faults=args.faults,
            handshake_timeout_s=args.handshake_timeout,
            max_errors_per_s=args.max_errors_per_s or None,
            vad=args.vad,
        )
        asyncio.run(_serve(server))
    except (ServerConfigError, ResponderError, FaultSpecError, MissingExtraError) as exc:
        print(f"realtime-server: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"realtime-server: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

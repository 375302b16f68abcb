"""Soak: an hour of conversation at speed 0, and how much the client and server heaps grow.

Run it with ``python -m bench.soak`` (``--quick`` for a smoke run, ``--hours`` to change the
conversation length). A real session talks to the local server (echo responder, unpaced)
in push-to-talk turns: each turn sends ``--turn-ms`` of microphone audio, commits, and the
server plays it back, so one turn is twice that much conversation. The server runs in a
child process so each side's heap is its own: both start ``tracemalloc`` and report their
traced heap and RSS after a warm-up and at the end, after a full garbage collection. The
report gives growth per hour of conversation; the conversation's own text (transcripts)
is reported beside it, since keeping the conversation is the point.

Targets (issue 14, item 13): client heap ≤ 1 MB per hour beyond the text, server ≤ 20 MB
per hour.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import time
import tracemalloc
from dataclasses import dataclass

import numpy as np

__all__ = ["SoakResult", "main", "run_soak"]

_WARMUP_TURNS = 20
_CLIENT_TARGET_MB_H = 1.0
_SERVER_TARGET_MB_H = 20.0


def _rss_mb() -> float:
    """Resident set size now, in MB (Linux ``/proc``; the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def _measure() -> dict[str, float]:
    gc.collect()
    return {"heap_mb": tracemalloc.get_traced_memory()[0] / 1e6, "rss_mb": _rss_mb()}


async def _serve() -> None:
    """The child process: a local server; ``m`` on stdin prints its heap and RSS."""
    from realtime_client.server import LocalServer

    tracemalloc.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with LocalServer(speed=0, seed=1, responder="echo", ping_interval_s=0) as server:
        print(json.dumps({"port": server.port}), flush=True)
        while line := await reader.readline():
            if line.strip() == b"m":
                print(json.dumps(_measure()), flush=True)


@dataclass
class SoakResult:
    """What one soak measured.

    Attributes:
        turns: Turns after the warm-up.
        conversation_s: Conversation audio over those turns (user + assistant), in s.
        wall_s: Wall time of those turns, in s.
        client: Client ``heap_mb`` / ``rss_mb`` after the warm-up and at the end.
        server: The same for the server process.
        text_mb: The conversation's text (transcripts) added over those turns, in MB.
        responses_kept: ``len(session.protocol.responses)`` at the end.
        turns_kept: ``len(session.stats.turns)`` at the end.
    """

    turns: int
    conversation_s: float
    wall_s: float
    client: tuple[dict[str, float], dict[str, float]]
    server: tuple[dict[str, float], dict[str, float]]
    text_mb: float
    responses_kept: int
    turns_kept: int

    def per_hour(self, side: str, key: str) -> float:
        """Growth of ``side`` (client/server) ``key`` (heap_mb/rss_mb) per conversation hour."""
        start, end = self.client if side == "client" else self.server
        return (end[key] - start[key]) * 3600.0 / self.conversation_s


async def run_soak(hours: float = 1.0, turn_ms: int = 3300) -> SoakResult:
    """Drive ``hours`` of conversation through a session and the local server at speed 0."""
    from realtime_client import connect
    from realtime_client import events as ev

    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.soak",
        "--serve",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    stdin, stdout = child.stdin, child.stdout

    async def server_measure() -> dict[str, float]:
        stdin.write(b"m\n")
        await stdin.drain()
        result: dict[str, float] = json.loads(await stdout.readline())
        return result

    try:
        port = json.loads(await stdout.readline())["port"]
        tracemalloc.start()
        t = np.arange(24 * turn_ms) / 24_000
        speech = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
        blocks = [speech[i : i + 2400] for i in range(0, len(speech), 2400)]
        turns = max(1, round(hours * 3600_000 / (2 * turn_ms)))
        done = asyncio.Event()
        async with connect(
            url=f"ws://127.0.0.1:{port}/v1", api_key="sk-soak", push_to_talk=True
        ) as session:

            async def drain() -> None:  # an app iterates its events
                async for event in session:
                    if isinstance(event, ev.ResponseDone):
                        done.set()

            drainer = asyncio.ensure_future(drain())

            async def turn() -> None:
                done.clear()
                for block in blocks:
                    await session.send_audio(block, 24_000)
                await session.push_to_talk_release()
                await asyncio.wait_for(done.wait(), 30)

            for _ in range(_WARMUP_TURNS):
                await turn()
            text_before = sum(len(i.text) + len(i.input_transcript) for i in session.conversation)
            client_start, server_start = _measure(), await server_measure()
            started = time.perf_counter()
            for _ in range(turns):
                await turn()
            wall_s = time.perf_counter() - started
            text_after = sum(len(i.text) + len(i.input_transcript) for i in session.conversation)
            client_end, server_end = _measure(), await server_measure()
            responses_kept = len(session.protocol.responses)
            turns_kept = len(session.stats.turns)
            drainer.cancel()
        tracemalloc.stop()
    finally:
        stdin.close()
        try:
            await asyncio.wait_for(child.wait(), 10)
        except asyncio.TimeoutError:
            child.kill()
            await child.wait()
    return SoakResult(
        turns=turns,
        conversation_s=turns * 2 * turn_ms / 1000.0,
        wall_s=wall_s,
        client=(client_start, client_end),
        server=(server_start, server_end),
        text_mb=(text_after - text_before) / 1e6,
        responses_kept=responses_kept,
        turns_kept=turns_kept,
    )


def render(r: SoakResult) -> str:
    """The report, as Markdown."""
    hour = 3600.0 / r.conversation_s
    client_heap = r.per_hour("client", "heap_mb")
    beyond_text = client_heap - r.text_mb * hour
    server_heap = r.per_hour("server", "heap_mb")
    lines = [
        f"{r.turns} turns, {r.conversation_s / 60:.1f} min of conversation in "
        f"{r.wall_s:.1f} s wall ({r.conversation_s / r.wall_s:.0f}× real time), speed 0",
        "",
        "| per hour of conversation | heap (tracemalloc) | RSS | target | met |",
        "|---|---|---|---|---|",
        f"| client | {client_heap:+.2f} MB ({beyond_text:+.2f} MB beyond "
        f"{r.text_mb * hour * 1000:.0f} kB of text) | {r.per_hour('client', 'rss_mb'):+.1f} MB "
        f"| ≤ {_CLIENT_TARGET_MB_H:g} MB beyond the text "
        f"| {'yes' if beyond_text <= _CLIENT_TARGET_MB_H else '**no**'} |",
        f"| server | {server_heap:+.2f} MB | {r.per_hour('server', 'rss_mb'):+.1f} MB "
        f"| ≤ {_SERVER_TARGET_MB_H:g} MB "
        f"| {'yes' if server_heap <= _SERVER_TARGET_MB_H else '**no**'} |",
        "",
        f"client heap {r.client[0]['heap_mb']:.1f} → {r.client[1]['heap_mb']:.1f} MB, "
        f"server heap {r.server[0]['heap_mb']:.1f} → {r.server[1]['heap_mb']:.1f} MB; "
        f"responses kept {r.responses_kept}, turn stats kept {r.turns_kept}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the soak and print its report; 1 with ``--check`` when a target is missed."""
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few minutes of conversation")
    parser.add_argument("--hours", type=float, default=1.0, help="conversation length, hours")
    parser.add_argument("--turn-ms", type=int, default=3300, help="user audio per turn, ms")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args(argv)
    if args.serve:
        asyncio.run(_serve())
        return 0
    if args.hours <= 0 or args.turn_ms <= 0:
        parser.error("--hours and --turn-ms must be > 0")
    hours = 0.05 if args.quick else args.hours
    result = asyncio.run(run_soak(hours, args.turn_ms))
    print(render(result), flush=True)
    hour = 3600.0 / result.conversation_s
    missed = (
        result.per_hour("client", "heap_mb") - result.text_mb * hour > _CLIENT_TARGET_MB_H
        or result.per_hour("server", "heap_mb") > _SERVER_TARGET_MB_H
    )
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())

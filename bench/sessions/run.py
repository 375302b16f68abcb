"""Running the benchmark: one level, the search over levels, the whole run."""

from __future__ import annotations

import asyncio
import cProfile
import gc
import io
import math
import os
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from openai import AsyncOpenAI

from realtime_client.audio.resample import Resampler

from .clients import _CLIENTS, _Client, _SdkClient
from .config import (
    _API_KEY,
    _CLOSE_TIMEOUT_S,
    _FRAME_S,
    _LATE_DRAIN_S,
    _OPEN_CONCURRENCY,
    _OPEN_TIMEOUT_S,
    _REPLY_S,
    API_RATE,
    DEVICE_RATE,
    VARIANTS,
    LevelResult,
    RunConfig,
    _Run,
)
from .devices import _Probe, _Window
from .server import _Server

__all__ = ["run_benchmark"]


def _dump_tasks(where: str) -> None:
    """Diagnostics for a level that runs far over its time: where each task waits."""
    print(f"  warning: {where} is overdue; waiting tasks:", file=sys.stderr)
    seen: dict[str, int] = {}
    for task in asyncio.all_tasks():
        frames = task.get_stack(limit=6)
        key = " <- ".join(f"{f.f_code.co_name}:{f.f_lineno}" for f in reversed(frames[-3:]))
        seen[key] = seen.get(key, 0) + 1
    for key, count in sorted(seen.items(), key=lambda kv: -kv[1]):
        print(f"    {count:4d} × {key}", file=sys.stderr)


async def _close_all(clients: list[_Client], variant: str) -> None:
    """Close every client; report (not hang on) any that will not close in time."""
    tasks = [asyncio.ensure_future(c.close()) for c in clients]
    if not tasks:
        return
    done, stuck = await asyncio.wait(tasks, timeout=_CLOSE_TIMEOUT_S)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            print(f"  warning: closing a {variant} session failed: {task.exception()!r}")
    if stuck:
        print(f"  warning: {len(stuck)} {variant} sessions did not close in {_CLOSE_TIMEOUT_S} s")
        for task in stuck:
            task.cancel()


def _core_busy_s(core: int | None) -> float:
    """Seconds a CPU has been busy or stolen by the hypervisor (``/proc/stat``); NaN if unknown."""
    if core is None:
        return math.nan
    try:
        with open("/proc/stat", encoding="ascii") as f:
            for line in f:
                if line.startswith(f"cpu{core} "):
                    v = [int(x) for x in line.split()[1:]]
                    # user nice system idle iowait irq softirq steal: all but idle and iowait.
                    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    return math.nan


def _percentile_ms(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q) * 1000.0) if values else math.nan


async def _run_level(
    variant: str,
    sessions: int,
    server: _Server,
    config: RunConfig,
    openai_client: AsyncOpenAI | None,
    profiler: cProfile.Profile | None = None,
    core: int | None = None,
) -> tuple[LevelResult, bool]:
    window = _Window()
    cls = _CLIENTS[variant]
    clients = [cls(server.urls, _Probe(window), i) for i in range(sessions)]
    for client in clients:
        if isinstance(client, _SdkClient):
            assert openai_client is not None
            client.openai = openai_client
    gate = asyncio.Semaphore(_OPEN_CONCURRENCY)

    async def open_one(client: _Client) -> None:
        async with gate:
            await client.open()
            client.opened = True

    t_open = time.monotonic()
    opened: list[_Client] = []
    try:
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*(open_one(c) for c in clients), return_exceptions=True),
                _OPEN_TIMEOUT_S,
            )
        except asyncio.TimeoutError as exc:
            opened = [c for c in clients if c.opened]
            raise RuntimeError(
                f"{variant}: opening {sessions} sessions took over {_OPEN_TIMEOUT_S} s "
                f"({len(opened)} opened); server: {server.stderr_tail()}"
            ) from exc
        opened = [c for c in clients if c.opened]
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise RuntimeError(
                f"{variant}: {len(failures)} of {sessions} sessions failed to open: "
                f"{failures[0]!r}; server: {server.stderr_tail()}"
            )
        open_s = time.monotonic() - t_open

        start = time.monotonic() + 0.05
        spread = _REPLY_S if config.stagger_turns else 0.0
        for i, client in enumerate(clients):
            client.start(start + (i / sessions) * _FRAME_S, start + (i / sessions) * spread)
        window.start = start + spread + config.warmup_s
        window.end = window.start + config.window_s
        await asyncio.sleep(max(0.0, window.start - time.monotonic()))
        underrun0 = sum(c.speaker.buffer.underrun_ms for c in clients)
        cpu0, srv0, wall0 = time.process_time(), server.cpu_s(), time.monotonic()
        preempt0 = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
        core0 = _core_busy_s(core)
        if profiler is not None:
            profiler.enable()
        await asyncio.sleep(max(0.0, window.end - time.monotonic()))
        if profiler is not None:
            profiler.disable()
        cpu1, srv1, wall1 = time.process_time(), server.cpu_s(), time.monotonic()
        preempt1 = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
        core1 = _core_busy_s(core)
        underrun1 = sum(c.speaker.buffer.underrun_ms for c in clients)
        # Let ticks due inside the window run; those still waiting after the drain count
        # with the lateness they have reached (a lower bound), so overload is not hidden.
        for _ in range(int(_LATE_DRAIN_S / 0.01)):
            if not any(
                c.device is not None and c.device.due(c.device.blocks) < window.end for c in clients
            ):
                break
            await asyncio.sleep(0.01)
        now = time.monotonic()
        for client in clients:
            device = client.device
            if device is None:
                continue
            k = device.blocks
            while device.due(k) < window.end:
                if device.due(k) in window:
                    client.probe.lateness.append(now - device.due(k))
                k += 1
        crashed = [t for c in clients for t in c.tasks if t.done() and not t.cancelled()]
    finally:
        await _close_all(opened, variant)

    if crashed:
        error = crashed[0].exception()
        raise RuntimeError(f"{variant} at {sessions} sessions: a session task ended: {error!r}")
    lateness = [x for c in clients for x in c.probe.lateness]
    send = [x for c in clients for x in c.probe.send_latency]
    recv = [x for c in clients for x in c.probe.recv_latency]
    wall = wall1 - wall0
    session_s = sessions * wall
    audio_frames = sum(c.probe.audio_frames for c in clients)
    p99 = _percentile_ms(lateness, 99)
    result = LevelResult(
        variant=variant,
        sessions=sessions,
        ticks=len(lateness),
        lateness_p50_ms=_percentile_ms(lateness, 50),
        lateness_p99_ms=p99,
        lateness_max_ms=max(lateness) * 1000.0 if lateness else math.nan,
        send_p50_ms=_percentile_ms(send, 50),
        send_p99_ms=_percentile_ms(send, 99),
        recv_p50_ms=_percentile_ms(recv, 50),
        recv_p99_ms=_percentile_ms(recv, 99),
        client_cpu_pct=100.0 * (cpu1 - cpu0) / wall,
        cpu_ms_per_session_s=1000.0 * (cpu1 - cpu0) / session_s,
        server_cpu_pct=100.0 * (srv1 - srv0) / wall,
        audio_in_pct=100.0 * audio_frames / (DEVICE_RATE * config.window_s * sessions),
        underrun_ms_per_session_s=(underrun1 - underrun0) / session_s,
        preempted_per_s=(preempt1 - preempt0) / wall,
        other_load_pct=max(0.0, 100.0 * ((core1 - core0) - (cpu1 - cpu0)) / wall),
        open_s=open_s,
        passed=bool(p99 <= config.max_p99_ms),
    )
    socket_clock = all(c.probe.socket_clock for c in clients)
    return result, socket_clock


def _pick_cores() -> tuple[int | None, int | None]:
    """(client core, server core) from this process's CPU set; None where not possible."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        return cpus[0], cpus[1]
    return cpus[0], cpus[0]


async def _search(run: _Run, server: _Server) -> None:
    config = run.config
    openai_client = (
        AsyncOpenAI(base_url=server.urls.base, api_key=_API_KEY, max_retries=0)
        if "sdk" in config.variants
        else None
    )
    try:
        if config.profile is not None:
            profiler = cProfile.Profile()
            variant = config.variants[0]
            result, clock = await _run_level(
                variant, config.profile, server, config, openai_client, profiler, run.client_core
            )
            run.results.append(result)
            run.arrival_clock = "socket" if clock else "recv() return"
            text = io.StringIO()
            stats = pstats.Stats(profiler, stream=text)
            stats.sort_stats("tottime").print_stats(30)
            stats.sort_stats("cumulative").print_stats(40)
            run.profile_text = text.getvalue()
            return
        alive = [v for v in VARIANTS if v in config.variants]
        best: dict[str, int] = {}
        first_fail: dict[str, int] = {}
        clocks: list[bool] = []
        for n in sorted(config.levels):
            for variant in list(alive):
                result, clock = await _level(variant, n, server, run, openai_client)
                run.results.append(result)
                clocks.append(clock)
                if result.passed:
                    best[variant] = n
                else:
                    first_fail[variant] = n
                    alive.remove(variant)
            if not alive:
                break
        if config.refine:
            for variant in [v for v in VARIANTS if v in first_fail]:
                low, high = best.get(variant, 0), first_fail[variant]
                mid = int(round((low + high) / 2 / 5) * 5)
                if low < mid < high:
                    result, clock = await _level(variant, mid, server, run, openai_client)
                    run.results.append(result)
                    clocks.append(clock)
        run.arrival_clock = "socket" if all(clocks) else "recv() return"
    finally:
        if openai_client is not None:
            await openai_client.close()


async def _level(
    variant: str, n: int, server: _Server, run: _Run, openai_client: AsyncOpenAI | None
) -> tuple[LevelResult, bool]:
    config = run.config
    best: tuple[LevelResult, bool] | None = None
    for attempt in range(2 if config.retry_failed else 1):
        gc.collect()
        # Let the server finish closing the previous level's sessions.
        await asyncio.sleep(0.05 + min(0.3, 0.003 * max(config.levels)))
        result = await _run_level(variant, n, server, config, openai_client, core=run.client_core)
        row = result[0]
        print(
            f"  {variant:>4} N={n:<4} lateness p50 {row.lateness_p50_ms:6.2f} ms  "
            f"p99 {row.lateness_p99_ms:7.2f} ms  client CPU {row.client_cpu_pct:5.1f} %  "
            f"server CPU {row.server_cpu_pct:5.1f} %  other load {row.other_load_pct:5.1f} %  "
            f"{'pass' if row.passed else 'FAIL'}{'  (second run)' if attempt else ''}",
            flush=True,
        )
        if best is None or row.lateness_p99_ms < best[0].lateness_p99_ms:
            best = result
        if row.passed:
            break
    assert best is not None
    return best


def run_benchmark(config: RunConfig) -> tuple[list[LevelResult], dict[str, Any]]:
    """Run the benchmark (starts and stops the local server).

    Args:
        config: Levels, clients, window lengths and the lateness limit.

    Returns:
        The level results in the order they ran, and run facts (cores, clock used for
        arrivals, resampler delays, profile text).
    """
    run = _Run(config)
    run.client_core, run.server_core = _pick_cores()
    saved = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    with tempfile.TemporaryDirectory(prefix="bench-sessions-") as tmp:
        server = _Server(Path(tmp), run.server_core)
        try:
            if run.client_core is not None:
                os.sched_setaffinity(0, {run.client_core})
            asyncio.run(_search(run, server))
        finally:
            if saved is not None:
                os.sched_setaffinity(0, saved)
            server.close()
    facts = {
        "client_core": run.client_core,
        "server_core": run.server_core,
        "arrival_clock": run.arrival_clock,
        "down_delay_ms": Resampler(DEVICE_RATE, API_RATE).delay_ms,
        "up_delay_ms": Resampler(API_RATE, DEVICE_RATE).delay_ms,
        "profile": run.profile_text,
    }
    return run.results, facts

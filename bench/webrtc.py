"""WebRTC mouth-to-ear on loopback: our receiver settings vs aiortc's defaults, with loss.

Run with ``python -m bench.webrtc`` (needs the ``webrtc`` extra). Two aiortc peers in one
process talk Opus over loopback, as our client and a call server do. Each side sends a
loud 20 ms click every 200 ms on a :class:`~realtime_client._rtc.PcmTrack` (paced in real
time); the other side decodes and finds it. Mouth-to-ear is the time from the click being
handed to the encoder to the decoded frame coming out of the receiving track, both on
one ``perf_counter``, in each direction.

Configurations, measured in the same run:

- ``aiortc default``: the receiver's own jitter buffer (4 frames, 80 ms), aiortc's codec;
- ``ours 40 ms``: the WebRTC transport's default for a remote server;
- ``ours 20 ms``: its default for a server on this machine (one frame, the minimum);

each on a clean link and with random packet loss (RTP packets dropped on send); "ours"
with our Opus path (:class:`~realtime_client._rtc.OpusEncoder`,
:func:`~realtime_client._rtc.decode_inline`). Printed per configuration: p50 / p95 / max
mouth-to-ear in ms per direction, clicks lost, and the ratio of our p50 to aiortc's
default. One run (load average ~2.5 on 2 cores): clean link, p50 81 / 41 / 21 ms (0.50x,
0.26x); with 5 % loss all three near 82 ms (aiortc's jitter buffer waits out the gap).

Then sessions per core: N calls at once, both ends in this process (pin it with
``taskset -c 1``), each end sending a real-time speech-like Opus track and timing what it
receives, with aiortc's codec (stereo 96 kb/s; the encoder in a thread pool, the decoder
in a thread per receiver) and with ours (mono 32 kb/s CELT low-delay, complexity 5, both
in the event loop's thread), in the same run. Printed per level: p99 frame lateness
against a steady 20 ms cadence, CPU per call end per second of audio (what one client
session costs) and its ratio to aiortc's codec, frames delivered; then the most call ends
per core whose level, and every level below it, kept p99 lateness within 20 ms.

Four runs pinned to one core shared with other work (load average 1.4–2.5 on 2 cores):
CPU per end-second, ours 11.8–21 ms against aiortc's 33–48 ms (0.32–0.44x, same run and
level); sessions per core (p99 <= 20 ms) ours 30, 30, 36 and 44 call ends (single levels
failed on other processes' interference: one run's 18 calls reached 21 ms, another's 132
ms while 25 calls passed), aiortc 12–16. Before our codec path the same measure gave
about 12 call ends and 50–63 ms
per end-second (unpinned). What remains is aiortc's per-packet Python (RTP objects, SRTP,
the ICE and DTLS layers) and asyncio's scheduling, about 70 % of an end's CPU, with the
Opus encoder (~65 µs a frame on speech) and decoder (~20 µs) the rest. The WebSocket
path costs 8–12 ms per session-second (``bench.sessions``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Result", "main", "measure"]

CLICK_EVERY_S = 0.2
CLICK_LEVEL = 20_000


@dataclass
class Result:
    """One configuration's figures."""

    name: str
    jitter_frames: int | None
    loss: float
    up_ms: list[float] = field(default_factory=list)
    down_ms: list[float] = field(default_factory=list)
    sent: int = 0

    def summary(self, values: list[float]) -> str:
        if not values:
            return "       -        -        -"
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        return f"{statistics.median(ordered):8.1f} {p95:8.1f} {ordered[-1]:8.1f}"

    @property
    def lost(self) -> int:
        return max(0, self.sent - len(self.up_ms)) + max(0, self.sent - len(self.down_ms))


class _Clicker:
    """Pushes a click every ``CLICK_EVERY_S`` into a track and notes when it is handed out."""

    def __init__(self) -> None:
        self.handed: list[float] = []
        self.count = 0

    def on_frame(self, samples: Any, audible: bool) -> None:
        if audible and int(np.abs(samples).max()) >= CLICK_LEVEL:
            self.handed.append(time.perf_counter())

    async def run(self, track: Any, seconds: float) -> None:
        from realtime_client._rtc import FRAME

        click = np.full(FRAME, CLICK_LEVEL, np.int16)
        click[1::2] = -CLICK_LEVEL  # a loud, wide-band burst Opus keeps loud
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            track.push(click)
            self.count += 1
            await asyncio.sleep(CLICK_EVERY_S)


async def _listen(track: Any, heard: list[float], stop: asyncio.Event) -> None:
    from realtime_client._rtc import frame_to_mono

    loud = False
    while not stop.is_set():
        try:
            frame = await asyncio.wait_for(track.recv(), 1.0)
        except Exception:
            return
        level = int(np.abs(frame_to_mono(frame)).max())
        if level >= CLICK_LEVEL // 4 and not loud:
            heard.append(time.perf_counter())
        loud = level >= CLICK_LEVEL // 4


def _pair(handed: list[float], heard: list[float]) -> list[float]:
    """Mouth-to-ear per click: each heard time against the latest click handed before it."""
    out = []
    for t in heard:
        before = [h for h in handed if h <= t]
        if before and t - before[-1] < CLICK_EVERY_S:
            out.append((t - before[-1]) * 1000)
    return out


def _lossy(loss: float, rng: random.Random) -> Callable[[Any], Any]:
    """A ``_send_rtp`` that drops a share of RTP (not RTCP) packets."""
    from aiortc.rtcdtlstransport import RTCDtlsTransport
    from aiortc.rtp import is_rtcp

    original = RTCDtlsTransport._send_rtp

    async def send(self: Any, data: bytes) -> None:
        if loss and not is_rtcp(data) and rng.random() < loss:
            return
        await original(self, data)

    return send  # type: ignore[return-value]


async def measure(name: str, jitter_frames: int | None, loss: float, seconds: float) -> Result:
    """One configuration: two peers, clicks both ways for ``seconds``."""
    from aiortc import RTCConfiguration, RTCPeerConnection
    from aiortc.rtcdtlstransport import RTCDtlsTransport

    from realtime_client._rtc import (
        PcmTrack,
        decode_inline,
        ensure_host_candidates,
        set_jitter_buffer,
    )

    ensure_host_candidates()
    result = Result(name, jitter_frames, loss)
    clickers = (_Clicker(), _Clicker())
    own = jitter_frames is not None  # "aiortc default": its codec too; ours: our Opus path
    tracks = (
        PcmTrack(on_frame=clickers[0].on_frame, own_codec=own),
        PcmTrack(on_frame=clickers[1].on_frame, own_codec=own),
    )
    heard: tuple[list[float], list[float]] = ([], [])
    stop = asyncio.Event()
    pcs = (
        RTCPeerConnection(RTCConfiguration(iceServers=[])),
        RTCPeerConnection(RTCConfiguration(iceServers=[])),
    )
    listeners: list[asyncio.Task[None]] = []
    for index, pc in enumerate(pcs):
        pc.addTrack(tracks[index])

        def on_track(remote: Any, pc: Any = pc, index: int = index) -> None:
            if jitter_frames is not None:
                for receiver in pc.getReceivers():
                    if receiver.track is remote:
                        set_jitter_buffer(receiver, jitter_frames)
                        decode_inline(receiver)
            listeners.append(asyncio.ensure_future(_listen(remote, heard[index], stop)))

        pc.on("track", on_track)
    original = RTCDtlsTransport._send_rtp
    RTCDtlsTransport._send_rtp = _lossy(loss, random.Random(7))  # type: ignore[method-assign,assignment]
    try:
        await pcs[0].setLocalDescription(await pcs[0].createOffer())
        await pcs[1].setRemoteDescription(pcs[0].localDescription)
        await pcs[1].setLocalDescription(await pcs[1].createAnswer())
        await pcs[0].setRemoteDescription(pcs[1].localDescription)
        deadline = time.perf_counter() + 10
        while not all(pc.connectionState == "connected" for pc in pcs):
            if time.perf_counter() > deadline:
                raise RuntimeError("the peers did not connect")
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)  # let the receivers settle
        await asyncio.gather(*(c.run(t, seconds) for c, t in zip(clickers, tracks, strict=True)))
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        RTCDtlsTransport._send_rtp = original  # type: ignore[method-assign]
        for pc in pcs:
            await pc.close()
        for task in listeners:
            task.cancel()
    result.sent = clickers[0].count
    result.up_ms = _pair(clickers[0].handed, heard[1])  # peer 0 (client) -> peer 1 (server)
    result.down_ms = _pair(clickers[1].handed, heard[0])
    return result


CONFIGS: list[tuple[str, int | None]] = [
    ("aiortc default (80 ms)", None),
    ("ours 40 ms (remote default)", 2),
    ("ours 20 ms (loopback default)", 1),
]


async def _run(seconds: float, losses: list[float]) -> list[Result]:
    results = []
    for loss in losses:
        for name, frames in CONFIGS:
            results.append(await measure(name, frames, loss, seconds))
    return results


def render(results: list[Result]) -> str:
    """The table, with our p50 as a ratio of aiortc's default at the same loss."""
    lines = [
        "| configuration | loss | up p50 / p95 / max ms | down p50 / p95 / max ms | lost | "
        "p50 vs aiortc |",
        "|---|---|---|---|---|---|",
    ]
    baseline: dict[float, float] = {}
    for r in results:
        p50 = statistics.median(r.up_ms + r.down_ms) if r.up_ms or r.down_ms else float("nan")
        if r.jitter_frames is None:
            baseline[r.loss] = p50
        ratio = p50 / baseline[r.loss] if baseline.get(r.loss) else float("nan")
        lines.append(
            f"| {r.name} | {r.loss:.0%} | {r.summary(r.up_ms)} | {r.summary(r.down_ms)} | "
            f"{r.lost}/{2 * r.sent} | {ratio:.2f}x |"
        )
    return "\n".join(lines)


# --- sessions per core --------------------------------------------------------------------


@dataclass
class Level:
    """One sessions-per-core level: N calls at once, both ends in this process."""

    sessions: int
    seconds: float
    own_codec: bool = True
    cpu_s: float = 0.0
    lateness_ms: list[float] = field(default_factory=list)
    frames: int = 0
    #: Ends that received their first frame (all of them, or the level is not valid).
    ends_started: int = 0
    all_started: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def delivered(self) -> float:
        """Frames received over those due (2 ends x 50 a second); ≈ 1 unless saturated."""
        return self.frames / (2 * self.sessions * self.seconds * 50)

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.lateness_ms)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0.0

    @property
    def saturated(self) -> bool:
        """The level used (nearly) a whole core or fell behind: its CPU figure is capped."""
        return self.cpu_s >= 0.9 * self.seconds or self.delivered < 0.97

    @property
    def cpu_ms_per_end_second(self) -> float:
        """CPU per call end per second of audio, in ms (each call has two ends here)."""
        return self.cpu_s * 1000 / (2 * self.sessions * self.seconds)


def speech_like(rate: int, seconds: float = 1.0) -> Any:
    """A second of a speech-like signal (int16): a voiced tone with formant-ish partials,
    syllable-rate loudness and noise.

    Opus codes it as speech (in VoIP mode its SILK / hybrid paths, several times the CPU
    of a pure tone), so the CPU figures are what a talking session costs.
    """
    t = np.arange(int(rate * seconds)) / rate
    rng = np.random.default_rng(7)
    voiced = 3000 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 4 * t))
    formant = 1500 * np.sin(2 * np.pi * 900 * t + np.sin(2 * np.pi * 5 * t))
    return (voiced + formant + rng.normal(0, 400, len(t))).astype(np.int16)


async def _call_pair(level: Level, stop: asyncio.Event, ready: list[int]) -> list[Any]:
    """Two peers: each sends a real-time speech-like track and times what it receives."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    from realtime_client._rtc import (
        FRAME,
        RATE,
        PcmTrack,
        decode_inline,
        frame_to_mono,
        set_jitter_buffer,
    )

    pcs = [RTCPeerConnection(RTCConfiguration(iceServers=[])) for _ in range(2)]
    voice = speech_like(RATE)
    frames = [voice[i : i + FRAME] for i in range(0, len(voice), FRAME)]
    tracks = [PcmTrack(own_codec=level.own_codec), PcmTrack(own_codec=level.own_codec)]

    async def feed(track: PcmTrack) -> None:
        pushed = 0
        while not stop.is_set():
            while track.backlog_ms < 60:
                track.push(frames[pushed % len(frames)])
                pushed += 1
            await asyncio.sleep(0.02)

    async def pull(remote: Any) -> None:
        first: float | None = None
        count = 0
        while not stop.is_set():
            try:
                frame = await remote.recv()  # as the client's downlink does: no timeout
            except Exception:
                return
            frame_to_mono(frame)  # what the client does with each frame
            now = time.perf_counter()
            if first is None:
                first = now
                level.ends_started += 1
                if level.ends_started == 2 * level.sessions:
                    level.all_started.set()
            else:
                count += 1
                # How late this frame is against a steady 20 ms cadence from the first.
                level.lateness_ms.append(max(0.0, (now - first - count * 0.02) * 1000))
            level.frames += 1

    tasks: list[Any] = []
    for index, pc in enumerate(pcs):
        pc.addTrack(tracks[index])

        def on_track(remote: Any, pc: Any = pc) -> None:
            for receiver in pc.getReceivers():
                if receiver.track is remote:
                    set_jitter_buffer(receiver, 2)
                    if level.own_codec:
                        decode_inline(receiver)
            tasks.append(asyncio.ensure_future(pull(remote)))

        pc.on("track", on_track)
    await pcs[0].setLocalDescription(await pcs[0].createOffer())
    await pcs[1].setRemoteDescription(pcs[0].localDescription)
    await pcs[1].setLocalDescription(await pcs[1].createAnswer())
    await pcs[0].setRemoteDescription(pcs[1].localDescription)
    tasks += [asyncio.ensure_future(feed(t)) for t in tracks]
    ready.append(1)
    return [*pcs, *tasks]


async def measure_sessions(sessions: int, seconds: float, own_codec: bool = True) -> Level:
    """Run ``sessions`` calls (both ends here) for ``seconds``; lateness and CPU.

    ``own_codec``: our Opus encoder and inline decoder (what the client and the local
    server use), else aiortc's (stereo 96 kb/s, encoder and decoder in threads).
    """
    from realtime_client._rtc import ensure_host_candidates

    ensure_host_candidates()
    level = Level(sessions, seconds, own_codec)
    stop = asyncio.Event()
    ready: list[int] = []
    parts = await asyncio.gather(*(_call_pair(level, stop, ready) for _ in range(sessions)))
    # Every end connected and hearing the other, then settle; then measure from a clean slate.
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(level.all_started.wait(), 5 + 0.5 * sessions)
    await asyncio.sleep(1.0)
    level.lateness_ms.clear()
    level.frames = 0
    cpu0 = time.process_time()
    await asyncio.sleep(seconds)
    level.cpu_s = time.process_time() - cpu0
    stop.set()
    for part in parts:
        for thing in part:
            if hasattr(thing, "close"):
                await thing.close()
            else:
                thing.cancel()
    return level


def render_sessions(levels: list[Level]) -> str:
    """One row per level; CPU as a ratio of aiortc's codec at the same level, where it ran
    and neither level saturated the core (a saturated level's CPU figure is capped)."""
    lines = [
        "| codec | calls (x2 ends) | ends live | p99 frame lateness ms | "
        "CPU ms per end-second | CPU vs aiortc | frames delivered |",
        "|---|---|---|---|---|---|---|",
    ]
    baseline = {lv.sessions: lv for lv in levels if not lv.own_codec}
    for lv in levels:
        base = baseline.get(lv.sessions)
        ratio = "-"
        if base is not None and (base.saturated or lv.saturated):
            ratio = "saturated"
        elif base is not None:
            ratio = f"{lv.cpu_ms_per_end_second / base.cpu_ms_per_end_second:.2f}x"
        lines.append(
            f"| {'ours' if lv.own_codec else 'aiortc'} | {lv.sessions} | {lv.ends_started} | "
            f"{lv.p99_ms:.1f} | {lv.cpu_ms_per_end_second:.2f} | {ratio} | "
            f"{lv.delivered:.0%} |"
        )
    return "\n".join(lines)


def sessions_per_core(levels: list[Level], p99_limit_ms: float = 20.0) -> str:
    """Per codec, the most call ends of a level that, with every level below it, ran with
    every end live, all frames delivered and p99 lateness within ``p99_limit_ms`` (a lower
    bound: levels are coarse)."""
    parts = []
    for own, name in ((True, "ours"), (False, "aiortc")):
        mine = sorted((lv for lv in levels if lv.own_codec is own), key=lambda lv: lv.sessions)
        best = 0
        for lv in mine:
            if not (
                lv.ends_started == 2 * lv.sessions
                and lv.delivered >= 0.97
                and lv.p99_ms <= p99_limit_ms
            ):
                break
            best = 2 * lv.sessions
        if mine:
            parts.append(f"{name} {best}")
    return f"sessions (call ends) per core with p99 lateness <= {p99_limit_ms:.0f} ms: " + (
        ", ".join(parts)
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.webrtc", description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0, help="clicks per configuration")
    parser.add_argument("--loss", type=float, action="append", help="packet loss (0..1)")
    parser.add_argument("--quick", action="store_true", help="2 s, clean link only")
    parser.add_argument(
        "--sessions",
        type=int,
        action="append",
        help="sessions-per-core levels to run (calls at once, both ends here; "
        "default 4 8 12 15 18 with our codec, up to 8 with aiortc's)",
    )
    parser.add_argument(
        "--session-seconds", type=float, default=6.0, help="measured seconds per level"
    )
    parser.add_argument(
        "--no-latency", action="store_true", help="only the sessions-per-core levels"
    )
    args = parser.parse_args(argv)
    try:
        import aiortc  # noqa: F401
    except ImportError:
        print("bench.webrtc needs the webrtc extra: pip install 'realtime-client[webrtc]'")
        return 0
    seconds = 2.0 if args.quick else args.seconds
    losses = [0.0] if args.quick else (args.loss or [0.0, 0.05])
    if not args.no_latency:
        print(render(asyncio.run(_run(seconds, losses))))
    levels = [] if args.quick else (args.sessions or [4, 8, 12, 15, 18])
    # aiortc's codec saturates a core sooner: by default it runs up to 8 calls only.
    runs = [(n, own) for n in levels for own in (False, True) if own or args.sessions or n <= 8]
    measured = [asyncio.run(measure_sessions(n, args.session_seconds, own)) for n, own in runs]
    if measured:
        print()
        print(render_sessions(measured))
        print()
        print(sessions_per_core(measured))
        # Lateness depends on what else runs on the core: say how busy the machine was.
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"load average after the run (1, 5, 15 min): {load} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

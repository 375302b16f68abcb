"""What a run does and what it measures: constants, RunConfig, LevelResult."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "API_RATE",
    "BARE_REFERENCE_SESSIONS",
    "DEVICE_RATE",
    "FRAME_MS",
    "LATENCY_AT_SESSIONS",
    "QUICK",
    "TARGET_LATENCY_P99_MS",
    "TARGET_RATIO",
    "TARGET_SESSIONS",
    "VARIANTS",
    "LevelResult",
    "RunConfig",
]

DEVICE_RATE = 48_000
"""Sample rate of the simulated device, in Hz."""
API_RATE = 24_000
"""Sample rate of the Realtime API's PCM16 audio, in Hz."""
FRAME_MS = 20
"""Capture and playback block length, in ms."""
VARIANTS = ("ours", "bare", "sdk")
"""The clients, in the order they run at each level."""
TARGET_SESSIONS = 150
"""Sessions per core ours must hold (issue 5), where the bare loop holds about 200."""
BARE_REFERENCE_SESSIONS = 200
"""What the bare loop held on the machine where :data:`TARGET_SESSIONS` was set."""
TARGET_RATIO = TARGET_SESSIONS / BARE_REFERENCE_SESSIONS
"""The sessions target as the ratio it is checked by: ours / bare in the same run (0.75)."""
TARGET_LATENCY_P99_MS = 2.0
"""Client-added latency (each direction) ours must keep at p99, in ms."""
LATENCY_AT_SESSIONS = 25
"""Load at which the latency target is checked: the client's own delay, not the queueing
of a saturated core (at the largest N, p99 lateness is up to the 10 ms limit by design)."""

_FRAME_S = FRAME_MS / 1000.0
_DEVICE_BLOCK = DEVICE_RATE * FRAME_MS // 1000
_MODEL = "gpt-realtime"
_API_KEY = "bench-local-key"
_REPLY_S = 5.0
_APPEND_HEAD = b'{"type":"input_audio_buffer.append","audio":"'
_SESSION_CONFIG: dict[str, Any] = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
_OPEN_CONCURRENCY = 32
_LATE_DRAIN_S = 1.0
_SERVER_START_S = 30.0
_OPEN_TIMEOUT_S = 60.0
_CLOSE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RunConfig:
    """What one run does.

    Attributes:
        levels: Session counts to try, ascending.
        variants: Clients to run (subset of :data:`VARIANTS`).
        window_s: Measured window per level, in seconds.
        warmup_s: Time each level runs before the window opens, in seconds.
        max_p99_ms: A level passes when its p99 frame lateness is at most this, in ms.
        refine: After the upward search, try one level half-way between each client's
            last pass and first failure.
        retry_failed: Run a failing level once more and keep the better run: noise from
            the machine (other tenants, the hypervisor) only ever adds lateness, so the
            better of two runs is the fairer estimate, for every client alike.
        stagger_turns: Start session ``i`` of ``N``'s first response ``i / N`` of a reply
            later, so turn boundaries are spread as independent calls spread them (the
            window then opens one reply later, when every session is answering). False:
            every session changes turn in the same 20 ms, a worst case.
        profile: When set, profile the first client of ``variants`` at this many sessions
            (instead of the search).
    """

    levels: tuple[int, ...] = (10, 25, 50, 75, 100, 150, 200, 250, 300)
    variants: tuple[str, ...] = VARIANTS
    window_s: float = 6.0
    warmup_s: float = 1.0
    max_p99_ms: float = 10.0
    refine: bool = True
    retry_failed: bool = True
    stagger_turns: bool = True
    profile: int | None = None

    def __post_init__(self) -> None:
        if not self.levels or any(n <= 0 for n in self.levels):
            raise ValueError(f"levels must be positive session counts, got {self.levels!r}")
        unknown = set(self.variants) - set(VARIANTS)
        if unknown or not self.variants:
            raise ValueError(f"variants must be among {VARIANTS}, got {self.variants!r}")
        for name in ("window_s", "warmup_s", "max_p99_ms"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0 or (name == "window_s" and value == 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if self.profile is not None and self.profile <= 0:
            raise ValueError(f"profile must be a positive session count, got {self.profile!r}")


QUICK = RunConfig(
    levels=(4, 8),
    window_s=0.4,
    warmup_s=0.2,
    refine=False,
    retry_failed=False,
    stagger_turns=False,
)
"""The ``--quick`` configuration: a smoke run of a few seconds."""


@dataclass
class LevelResult:
    """One client at one session count.

    Attributes:
        variant: ``ours``, ``bare`` or ``sdk``.
        sessions: Concurrent sessions.
        ticks: 20 ms device ticks measured.
        lateness_p50_ms: Median frame lateness, in ms.
        lateness_p99_ms: 99th percentile frame lateness, in ms.
        lateness_max_ms: Worst frame lateness, in ms.
        send_p50_ms: Capture block's last sample → append handed to the socket, median, ms.
        send_p99_ms: The same, 99th percentile, in ms.
        recv_p50_ms: Delta arrival at the socket → samples in the PlaybackBuffer, median, ms.
        recv_p99_ms: The same, 99th percentile, in ms.
        client_cpu_pct: This process's CPU use over the window, in % of one core.
        cpu_ms_per_session_s: Client CPU per session-second of full-duplex audio, in ms.
        server_cpu_pct: The server process's CPU use over the window, in % of one core.
        audio_in_pct: Output audio written to the speakers, in % of real time.
        underrun_ms_per_session_s: Playback underrun silence, ms per session-second.
        preempted_per_s: Times per second this process was preempted (involuntary context
            switches): other load on the client's core, which shows up as lateness.
        other_load_pct: CPU use of everything else on the client's core (other processes,
            interrupts, and time the hypervisor took: steal), in % of that core.
        open_s: Time to open all sessions, in seconds.
        passed: Whether p99 lateness stayed within the limit.
    """

    variant: str
    sessions: int
    ticks: int
    lateness_p50_ms: float
    lateness_p99_ms: float
    lateness_max_ms: float
    send_p50_ms: float
    send_p99_ms: float
    recv_p50_ms: float
    recv_p99_ms: float
    client_cpu_pct: float
    cpu_ms_per_session_s: float
    server_cpu_pct: float
    audio_in_pct: float
    underrun_ms_per_session_s: float
    preempted_per_s: float
    other_load_pct: float
    open_s: float
    passed: bool


@dataclass
class _Run:
    config: RunConfig
    results: list[LevelResult] = field(default_factory=list)
    client_core: int | None = None
    server_core: int | None = None
    arrival_clock: str = "socket"
    profile_text: str = ""

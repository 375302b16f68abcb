"""The restore plan: re-creating a conversation on a new server session, as data.

After a reconnect the server's conversation is empty. :meth:`RealtimeProtocol.restore_plan
<realtime_client.protocol.RealtimeProtocol.restore_plan>` says what to send (one
``conversation.item.create`` per restorable item, same ids, in order); the shell sends
them all (pipelined), waits for the answers in order, and hands them back to
:meth:`RestorePlan.finish`, which decides what the local conversation becomes and which ids
the server changed. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import events as ev
from ..errors import InvalidStateError, LocalProtocolError
from .state import ConversationSnapshot, ItemState

if TYPE_CHECKING:
    from .core import RealtimeProtocol

__all__ = ["RestorePlan", "restorable"]


def restorable(item: ItemState) -> dict[str, Any] | None:
    """An item as something ``conversation.item.create`` accepts again (``None``: skip it).

    Assistant audio comes back as its transcript (the heard share of it when the item was
    truncated); user audio as its input transcript; function calls and outputs as they
    were. Items with nothing to say are skipped.
    """
    if item.type == "message":
        if item.role == "assistant":
            text = item.text
            # The transcript covers all the audio received, not only what was kept.
            audio_ms = item.untruncated_audio_ms or item.audio_ms
            if item.truncated_at_ms is not None and audio_ms > 0:
                # The service dropped the unheard part: keep the heard share of the words.
                text = text[: int(len(text) * min(1.0, item.truncated_at_ms / audio_ms))]
            if not text:
                return None
            return {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text}],
            }
        parts = []
        for part in item.parts:
            if part.type == "input_audio":
                text = item.input_transcript or part.transcript
                if text:
                    parts.append({"type": "input_text", "text": text})
            elif part.text:
                parts.append({"type": "input_text", "text": part.text})
        if not parts:
            return None
        return {"type": "message", "role": item.role or "user", "content": parts}
    if item.type == "function_call":
        return {
            "type": "function_call",
            "call_id": item.call_id,
            "name": item.name,
            "arguments": item.arguments,
        }
    if item.type == "function_call_output":
        return {
            "type": "function_call_output",
            "call_id": item.call_id,
            "output": item.output or "",
        }
    return None


@dataclass
class RestorePlan:
    """The creates that rebuild the conversation, and how their answers are taken.

    Attributes:
        creates: ``(item id, conversation.item.create)`` in conversation order. Each is
            registered with the protocol so that its answer (or error) settles it first in,
            first out, not by id: the server may give an item another id.
        skipped: ``(item id, why)`` for items that could not be planned.
    """

    protocol: RealtimeProtocol
    creates: list[tuple[str, ev.ConversationItemCreate]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    _saved: ConversationSnapshot | None = None

    def begin(self) -> None:
        """Take the planned items out of the local conversation before sending.

        So it mirrors the server's (empty) one while the answers arrive: a server that
        numbers its own items may give one item another's old id.
        """
        conversation = self.protocol.conversation
        self._saved = conversation.snapshot()
        for item_id, _ in self.creates:
            conversation.remove(item_id)

    def abort(self) -> None:
        """The restore failed: put the local conversation back as it was (for a retry).

        Creates still waiting for an answer stop waiting (they would otherwise take the
        next item answer of the new connection as theirs).
        """
        for _, event in self.creates:
            self.protocol.forget(event.event_id or "")
        if self._saved is not None:
            self.protocol.conversation.restore(self._saved)
            self._saved = None

    def finish(self, answers: list[tuple[str, str | None]]) -> int:
        """Take the answers; returns how many items the server holds again.

        Args:
            answers: ``(item id, the id the server answered with)`` in plan order;
                ``None`` where the server refused the item.

        An item kept under its id gets its local state back (audio received,
        transcripts); one with a new id keeps the server's copy (text where the audio
        was) and the change goes into :attr:`RealtimeProtocol.item_id_map`, as does a
        refused item (``None``), which stays in the local conversation in its place so
        nothing the user said is lost and the next restore tries it again.
        """
        if self._saved is None:
            raise InvalidStateError("RestorePlan.finish() before begin()")
        saved = self._saved.items
        conversation = self.protocol.conversation
        count = 0
        previous: str | None = None  # where a refused item goes back, locally
        for item_id, new_id in answers:
            if new_id == item_id:
                conversation.items[item_id] = saved[item_id]
            elif new_id is None and item_id not in conversation:
                conversation.insert(saved[item_id], after=previous)
            self.protocol.map_item_id(item_id, new_id)
            count += new_id is not None
            previous = new_id or item_id
        for item_id, _why in self.skipped:
            self.protocol.map_item_id(item_id, None)
        # An id the server uses now means that item, not an old one it replaced.
        self.protocol.forget_item_ids({new_id for _, new_id in answers if new_id is not None})
        self._saved = None
        return count


def plan_restore(protocol: RealtimeProtocol) -> RestorePlan:
    """Build the plan for :meth:`RealtimeProtocol.restore_plan`."""
    plan = RestorePlan(protocol)
    for item in protocol.conversation:
        if not item.in_conversation:
            continue
        wire = restorable(item)
        if wire is None:
            # Nothing to say again (a reply cut before any transcript): the new server
            # session will not have it; the id map says so, so helpers refuse it clearly.
            plan.skipped.append((item.id, "nothing to re-create (no text or transcript)"))
            continue
        try:
            event = protocol.build_item_create(wire, item_id=item.id, match_in_order=True)
        except LocalProtocolError as exc:
            plan.skipped.append((item.id, str(exc)))
            continue
        plan.creates.append((item.id, event))
    return plan

"""The conversation: items in order, their audio, and the client events that edit them.

Items are kept as GA wire dicts (no ``object``; assistant parts ``output_text`` /
``output_audio``); a committed or created audio item keeps its audio aside, as 24 kHz
PCM16, since events never carry it except ``conversation.item.retrieved``. Only the audio
of the last items is kept (:class:`AudioStore`): a long conversation must not keep an
hour of audio for a retrieve or truncate that only ever concerns the last few items.
Items themselves are kept up to a count and a size of text (``items_kept``,
``text_kept_chars``); past either the oldest are forgotten, as the service's
``truncation: "auto"`` drops them from the model's context.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any, Protocol

import numpy as np
import orjson
import pybase64

from ._audio import decode, encode_whole, to_model_rate
from ._common import MODEL_RATE, Int16Array, SessionHost, cut_transcript
from .validation import ValidationError

__all__ = ["AudioStore", "Conversation", "LiveAudio"]

_AUDIO_PARTS = ("input_audio", "output_audio")


class LiveAudio(Protocol):
    """An assistant audio item still streaming (a truncate may cut it live)."""

    item: dict[str, Any]
    audio_samples_sent: int
    cut_ms: int | None


class AudioStore(dict[str, Int16Array]):
    """24 kHz PCM16 of audio items by item id, for the last items only.

    Storing an item's audio (``store[item_id] = samples``) makes it the newest; then the
    oldest items' audio is dropped until at most ``max_items`` items and ``max_ms`` of
    audio are kept (the newest item's audio is always kept, however long). The length of
    every item's audio stays known (:attr:`audio_ms`) after its samples are dropped:
    usage counts it, and a retrieve or truncate of that item is refused as
    :meth:`evicted`.

    Args:
        max_items: Most audio items whose samples are kept (>= 1).
        max_ms: Most audio kept over all items, in ms (> 0).

    Raises:
        ValueError: A cap is out of range.
    """

    def __init__(self, max_items: int = 64, max_ms: float = 300_000.0) -> None:
        super().__init__()
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items}")
        if not max_ms > 0:
            raise ValueError(f"max_ms must be > 0, got {max_ms}")
        self.max_items = max_items
        self.max_ms = max_ms
        #: Audio length of every item that had audio (kept or dropped), in ms.
        self.audio_ms: dict[str, float] = {}
        self._samples = 0

    def __setitem__(self, item_id: str, audio: Int16Array) -> None:
        old = super().pop(item_id, None)
        if old is not None:
            self._samples -= old.size
        super().__setitem__(item_id, audio)  # last in insertion order: the newest
        self._samples += audio.size
        self.audio_ms[item_id] = audio.size * 1000.0 / MODEL_RATE
        max_samples = self.max_ms * MODEL_RATE / 1000.0
        while len(self) > 1 and (len(self) > self.max_items or self._samples > max_samples):
            oldest = next(iter(self))
            self._samples -= super().pop(oldest).size

    def __delitem__(self, item_id: str) -> None:
        self.pop(item_id)

    def pop(self, item_id: str, default: Any = None) -> Any:
        """Forget an item's audio (its samples and its length); ``default`` if it had none."""
        self.audio_ms.pop(item_id, None)
        if not super().__contains__(item_id):
            return default
        audio = super().pop(item_id)
        self._samples -= audio.size
        return audio

    def evicted(self, item_id: str) -> bool:
        """Whether the item had audio whose samples were dropped to keep within the caps."""
        return item_id in self.audio_ms and not super().__contains__(item_id)

    @property
    def kept_ms(self) -> float:
        """Audio kept over all items, in ms."""
        return self._samples * 1000.0 / MODEL_RATE


class Conversation:
    """The default conversation of one session.

    Args:
        host: The session (events, errors, ids, audio formats).
        audio_items_kept: Most audio items whose audio is kept (see :class:`AudioStore`).
        audio_kept_ms: Most audio kept over all items, in ms.
        items_kept: Most items kept (the oldest are forgotten past it).
        text_kept_chars: Most characters of item JSON kept (the newest item always stays).
    """

    def __init__(
        self,
        host: SessionHost,
        *,
        audio_items_kept: int = 64,
        audio_kept_ms: float = 300_000.0,
        items_kept: int = 4096,
        text_kept_chars: int = 32 * 1024 * 1024,
    ) -> None:
        self.host = host
        #: Items by id.
        self.items: dict[str, dict[str, Any]] = {}
        #: Item ids, in conversation order.
        self.order: list[str] = []
        #: 24 kHz PCM16 of the last audio items, by item id.
        self.item_audio = AudioStore(audio_items_kept, audio_kept_ms)
        #: Function name of each call id.
        self.call_names: dict[str, str] = {}
        #: Assistant audio items still streaming, by item id.
        self.live_audio: dict[str, LiveAudio] = {}
        self.items_kept = items_kept
        self.text_kept_chars = text_kept_chars
        #: Each item's size (characters of its JSON) when last measured, and their sum.
        self._sizes: dict[str, int] = {}
        self.text_chars = 0
        #: Ids of items forgotten by the caps (the last few thousand), to say so.
        self._forgotten: OrderedDict[str, None] = OrderedDict()

    @property
    def last_id(self) -> str | None:
        """The id of the last item, if any."""
        return self.order[-1] if self.order else None

    def new_item(self, item_id: str, type_: str, **fields: Any) -> dict[str, Any]:
        """An item dict in the real key order (``status`` defaults to completed)."""
        item: dict[str, Any] = {"id": item_id, "type": type_}
        item["status"] = fields.pop("status", "completed")
        item.update(fields)
        return item

    def insert(self, item: dict[str, Any], previous: str | None) -> None:
        """Insert ``item`` after ``previous`` (``None``: at the end; ``"root"``: first)."""
        item_id = item["id"]
        self._remeasure_recent()  # items still streaming grew since they were measured
        self.items[item_id] = item
        self._measure(item_id)
        if previous is None:
            self.order.append(item_id)
        elif previous == "root":
            self.order.insert(0, item_id)
        else:
            self.order.insert(self.order.index(previous) + 1, item_id)
        if item.get("type") == "function_call" and item.get("call_id"):
            self.call_names[item["call_id"]] = item.get("name", "")
        self._forget_oldest()

    def settle(self, item: dict[str, Any]) -> None:
        """A streamed item is done: it replaces its earlier self and counts at its size."""
        self.items[item["id"]] = item
        self._measure(item["id"])
        self._forget_oldest()

    # --- the caps ---------------------------------------------------------------------------

    def _measure(self, item_id: str) -> None:
        size = len(orjson.dumps(self.items[item_id]))
        self.text_chars += size - self._sizes.get(item_id, 0)
        self._sizes[item_id] = size

    def _remeasure_recent(self, count: int = 8) -> None:
        for item_id in self.order[-count:]:
            self._measure(item_id)

    def _forget_oldest(self) -> None:
        """Forget the oldest items while past a cap (never the newest, never one streaming)."""
        while len(self.order) > 1 and (
            len(self.order) > self.items_kept or self.text_chars > self.text_kept_chars
        ):
            oldest = self.order[0]
            if oldest in self.live_audio:
                return
            self._drop(oldest)
            self._forgotten[oldest] = None
            while len(self._forgotten) > 4096:
                self._forgotten.popitem(last=False)

    def _drop(self, item_id: str) -> None:
        item = self.items.pop(item_id)
        self.order.remove(item_id)
        self.item_audio.pop(item_id, None)
        self.text_chars -= self._sizes.pop(item_id, 0)
        if item.get("type") == "function_call" and item.get("call_id"):
            self.call_names.pop(item["call_id"], None)

    def _missing(self, item_id: str, what: str) -> str:
        """The error text for an item that is not there (or no longer kept)."""
        if item_id in self._forgotten:
            return (
                f"Error {what} item: the item with id '{item_id}' is no longer kept (this "
                f"local server keeps a conversation's last {self.items_kept} items and "
                f"{self.text_kept_chars} characters of them)."
            )
        return f"Error {what} item: the item with id '{item_id}' does not exist."

    def announce(self, item: dict[str, Any], previous: str | None) -> None:
        """Tell the client a finished item joined (``added`` then ``done``)."""
        self.host.emit(
            "conversation.item.added", previous_item_id=previous, item=copy.deepcopy(item)
        )
        self.host.emit(
            "conversation.item.done", previous_item_id=previous, item=copy.deepcopy(item)
        )

    def add_user_audio(self, item_id: str, audio: Int16Array) -> dict[str, Any]:
        """Append a committed user audio item (announced by the caller)."""
        previous = self.last_id
        item = self.new_item(
            item_id, "message", role="user", content=[{"type": "input_audio", "transcript": None}]
        )
        self.item_audio[item_id] = audio
        self.insert(item, previous)
        return item

    # --- client events ---------------------------------------------------------------------

    def on_create(self, event: dict[str, Any], event_id: str | None) -> None:
        """``conversation.item.create``."""
        host = self.host
        given = event["item"]
        previous = event.get("previous_item_id")
        if previous is not None and previous != "root" and previous not in self.items:
            host.error(
                "invalid_value",
                f"Error adding item: the previous item with id '{previous}' does not exist.",
                "previous_item_id",
                event_id,
            )
            return
        item_id = given.get("id") or host.ids.item()
        if item_id in self.items:
            host.error(
                "invalid_value",
                f"Error adding item: an item with id '{item_id}' already exists.",
                "item.id",
                event_id,
            )
            return
        itype = given.get("type", "message")
        audio_parts: list[Int16Array] = []
        if itype == "message":
            role = given.get("role")
            if role is None:
                raise ValidationError(
                    "missing_required_parameter",
                    "Missing required parameter: 'item.role'.",
                    "item.role",
                )
            content = []
            for i, part in enumerate(given.get("content") or []):
                part = dict(part)
                if part.get("type") in _AUDIO_PARTS and "audio" in part:
                    try:
                        raw = pybase64.b64decode(part.pop("audio"), validate=True)
                    except ValueError:
                        raise ValidationError(
                            "invalid_value",
                            f"Invalid 'item.content[{i}].audio': expected base64-encoded audio.",
                            f"item.content[{i}].audio",
                        ) from None
                    codec = host.input_codec()
                    if codec.name == "pcm16" and len(raw) % 2:
                        # One item's whole audio: half a sample at its end is an error,
                        # not something to drop silently.
                        raise ValidationError(
                            "invalid_value",
                            f"Invalid 'item.content[{i}].audio': audio/pcm audio must be "
                            "a whole number of 16-bit samples (an even number of bytes), "
                            f"but got {len(raw)} bytes.",
                            f"item.content[{i}].audio",
                        )
                    audio_parts.append(to_model_rate(decode(raw, codec), codec.rate))
                    part.setdefault("transcript", None)
                content.append(part)
            item = self.new_item(item_id, "message", role=role, content=content)
        elif itype == "function_call":
            call_id = given.get("call_id") or host.ids.call()
            item = self.new_item(
                item_id,
                "function_call",
                name=given.get("name"),
                call_id=call_id,
                arguments=given.get("arguments", ""),
            )
        elif itype == "function_call_output":
            call_id = given.get("call_id")
            if call_id not in self.call_names:
                host.error(
                    "invalid_value",
                    f"Tool call ID '{call_id}' not found in conversation.",
                    "item.call_id",
                    event_id,
                )
                return
            item = self.new_item(
                item_id, "function_call_output", call_id=call_id, output=given.get("output", "")
            )
        else:
            item = {"id": item_id, **{k: v for k, v in given.items() if k != "id"}}
        if audio_parts:
            self.item_audio[item_id] = np.concatenate(audio_parts)
        anchor = previous if previous is not None else self.last_id
        self.insert(item, previous)
        self.announce(item, anchor if previous != "root" else None)

    def on_retrieve(self, event: dict[str, Any], event_id: str | None) -> None:
        """``conversation.item.retrieve``: the item, with its audio in the session's format."""
        item_id = event["item_id"]
        item = self.items.get(item_id)
        if item is None:
            self.host.error(
                "item_retrieve_invalid_item_id",
                self._missing(item_id, "retrieving"),
                "item_id",
                event_id,
            )
            return
        if self._refuse_evicted(item_id, "retriev", event_id):
            return
        out = copy.deepcopy(item)
        audio = self.item_audio.get(item_id)
        if audio is not None:
            for part in out.get("content", []):
                if part.get("type") in _AUDIO_PARTS:
                    codec = (
                        self.host.input_codec()
                        if part["type"] == "input_audio"
                        else self.host.output_codec()
                    )
                    part["audio"] = pybase64.b64encode(encode_whole(audio, codec)).decode("ascii")
                    break
        self.host.emit("conversation.item.retrieved", item=out)

    def on_delete(self, event: dict[str, Any], event_id: str | None) -> None:
        """``conversation.item.delete``."""
        item_id = event["item_id"]
        if item_id not in self.items:
            self.host.error(
                "item_delete_invalid_item_id",
                self._missing(item_id, "deleting"),
                "item_id",
                event_id,
            )
            return
        self._drop(item_id)
        self.host.emit("conversation.item.deleted", item_id=item_id)

    def on_truncate(self, event: dict[str, Any], event_id: str | None) -> None:
        """``conversation.item.truncate``: cut an assistant item's audio and transcript."""
        item_id = event["item_id"]
        content_index = event["content_index"]
        audio_end_ms = event["audio_end_ms"]
        item = self.items.get(item_id)
        if item is None:
            self.host.error(
                "item_truncate_invalid_item_id",
                f"Error truncating item: the item with id '{item_id}' does not exist.",
                "item_id",
                event_id,
            )
            return
        live = self.live_audio.get(item_id)
        if live is not None and content_index == 0 and live.audio_samples_sent > 0:
            self._truncate_live(live, audio_end_ms, event_id)
            return
        content = item.get("content") or []
        if (
            live is not None
            or item.get("type") != "message"
            or item.get("role") != "assistant"
            or content_index >= len(content)
            or content[content_index].get("type") != "output_audio"
        ):
            # Also an assistant item none of whose audio was sent yet (protocol.md §16.3).
            self.host.error(
                "unsupported_content_type",
                "Only model output audio messages can be truncated",
                "item_id",
                event_id,
            )
            return
        if self._refuse_evicted(item_id, "truncat", event_id):
            return
        audio = self.item_audio.get(item_id, np.zeros(0, dtype=np.int16))
        duration_ms = audio.size * 1000 // MODEL_RATE
        if self._past_the_audio(duration_ms, audio_end_ms, event_id):
            return
        keep = audio_end_ms * MODEL_RATE // 1000
        self.item_audio[item_id] = audio[:keep].copy()
        part = content[content_index]
        transcript = part.get("transcript") or ""
        part["transcript"] = cut_transcript(transcript, audio_end_ms, duration_ms)
        self.host.emit(
            "conversation.item.truncated",
            item_id=item_id,
            content_index=content_index,
            audio_end_ms=audio_end_ms,
        )

    def _past_the_audio(self, duration_ms: int, audio_end_ms: int, event_id: str | None) -> bool:
        """Refuse (``invalid_value``) a cut past the audio the item has; whether it did."""
        if audio_end_ms <= duration_ms:
            return False
        self.host.error(
            "invalid_value",
            f"Audio content of {duration_ms}ms is already shorter than {audio_end_ms}ms",
            "audio_end_ms",
            event_id,
        )
        return True

    def _refuse_evicted(self, item_id: str, verb: str, event_id: str | None) -> bool:
        """Answer an ``invalid_value`` error if the item's audio is no longer kept."""
        store = self.item_audio
        if not store.evicted(item_id):
            return False
        self.host.error(
            "invalid_value",
            f"Error {verb}ing item: the audio of item '{item_id}' is no longer kept (this "
            f"server keeps the audio of the last {store.max_items} audio items, "
            f"{store.max_ms / 1000:g} s at most).",
            "item_id",
            event_id,
        )
        return True

    def _truncate_live(self, stream: LiveAudio, audio_end_ms: int, event_id: str | None) -> None:
        """Truncate an assistant audio item that is still streaming.

        Only audio already sent can have been played, so that is the item's length for
        the check; the cut itself is applied when the item closes.
        """
        duration_ms = stream.audio_samples_sent * 1000 // MODEL_RATE
        if stream.cut_ms is not None:
            duration_ms = min(duration_ms, stream.cut_ms)
        if self._past_the_audio(duration_ms, audio_end_ms, event_id):
            return
        stream.cut_ms = audio_end_ms
        self.host.emit(
            "conversation.item.truncated",
            item_id=stream.item["id"],
            content_index=0,
            audio_end_ms=audio_end_ms,
        )

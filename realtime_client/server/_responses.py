"""Responses: configuration, generation, streaming and pacing, usage, rate limits.

A response asks the responder for its outputs, then streams them as the real service
does (protocol.md §9): one output item after the other, text and transcript deltas word
by word, audio in ``audio_delta_ms`` deltas, each item through its own stateful encoder
(:class:`~._audio.OutputEncoder`). Output is paced against the loop clock at
``SessionOptions.speed``. A response is finished or cancelled synchronously
(:meth:`Responses.finish`) whatever its task is doing, so a barge-in emits
``speech_started`` then ``response.done`` (cancelled) back to back (protocol.md §9.6).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pybase64

from realtime_client.audio.pacing import PacingClock

from ._audio import CODECS, Codec, OutputEncoder
from ._common import (
    MODEL_RATE,
    SERVER_ERROR_TEXT,
    Int16Array,
    SessionHost,
    cut_transcript,
    item_text,
    split_words,
    tokens,
)
from ._conversation import Conversation
from ._defaults import SessionDefaults, model_defaults
from ._dialect import DialectEdge, RateBudget
from .responders import FunctionCallReply, MessageReply, Reply, ResponseContext
from .validation import ValidationError, enum_message

__all__ = ["ItemStream", "ResponseConfig", "ResponseRun", "Responses"]

log = logging.getLogger("realtime_client.server")

#: The tokens-per-minute window of ``rate_limit_tokens``, in seconds.
_RATE_WINDOW_S = 60.0


@dataclass
class ResponseConfig:
    """A response's effective parameters: its overrides on top of the session's."""

    modalities: tuple[str, ...]
    voice: Any
    output_codec: Codec
    output_format: dict[str, Any]  # the GA format object, as the response reports it
    instructions: str
    tools: list[dict[str, Any]]
    tool_choice: Any
    max_output_tokens: Any
    temperature: float | None  # beta only: GA sessions have none
    conversation: str  # "auto" or "none"
    metadata: dict[str, Any] | None
    input_items: list[dict[str, Any]] | None


@dataclass
class ItemStream:
    """One output item being generated; knows how to close itself at any point."""

    kind: Literal["message", "function_call"]
    item: dict[str, Any]
    output_index: int
    previous_item_id: str | None
    in_conversation: bool
    audio_mode: bool = False
    encoder: OutputEncoder | None = None  # the item's audio stream, in the output format
    text: str = ""  # text, transcript or arguments sent so far
    audio_chunks: list[Int16Array] = field(default_factory=list)
    audio_ms_sent: float = 0.0
    audio_samples_sent: int = 0  # 24 kHz samples sent so far
    cut_ms: int | None = None  # audio_end_ms of a truncate received while streaming
    closed: bool = False


@dataclass
class ResponseRun:
    """One response, from ``response.created`` to ``response.done``."""

    id: str
    config: ResponseConfig
    index: int
    created_at: float
    items: list[ItemStream] = field(default_factory=list)
    open: list[ItemStream] = field(default_factory=list)  # items not closed yet, in order
    status: str = "in_progress"
    finished: bool = False
    task: asyncio.Task[None] | None = None
    clock_s: float = 0.0  # content time already streamed, in seconds
    pacing: PacingClock | None = None  # real-time pacing, from the first delta
    announced: bool = False  # response.created sent (the timing profile may delay it)
    out_text_tokens: int = 0
    out_audio_ms: float = 0.0
    in_text_tokens: int = 0
    in_audio_ms: float = 0.0
    cancel_reason: str | None = None
    error: dict[str, Any] | None = None  # status_details.error of a failed response


class Responses:
    """The responses of one session.

    Args:
        host: The session.
        conversation: Where in-conversation output goes and context comes from.
        edge: The dialect edge (when and what ``rate_limits.updated`` says).
        defaults: The dialect's defaults (the modality of an unspecified response).
        on_started: Called when a response starts (the idle timeout stops counting).
        on_finished: Called with a default-conversation response once it is done (the
            idle timeout counts from there).
    """

    def __init__(
        self,
        host: SessionHost,
        conversation: Conversation,
        edge: DialectEdge,
        defaults: SessionDefaults,
        on_started: Callable[[], None],
        on_finished: Callable[[ResponseRun], None],
    ) -> None:
        self.host = host
        self.conversation = conversation
        self.edge = edge
        self.defaults = defaults
        self.on_started = on_started
        self.on_finished = on_finished
        #: Responses in progress, by id.
        self.runs: dict[str, ResponseRun] = {}
        #: The response in progress in the default conversation, if any.
        self.default_run: ResponseRun | None = None
        #: Whether any assistant audio was produced (the voice is fixed from then on).
        self.audio_output_started = False
        self._count = 0
        self._last_input_tokens = 0
        # rate limit (SessionOptions.rate_limit_tokens): tokens used in the current window
        self._rate_used = 0
        self._rate_window_start: float | None = None

    # --- client events ---------------------------------------------------------------------

    def on_create(self, event: dict[str, Any], event_id: str | None) -> None:
        """``response.create``."""
        if self.host.options.kind == "transcription":
            self.host.error(
                "invalid_value",
                "Responses are not available in a transcription session.",
                "type",
                event_id,
            )
            return
        self.start(event.get("response") or {}, event_id)

    def on_cancel(self, event: dict[str, Any], event_id: str | None) -> None:
        """``response.cancel``."""
        rid = event.get("response_id")
        run = self.runs.get(rid) if rid else self.default_run
        if run is None or run.finished:
            self.host.error(
                "response_cancel_not_active",
                "Cancellation failed: no active response found",
                None,
                event_id,
            )
            return
        self.finish(run, "cancelled", reason="client_cancelled")

    # --- lifecycle -------------------------------------------------------------------------

    def resolve(self, params: dict[str, Any]) -> ResponseConfig:
        """A response's effective parameters (GA-shaped ``params`` over the session's)."""
        s = self.host.state
        conversation = params.get("conversation", "auto")
        if conversation not in ("auto", "none") and conversation != self.host.conversation_id:
            raise ValidationError(
                "invalid_value",
                enum_message(conversation, ["auto", "none"]),
                "response.conversation",
            )
        mods = params.get("output_modalities") or s["output_modalities"]
        if "audio" in mods:
            modalities: tuple[str, ...] = ("audio",)
        elif mods:
            modalities = ("text",)
        else:
            modalities = self.defaults.empty_modalities
        out = (params.get("audio") or {}).get("output") or {}
        fmt = out.get("format") or s["audio"]["output"]["format"]
        if fmt.get("type") == "audio/pcm":
            fmt = {"type": "audio/pcm", "rate": fmt.get("rate", 24000)}
        input_items = params.get("input")
        if input_items is not None:
            resolved = []
            for i, it in enumerate(input_items):
                if it.get("type") == "item_reference":
                    ref = self.conversation.items.get(it.get("id", ""))
                    if ref is None:
                        raise ValidationError(
                            "invalid_value",
                            f"Item with id '{it.get('id')}' not found in conversation.",
                            f"response.input[{i}].id",
                        )
                    resolved.append(ref)
                else:
                    resolved.append(it)
            input_items = resolved
        return ResponseConfig(
            modalities=modalities,
            voice=out.get("voice", s["audio"]["output"]["voice"]),
            output_codec=CODECS[fmt["type"]],
            output_format=fmt,
            instructions=params.get("instructions", s["instructions"]),
            tools=list(params.get("tools", s["tools"])),
            tool_choice=params.get("tool_choice", s["tool_choice"]),
            max_output_tokens=params.get("max_output_tokens", s["max_output_tokens"]),
            temperature=params.get("temperature", s.get("temperature")),
            conversation="none" if conversation == "none" else "auto",
            metadata=params.get("metadata"),
            input_items=input_items,
        )

    def start(self, params: dict[str, Any], event_id: str | None) -> None:
        """Start a response (``response.created``), its generation in a task."""
        host = self.host
        config = self.resolve(params)
        if config.conversation == "auto" and self.default_run is not None:
            host.error(
                "conversation_already_has_active_response",
                "Conversation already has an active response in progress: "
                f"{self.default_run.id}. Wait until the response is finished before creating "
                "a new one.",
                None,
                event_id,
            )
            return
        self.on_started()
        loop = asyncio.get_running_loop()
        run = ResponseRun(
            id=host.ids.response(), config=config, index=self._count, created_at=loop.time()
        )
        self._count += 1
        self.runs[run.id] = run
        if config.conversation == "auto":
            self.default_run = run
        delay = host.delay_s(host.options.timing.response_created_ms)
        if delay <= 0:
            self._announce(run)
        run.task = loop.create_task(self._generate(run, delay))

    def _announce(self, run: ResponseRun) -> None:
        """``response.created``, once."""
        if not run.announced:
            run.announced = True
            self.host.emit("response.created", response=self._response_object(run))

    def finish(self, run: ResponseRun, status: str, reason: str | None = None) -> None:
        """End a response now: close its open item, emit ``response.done`` (+ rate limits)."""
        if run.finished:
            return
        self._announce(run)  # a response cancelled while "thinking" was still created
        run.finished = True
        run.status = status
        run.cancel_reason = reason
        for stream in list(run.open):
            self._close_item(run, stream, "incomplete")
        usage = self._usage(run)
        if self.host.options.rate_limit_tokens is not None:
            self._rate_window()  # a window that has ended starts afresh
            self._rate_used += usage["total_tokens"]
        self.host.emit("response.done", response=self._response_object(run, usage))
        self._last_input_tokens = usage["input_tokens"]
        self._emit_rate_limits("done", total=usage["total_tokens"])
        self.runs.pop(run.id, None)
        if self.default_run is run:
            self.default_run = None
            self.on_finished(run)
        task = run.task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()

    def close(self) -> None:
        """Stop every response without a word (the session is closing)."""
        for run in list(self.runs.values()):
            run.finished = True
            if run.task is not None:
                run.task.cancel()

    def _response_object(self, run: ResponseRun, usage: Any = None) -> dict[str, Any]:
        c = run.config
        details: Any = None
        if run.status == "cancelled":
            details = {"type": "cancelled", "reason": run.cancel_reason or "client_cancelled"}
        elif run.status == "incomplete":
            details = {"type": "incomplete", "reason": "max_output_tokens"}
        elif run.status == "failed":
            details = {
                "type": "failed",
                "error": run.error
                or {"type": "server_error", "code": None, "message": SERVER_ERROR_TEXT},
            }
        response: dict[str, Any] = {
            "object": "realtime.response",
            "id": run.id,
            "status": run.status,
            "status_details": details,
            "output": [copy.deepcopy(s.item) for s in run.items],
            "conversation_id": self.host.conversation_id if c.conversation == "auto" else None,
            "output_modalities": list(c.modalities),
            "max_output_tokens": c.max_output_tokens,
            "audio": {"output": {"format": copy.deepcopy(c.output_format), "voice": c.voice}},
            "usage": usage,
            "metadata": c.metadata,
        }
        if c.temperature is not None:
            response["temperature"] = c.temperature
        return response

    # --- generation ------------------------------------------------------------------------

    def _context(self, run: ResponseRun) -> ResponseContext:
        c = run.config
        conv = self.conversation
        if c.input_items is not None:
            items = [copy.deepcopy(i) for i in c.input_items]
        else:
            items = [copy.deepcopy(conv.items[i]) for i in conv.order]
        user_text: str | None = None
        user_audio: Int16Array | None = None
        for it in reversed(items):
            if it.get("type") == "message" and it.get("role") == "user":
                for part in it.get("content") or []:
                    if part.get("type") == "input_text" and part.get("text"):
                        user_text = part["text"]
                    elif part.get("type") in ("input_audio", "output_audio"):
                        user_text = part.get("transcript") or user_text
                        audio = conv.item_audio.get(it.get("id", ""))
                        if audio is not None:
                            user_audio = audio
                break
        function_output = None
        if items and items[-1].get("type") == "function_call_output":
            last = items[-1]
            function_output = {
                "call_id": last.get("call_id"),
                "output": last.get("output"),
                "name": conv.call_names.get(last.get("call_id", ""), ""),
            }
        # usage inputs: every text and audio of the context, plus the instructions
        run.in_text_tokens = tokens(c.instructions) + sum(tokens(item_text(i)) for i in items)
        # Lengths stay known after old items' samples are dropped: usage does not change.
        known_ms = conv.item_audio.audio_ms
        run.in_audio_ms = sum(known_ms.get(i.get("id", ""), 0.0) for i in items)
        return ResponseContext(
            response_index=run.index,
            items=items,
            user_text=user_text,
            user_audio=user_audio,
            function_output=function_output,
            instructions=c.instructions,
            # Shared, not copied: a session's tools are replaced, never changed in place
            # (a copy per response once cost a second for 3 MB of tool parameters).
            tools=c.tools,
            output_modalities=c.modalities,
            metadata=c.metadata,
            rng=random.Random(self.host.rng.random()),
        )

    async def _generate(self, run: ResponseRun, created_delay: float = 0.0) -> None:
        try:
            if created_delay > 0:
                await asyncio.sleep(created_delay)
                if run.finished:
                    return
                self._announce(run)
            first = self.host.delay_s(self.host.options.timing.first_output_ms)
            if first > 0:
                await asyncio.sleep(first)
                if run.finished:
                    return
            context = self._context(run)
            if self._rate_limited(run):
                return
            reply = await self.host.responder.respond(context)
            if run.finished:
                return
            await self._stream_reply(run, reply)
            if not run.finished:
                self.finish(run, run.status if run.status != "in_progress" else "completed")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("responder failed; the response ends as failed")
            if not run.finished:
                self.finish(run, "failed")

    async def _pace(self, run: ResponseRun, content_s: float) -> None:
        """Wait until ``content_s`` more seconds of content may have been sent."""
        if run.pacing is None:
            options = self.host.options
            run.pacing = PacingClock(max(0.0, options.speed * options.timing.generation_speed))
            run.pacing.start()
        run.clock_s += content_s
        await run.pacing.wait(run.clock_s)
        # Backpressure: a sink whose outbox is full makes generation wait for its client
        # (unpaced, a long reply would otherwise be queued whole before a byte is sent).
        room = getattr(self.host.sink, "room", None)
        if room is not None:
            waiting = room()
            if waiting is not None:
                await waiting

    async def _stream_reply(self, run: ResponseRun, reply: Reply) -> None:
        budget = _token_budget(run.config.max_output_tokens)
        phased = model_defaults(self.host.options.model).phase
        outputs = _with_preambles(reply.outputs) if phased else list(reply.outputs)
        calls_opened: set[int] = set()
        for i, out in enumerate(outputs):
            if run.finished:
                return
            if isinstance(out, FunctionCallReply):
                if i not in calls_opened:
                    await self._stream_function_call(run, out)
            elif isinstance(out, MessageReply):
                following = outputs[i + 1] if i + 1 < len(outputs) else None
                call = following if isinstance(following, FunctionCallReply) else None
                phase: str | None = None
                if phased:
                    phase = out.phase or ("commentary" if call is not None else "final_answer")
                midway = None
                if phased and call is not None:
                    # 2.x: the call's item opens while the preamble is still streaming,
                    # and closes after it (protocol.md §16.2).
                    calls_opened.add(i + 1)
                    midway = self._call_opener(run, call)
                await self._stream_message(run, out, budget, phase, midway)
            if run.status == "incomplete":
                return

    def _call_opener(
        self, run: ResponseRun, call: FunctionCallReply
    ) -> Callable[[], Awaitable[ItemStream | None]]:
        async def open_call() -> ItemStream | None:
            return await self._stream_function_call(run, call, close=False)

        return open_call

    def _open_item(
        self, run: ResponseRun, kind: Literal["message", "function_call"], item: dict[str, Any]
    ) -> ItemStream:
        conv = self.conversation
        in_conv = run.config.conversation == "auto"
        previous = conv.last_id if in_conv else None
        stream = ItemStream(
            kind=kind,
            item=item,
            output_index=len(run.items),
            previous_item_id=previous,
            in_conversation=in_conv,
        )
        if not run.items:
            # Beta sends rate limits after response.created, but only for a response
            # that produces output (protocol.md §16, beta recordings): so at its first item.
            self._emit_rate_limits("created")
        run.items.append(stream)
        run.open.append(stream)
        self.host.emit(
            "response.output_item.added",
            response_id=run.id,
            output_index=stream.output_index,
            item=copy.deepcopy(item),
        )
        if in_conv:
            conv.insert(item, None)
            self.host.emit(
                "conversation.item.added", previous_item_id=previous, item=copy.deepcopy(item)
            )
        return stream

    async def _stream_function_call(
        self, run: ResponseRun, out: FunctionCallReply, *, close: bool = True
    ) -> ItemStream | None:
        """Stream a function call's item and arguments; closed unless ``close`` is false.

        Returns the open item when ``close`` is false (``None`` once the run finished).
        """
        host = self.host
        call_id = out.call_id or host.ids.call()
        item = self.conversation.new_item(
            host.ids.item(),
            "function_call",
            status="in_progress",
            name=out.name,
            call_id=call_id,
            arguments="",
        )
        stream = self._open_item(run, "function_call", item)
        self.conversation.call_names[call_id] = out.name
        args = out.arguments
        for i in range(0, len(args), 12):
            chunk = args[i : i + 12]
            host.emit(
                "response.function_call_arguments.delta",
                response_id=run.id,
                item_id=item["id"],
                output_index=stream.output_index,
                call_id=call_id,
                delta=chunk,
            )
            stream.text += chunk
            run.out_text_tokens += tokens(chunk)
            await self._pace(run, host.options.text_token_ms / 1000)
            if run.finished:
                return None
        if close:
            self._close_item(run, stream, "completed")
        return stream

    async def _stream_message(
        self,
        run: ResponseRun,
        out: MessageReply,
        budget: int,
        phase: str | None = None,
        midway: Callable[[], Awaitable[ItemStream | None]] | None = None,
    ) -> None:
        """Stream an assistant message; ``midway`` streams another item before it closes.

        ``phase`` is the message's ``phase`` (only for models that have it). The item
        ``midway`` returns is closed right after this message (the 2.x preamble order).
        """
        host = self.host
        options = host.options
        audio_mode = "audio" in run.config.modalities
        extra = {"phase": phase} if phase is not None else {}
        item = self.conversation.new_item(
            host.ids.item(), "message", status="in_progress", role="assistant", content=[], **extra
        )
        text = out.text
        samples: Int16Array | None = None
        if audio_mode:
            samples = out.audio if out.audio is not None else await host.responder.synthesize(text)
            if run.finished:
                return
        stream = self._open_item(run, "message", item)
        stream.audio_mode = audio_mode
        if audio_mode and stream.in_conversation:
            self.conversation.live_audio[item["id"]] = stream
        part = {"type": "audio", "transcript": ""} if audio_mode else {"type": "text", "text": ""}
        host.emit(
            "response.content_part.added",
            response_id=run.id,
            item_id=item["id"],
            output_index=stream.output_index,
            content_index=0,
            part=part,
        )
        words = split_words(text)
        if audio_mode:
            assert samples is not None
            self.audio_output_started = True
            stream.encoder = OutputEncoder(run.config.output_codec)
            # Output tokens run at 20 per second of audio: cut at the token budget.
            max_ms = budget * 50.0
            total = samples.size
            if total * 1000.0 / MODEL_RATE > max_ms:
                samples = samples[: int(max_ms * MODEL_RATE / 1000)]
                run.status = "incomplete"
            step = max(1, options.audio_delta_ms * MODEL_RATE // 1000)
            n_chunks = max(1, math.ceil(samples.size / step))
            sent_words = 0
            for k in range(n_chunks):
                chunk = samples[k * step : (k + 1) * step]
                last = k == n_chunks - 1
                due_words = len(words) if last else math.ceil(len(words) * (k + 1) / n_chunks)
                if run.status == "incomplete" and last:
                    due_words = math.floor(len(words) * samples.size / max(1, total))
                if not options.reorder:
                    sent_words = self._transcript_deltas(run, stream, words, sent_words, due_words)
                self._audio_delta(run, stream, chunk)
                if options.reorder:
                    sent_words = self._transcript_deltas(run, stream, words, sent_words, due_words)
                await self._pace(run, chunk.size / MODEL_RATE)
                if run.finished:
                    return
        else:
            sent = 0
            for word in words:
                if sent >= budget:
                    run.status = "incomplete"
                    break
                host.emit(
                    "response.output_text.delta",
                    response_id=run.id,
                    item_id=item["id"],
                    output_index=stream.output_index,
                    content_index=0,
                    delta=word,
                )
                stream.text += word
                sent += 1
                run.out_text_tokens += 1
                await self._pace(run, options.text_token_ms / 1000)
                if run.finished:
                    return
        call = await midway() if midway is not None else None
        if run.finished:
            return
        self._close_item(run, stream, "incomplete" if run.status == "incomplete" else "completed")
        if call is not None:
            self._close_item(run, call, "completed")

    def _transcript_deltas(
        self, run: ResponseRun, stream: ItemStream, words: list[str], sent: int, due: int
    ) -> int:
        for word in words[sent:due]:
            self.host.emit(
                "response.output_audio_transcript.delta",
                response_id=run.id,
                item_id=stream.item["id"],
                output_index=stream.output_index,
                content_index=0,
                delta=word,
            )
            stream.text += word
            run.out_text_tokens += 1
        return max(sent, due)

    def _audio_delta(self, run: ResponseRun, stream: ItemStream, chunk: Int16Array) -> None:
        stream.audio_chunks.append(chunk)
        stream.audio_samples_sent += chunk.size
        ms = chunk.size * 1000.0 / MODEL_RATE
        stream.audio_ms_sent += ms
        run.out_audio_ms += ms
        if self.host.options.audio_via_sink:
            send_audio = getattr(self.host.sink, "send_audio", None)
            if send_audio is not None:
                send_audio(run.id, stream.item["id"], chunk)
                return
        assert stream.encoder is not None
        payload = stream.encoder.encode(chunk)
        self.host.emit(
            "response.output_audio.delta",
            response_id=run.id,
            item_id=stream.item["id"],
            output_index=stream.output_index,
            content_index=0,
            delta=pybase64.b64encode(payload).decode("ascii"),
        )

    def _close_item(self, run: ResponseRun, stream: ItemStream, status: str) -> None:
        """Emit the closing events of an output item (also used on cancel)."""
        if stream.closed:
            return
        stream.closed = True
        host = self.host
        conv = self.conversation
        item = stream.item
        conv.live_audio.pop(item["id"], None)
        common = {"response_id": run.id, "item_id": item["id"], "output_index": stream.output_index}
        if stream.kind == "function_call":
            if status == "completed":
                host.emit(
                    "response.function_call_arguments.done",
                    **common,
                    call_id=item["call_id"],
                    arguments=stream.text,
                    name=item["name"],
                )
            item["arguments"] = stream.text
        elif stream.audio_mode:
            host.emit("response.output_audio.done", **common, content_index=0)
            host.emit(
                "response.output_audio_transcript.done",
                **common,
                content_index=0,
                transcript=stream.text,
            )
            host.emit(
                "response.content_part.done",
                **common,
                content_index=0,
                part={"type": "audio", "transcript": stream.text},
            )
            audio = (
                np.concatenate(stream.audio_chunks)
                if stream.audio_chunks
                else np.zeros(0, dtype=np.int16)
            )
            transcript = stream.text
            if stream.cut_ms is not None:
                # A truncate arrived while the item streamed: the item keeps what was
                # played, as if it had been truncated after completing.
                duration_ms = audio.size * 1000 // MODEL_RATE
                transcript = cut_transcript(transcript, stream.cut_ms, duration_ms)
                audio = audio[: stream.cut_ms * MODEL_RATE // 1000].copy()
            item["content"] = [{"type": "output_audio", "transcript": transcript}]
            # A deleted item (conversation.item.delete while streaming) keeps no audio.
            if item["id"] in conv.items:
                conv.item_audio[item["id"]] = audio
        else:
            host.emit("response.output_text.done", **common, content_index=0, text=stream.text)
            host.emit(
                "response.content_part.done",
                **common,
                content_index=0,
                part={"type": "text", "text": stream.text},
            )
            item["content"] = [{"type": "output_text", "text": stream.text}]
        item["status"] = status
        if stream.in_conversation and item["id"] in conv.items:
            conv.settle(item)
            host.emit(
                "conversation.item.done",
                previous_item_id=stream.previous_item_id,
                item=copy.deepcopy(item),
            )
        host.emit(
            "response.output_item.done",
            response_id=run.id,
            output_index=stream.output_index,
            item=copy.deepcopy(item),
        )
        if stream in run.open:
            run.open.remove(stream)

    # --- usage and rate limits -------------------------------------------------------------

    def _rate_window(self) -> tuple[int, float]:
        """Tokens used in the current rate-limit window, and seconds until it resets."""
        now = asyncio.get_running_loop().time()
        start = self._rate_window_start
        if start is None or now - start >= _RATE_WINDOW_S:
            self._rate_window_start = start = now
            self._rate_used = 0
        return self._rate_used, start + _RATE_WINDOW_S - now

    def _rate_limited(self, run: ResponseRun) -> bool:
        """Fail ``run`` as the real service does when its input overruns the TPM budget.

        The real service answers with ``response.done`` (status ``failed``, no output,
        zero usage) whose ``status_details.error`` is ``{type: "tokens", code:
        "rate_limit_exceeded", message}`` (protocol.md §7.2, §10), not an ``error`` event.
        """
        limit = self.host.options.rate_limit_tokens
        if limit is None:
            return False
        used, reset_s = self._rate_window()
        requested = run.in_text_tokens + round(run.in_audio_ms / 100)
        if used + requested <= limit:
            return False
        run.error = {
            "type": "tokens",
            "code": "rate_limit_exceeded",
            "message": (
                f"Rate limit reached for {self.host.options.model} in organization org-local "
                f"on tokens per min (TPM): Limit {limit}, Used {used}, Requested {requested}. "
                f"Please try again in {reset_s:.3f}s. Visit "
                "https://platform.openai.com/account/rate-limits to learn more."
            ),
        }
        self.finish(run, "failed")
        return True

    def _usage(self, run: ResponseRun) -> dict[str, Any]:
        produced = run.out_text_tokens or run.out_audio_ms or any(s.closed for s in run.items)
        if run.status in ("cancelled", "failed") and not produced:
            in_text = in_audio = out_text = out_audio = 0
        else:
            in_text = run.in_text_tokens
            in_audio = round(run.in_audio_ms / 100)  # 10 tokens per second of input audio
            out_text = run.out_text_tokens
            out_audio = round(run.out_audio_ms / 50)  # 20 tokens per second of output audio
        # 2.x models reason before they answer (protocol.md §16.3): a few tokens an item.
        reasoning = 8 * len(run.items) if model_defaults(self.host.options.model).reasoning else 0
        if run.status in ("cancelled", "failed") and not produced:
            reasoning = 0
        input_tokens = in_text + in_audio
        output_tokens = out_text + out_audio + reasoning
        cached = min(self._last_input_tokens, input_tokens) // 64 * 64 if input_tokens else 0
        cached_text = min(cached, in_text)
        return {
            "total_tokens": input_tokens + output_tokens,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "input_token_details": {
                "text_tokens": in_text,
                "audio_tokens": in_audio,
                "image_tokens": 0,
                "cached_tokens": cached,
                "cached_tokens_details": {
                    "text_tokens": cached_text,
                    "audio_tokens": cached - cached_text,
                    "image_tokens": 0,
                },
            },
            "output_token_details": {
                "text_tokens": out_text,
                "audio_tokens": out_audio,
                **({"reasoning_tokens": reasoning} if reasoning else {}),
            },
        }

    def _emit_rate_limits(self, moment: Literal["created", "done"], total: int = 0) -> None:
        """``rate_limits.updated``, if the dialect sends it after this ``moment``."""
        if self.edge.rate_limits_after != moment:
            return
        budget: RateBudget | None = None
        limit = self.host.options.rate_limit_tokens
        if limit is not None:
            used, reset_s = self._rate_window()
            budget = (limit, used, reset_s)
        self.host.emit("rate_limits.updated", rate_limits=self.edge.rate_limits(budget, total))


def _token_budget(max_output_tokens: Any) -> int:
    return 1_000_000_000 if max_output_tokens in (None, "inf") else int(max_output_tokens)


#: What a 2.x model says before a function call when the responder gives no words.
DEFAULT_PREAMBLE = "Let me check that."


def _with_preambles(
    outputs: Sequence[MessageReply | FunctionCallReply],
) -> list[MessageReply | FunctionCallReply]:
    """The outputs, opened by a commentary message when a function call comes first."""
    out: list[MessageReply | FunctionCallReply] = []
    for reply in outputs:
        if isinstance(reply, FunctionCallReply) and not out:
            out.append(MessageReply(reply.preamble or DEFAULT_PREAMBLE, phase="commentary"))
        out.append(reply)
    return out

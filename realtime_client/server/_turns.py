"""Turn taking: the input buffer's client events, the VAD's decisions, the idle timeout.

Audio arrives by ``input_audio_buffer.append`` (or decoded media, the WebRTC path) into
the :class:`~._input.InputBuffer`. A commit (by the client, by the VAD at the end of
speech, or by the idle timeout) turns buffered audio into a user item, transcribed when
the session asks for it. With turn detection on, speech start interrupts the response in
progress and speech end asks for a new one (protocol.md §8, §9.3, §9.6, §9.10).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pybase64

from realtime_client.audio.vad import SpeechStarted, VadEvent

from ._audio import StreamResampler, decode
from ._common import MODEL_RATE, Int16Array, SessionHost, split_words, tokens
from ._conversation import Conversation
from ._input import InputBuffer
from ._responses import ResponseRun, Responses

__all__ = ["TurnTaking"]

#: Largest decoded audio one ``input_audio_buffer.append`` may carry, in bytes (§13: 15 MB).
_MAX_APPEND_BYTES = 15 * 1024 * 1024


class TurnTaking:
    """The input side of one session.

    Args:
        host: The session.
        buffer: The input audio buffer.
        conversation: Where committed audio becomes user items.
        responses: What speech start interrupts and speech end starts.
    """

    def __init__(
        self,
        host: SessionHost,
        buffer: InputBuffer,
        conversation: Conversation,
        responses: Responses,
    ) -> None:
        self.host = host
        self.buffer = buffer
        self.conversation = conversation
        self.responses = responses
        self._speech_item_id: str | None = None
        self._speech_start_ms = 0.0
        self._committed_audio_items = 0
        self._media: StreamResampler | None = None  # decoded media at its own rate → 24 kHz
        self._idle_handle: asyncio.TimerHandle | None = None
        #: The response the idle timeout started last: its end does not re-arm the timer.
        self._idle_response_id: str | None = None

    def configure_vad(self, force: bool = False) -> None:
        """Follow the session's turn detection (a new VAD if it changed, or if ``force``)."""
        td = self.host.turn_detection()
        if td is None:
            self._speech_item_id = None
        self.buffer.configure_vad(td, self.host.input_codec().rate, force)

    def close(self) -> None:
        """Stop the idle timer."""
        self.cancel_idle_timer()

    # --- client events ---------------------------------------------------------------------

    def on_append(self, event: dict[str, Any], event_id: str | None) -> None:
        """``input_audio_buffer.append``."""
        try:
            raw = pybase64.b64decode(event["audio"], validate=True)
        except ValueError:
            self.host.error(
                "invalid_value",
                "Invalid 'audio': expected base64-encoded audio.",
                "audio",
                event_id,
            )
            return
        if len(raw) > _MAX_APPEND_BYTES:
            self.host.error(
                "invalid_value",
                "Invalid 'audio': audio too large. Expected at most "
                f"{_MAX_APPEND_BYTES} bytes of decoded audio per append, but got "
                f"{len(raw)} bytes instead.",
                "audio",
                event_id,
            )
            return
        codec = self.host.input_codec()
        data: bytes | memoryview = raw
        carry = b""
        if codec.name == "pcm16":
            # Appends cut a byte stream: an odd one ends in half a sample, whose other
            # half starts the next append (dropping it would shift every later sample).
            if self.buffer.pending_byte:
                data = self.buffer.pending_byte + raw
            if len(data) % 2:
                data, carry = memoryview(data)[:-1], bytes(data[-1:])
        if self.append_samples(decode(data, codec), event_id):
            self.buffer.pending_byte = carry

    def on_commit(self, event: dict[str, Any], event_id: str | None) -> None:
        """``input_audio_buffer.commit``."""
        ms = self.buffer.ms
        if ms < 100.0:
            self.host.error(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"100ms of audio, but buffer only has {ms:.2f}ms of audio.",
                None,
                event_id,
            )
            return
        item_id = self._speech_item_id or self.host.ids.item()
        self._speech_item_id = None
        if self.buffer.vad is not None:
            self.configure_vad(force=True)
        self.commit_audio(self.buffer.take(), item_id)

    def on_clear(self, event: dict[str, Any], event_id: str | None) -> None:
        """``input_audio_buffer.clear``."""
        self.buffer.clear()
        self._speech_item_id = None
        if self.buffer.vad is not None:
            self.configure_vad(force=True)
        self.host.emit("input_audio_buffer.cleared")

    # --- audio in --------------------------------------------------------------------------

    def append_media(self, samples: Int16Array, sample_rate: int) -> None:
        """Decoded media audio (the WebRTC path), resampled as one continuous stream."""
        if sample_rate != self.buffer.rate:
            if self.buffer.rate != MODEL_RATE:
                raise ValueError("media input needs a 24 kHz input format")
            if self._media is None or self._media.in_rate != sample_rate:
                self._media = StreamResampler(sample_rate, MODEL_RATE)
            samples = self._media.process(samples)
        self.append_samples(samples, None)

    def append_samples(self, samples: Int16Array, event_id: str | None) -> bool:
        """Buffer input samples at the input rate, unless the buffer is full (then False)."""
        buffer = self.buffer
        added_ms = samples.size * 1000.0 / buffer.rate
        buffered_ms = buffer.ms
        # With the VAD listening for a turn, old silence is dropped (below, never more than
        # the cap is kept), so the cap only refuses with the VAD off or during speech.
        capped = buffer.vad is None or buffer.vad.speaking
        max_ms = self.host.options.max_buffer_ms
        if capped and buffered_ms + added_ms > max_ms:
            self.host.error(
                "input_audio_buffer_full",
                f"Error appending to input audio buffer: the buffer already holds "
                f"{buffered_ms:.2f}ms of audio and may hold at most "
                f"{max_ms:.0f}ms. Commit or clear it first.",
                None,
                event_id,
            )
            return False
        if samples.size == 0:
            return True
        for ev in buffer.append(samples):
            self._on_vad_event(ev)
        buffer.trim_unspoken(max_ms)
        return True

    # --- commits ---------------------------------------------------------------------------

    def commit_audio(self, audio: Int16Array, item_id: str) -> None:
        """Make committed 24 kHz audio a user item (and transcribe it if asked to)."""
        host = self.host
        previous = self.conversation.last_id
        host.emit("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        item = self.conversation.add_user_audio(item_id, audio)
        self.conversation.announce(item, previous)
        if host.transcription() is not None:
            # Decide the transcript now, at commit: a responder may move on to its next
            # turn before a late (reordered) transcription is emitted.
            text = host.responder.transcribe(audio, item_index=self._committed_audio_items)
            options = host.options
            if options.reorder:
                loop = asyncio.get_running_loop()
                delay = 0.3 if options.speed <= 0 else 0.3 / options.speed + 0.2
                loop.call_later(delay, self._transcribe, item_id, audio, text)
            else:
                self._transcribe(item_id, audio, text)
        self._committed_audio_items += 1

    def _transcribe(self, item_id: str, audio: Int16Array, text: str | None) -> None:
        host = self.host
        if host.closed:
            return
        seconds = audio.size / MODEL_RATE
        if text is None:
            text = f"[{seconds:.2f} seconds of audio]"
        model = (host.transcription() or {}).get("model") or "whisper-1"
        words = split_words(text) if model != "whisper-1" else [text]
        for word in words:
            host.emit(
                "conversation.item.input_audio_transcription.delta",
                item_id=item_id,
                content_index=0,
                delta=word,
            )
        if model == "whisper-1":
            usage: dict[str, Any] = {"type": "duration", "seconds": round(seconds, 3)}
        else:
            audio_tokens = max(1, round(seconds * 10))
            out_tokens = tokens(text)
            usage = {
                "type": "tokens",
                "total_tokens": audio_tokens + out_tokens,
                "input_tokens": audio_tokens,
                "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
                "output_tokens": out_tokens,
            }
        host.emit(
            "conversation.item.input_audio_transcription.completed",
            item_id=item_id,
            content_index=0,
            transcript=text,
            usage=usage,
        )
        item = self.conversation.items.get(item_id)
        if item is not None:
            item["content"][0]["transcript"] = text

    # --- VAD -------------------------------------------------------------------------------

    def _on_vad_event(self, ev: VadEvent) -> None:
        host = self.host
        buffer = self.buffer
        td = host.turn_detection() or {}
        if isinstance(ev, SpeechStarted):
            start_ms = max(buffer.vad_origin_ms + ev.audio_start_ms, buffer.start_ms)
            self._speech_start_ms = start_ms
            self._speech_item_id = host.ids.item()
            self.cancel_idle_timer()
            host.emit(
                "input_audio_buffer.speech_started",
                audio_start_ms=int(start_ms),
                item_id=self._speech_item_id,
            )
            run = self.responses.default_run
            if td.get("interrupt_response", True) and run is not None:
                self.responses.finish(run, "cancelled", reason="turn_detected")
                # finish() re-arms the idle timer, but the timeout only counts while nobody
                # speaks (protocol.md §8): it is armed again after the next response.
                self.cancel_idle_timer()
            return
        end_ms = buffer.vad_origin_ms + ev.audio_end_ms
        item_id = self._speech_item_id or host.ids.item()
        self._speech_item_id = None
        host.emit("input_audio_buffer.speech_stopped", audio_end_ms=int(end_ms), item_id=item_id)
        samples = buffer.take(end_ms, start_ms=self._speech_start_ms)
        self.commit_audio(samples, item_id)
        if (
            host.options.kind == "realtime"
            and td.get("create_response", True)
            and self.responses.default_run is None
        ):
            self.responses.start({}, None)

    # --- idle timeout (GA server_vad.idle_timeout_ms) --------------------------------------

    def cancel_idle_timer(self) -> None:
        """Stop counting the idle timeout."""
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None

    def arm_idle_timer(self, run: ResponseRun) -> None:
        """Count the idle timeout from the end of ``run``'s playback.

        Once per silence: the response the timeout itself started does not count it
        again (else a session left alone would answer itself for ever, one response per
        ``idle_timeout_ms``); the next user turn or client-created response does.
        """
        td = self.host.turn_detection()
        if not td or td.get("type") != "server_vad" or not td.get("idle_timeout_ms"):
            return
        if run.id == self._idle_response_id:
            return
        loop = asyncio.get_running_loop()
        # The timeout counts from the end of playback: response.done + unplayed audio.
        origin = run.pacing.origin if run.pacing is not None else None
        played = loop.time() - origin if origin is not None else 0.0
        remaining = max(0.0, run.out_audio_ms / 1000.0 - played)
        self.cancel_idle_timer()
        self._idle_handle = loop.call_later(
            remaining + td["idle_timeout_ms"] / 1000.0, self._idle_timeout
        )

    def _idle_timeout(self) -> None:
        self._idle_handle = None
        host = self.host
        if host.closed or self.responses.default_run is not None:
            return
        if self.buffer.speaking:
            return  # the user is talking: their turn, not a timeout, ends the silence
        item_id = host.ids.item()
        host.emit(
            "input_audio_buffer.timeout_triggered",
            audio_start_ms=int(self.buffer.start_ms),
            audio_end_ms=int(self.buffer.stream_ms),
            item_id=item_id,
        )
        self._speech_item_id = None
        if self.buffer.vad is not None:
            self.configure_vad(force=True)
        self.commit_audio(self.buffer.take(), item_id)
        self.responses.start({}, None)
        run = self.responses.default_run
        self._idle_response_id = run.id if run is not None else None

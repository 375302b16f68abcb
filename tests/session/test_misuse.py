"""The session used wrongly: typed errors, nothing sent, nothing lost (audit findings)."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from realtime_client import connect
from realtime_client.errors import InvalidStateError, LocalProtocolError
from realtime_client.server import LocalServer


async def test_send_audio_from_another_thread_is_refused_and_breaks_nothing() -> None:
    block = np.zeros(480, np.float32)
    async with LocalServer(speed=0, responder="echo") as server:
        async with connect(url=server.url) as session:
            await session.send_audio(block)
            errors: list[BaseException] = []

            def run(call: Any) -> None:
                try:
                    asyncio.run(call())
                except BaseException as exc:
                    errors.append(exc)

            def elsewhere() -> None:
                run(lambda: session.send_audio(block))
                run(lambda: session.send_text("x"))

            thread = threading.Thread(target=elsewhere)
            thread.start()
            await asyncio.to_thread(thread.join)
            assert len(errors) == 2
            assert all(isinstance(e, InvalidStateError) for e in errors)
            assert "run_coroutine_threadsafe" in str(errors[0])
            assert session.protocol.pending_requests() == {}  # the refused request is forgotten
            # The connection is intact and only the block sent on the loop counts.
            await session.send_audio(block)
            assert session.stats.audio_sent_ms == 40.0
            assert not session.closed and session.stats.reconnects == 0
            answer = await session.respond("still here", output_modalities=["text"])
            assert answer.text == "Echo: still here"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s, item: s.truncate(item, math.nan), "audio_end_ms must be a finite number"),
        (lambda s, item: s.truncate(item, math.inf), "audio_end_ms must be a finite number"),
        (lambda s, item: s.truncate(item, "10"), "audio_end_ms must be a finite number"),
        (lambda s, item: s.truncate(item, 10, content_index=1.5), "content_index must be"),
        (lambda s, item: s.truncate(item, 10, content_index=True), "content_index must be"),
        (lambda s, item: s.retrieve_item(5), "item retrieve: item_id"),
        (lambda s, item: s.send_text(5), "text message: text"),
        (lambda s, item: s.update_session(instructions=math.nan), "session update:"),
        (lambda s, item: s.create_response(max_output_tokens=math.nan), "response create:"),
    ],
)
async def test_arguments_that_make_no_valid_event_are_a_local_protocol_error(
    call: Any, message: str
) -> None:
    async with LocalServer(speed=0, responder="echo") as server:
        async with connect(url=server.url) as session:
            answer = await session.respond("hello there")
            item = answer.items[0].id
            with pytest.raises(LocalProtocolError, match=message):
                await call(session, item)
            # Nothing half-registered: the session still answers.
            assert (await session.respond("again", output_modalities=["text"])).text


async def _blocks(n: int) -> AsyncIterator[np.ndarray]:
    for _ in range(n):
        yield np.zeros(480, np.float32)


async def test_a_source_that_ended_can_be_replaced_but_not_one_still_read() -> None:
    async with LocalServer(speed=0, responder="echo") as server:
        async with connect(url=server.url) as session:
            session.attach(_blocks(3))
            task = session._mic_task
            assert task is not None
            await asyncio.wait_for(task, 5)
            session.attach(_blocks(2))  # the first one ended: a new one is fine
            with pytest.raises(InvalidStateError, match="already attached"):
                session.attach(_blocks(1))
            await asyncio.wait_for(session._mic_task, 5)
            assert session.stats.audio_sent_ms == 100.0
        with pytest.raises(InvalidStateError, match="closed"):
            session.attach(_blocks(1))

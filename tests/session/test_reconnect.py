"""Reconnecting, over in-memory transports: backoff, close codes, restored item ids."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import numpy as np
import pytest

from realtime_client import (
    Reconnected,
    Reconnecting,
    ReconnectPolicy,
    Session,
    connect,
    memory_pair,
)
from realtime_client import events as ev
from realtime_client.errors import ConnectError, ConnectionClosedError, InvalidStateError
from realtime_client.transports import MemoryTransport, Transport

from .conftest import next_event, until

FAST = ReconnectPolicy(base_delay_s=0.01, max_delay_s=0.05, recycle_before_expiry_s=0)
SESSION_CREATED = {"type": "session.created", "event_id": "e0", "session": {"type": "realtime"}}


class RefusedTransport(MemoryTransport):
    """A connection attempt that fails the way a refused TCP connect does."""

    async def connect(self) -> None:
        raise ConnectError("connection refused", retryable=True)


class Servers:
    """A transport factory: each connection is a new memory pair whose server end says
    ``session.created`` at once and is handed to the test (``await servers.next()``)."""

    def __init__(self, refuse_first: int = 0) -> None:
        self.made = 0
        self.refuse_first = refuse_first
        self._ends: asyncio.Queue[MemoryTransport] = asyncio.Queue()
        self._greetings: list[asyncio.Future[None]] = []

    def __call__(self) -> Transport:
        self.made += 1
        if self.made <= self.refuse_first:
            return RefusedTransport()
        client, server = memory_pair()
        self._greetings.append(asyncio.ensure_future(server.send_event(SESSION_CREATED)))
        self._ends.put_nowait(server)
        return client

    async def next(self) -> MemoryTransport:
        return await asyncio.wait_for(self._ends.get(), 2)


async def recv(server: MemoryTransport) -> dict[str, Any]:
    return await asyncio.wait_for(server.recv_event(), 2)


async def nothing_sent(server: MemoryTransport) -> bool:
    await asyncio.sleep(0.05)
    return server._inbox.empty()


async def opened() -> tuple[Servers, Session, MemoryTransport]:
    """A session on :class:`Servers` with the FAST policy, and the server end it opened on."""
    servers = Servers()
    opening = asyncio.ensure_future(connect(transport=servers, reconnect=FAST))
    first = await servers.next()
    return servers, await opening, first


# --- the backoff ------------------------------------------------------------------------


def test_delay_doubles_per_attempt_up_to_the_cap() -> None:
    policy = ReconnectPolicy(base_delay_s=0.5, max_delay_s=8.0, jitter=0.0)
    assert [policy.delay(n) for n in range(1, 9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]


def test_delay_jitter_stays_within_its_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = ReconnectPolicy(base_delay_s=0.5, max_delay_s=8.0, jitter=0.25)
    for attempt, base in [(1, 0.5), (3, 2.0), (9, 8.0)]:
        delays = [policy.delay(attempt) for _ in range(300)]
        assert all(base * 0.75 <= d <= base * 1.25 for d in delays)
        assert min(delays) < base * 0.9 and max(delays) > base * 1.1  # it does spread
    # The extremes of the random draw are the bounds, never beyond (nor below zero).
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    assert policy.delay(5) == pytest.approx(8.0 * 1.25)
    monkeypatch.setattr(random, "uniform", lambda low, high: low)
    assert policy.delay(5) == pytest.approx(8.0 * 0.75)
    assert ReconnectPolicy(jitter=2.0).delay(1) == 0.0


# --- close codes and failed connects ------------------------------------------------------


@pytest.mark.parametrize("code", [1012, 1013])
async def test_restart_and_try_again_later_closes_are_retried(code: int) -> None:
    servers = Servers()
    session = await connect(transport=servers, reconnect=FAST)
    first = await servers.next()
    await first.close(code, "service restart" if code == 1012 else "try again later")
    reconnecting = await next_event(session, Reconnecting, 2.0)
    assert reconnecting.attempt == 1 and f"code {code}" in reconnecting.error
    second = await servers.next()
    reconnected = await next_event(session, Reconnected, 2.0)
    assert reconnected.attempt == 1 and servers.made == 2
    sending = asyncio.ensure_future(session.send_text("still there?", respond=False))
    create = await recv(second)
    await second.send_event(
        {"type": "conversation.item.added", "event_id": "e1", "item": create["item"]}
    )
    added = await sending
    assert added.item.id == create["item"]["id"]
    await session.close()


async def test_a_non_retryable_close_ends_the_session() -> None:
    servers = Servers()
    session = await connect(transport=servers, reconnect=FAST)
    seen: list[Any] = []
    session.on(Reconnecting, seen.append)
    first = await servers.next()
    await first.close(1008, "policy violation")
    with pytest.raises(ConnectionClosedError) as info:
        async for _ in session:
            pass
    assert info.value.code == 1008
    assert session.closed and servers.made == 1 and seen == []


async def test_a_failed_first_connect_is_retried() -> None:
    servers = Servers(refuse_first=2)
    session = await asyncio.wait_for(connect(transport=servers, reconnect=FAST), 2)
    assert servers.made == 3 and not session.closed
    await servers.next()
    await session.close()


async def test_a_failed_first_connect_fails_without_retries() -> None:
    servers = Servers(refuse_first=1)
    with pytest.raises(ConnectError, match="refused"):
        await connect(transport=servers, reconnect=ReconnectPolicy(max_attempts=0))
    assert servers.made == 1


async def test_async_for_yields_a_new_session_after_a_retryable_failure() -> None:
    servers = Servers()
    sessions: list[Session] = []
    async for session in connect(transport=servers, reconnect=False):
        sessions.append(session)
        server = await servers.next()
        if len(sessions) == 1:
            await server.close(1011, "internal error")
            try:
                async for _ in session:
                    pass
            except ConnectionClosedError as exc:
                assert exc.retryable
                continue
        break
    assert len(sessions) == 2 and sessions[0] is not sessions[1]
    assert servers.made == 2
    assert sessions[0].closed and not sessions[1].closed
    await sessions[1].close()


async def test_async_for_retries_a_failed_open() -> None:
    servers = Servers(refuse_first=1)
    policy = ReconnectPolicy(max_attempts=0, base_delay_s=0.01, recycle_before_expiry_s=0)
    async for session in connect(transport=servers, reconnect=policy):
        assert not session.closed
        break
    assert servers.made == 2


async def test_push_to_talk_survives_reconnects() -> None:
    servers = Servers()

    async def answer_update(server: MemoryTransport) -> dict[str, Any]:
        update = await recv(server)
        assert update["type"] == "session.update"
        await server.send_event(
            {"type": "session.updated", "event_id": "e_u", "session": update["session"]}
        )
        return update

    opening = asyncio.ensure_future(connect(transport=servers, push_to_talk=True, reconnect=FAST))
    first = await servers.next()
    assert (await answer_update(first))["session"]["audio"]["input"] == {"turn_detection": None}
    session = await opening
    updating = asyncio.ensure_future(session.update_session(instructions="Be brief."))
    await answer_update(first)
    await updating
    await first.close(1006)
    second = await servers.next()
    resent = (await answer_update(second))["session"]
    assert resent["audio"]["input"] == {"turn_detection": None}
    assert resent["instructions"] == "Be brief."
    await next_event(session, Reconnected, 2.0)
    await session.close()


# --- restored item ids --------------------------------------------------------------------


async def test_item_ids_the_server_changes_on_restore_are_mapped() -> None:
    servers = Servers()
    session = await connect(transport=servers, reconnect=FAST, request_timeout=2)
    first = await servers.next()

    async def add_text(server: MemoryTransport, text: str) -> str:
        sending = asyncio.ensure_future(session.send_text(text, respond=False))
        create = await recv(server)
        await server.send_event(
            {"type": "conversation.item.added", "event_id": "e", "item": create["item"]}
        )
        await sending
        return str(create["item"]["id"])

    user_a = await add_text(first, "one")
    # An assistant audio reply: restored later as its transcript text.
    assistant = {
        "id": "item_x",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_audio", "transcript": "Hi there."}],
    }
    await first.send_event(
        {
            "type": "response.created",
            "event_id": "e_rc",
            "response": {"id": "resp_1", "status": "in_progress", "conversation_id": "conv_1"},
        }
    )
    await first.send_event(
        {
            "type": "response.output_item.added",
            "event_id": "e_oi",
            "response_id": "resp_1",
            "output_index": 0,
            "item": {**assistant, "status": "in_progress", "content": []},
        }
    )
    await first.send_event(
        {
            "type": "conversation.item.added",
            "event_id": "e_ia",
            "previous_item_id": user_a,
            "item": {**assistant, "status": "in_progress", "content": []},
        }
    )
    await first.send_event(
        {
            "type": "response.output_audio.delta",
            "event_id": "e_ad",
            "response_id": "resp_1",
            "item_id": "item_x",
            "output_index": 0,
            "content_index": 0,
            "delta": "AAAAAAAAAAAAAAAA" * 300,  # 3,600 bytes: 75 ms
        }
    )
    await first.send_event(
        {
            "type": "response.done",
            "event_id": "e_rd",
            "response": {
                "id": "resp_1",
                "status": "completed",
                "conversation_id": "conv_1",
                "output": [assistant],
            },
        }
    )
    user_b = await add_text(first, "two")
    user_c = await add_text(first, "three")
    assert [i.id for i in session.conversation] == [user_a, "item_x", user_b, user_c]

    await first.close(1006)
    second = await servers.next()
    creates = [await recv(second) for _ in range(4)]
    assert [c["item"]["id"] for c in creates] == [user_a, "item_x", user_b, user_c]
    assert creates[1]["item"]["content"] == [{"type": "output_text", "text": "Hi there."}]
    # The server gives two items new ids, refuses one, keeps the last one's id.
    await second.send_event(
        {
            "type": "conversation.item.added",
            "event_id": "s1",
            "previous_item_id": None,
            "item": {**creates[0]["item"], "id": "srv_a"},
        }
    )
    await second.send_event(
        {
            "type": "conversation.item.added",
            "event_id": "s2",
            "previous_item_id": "srv_a",
            "item": {**creates[1]["item"], "id": "srv_x"},
        }
    )
    await second.send_event(
        {
            "type": "error",
            "event_id": "s3",
            "error": {
                "type": "invalid_request_error",
                "code": "invalid_value",
                "message": "refused",
                "event_id": creates[2]["event_id"],
            },
        }
    )
    await second.send_event(
        {
            "type": "conversation.item.added",
            "event_id": "s4",
            "previous_item_id": "srv_x",
            "item": creates[3]["item"],
        }
    )
    reconnected = await next_event(session, Reconnected, 2.0)
    assert reconnected.items == 3
    assert session.item_id_map == {user_a: "srv_a", "item_x": "srv_x", user_b: None}
    # The server's copies take the old items' places (the refused one stays local).
    assert [i.id for i in session.conversation] == ["srv_a", "srv_x", user_b, user_c]
    assert session.conversation.get(user_a) is None
    restored = session.conversation.get("srv_x")
    assert restored is not None and restored.text == "Hi there." and restored.audio_ms == 0

    # The helpers take the old ids and send the new ones.
    assert await session.truncate("item_x", 50) is None  # the server's copy has no audio
    with pytest.raises(InvalidStateError, match="re-created"):
        await session.delete_item(user_b)
    assert await nothing_sent(second)

    retrieving = asyncio.ensure_future(session.retrieve_item("item_x"))
    retrieve = await recv(second)
    assert retrieve["item_id"] == "srv_x"
    await second.send_event(
        {
            "type": "conversation.item.retrieved",
            "event_id": "s5",
            "item": {**assistant, "id": "srv_x"},
        }
    )
    assert (await retrieving).item.id == "srv_x"

    creating = asyncio.ensure_future(
        session.create_item(
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]},
            previous_item_id="item_x",
        )
    )
    create = await recv(second)
    assert create["previous_item_id"] == "srv_x"
    await second.send_event(
        {
            "type": "conversation.item.added",
            "event_id": "s6",
            "previous_item_id": "srv_x",
            "item": create["item"],
        }
    )
    await creating

    deleting = asyncio.ensure_future(session.delete_item(user_a))
    delete = await recv(second)
    assert delete["item_id"] == "srv_a"
    await second.send_event(
        {"type": "conversation.item.deleted", "event_id": "s7", "item_id": "srv_a"}
    )
    assert isinstance(await deleting, ev.ConversationItemDeleted)
    assert "srv_a" not in [i.id for i in session.conversation]

    # A second reconnect: ids mapped before follow the newest ones, and the item
    # refused last time is offered again.
    await second.close(1006)
    third = await servers.next()
    order = [i.id for i in session.conversation]
    creates = [await recv(third) for _ in range(len(order))]
    assert [c["item"]["id"] for c in creates] == order
    for create in creates:
        new_id = "srv_x2" if create["item"]["id"] == "srv_x" else create["item"]["id"]
        await third.send_event(
            {
                "type": "conversation.item.added",
                "event_id": f"t_{new_id}",
                "item": {**create["item"], "id": new_id},
            }
        )
    await next_event(session, Reconnected, 2.0)
    assert session.item_id_map == {user_a: "srv_a", "item_x": "srv_x2", "srv_x": "srv_x2"}
    retrieving = asyncio.ensure_future(session.retrieve_item("item_x"))
    assert (await recv(third))["item_id"] == "srv_x2"
    retrieving.cancel()
    await session.close()


async def test_a_server_that_numbers_its_items_may_reuse_an_old_id_on_restore() -> None:
    """Restored items renumbered onto each other's old ids: nothing is lost or mixed up."""
    servers = Servers()
    session = await connect(transport=servers, reconnect=FAST, request_timeout=2)
    first = await servers.next()
    ids = []
    for text in ("one", "two"):
        sending = asyncio.ensure_future(session.send_text(text, respond=False))
        create = await recv(first)
        await first.send_event(
            {"type": "conversation.item.added", "event_id": "e", "item": create["item"]}
        )
        await sending
        ids.append(str(create["item"]["id"]))
    one, two = ids

    await first.close(1006)
    second = await servers.next()
    creates = [await recv(second) for _ in range(2)]
    # The server numbers items itself: "one" becomes item_new, "two" takes one's old id.
    previous = None
    for create, new_id in zip(creates, ("item_new", one), strict=True):
        await second.send_event(
            {
                "type": "conversation.item.added",
                "event_id": f"s_{new_id}",
                "previous_item_id": previous,
                "item": {**create["item"], "id": new_id},
            }
        )
        previous = new_id
    reconnected = await next_event(session, Reconnected, 2.0)
    assert reconnected.items == 2
    assert [i.id for i in session.conversation] == ["item_new", one]
    assert [i.text for i in session.conversation] == ["one", "two"]
    # The id the server uses now names its item; the old "two" id leads to it as well.
    assert session.item_id_map == {two: one}
    deleting = asyncio.ensure_future(session.delete_item(two))
    assert (await recv(second))["item_id"] == one
    await second.send_event({"type": "conversation.item.deleted", "event_id": "d", "item_id": one})
    await deleting
    assert [i.text for i in session.conversation] == ["one"]
    await session.close()


# --- no speech lost across a drop (the hardening issue's items 9, 10) ------------------


async def _appended_ms(server: MemoryTransport, expect_ms: float) -> float:
    """Audio the session appended on this connection until ``expect_ms`` arrived, in ms."""
    import base64

    total = 0.0
    while total < expect_ms:
        event = await recv(server)
        if event["type"] == "input_audio_buffer.append":
            total += len(base64.b64decode(str(event["audio"]))) / 48
    return total


async def speak(session: Session, blocks: int, level: float = 0.1) -> None:
    """Send ``blocks`` blocks of 20 ms at 24 kHz, each at a constant ``level``."""
    for _ in range(blocks):
        await session.send_audio(np.full(480, level, np.float32), 24_000)


def committed(**extra: Any) -> dict[str, Any]:
    """``input_audio_buffer.committed`` of the user item ``item_u``."""
    return {"type": "input_audio_buffer.committed", "event_id": "e_c", "item_id": "item_u", **extra}


async def test_speech_the_lost_server_had_not_committed_is_sent_again() -> None:
    servers, session, first = await opened()
    await speak(session, 30)  # 600 ms of an utterance, delivered...
    assert await _appended_ms(first, 600) == 600
    await first.close(1006)  # ...and gone with the server session, uncommitted
    second = await servers.next()
    # The new server session gets the 600 ms again before anything else.
    assert await _appended_ms(second, 600) == 600
    reconnected = await next_event(session, Reconnected, 2.0)
    assert reconnected.flushed_audio_ms == 600
    assert session.stats.resent_audio_ms == 600
    assert session.stats.dropped_audio_ms == 0
    # Once the server commits, nothing is kept for a resend.
    await second.send_event(committed())
    await asyncio.sleep(0.05)
    assert session._uncommitted.held_ms == 0
    await session.close()


async def test_committed_speech_is_not_sent_again() -> None:
    servers, session, first = await opened()
    await speak(session, 10)
    await _appended_ms(first, 200)
    await first.send_event(committed())
    await asyncio.sleep(0.05)
    await first.close(1006)
    second = await servers.next()
    reconnected = await next_event(session, Reconnected, 2.0)
    assert reconnected.flushed_audio_ms == 0
    assert await nothing_sent(second)
    await session.close()


async def test_audio_sent_after_a_vad_commit_point_is_kept_for_a_resend() -> None:
    # Found by bench.drops: a VAD commit released everything sent so far, including the
    # blocks the app sent after the point where the server committed (they sit in the
    # server's next buffer); a drop before the next commit lost them, uncounted.
    servers, session, first = await opened()
    await speak(session, 15)  # 300 ms of speech...
    await speak(session, 5, level=0.2)  # ...and 100 ms sent after VAD heard it end
    await _appended_ms(first, 400)
    await first.send_event(
        {
            "type": "input_audio_buffer.speech_stopped",
            "event_id": "e_s",
            "audio_end_ms": 300,
            "item_id": "item_u",
        }
    )
    await first.send_event(committed())
    await until(lambda: session._uncommitted.held_ms == 100)
    await first.close(1006)
    second = await servers.next()
    assert await _appended_ms(second, 100) == 100  # the 100 ms, again
    reconnected = await next_event(session, Reconnected, 2.0)
    assert reconnected.flushed_audio_ms == 100 and session.stats.dropped_audio_ms == 0
    await session.close()


async def test_our_own_commit_releases_only_what_was_sent_before_it() -> None:
    _, session, first = await opened()
    await speak(session, 10)
    committing = asyncio.ensure_future(session.commit())
    await _appended_ms(first, 200)
    commit = await recv(first)
    assert commit["type"] == "input_audio_buffer.commit"
    await speak(session, 3)  # sent while the commit is on its way: the next buffer's
    await first.send_event(committed(previous_item_id=None))
    await committing
    assert session._uncommitted.held_ms == 60
    await session.close()


# --- requests across a drop (the hardening issue's item 12) ------------------------------


async def test_response_creates_survive_a_drop_other_requests_fail_clearly() -> None:
    servers, session, first = await opened()
    sent = asyncio.ensure_future(session.create_response())  # sent, never answered
    assert (await recv(first))["type"] == "response.create"
    committing = asyncio.ensure_future(session.commit())  # in flight: cannot be re-sent
    assert (await recv(first))["type"] == "input_audio_buffer.commit"
    await first.close(1006)
    with pytest.raises(ConnectionClosedError):
        await asyncio.wait_for(committing, 2)
    second = await servers.next()
    await next_event(session, Reconnected, 2.0)
    # The unanswered create is asked again on the new connection, and answered there.
    again = await recv(second)
    assert again["type"] == "response.create"
    await second.send_event(
        {
            "type": "response.created",
            "event_id": "c1",
            "response": {"id": "resp_new", "status": "in_progress", "conversation_id": "c"},
        }
    )
    created = await asyncio.wait_for(sent, 2)
    assert created.response.id == "resp_new"
    await session.close()

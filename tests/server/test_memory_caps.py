"""The local server's memory stays bounded over a long conversation (#14 item 13).

Audio is kept for the last items only (``audio_items_kept`` / ``audio_kept_s``), and a
client that never reads cannot make its connection's outbox grow without bound
(``max_outbox_bytes``). Sizes are asserted, never timings.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
from typing import Any

import numpy as np
import orjson
import pytest
import websockets

from realtime_client.server import LocalServer, ServerConfigError, _connection
from realtime_client.server._conversation import AudioStore

from .conftest import Client, open_client, speech, user_text


async def _non_reader(server: LocalServer) -> Client:
    """A client that stops reading at once: a small receive buffer (no autotuning, which
    may grow it to 32 MB on loopback), no compression (a tone deflates to little)."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    return await open_client(server, max_queue=1, max_size=None, sock=sock, compression=None)


def _samples(ms: int) -> np.ndarray:
    return np.ones(24 * ms, dtype=np.int16)


def test_audio_store_keeps_the_last_items_within_both_caps() -> None:
    store = AudioStore(max_items=3, max_ms=1000.0)
    for n in range(50):
        store[f"item_{n}"] = _samples(200)
        assert len(store) <= 3
        assert store.kept_ms <= 1000.0
    assert list(store) == ["item_47", "item_48", "item_49"]
    # Lengths stay known for every item; the dropped ones are told apart.
    assert store.audio_ms["item_0"] == pytest.approx(200.0)
    assert store.evicted("item_0") and not store.evicted("item_49")
    assert not store.evicted("never_seen")
    # The ms cap: 200 + 400 + 400 ms fit in 1000 ms; the older 200 ms items go.
    store["long_a"] = _samples(400)
    store["long_b"] = _samples(400)
    assert list(store) == ["item_49", "long_a", "long_b"]
    # The newest item is kept however long it is.
    store["huge"] = _samples(5000)
    assert list(store) == ["huge"]
    assert store.kept_ms == pytest.approx(5000.0)
    # Replacing and popping keep the running total right.
    store["huge"] = _samples(100)
    assert store.kept_ms == pytest.approx(100.0)
    assert store.pop("huge") is not None and store.kept_ms == 0.0
    assert "huge" not in store.audio_ms and store.pop("huge") is None


@pytest.mark.parametrize(("items", "ms"), [(0, 1.0), (1, 0.0), (1, -5.0)])
def test_audio_store_refuses_bad_caps(items: int, ms: float) -> None:
    with pytest.raises(ValueError):
        AudioStore(max_items=items, max_ms=ms)


@pytest.mark.parametrize(
    "kwargs", [{"audio_items_kept": 0}, {"audio_kept_s": 0}, {"max_outbox_bytes": 0}]
)
def test_server_refuses_bad_caps(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ServerConfigError):
        LocalServer(**kwargs)


async def _turn(client: Client, ms: int) -> tuple[str, str]:
    """One push-to-talk turn echoed back: ``(user item id, assistant item id)``."""
    await client.append(speech(ms))
    await client.send({"type": "input_audio_buffer.commit"})
    committed = (await client.until("input_audio_buffer.committed"))[-1]
    await client.send({"type": "response.create"})
    done = (await client.until("response.done"))[-1]
    return committed["item_id"], done["response"]["output"][0]["id"]


async def test_many_turns_keep_audio_for_the_last_items_only() -> None:
    async with LocalServer(speed=0, seed=1, audio_items_kept=4, audio_kept_s=60.0) as server:
        client = await open_client(server)
        await client.until("session.created")
        await client.send(
            {
                "type": "session.update",
                "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
            }
        )
        await client.until("session.updated")
        turns = [await _turn(client, 200) for _ in range(30)]
        session = server.sessions[0]
        store = session.item_audio
        assert len(store) <= 4  # 60 audio items went through
        assert len(session.order) == 60  # the text of every item stays
        assert len(store.audio_ms) == 60  # and the length of its audio (for usage)

        first_user, first_reply = turns[0]
        await client.send({"type": "conversation.item.retrieve", "item_id": first_user})
        error = (await client.until("error"))[-1]["error"]
        assert error["code"] == "invalid_value" and error["param"] == "item_id"
        assert "no longer kept" in error["message"]
        await client.send(
            {
                "type": "conversation.item.truncate",
                "item_id": first_reply,
                "content_index": 0,
                "audio_end_ms": 10,
            }
        )
        error = (await client.until("error"))[-1]["error"]
        assert error["code"] == "invalid_value" and "no longer kept" in error["message"]

        last_user, last_reply = turns[-1]
        await client.send({"type": "conversation.item.retrieve", "item_id": last_user})
        item = (await client.until("conversation.item.retrieved"))[-1]["item"]
        audio = base64.b64decode(item["content"][0]["audio"])
        assert len(audio) == 200 * 24 * 2
        await client.send(
            {
                "type": "conversation.item.truncate",
                "item_id": last_reply,
                "content_index": 0,
                "audio_end_ms": 100,
            }
        )
        assert (await client.until("conversation.item.truncated"))[-1]["audio_end_ms"] == 100
        await client.ws.close()


async def test_a_client_that_never_reads_is_closed_not_buffered_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_connection, "_CLOSE_TIMEOUT_S", 0.5)
    # Generation waits for a client that reads, until its writer stalls this long.
    monkeypatch.setattr(_connection, "_STALL_S", 0.1)
    outbox_cap = 256 * 1024
    conns: list[Any] = []
    async with LocalServer(speed=0, seed=1, max_outbox_bytes=outbox_cap) as server:
        server.on_session = lambda s: conns.append(s.sink)
        # The kernel's buffers fill, then the server's outbox.
        stuck = await _non_reader(server)
        await stuck.send(
            {
                "type": "session.update",
                "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
            }
        )
        peak = 0
        for _ in range(40):  # up to 40 × 10 s of echoed audio, about 25 MB of events
            await stuck.append(speech(10_000), chunk_ms=1000)
            await stuck.send({"type": "input_audio_buffer.commit"})
            await stuck.send({"type": "response.create"})
            await asyncio.sleep(0.02)
            peak = max(peak, conns[0].queued_bytes)
            if conns[0].closed_reason is not None:
                break
        conn = conns[0]
        assert conn.closed_reason == "client not reading"
        assert peak <= outbox_cap + 2 * 24 * 100 * 2  # at most one delta over the cap
        for _ in range(200):
            if not server.sessions:
                break
            await asyncio.sleep(0.05)
        assert not server.sessions  # the connection is gone, its session closed
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(stuck.ws.recv(), 5)
        # A well-behaved client is served as before.
        good = await open_client(server)
        assert (await good.recv())["type"] == "session.created"
        await good.send({"type": "response.create"})
        assert (await good.until("response.done"))[-1]["response"]["status"] == "completed"
        await good.ws.close()


async def test_a_client_that_never_reads_but_keeps_sending_is_cut_not_deadlocked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The close does not wait forever on a peer that never reads.

    Each 10 kB message is echoed twice (added, done). Past the cap the 1008 close frame
    sits behind everything the client never read, and the server stops reading; the
    client's sends fill its own buffers. Unless the server cuts the connection after
    ``_CLOSE_TIMEOUT_S``, both ends wait on each other for ever (found by bench.abuse).
    """
    monkeypatch.setattr(_connection, "_CLOSE_TIMEOUT_S", 0.5)
    conns: list[Any] = []
    async with LocalServer(speed=0, seed=1, max_outbox_bytes=256 * 1024) as server:
        server.on_session = lambda s: conns.append(s.sink)
        stuck = await _non_reader(server)
        item = user_text("x" * 10_000)

        async def send_until_cut() -> websockets.ConnectionClosed:
            while True:
                try:
                    await stuck.send(item)
                except websockets.ConnectionClosed as exc:
                    return exc
                await asyncio.sleep(0.001)

        closed = await asyncio.wait_for(send_until_cut(), 30)
        assert conns[0].closed_reason == "client not reading"
        assert closed.rcvd is None  # cut: the 1008 frame never got through


async def test_a_client_that_reads_at_last_gets_the_1008_and_nothing_is_cut_after(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Past the cap the close waits behind the unread events; the client then reads them
    # all before the cut: it gets the 1008, and the cut timer left behind must find the
    # connection closed and do nothing (it once failed in the event loop).
    monkeypatch.setattr(_connection, "_CLOSE_TIMEOUT_S", 1.5)
    conns: list[Any] = []
    async with LocalServer(speed=0, seed=1, max_outbox_bytes=256 * 1024) as server:
        server.on_session = lambda s: conns.append(s.sink)
        slow = await _non_reader(server)
        for _ in range(400):
            if conns and conns[0].closed_reason is not None:
                break
            await slow.send(user_text("x" * 10_000))
            await asyncio.sleep(0.001)
        assert conns[0].closed_reason == "client not reading"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(slow.ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        await asyncio.sleep(2.0)  # past the cut timer
    assert not [r for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.ERROR]


async def test_a_conversation_keeps_its_last_items_and_forgets_the_oldest() -> None:
    async with LocalServer(speed=0, seed=1, items_kept=5) as server:
        client = await open_client(server)
        await client.until("session.created")
        ids = []
        for n in range(12):
            await client.send(user_text(f"message {n}"))
            ids.append((await client.until("conversation.item.done"))[-1]["item"]["id"])
        conversation = server.sessions[0].conversation
        assert conversation.order == ids[-5:]
        assert conversation.text_chars == sum(
            len(orjson.dumps(conversation.items[i])) for i in ids[-5:]
        )
        # A forgotten item is said to be so; a kept one is still there.
        await client.send({"type": "conversation.item.retrieve", "item_id": ids[0]})
        error = (await client.until("error"))[-1]["error"]
        assert error["code"] == "item_retrieve_invalid_item_id"
        assert "no longer kept" in error["message"]
        await client.send({"type": "conversation.item.retrieve", "item_id": ids[-1]})
        retrieved = (await client.until("conversation.item.retrieved"))[-1]
        assert retrieved["item"]["content"][0]["text"] == "message 11"
        await client.ws.close()


async def test_a_conversation_keeps_a_bounded_amount_of_text_responses_included() -> None:
    cap = 100_000
    async with LocalServer(speed=0, seed=1, responder="echo", text_kept_chars=cap) as server:
        client = await open_client(server)
        await client.until("session.created")
        conversation = server.sessions[0].conversation
        for n in range(10):
            # Each 30 kB message is echoed by a 30 kB reply: both count.
            await client.say(f"{n} " + "x" * 30_000, {"output_modalities": ["text"]})
            await client.until("response.done")
            assert conversation.text_chars <= cap + 31_000
        assert len(conversation.order) < 8
        assert conversation.items[conversation.order[-1]]["role"] == "assistant"
        # One item over the whole cap is kept (the newest always stays), alone.
        await client.send(user_text("y" * 150_000))
        await client.until("conversation.item.done")
        assert len(conversation.order) == 1 and conversation.text_chars > cap
        await client.ws.close()


@pytest.mark.parametrize("option", ["items_kept", "text_kept_chars"])
def test_the_conversation_caps_must_be_positive_ints(option: str) -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ServerConfigError, match=option):
            LocalServer(**{option: bad})

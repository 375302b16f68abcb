"""Push-to-talk: press Enter to talk, Enter again to send; Ctrl-D quits.

    python examples/push_to_talk.py

Server VAD is off (``turn_detection: null``): the microphone reaches the session only
while you talk, and the release commits the audio and asks for a response. Pressing
while the assistant speaks interrupts it (playback stops, the item is truncated).
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any

from _local import realtime_url

from realtime_client import connect, events
from realtime_client.audio import Microphone, Speaker

SESSION = {"audio": {"input": {"turn_detection": None}}}


def keypresses() -> asyncio.Queue[str]:
    """Lines typed on stdin ("" at the end), read on a daemon thread so exit never waits."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, "")

    threading.Thread(target=read, daemon=True).start()
    return queue


async def main() -> None:
    talking = False

    async def while_talking(mic: Microphone) -> AsyncIterator[Any]:
        async for block in mic:
            if talking:
                yield block

    async with (
        realtime_url() as url,
        connect(url=url, session=SESSION) as session,
        Microphone() as mic,
        Speaker() as speaker,
    ):
        session.attach(while_talking(mic), speaker)
        session.on(
            events.ResponseOutputAudioTranscriptDone,
            lambda done: print("assistant:", done.transcript, flush=True),
        )
        keys = keypresses()
        while True:
            print("[Enter] talk", flush=True)
            if not await keys.get():
                break
            await session.push_to_talk_press()  # stop playback, cancel, clear the buffer
            talking = True
            print("recording... [Enter] send", flush=True)
            if not await keys.get():
                break
            talking = False
            await session.push_to_talk_release()  # commit + response.create


if __name__ == "__main__":
    asyncio.run(main())

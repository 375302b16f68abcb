"""Voice chat in 30 lines: microphone in, the model's voice out, barge-in included.

    python examples/voice_chat.py        # speak; Ctrl-C stops

Talks to REALTIME_URL if set, else to OpenAI with OPENAI_API_KEY, else to an embedded
local server whose "model" plays your words back.
"""

from __future__ import annotations

import asyncio
import contextlib

from _local import realtime_url

from realtime_client import connect, events
from realtime_client.audio import Microphone, Speaker

# Ask for a transcript of what the user says, to print it.
SESSION = {"audio": {"input": {"transcription": {"model": "gpt-4o-mini-transcribe"}}}}


async def main() -> None:
    async with (
        realtime_url() as url,
        connect(url=url, session=SESSION, instructions="Be brief.") as session,
        Microphone() as mic,
        Speaker() as speaker,
    ):
        session.attach(mic, speaker)  # audio in, replies out, barge-in stops playback
        async for event in session:
            match event:
                case events.ConversationItemInputAudioTranscriptionCompleted():
                    print("you:", event.transcript, flush=True)
                case events.ResponseOutputAudioTranscriptDone():
                    print("assistant:", event.transcript, flush=True)
                case events.Error():
                    print("server said:", event.error.message, flush=True)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())

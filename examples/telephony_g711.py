"""Telephony-style session: G.711 µ-law at 8 kHz both ways, as a phone line carries it.

    python examples/telephony_g711.py [caller.wav] [reply.wav]

The reply goes to ``out/telephony/reply_8k.wav`` unless a path is given.

The session sends and receives ``audio/pcmu``: 8 kHz audio goes in (the session encodes
it), and each output delta is µ-law bytes ready for an RTP payload; here they are
decoded and saved as an 8 kHz WAV file.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
from _local import realtime_url

from realtime_client import connect, events
from realtime_client.audio import read_wav_mono, ulaw_decode, write_wav

PHONE_RATE = 8_000  # Hz
G711 = {"type": "audio/pcmu"}
SESSION = {
    "audio": {
        "input": {"format": G711, "turn_detection": None},  # we commit the turn ourselves
        "output": {"format": G711},
    }
}


def caller_audio(path: str | None) -> npt.NDArray[np.float32]:
    """8 kHz mono samples: a WAV file, or one second of a two-tone stand-in."""
    if path:
        return read_wav_mono(path, PHONE_RATE)[0]
    t = np.arange(PHONE_RATE) / PHONE_RATE
    return (0.2 * np.sin(2 * np.pi * 350 * t) + 0.2 * np.sin(2 * np.pi * 440 * t)).astype(
        np.float32
    )


async def main(path: str | None = None, out: str = "out/telephony/reply_8k.wav") -> None:
    audio_in = caller_audio(path)
    codes = bytearray()
    async with realtime_url() as url, connect(url=url, session=SESSION) as session:
        for start in range(0, len(audio_in), 160):  # 20 ms frames, as RTP carries them
            await session.send_audio(audio_in[start : start + 160], sample_rate=PHONE_RATE)
        await session.commit()
        await session.create_response()
        async for event in session:
            if isinstance(event, events.ResponseOutputAudioDelta):
                codes += event.audio_bytes()  # µ-law, 1 byte per sample at 8 kHz
            elif isinstance(event, events.ResponseOutputAudioTranscriptDone):
                print("assistant:", event.transcript)
            elif isinstance(event, events.ResponseDone):
                break
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_wav(out, ulaw_decode(bytes(codes)), PHONE_RATE)
    print(f"reply: {len(codes)} µ-law bytes = {len(codes) / 8:.0f} ms at 8 kHz -> {out}")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:3]))

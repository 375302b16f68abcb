"""Text-only session: no audio at all; text in, streamed text out, usage at the end.

python examples/text_only.py "Tell me a joke about latency."
"""

from __future__ import annotations

import asyncio
import sys

from _local import realtime_url

from realtime_client import connect, events


async def main(prompt: str) -> None:
    async with (
        realtime_url() as url,
        connect(url=url, session={"output_modalities": ["text"]}) as session,
    ):
        await session.send_text(prompt)
        async for event in session:
            if isinstance(event, events.ResponseOutputTextDelta):
                print(event.delta, end="", flush=True)
            elif isinstance(event, events.ResponseDone):
                usage = session.stats.usage
                print(
                    f"\n[{usage.input_tokens} tokens in, {usage.output_tokens} out, "
                    f"${session.stats.cost_usd:.5f}]"
                )
                break


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or "Hello!"))

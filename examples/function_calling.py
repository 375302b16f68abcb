"""Function calling: the model calls your Python functions; the session runs them.

    python examples/function_calling.py "What's the weather in Paris? And 17 * 23?"

Register plain (sync or async) functions with ``connect(tools=[...])``: their signature
and docstring become the tool schema, the session validates the arguments, runs the
function, sends its result back and asks for the next response by itself.
"""

from __future__ import annotations

import asyncio
import json
import operator
import re
import sys

from _local import realtime_url

from realtime_client import connect, events
from realtime_client.server import (
    FunctionCallReply,
    MessageReply,
    Reply,
    Responder,
    ResponseContext,
)


async def get_weather(city: str) -> dict[str, object]:
    """Current weather for a city."""
    return {"city": city, "temperature_c": 18, "conditions": "sunny"}  # call a real API here


def calculate(expression: str) -> float:
    """Compute "a op b" where op is one of + - * /, e.g. "17 * 23"."""
    match = re.fullmatch(r"\s*(-?[\d.]+)\s*([-+*/])\s*(-?[\d.]+)\s*", expression)
    if match is None:
        raise ValueError(f"expected 'a op b', got {expression!r}")
    ops = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
    return float(ops[match[2]](float(match[1]), float(match[3])))


TOOLS = [get_weather, calculate]


class StandInModel(Responder):
    """Plays the model on the local server: calls both tools, then reads their results."""

    async def respond(self, ctx: ResponseContext) -> Reply:
        if ctx.function_output is not None:
            results = [i["output"] for i in ctx.items if i.get("type") == "function_call_output"]
            return Reply((MessageReply("The tools said: " + "; ".join(results)),))
        return Reply(
            (
                FunctionCallReply("get_weather", json.dumps({"city": "Paris"})),
                FunctionCallReply("calculate", json.dumps({"expression": "17 * 23"})),
            )
        )


async def main(question: str) -> None:
    async with (
        realtime_url(responder=StandInModel()) as url,
        connect(url=url, tools=TOOLS, session={"output_modalities": ["text"]}) as session,
    ):
        session.on(
            events.ResponseFunctionCallArgumentsDone,
            lambda call: print(f"model calls {call.name}({call.arguments})", flush=True),
        )
        await session.send_text(question)
        async for event in session:
            if isinstance(event, events.ResponseOutputTextDone):
                print("assistant:", event.text, flush=True)
            elif isinstance(event, events.ResponseDone):
                calls = [o for o in event.response.output or [] if o.type == "function_call"]
                if not calls:  # a response that called tools is followed by another one
                    break


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or "What's the weather in Paris? And 17 * 23?"))

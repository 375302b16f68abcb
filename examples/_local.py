"""Where the examples connect: ``REALTIME_URL``, the OpenAI API, or an embedded local server.

* ``REALTIME_URL`` set: that server (e.g. ``http://127.0.0.1:8000/v1`` from
  ``realtime-server``);
* else ``OPENAI_API_KEY`` set: the OpenAI API;
* else: a local server started in this process, so every example runs offline.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from realtime_client.endpoint import use_local_server
from realtime_client.server import LocalServer, Responder

__all__ = ["realtime_url"]


@asynccontextmanager
async def realtime_url(responder: str | Responder = "echo") -> AsyncIterator[str | None]:
    """Yield the base URL to pass to ``connect(url=...)`` (``None`` means OpenAI).

    Args:
        responder: What plays the model when the local server is used.
    """
    url = os.environ.get("REALTIME_URL") or None
    if not use_local_server(url):
        yield url
        return
    async with LocalServer(responder=responder) as server:
        print(f"(no OPENAI_API_KEY: using a local server at {server.url})", flush=True)
        yield server.url

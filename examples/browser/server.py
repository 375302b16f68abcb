"""The browser pattern: a token endpoint that mints ephemeral keys, and one page.

Run ``python examples/browser/server.py`` and open http://127.0.0.1:8080/. The page asks
``POST /token`` for an ephemeral ``ek_…`` key (this process keeps the real key; the page
never sees it) and then calls the Realtime API directly over WebRTC: microphone in, voice
out, live transcript. With ``OPENAI_API_KEY`` it talks to OpenAI; without it (and without
``REALTIME_URL``) an embedded local server answers the call, so it works offline.

Needs the ``server`` and ``webrtc`` extras (aiohttp, aiortc).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from realtime_client.client_secrets import mint_ephemeral_key
from realtime_client.endpoint import base_url, use_local_server
from realtime_client.server import LocalServer

PAGE = Path(__file__).with_name("index.html")

__all__ = ["make_app", "main"]


def make_app(
    realtime_base: str,
    *,
    api_key: str | None = None,
    session: dict[str, Any] | None = None,
    on_results: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
) -> web.Application:
    """The page, ``POST /token``, and (for tests) ``POST /results``.

    Args:
        realtime_base: The Realtime API base URL the page calls (``…/v1``).
        api_key: The real key (default ``OPENAI_API_KEY``); it never leaves this process.
        session: The session config the minted keys carry.
        on_results: Receives what the page measured (its tests post it).
    """

    async def page(_: web.Request) -> web.FileResponse:
        return web.FileResponse(PAGE)

    async def token(_: web.Request) -> web.Response:
        secret = await mint_ephemeral_key(
            session or {"model": "gpt-realtime"},
            api_key=api_key,
            url=realtime_base,
            expires_after_s=120,
        )
        return web.json_response(
            {"value": secret.value, "expires_at": secret.expires_at, "base_url": realtime_base}
        )

    async def results(request: web.Request) -> web.Response:
        if on_results is not None:
            await on_results(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_post("/token", token)
    app.router.add_post("/results", results)
    return app


async def serve(port: int) -> None:
    """Serve the page until interrupted (starting a local server if there is no key)."""
    url = os.environ.get("REALTIME_URL") or None
    local: LocalServer | None = None
    if use_local_server(url):
        local = LocalServer(responder="echo")
        await local.start()
        url = local.url
        print(f"no OPENAI_API_KEY: the page calls a local server at {url}", flush=True)
    runner = web.AppRunner(make_app(base_url(url)))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"open http://127.0.0.1:{port}/", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        if local is not None:
            await local.stop()


def main() -> None:
    """``python examples/browser/server.py [--port 8080]``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

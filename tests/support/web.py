"""Stand-in HTTP partners for the AS2 transport tests: aiohttp apps on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.typedefs import Handler


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on a free 127.0.0.1 port until the block ends; yields its base URL
    (``http://127.0.0.1:PORT``)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def partner(handler: Handler, path: str = "/as2") -> AsyncIterator[str]:
    """A partner that answers every POST to ``path`` with ``handler``; yields that URL."""
    app = web.Application()
    app.router.add_post(path, handler)
    async with serving(app) as base:
        yield base + path

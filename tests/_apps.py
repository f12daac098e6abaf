"""An aiohttp.web application served on 127.0.0.1 for the length of a block."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

from aiohttp import web


@contextlib.asynccontextmanager
async def served(app: web.Application, port: int = 0) -> AsyncIterator[int]:
    """Serve ``app`` on 127.0.0.1 (a free port unless given); yields the port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def free_port() -> int:
    """A port free on 127.0.0.1 a moment ago, for a server started later or elsewhere."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port

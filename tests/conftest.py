"""Fixtures shared by the core tests: local servers, and clients pointed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from _samples import APP_TOKEN, CLIENT_ID, CLIENT_SECRET, FAST_RETRY, TOKEN_PATH
from _server import LocalServer

from lean_async import LeanClient


@pytest.fixture
async def make_server() -> AsyncIterator[Callable[[], Any]]:
    """Start any number of local servers; all are stopped after the test."""
    servers: list[LocalServer] = []

    async def start() -> LocalServer:
        server = await LocalServer().start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def server(make_server: Callable[[], Any]) -> LocalServer:
    result: LocalServer = await make_server()
    return result


@pytest.fixture
async def make_client(server: LocalServer) -> AsyncIterator[Callable[..., LeanClient]]:
    """``make_client(**options)``: a LeanClient for ``server`` with an app token and fast
    retries unless the options say otherwise; closed after the test."""
    clients: list[LeanClient] = []

    def make(**options: Any) -> LeanClient:
        options.setdefault("base_url", server.url)
        options.setdefault("retry", FAST_RETRY)
        if not {"access_token", "client_id", "client_secret"} & options.keys():
            options.setdefault("app_token", APP_TOKEN)
        if "client_id" in options:
            options.setdefault("auth_url", server.url + TOKEN_PATH)
        client = LeanClient(environ={}, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
def oauth_client(make_client: Callable[..., LeanClient]) -> LeanClient:
    """A client using OAuth2 client credentials against ``server``'s /oauth2/token."""
    return make_client(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)

"""OAuth2 client credentials against a local token endpoint: one token request however many
calls, reuse until shortly before expiry, one refresh on a 401, customer-scoped tokens."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import parse_qs

import pytest
from _samples import CLIENT_ID, CLIENT_SECRET, CUSTOMER_ID, LIST_PATH, TOKEN_PATH
from _server import LocalServer, issue_tokens, lean_error, reply

from lean_async import (
    AccessToken,
    AuthenticationError,
    ConfigurationError,
    LeanClient,
    ServerError,
)


def _form(server: LocalServer, index: int = 0) -> dict[str, list[str]]:
    return parse_qs(server.seen(TOKEN_PATH)[index].body.decode())


async def test_token_request_posts_the_client_credentials_form(
    server: LocalServer, oauth_client: LeanClient
) -> None:
    server.script(TOKEN_PATH, issue_tokens())
    await oauth_client.payment_sources.list(CUSTOMER_ID)
    token_request = server.seen(TOKEN_PATH)[0]
    assert token_request.method == "POST"
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "Authorization" not in token_request.headers
    assert "lean-app-token" not in token_request.headers
    assert _form(server) == {
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
        "grant_type": ["client_credentials"],
        "scope": ["api"],
    }


async def test_api_call_carries_only_the_issued_bearer_token(
    server: LocalServer, oauth_client: LeanClient
) -> None:
    server.script(TOKEN_PATH, issue_tokens())
    await oauth_client.payment_sources.list(CUSTOMER_ID)
    headers = server.seen(LIST_PATH)[0].headers
    assert headers.getall("Authorization") == ["Bearer issued-token-1"]
    assert "lean-app-token" not in headers


async def test_hundred_concurrent_calls_share_one_token_request(
    server: LocalServer, oauth_client: LeanClient
) -> None:
    server.script(TOKEN_PATH, issue_tokens(delay=0.1))
    await asyncio.gather(*(oauth_client.payment_sources.list(CUSTOMER_ID) for _ in range(100)))
    assert len(server.seen(TOKEN_PATH)) == 1
    api_requests = server.seen(LIST_PATH)
    assert len(api_requests) == 100
    assert {r.headers["Authorization"] for r in api_requests} == {"Bearer issued-token-1"}


async def test_token_is_reused_across_calls(server: LocalServer, oauth_client: LeanClient) -> None:
    server.script(TOKEN_PATH, issue_tokens())
    for _ in range(5):
        await oauth_client.payment_sources.list(CUSTOMER_ID)
    assert len(server.seen(TOKEN_PATH)) == 1


async def test_short_lived_token_is_reused_then_refreshed_before_expiry(
    server: LocalServer, oauth_client: LeanClient
) -> None:
    server.script(TOKEN_PATH, issue_tokens(expires_in=1.0))
    await oauth_client.payment_sources.list(CUSTOMER_ID)
    await oauth_client.payment_sources.list(CUSTOMER_ID)
    assert len(server.seen(TOKEN_PATH)) == 1  # a one-second token is still reused
    await asyncio.sleep(0.95)  # past 0.9 s: refreshed shortly before it runs out
    await oauth_client.payment_sources.list(CUSTOMER_ID)
    assert len(server.seen(TOKEN_PATH)) == 2
    assert server.seen(LIST_PATH)[-1].headers["Authorization"] == "Bearer issued-token-2"


async def test_401_refreshes_the_token_once_and_retries_once(
    server: LocalServer, oauth_client: LeanClient
) -> None:
    server.script(TOKEN_PATH, issue_tokens())
    server.script(LIST_PATH, reply(401), reply(json_body=[]))
    assert await oauth_client.payment_sources.list(CUSTOMER_ID) == []
    assert len(server.seen(TOKEN_PATH)) == 2
    api = server.seen(LIST_PATH)
    assert [r.headers["Authorization"] for r in api] == [
        "Bearer issued-token-1",
        "Bearer issued-token-2",
    ]


async def test_401_refresh_is_not_counted_against_max_retries(
    server: LocalServer, make_client: Callable[..., LeanClient]
) -> None:
    client = make_client(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, max_retries=0)
    server.script(TOKEN_PATH, issue_tokens())
    server.script(LIST_PATH, reply(401), reply(json_body=[]))
    assert await client.payment_sources.list(CUSTOMER_ID) == []


async def test_second_401_is_an_authentication_error(
    server: LocalServer, oauth_client: LeanClient
) -> None:
    server.script(TOKEN_PATH, issue_tokens())
    server.script(LIST_PATH, lean_error(401, "CERTIFICATE_TOKEN_MISMATCH", "no"))
    with pytest.raises(AuthenticationError):
        await oauth_client.payment_sources.list(CUSTOMER_ID)
    assert len(server.seen(TOKEN_PATH)) == 2
    assert len(server.seen(LIST_PATH)) == 2


async def test_concurrent_401s_share_one_refresh(
    server: LocalServer, oauth_client: LeanClient
) -> None:
    server.script(TOKEN_PATH, issue_tokens(delay=0.05))
    await oauth_client.payment_sources.list(CUSTOMER_ID)
    server.script(LIST_PATH, *[reply(401)] * 20, reply(json_body=[]))
    await asyncio.gather(*(oauth_client.payment_sources.list(CUSTOMER_ID) for _ in range(20)))
    assert len(server.seen(TOKEN_PATH)) == 2


async def test_rejected_client_credentials_are_an_authentication_error(
    server: LocalServer, oauth_client: LeanClient
) -> None:
    body = {"error": "invalid_client", "error_description": "Client authentication failed"}
    server.script(TOKEN_PATH, reply(401, json_body=body))
    with pytest.raises(AuthenticationError) as info:
        await oauth_client.payment_sources.list(CUSTOMER_ID)
    assert info.value.code == "invalid_client"
    assert len(server.seen(TOKEN_PATH)) == 1
    assert server.seen(LIST_PATH) == []


async def test_token_endpoint_5xx_is_retried(server: LocalServer, oauth_client: LeanClient) -> None:
    server.script(TOKEN_PATH, reply(503), issue_tokens())
    assert await oauth_client.payment_sources.list(CUSTOMER_ID) == []
    assert len(server.seen(TOKEN_PATH)) == 2


async def test_a_failing_token_endpoint_costs_one_request_per_attempt_of_the_call(
    server: LocalServer, make_client: Callable[..., LeanClient]
) -> None:
    server.script(TOKEN_PATH, *[reply(503)] * 20)
    client = make_client(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, max_retries=2)
    with pytest.raises(ServerError):
        await client.payment_sources.list(CUSTOMER_ID)
    # 1 + max_retries attempts of the call, each fetching the token once: not 3 x 3.
    assert len(server.seen(TOKEN_PATH)) == 3
    assert server.seen(LIST_PATH) == []


async def test_customer_token_is_retried_on_its_own(
    server: LocalServer, oauth_client: LeanClient
) -> None:
    server.script(TOKEN_PATH, reply(503), reply(502), issue_tokens())
    token = await oauth_client.customer_token(CUSTOMER_ID)
    assert token.access_token == "issued-token-1"
    assert len(server.seen(TOKEN_PATH)) == 3


async def test_customer_token_asks_for_the_customer_scope(
    server: LocalServer, oauth_client: LeanClient
) -> None:
    server.script(TOKEN_PATH, issue_tokens())
    token = await oauth_client.customer_token(CUSTOMER_ID.upper())
    assert isinstance(token, AccessToken)
    assert token.access_token == "issued-token-1"
    assert _form(server)["scope"] == [f"customer.{CUSTOMER_ID.upper()}"]
    assert "issued-token-1" not in repr(token)


async def test_customer_token_is_not_cached_nor_used_for_api_calls(
    server: LocalServer, oauth_client: LeanClient
) -> None:
    server.script(TOKEN_PATH, issue_tokens())
    await oauth_client.customer_token(CUSTOMER_ID)
    await oauth_client.customer_token(CUSTOMER_ID)
    await oauth_client.payment_sources.list(CUSTOMER_ID)
    assert [_form(server, i)["scope"] for i in range(3)] == [
        [f"customer.{CUSTOMER_ID}"],
        [f"customer.{CUSTOMER_ID}"],
        ["api"],
    ]
    assert server.seen(LIST_PATH)[0].headers["Authorization"] == "Bearer issued-token-3"


async def test_customer_token_needs_client_credentials(
    server: LocalServer, make_client: Callable[..., LeanClient]
) -> None:
    with pytest.raises(ConfigurationError):
        await make_client().customer_token(CUSTOMER_ID)
    assert server.requests == []

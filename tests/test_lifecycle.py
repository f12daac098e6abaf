"""The session's life: created lazily, shared and pooled, bounded, released after failures
and cancellations, closed by the client only when the client owns it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import pytest
from _pool import connections_in_use
from _samples import APP_TOKEN, CUSTOMER_ID, FAST_RETRY, LIST_PATH, TOKEN_PATH
from _server import LocalServer, hang, reply, truncated

from lean_async import (
    APIConnectionError,
    APIError,
    ClientClosedError,
    ConfigurationError,
    LeanClient,
    LeanError,
    NotFoundError,
    RetryPolicy,
    ServerError,
)

MakeClient = Callable[..., LeanClient]


async def _wait_for_request(server: LocalServer, count: int = 1) -> None:
    for _ in range(200):
        if len(server.requests) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the server saw {len(server.requests)} requests, not {count}")


async def test_connections_in_use_counts_the_connections_calls_hold(
    server: LocalServer, make_client: MakeClient
) -> None:
    # The measure every "no connection left checked out" assertion relies on sees them.
    server.script(LIST_PATH, *[hang()] * 3)
    client = make_client(timeout=30)
    calls = [asyncio.create_task(client.payment_sources.list(CUSTOMER_ID)) for _ in range(3)]
    await _wait_for_request(server, 3)
    assert connections_in_use(client) == 3
    calls[0].cancel()
    await asyncio.gather(calls[0], return_exceptions=True)
    assert connections_in_use(client) == 2
    for call in calls[1:]:
        call.cancel()
    await asyncio.gather(*calls, return_exceptions=True)
    assert connections_in_use(client) == 0


async def test_sequential_calls_reuse_one_connection(
    server: LocalServer, make_client: MakeClient
) -> None:
    client = make_client()
    for _ in range(10):
        await client.payment_sources.list(CUSTOMER_ID)
    assert len(server.client_ports) == 1


async def test_every_call_shares_the_one_session(make_client: MakeClient) -> None:
    client = make_client()
    await client.payment_sources.list(CUSTOMER_ID)
    session = client._transport.session
    await client.payment_sources.list(CUSTOMER_ID)
    assert client._transport.session is session


async def test_max_connections_bounds_concurrent_requests(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, reply(json_body=[], delay=0.1))
    client = make_client(max_connections=3)
    await asyncio.gather(*(client.payment_sources.list(CUSTOMER_ID) for _ in range(12)))
    assert server.peak_in_flight == 3
    assert len(server.client_ports) == 3


async def test_default_pool_allows_many_concurrent_requests(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, reply(json_body=[], delay=0.1))
    client = make_client()
    await asyncio.gather(*(client.payment_sources.list(CUSTOMER_ID) for _ in range(20)))
    assert server.peak_in_flight == 20


async def test_failed_call_holds_no_pooled_connection(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, reply(503, body=b"unavailable"))
    client = make_client()
    with pytest.raises(ServerError):
        await client.payment_sources.list(CUSTOMER_ID)
    assert connections_in_use(client) == 0
    assert len(server.client_ports) == 1  # each failed answer was read and its connection reused


async def test_truncated_answers_hold_no_pooled_connection(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, truncated(100, b"[{"))
    client = make_client()
    with pytest.raises(APIConnectionError):
        await client.payment_sources.list(CUSTOMER_ID)
    assert connections_in_use(client) == 0


async def test_cancelled_call_raises_cancelled_error_and_frees_its_connection(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, hang(), reply(json_body=[]))
    client = make_client()
    task = asyncio.ensure_future(client.payment_sources.list(CUSTOMER_ID))
    await _wait_for_request(server)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert connections_in_use(client) == 0
    assert await client.payment_sources.list(CUSTOMER_ID) == []


async def test_cancellation_during_retry_wait_propagates(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, reply(503))
    client = make_client(retry=RetryPolicy(initial_delay=10.0, max_delay=10.0))
    task = asyncio.ensure_future(client.payment_sources.list(CUSTOMER_ID))
    await _wait_for_request(server)
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=2)
    assert connections_in_use(client) == 0


async def test_cancelling_while_waiting_for_the_token_propagates(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(TOKEN_PATH, hang())
    client = make_client(client_id="id", client_secret="secret")
    task = asyncio.ensure_future(client.payment_sources.list(CUSTOMER_ID))
    await _wait_for_request(server)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert server.seen(LIST_PATH) == []


async def test_outer_timeout_cancels_cleanly(server: LocalServer, make_client: MakeClient) -> None:
    server.script(LIST_PATH, hang())
    client = make_client()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(client.payment_sources.list(CUSTOMER_ID), 0.2)
    assert connections_in_use(client) == 0


async def test_async_with_closes_the_owned_session(make_client: MakeClient) -> None:
    async with make_client() as client:
        await client.payment_sources.list(CUSTOMER_ID)
        session = client._transport.session
    assert session.closed
    assert client.closed


async def test_client_without_async_with_works_and_close_closes_it(
    make_client: MakeClient,
) -> None:
    client = make_client()
    await client.payment_sources.list(CUSTOMER_ID)
    session = client._transport.session
    await client.close()
    assert session.closed


async def test_close_is_idempotent(make_client: MakeClient) -> None:
    client = make_client()
    await client.payment_sources.list(CUSTOMER_ID)
    await client.close()
    await client.close()
    assert client.closed


async def test_close_before_any_call_opens_nothing(make_client: MakeClient) -> None:
    client = make_client()
    await client.close()
    assert client._transport._session is None


async def test_session_is_created_lazily_on_the_first_call(make_client: MakeClient) -> None:
    client = make_client()
    assert client._transport._session is None
    await client.payment_sources.list(CUSTOMER_ID)
    assert client._transport._session is not None


async def test_callers_session_is_used_and_never_closed(server: LocalServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with LeanClient(
            app_token=APP_TOKEN, base_url=server.url, session=session, retry=FAST_RETRY
        ) as client:
            await client.payment_sources.list(CUSTOMER_ID)
            assert client._transport.session is session
        assert not session.closed
        async with session.get(server.url + "/still-usable") as response:
            assert response.status == 200
    assert len(server.requests) == 2


async def test_callers_session_gets_no_redirect_following(server: LocalServer) -> None:
    server.script(LIST_PATH, reply(302, headers={"Location": server.url + "/elsewhere"}))
    async with aiohttp.ClientSession() as session:
        client = LeanClient(app_token=APP_TOKEN, base_url=server.url, session=session)
        with pytest.raises(APIError) as info:
            await client.payment_sources.list(CUSTOMER_ID)
        await client.close()
    assert info.value.status_code == 302
    assert server.seen("/elsewhere") == []


async def test_client_built_where_no_loop_runs_works_in_the_loop(server: LocalServer) -> None:
    def build() -> LeanClient:  # runs in a worker thread, where no event loop is running
        return LeanClient(app_token=APP_TOKEN, base_url=server.url, environ={})

    client = await asyncio.get_running_loop().run_in_executor(None, build)
    async with client:
        assert await client.payment_sources.list(CUSTOMER_ID) == []
    assert len(server.requests) == 1


async def test_closing_while_calls_wait_for_the_token_gives_them_client_closed_error(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(TOKEN_PATH, hang())
    client = make_client(client_id="id", client_secret="secret")
    calls = [asyncio.ensure_future(client.payment_sources.list(CUSTOMER_ID)) for _ in range(3)]
    await _wait_for_request(server)
    await client.close()
    for call in calls:
        with pytest.raises(ClientClosedError):
            await call


async def test_a_closed_client_raises_client_closed_error(make_client: MakeClient) -> None:
    client = make_client()
    await client.close()
    with pytest.raises(ClientClosedError) as info:
        await client.payment_sources.list(CUSTOMER_ID)
    assert isinstance(info.value, LeanError) and isinstance(info.value, RuntimeError)


async def test_callers_session_raise_for_status_does_not_change_the_typed_errors(
    server: LocalServer,
) -> None:
    server.script(LIST_PATH, reply(404, json_body={"status": "UNKNOWN_PAYMENT_SOURCE"}))
    async with aiohttp.ClientSession(raise_for_status=True) as session:
        client = LeanClient(app_token=APP_TOKEN, base_url=server.url, session=session)
        with pytest.raises(NotFoundError):
            await client.payment_sources.list(CUSTOMER_ID)
        await client.close()


@pytest.mark.parametrize("header", ["Authorization", "lean-app-token"])
async def test_a_callers_session_with_its_own_credentials_is_refused(header: str) -> None:
    async with aiohttp.ClientSession(headers={header: "other"}) as session:
        with pytest.raises(ConfigurationError, match="credentials"):
            LeanClient(app_token=APP_TOKEN, base_url="http://127.0.0.1:1", session=session)

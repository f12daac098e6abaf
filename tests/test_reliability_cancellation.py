"""Cancellation at every point of a call (connecting, waiting for headers, reading a body,
waiting to retry, retrying): CancelledError comes out untouched, no pooled connection stays
checked out, and the next call on the same client works and reads its own answer."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Callable

import pytest
from _pool import connections_in_use
from _samples import CLIENT_ID, CLIENT_SECRET, FAST_RETRY, TOKEN_PATH
from _server import LocalServer, issue_tokens, reply, trickle

from lean_async import LeanClient

MakeClient = Callable[..., LeanClient]
# Enough delays to land in every phase of the scripted call below (about 0.15 s long).
DELAYS = [random.Random(20240601).uniform(0, 0.2) for _ in range(30)]


def _customer(n: int) -> str:
    return str(uuid.UUID(int=n, version=4))


def _script_a_bumpy_call(server: LocalServer, customer_id: str) -> None:
    """A 503 after a pause, then the answer trickled out over about 0.1 s."""
    body = b'[{"id": "%s"}]' % customer_id.encode()
    server.script(
        f"/customers/v1/{customer_id}/payment-sources",
        reply(503, delay=0.02),
        trickle(body, chunk=5, delay=0.01),
        reply(body=body),
    )


async def _next_call_reads_its_own_answer(server: LocalServer, client: LeanClient) -> None:
    customer_id = _customer(10_000)
    server.script(
        f"/customers/v1/{customer_id}/payment-sources", reply(json_body=[{"id": customer_id}])
    )
    [source] = await client.payment_sources.list(customer_id)
    assert source.id == customer_id


async def test_cancelling_a_call_at_any_point_leaves_no_connection_checked_out(
    server: LocalServer, make_client: MakeClient
) -> None:
    client = make_client(retry=FAST_RETRY)
    for n, delay in enumerate(DELAYS):
        customer_id = _customer(n + 1)
        _script_a_bumpy_call(server, customer_id)
        task = asyncio.ensure_future(client.payment_sources.list(customer_id))
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task  # cancelled in flight; a call that finished first is fine too
        assert task.cancelled() or task.result()[0].id == customer_id
        assert connections_in_use(client) == 0, f"after cancelling at {delay:.3f} s"
        await _next_call_reads_its_own_answer(server, client)


async def test_an_outer_timeout_at_any_point_leaves_no_connection_checked_out(
    server: LocalServer, make_client: MakeClient
) -> None:
    client = make_client(retry=FAST_RETRY)
    for n, delay in enumerate(DELAYS):
        customer_id = _customer(n + 1)
        _script_a_bumpy_call(server, customer_id)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(client.payment_sources.list(customer_id), delay)
        assert connections_in_use(client) == 0, f"after timing out at {delay:.3f} s"
    await _next_call_reads_its_own_answer(server, client)


async def test_cancelling_many_concurrent_calls_at_once_leaves_the_pool_empty(
    server: LocalServer, make_client: MakeClient
) -> None:
    client = make_client(retry=FAST_RETRY, max_connections=8)
    tasks = []
    for n in range(40):
        customer_id = _customer(n + 1)
        _script_a_bumpy_call(server, customer_id)
        tasks.append(asyncio.ensure_future(client.payment_sources.list(customer_id)))
    await asyncio.sleep(0.06)
    for task in tasks:
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert any(isinstance(o, asyncio.CancelledError) for o in outcomes)
    assert connections_in_use(client) == 0
    await _next_call_reads_its_own_answer(server, client)


@pytest.mark.parametrize("delay", [0.0, 0.01, 0.02])  # the token takes 0.03 s
async def test_cancelling_a_call_waiting_for_the_token_leaves_the_client_usable(
    delay: float, server: LocalServer, make_client: MakeClient
) -> None:
    server.script(TOKEN_PATH, issue_tokens(delay=0.03))
    client = make_client(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    task = asyncio.ensure_future(client.payment_sources.list(_customer(1)))
    await asyncio.sleep(delay)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _next_call_reads_its_own_answer(server, client)
    assert connections_in_use(client) == 0
    assert len(server.seen(TOKEN_PATH)) == 1  # the shared fetch was not abandoned

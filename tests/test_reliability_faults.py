"""Transport faults against real sockets on 127.0.0.1: resets, silence, trickles and
connections the server closes. Each ends in a typed error after the policy's retries, or
in success on a fresh connection, and never leaves a pooled connection checked out.

Refused connections and bodies cut short of their Content-Length are specified in
test_transport_integration.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
import pytest
from _pool import connections_in_use
from _samples import CUSTOMER_ID, LIST_PATH
from _server import (
    LocalServer,
    RawServer,
    reset,
    response_head,
    trickle,
)

from lean_async import APIConnectionError, APITimeoutError, LeanClient

MakeClient = Callable[..., LeanClient]
ANSWER = b'[{"id":"d8d7a9b3-c401-49f6-81a4-386d8398aa2c"}]'


Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter


# -- resets ------------------------------------------------------------------------------


async def test_reset_before_the_response_is_a_connection_error_after_every_retry(
    make_client: MakeClient,
) -> None:
    async def conversation(raw: RawServer, reader: Reader, writer: Writer) -> None:
        await raw.read_request(reader)
        reset(writer)

    async with RawServer(conversation) as raw:
        client = make_client(base_url=raw.url)
        with pytest.raises(APIConnectionError) as info:
            await client.payment_sources.list(CUSTOMER_ID)
        assert not isinstance(info.value, APITimeoutError)
        assert raw.requests == 3
        assert connections_in_use(client) == 0


async def test_reset_before_the_response_then_an_answer_recovers(
    make_client: MakeClient,
) -> None:
    async def conversation(raw: RawServer, reader: Reader, writer: Writer) -> None:
        while await raw.read_request(reader) is not None:
            if raw.requests == 1:
                reset(writer)
                return
            writer.write(response_head(length=len(ANSWER)) + ANSWER)

    async with RawServer(conversation) as raw:
        [source] = await make_client(base_url=raw.url).payment_sources.list(CUSTOMER_ID)
    assert source.id == "d8d7a9b3-c401-49f6-81a4-386d8398aa2c"


async def test_reset_in_the_middle_of_the_body_is_a_connection_error_after_every_retry(
    make_client: MakeClient,
) -> None:
    async def conversation(raw: RawServer, reader: Reader, writer: Writer) -> None:
        await raw.read_request(reader)
        writer.write(response_head(length=1000) + b'[{"id": "d8d7a9b3')
        await writer.drain()
        await asyncio.sleep(0.02)  # the client is reading the body now
        reset(writer)

    async with RawServer(conversation) as raw:
        client = make_client(base_url=raw.url)
        with pytest.raises(APIConnectionError):
            await client.payment_sources.list(CUSTOMER_ID)
        assert raw.requests == 3
        assert connections_in_use(client) == 0


# -- silence and trickles ----------------------------------------------------------------


async def test_server_that_accepts_and_never_reads_or_answers_times_out_each_attempt(
    make_client: MakeClient,
) -> None:
    async def conversation(raw: RawServer, reader: Reader, writer: Writer) -> None:
        await asyncio.sleep(60)  # cancelled when the test's server closes

    async with RawServer(conversation) as raw:
        client = make_client(base_url=raw.url, timeout=0.2)
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            await client.payment_sources.list(CUSTOMER_ID)
        elapsed = time.monotonic() - started
        assert raw.connections == 3
        assert elapsed < 3 * 0.2 + 0.5  # three attempts and two millisecond backoffs
        assert connections_in_use(client) == 0


async def test_body_trickled_slower_than_the_read_timeout_is_a_timeout_error(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, trickle(ANSWER, chunk=4, delay=0.5))
    client = make_client(timeout=aiohttp.ClientTimeout(sock_read=0.2), max_retries=0)
    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        await client.payment_sources.list(CUSTOMER_ID)
    assert time.monotonic() - started < 1.0
    assert connections_in_use(client) == 0


async def test_body_trickled_within_the_read_timeout_is_still_bounded_by_the_total_timeout(
    server: LocalServer, make_client: MakeClient
) -> None:
    # A slowloris: each byte comes in time for the read timeout, the whole never does.
    server.script(LIST_PATH, trickle(ANSWER, chunk=1, delay=0.02))
    client = make_client(timeout=0.3, max_retries=0)
    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        await client.payment_sources.list(CUSTOMER_ID)
    assert time.monotonic() - started < 0.3 + 0.4


async def test_body_trickled_within_the_timeouts_is_read_whole(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, trickle(ANSWER, chunk=8, delay=0.01))
    [source] = await make_client(timeout=5).payment_sources.list(CUSTOMER_ID)
    assert source.id == "d8d7a9b3-c401-49f6-81a4-386d8398aa2c"


# -- keep-alive connections the server closes --------------------------------------------


def _keep_alive(*, idle_close_after: float) -> Callable[[RawServer, Reader, Writer], object]:
    """Answer every request on a kept-alive connection; close the connection once it has
    been idle ``idle_close_after`` seconds (0: right after the first answer, unannounced)."""

    async def conversation(raw: RawServer, reader: Reader, writer: Writer) -> None:
        while True:
            try:
                request = await asyncio.wait_for(raw.read_request(reader), idle_close_after or None)
            except asyncio.TimeoutError:
                return  # idle too long: RawServer closes the connection
            if request is None:
                return
            writer.write(response_head(length=len(ANSWER), Connection="keep-alive") + ANSWER)
            await writer.drain()
            if not idle_close_after:
                return

    return conversation


async def test_connection_closed_by_the_server_while_idle_is_replaced_not_reused(
    make_client: MakeClient,
) -> None:
    async with RawServer(_keep_alive(idle_close_after=0.05)) as raw:  # type: ignore[arg-type]
        client = make_client(base_url=raw.url, max_retries=0)  # a stale connection would fail
        for _ in range(3):
            assert len(await client.payment_sources.list(CUSTOMER_ID)) == 1
            await asyncio.sleep(0.2)  # the server closes the idle connection meanwhile
        assert raw.connections == 3
        assert raw.requests == 3


async def test_connection_closed_unannounced_right_after_each_answer_costs_at_most_a_retry(
    make_client: MakeClient,
) -> None:
    # The pool cannot see a close that races the next request: the retry policy absorbs it.
    async with RawServer(_keep_alive(idle_close_after=0)) as raw:  # type: ignore[arg-type]
        client = make_client(base_url=raw.url, max_retries=1)
        for _ in range(20):
            assert len(await client.payment_sources.list(CUSTOMER_ID)) == 1
        assert raw.requests <= 2 * 20
        assert connections_in_use(client) == 0


async def test_kept_alive_connection_is_reused_while_the_server_keeps_it(
    make_client: MakeClient,
) -> None:
    async with RawServer(_keep_alive(idle_close_after=5.0)) as raw:  # type: ignore[arg-type]
        client = make_client(base_url=raw.url)
        for _ in range(5):
            await client.payment_sources.list(CUSTOMER_ID)
        assert raw.connections == 1


async def test_kept_alive_connection_that_dies_under_the_next_request_is_retried_on_a_new_one(
    make_client: MakeClient,
) -> None:
    # The race no pool can see coming: the server drops the connection just as the client
    # reuses it. The retry, on a new connection, answers.
    async def conversation(raw: RawServer, reader: Reader, writer: Writer) -> None:
        first_connection = raw.connections == 1
        while await raw.read_request(reader) is not None:
            if first_connection and raw.requests == 2:
                reset(writer)
                return
            writer.write(response_head(length=len(ANSWER)) + ANSWER)

    async with RawServer(conversation) as raw:
        client = make_client(base_url=raw.url)
        await client.payment_sources.list(CUSTOMER_ID)
        assert len(await client.payment_sources.list(CUSTOMER_ID)) == 1
        assert (raw.connections, raw.requests) == (2, 3)

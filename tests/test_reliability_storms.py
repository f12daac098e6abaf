"""5xx and 429 storms: every call makes a bounded number of attempts, ends in the typed
error, and takes a time the caller can bound with asyncio.wait_for. Single retried answers
and Retry-After parsing are specified in test_transport_integration.py and
test_retry_rules.py; here the server never relents."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from email.utils import formatdate

import pytest
from _pool import connections_in_use
from _samples import CUSTOMER_ID, LIST_PATH
from _server import LocalServer, lean_error, reply

from lean_async import APITimeoutError, LeanClient, RateLimitError, RetryPolicy, ServerError

MakeClient = Callable[..., LeanClient]
STORM_RETRY = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.02)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_concurrent_calls_in_a_5xx_storm_each_make_bounded_attempts(
    status: int, server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, lean_error(status, "INTERNAL_SERVER_ERROR", "down"))
    client = make_client(retry=STORM_RETRY)
    outcomes = await asyncio.gather(
        *(client.payment_sources.list(CUSTOMER_ID) for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(o, ServerError) and o.status_code == status for o in outcomes)
    assert len(server.requests) == 20 * (1 + STORM_RETRY.max_retries)
    assert connections_in_use(client) == 0


# Retry-After header -> (attempts made, the error's retry_after). A usable wait up to a
# minute is honoured; garbage gets the backoff; a longer wait fails the call at once.
RETRY_AFTER_STORMS = {
    "seconds": ("0.05", 4, 0.05),
    "zero": ("0", 4, 0.0),
    "http date in the past": (formatdate(0, usegmt=True), 4, 0.0),
    "garbage": ("soon", 4, None),
    "negative": ("-5", 4, None),
    "infinite": ("inf", 4, None),
    "huge": ("999999999", 1, 999999999.0),
    "huge http date": ("Fri, 31 Dec 9999 23:59:59 GMT", 1, "centuries"),
    "absent": (None, 4, None),
}


@pytest.mark.parametrize(
    ("header", "attempts", "retry_after"), RETRY_AFTER_STORMS.values(), ids=RETRY_AFTER_STORMS
)
async def test_429_storm_ends_in_rate_limit_error_after_bounded_attempts(
    header: str | None,
    attempts: int,
    retry_after: float | str | None,
    server: LocalServer,
    make_client: MakeClient,
) -> None:
    headers = {} if header is None else {"Retry-After": header}
    server.script(LIST_PATH, reply(429, headers=headers))
    started = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        await make_client(retry=STORM_RETRY).payment_sources.list(CUSTOMER_ID)
    assert len(server.requests) == attempts
    if retry_after == "centuries":
        assert info.value.retry_after is not None and info.value.retry_after > 1e9
    elif retry_after is None:
        assert info.value.retry_after is None
    else:
        assert info.value.retry_after == pytest.approx(retry_after)
    assert time.monotonic() - started < 1.5


async def test_storm_of_long_honoured_retry_afters_is_bounded_by_wait_for(
    server: LocalServer, make_client: MakeClient
) -> None:
    # 59 s is below the 60 s ceiling: honoured, so the call alone would take minutes.
    server.script(LIST_PATH, reply(429, headers={"Retry-After": "59"}), reply(json_body=[]))
    client = make_client(retry=RetryPolicy())
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(client.payment_sources.list(CUSTOMER_ID), 0.3)
    assert time.monotonic() - started < 0.8
    assert connections_in_use(client) == 0
    server.script(LIST_PATH, reply(json_body=[]))
    assert await client.payment_sources.list(CUSTOMER_ID) == []


async def test_storm_of_slow_5xx_is_bounded_by_wait_for(
    server: LocalServer, make_client: MakeClient
) -> None:
    server.script(LIST_PATH, reply(503, delay=0.2))
    client = make_client(retry=RetryPolicy(max_retries=10, initial_delay=0.1, max_delay=0.5))
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(client.payment_sources.list(CUSTOMER_ID), 0.5)
    assert time.monotonic() - started < 1.0
    assert connections_in_use(client) == 0


async def test_worst_case_duration_of_a_storm_follows_from_the_policy(
    server: LocalServer, make_client: MakeClient
) -> None:
    # Each attempt is bounded by the timeout, each wait by max_delay (or an honoured
    # Retry-After, at most max_retry_after): the whole call by their sum.
    server.script(LIST_PATH, reply(503, delay=1.0))
    policy = RetryPolicy(max_retries=2, initial_delay=0.05, max_delay=0.1)
    timeout = 0.15
    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        await make_client(retry=policy, timeout=timeout).payment_sources.list(CUSTOMER_ID)
    bound = (policy.max_retries + 1) * timeout + policy.max_retries * policy.max_delay
    assert time.monotonic() - started <= bound + 0.3

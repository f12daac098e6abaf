"""The client-wide rate limit: request starts spaced 1/rate apart, shared by every caller."""

from __future__ import annotations

import asyncio
import time

import pytest

from lean_async._ratelimit import RateLimiter


async def test_starts_are_spaced_one_interval_apart() -> None:
    limiter = RateLimiter(50)
    started = time.monotonic()
    await asyncio.gather(*(limiter.acquire() for _ in range(11)))
    assert time.monotonic() - started >= 10 / 50 * 0.9


async def test_cancelled_waiters_give_their_slots_back() -> None:
    limiter = RateLimiter(10)
    waiting = [asyncio.ensure_future(limiter.acquire()) for _ in range(40)]
    await asyncio.sleep(0.05)
    for waiter in waiting:
        waiter.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    started = time.monotonic()
    await limiter.acquire()
    # Without the slots back, this start would wait behind 39 cancelled ones (3.9 s).
    assert time.monotonic() - started < 0.3


def test_the_rate_must_be_positive() -> None:
    for bad in (0, -1, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="rate_limit"):
            RateLimiter(bad)

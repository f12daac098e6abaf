"""A known client-wide rate limit (``LeanClient(rate_limit=...)``): request starts spaced
1/rate apart by the client's rate control, shared by every caller."""

from __future__ import annotations

import asyncio
import time

import pytest

from lean_async._ratelimit import RateControl, check_rate


async def test_starts_are_spaced_one_interval_apart() -> None:
    control = RateControl(50)

    async def request() -> None:
        control.answered(await control.acquire())

    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(request() for _ in range(11))), timeout=5)
    assert time.monotonic() - started >= 10 / 50 * 0.9


async def test_cancelled_waiters_give_their_slots_back() -> None:
    control = RateControl(10)
    control._limits.window = 100  # only the pace holds these starts back
    waiting = [asyncio.ensure_future(control.acquire()) for _ in range(40)]
    await asyncio.sleep(0.05)
    for waiter in waiting:
        waiter.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    started = time.monotonic()
    await asyncio.wait_for(control.acquire(), timeout=5)
    # Without the slots back, this start would wait behind 39 cancelled ones (3.9 s).
    assert time.monotonic() - started < 0.3


def test_the_rate_must_be_positive() -> None:
    for bad in (0, -1, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="rate_limit"):
            check_rate(bad)

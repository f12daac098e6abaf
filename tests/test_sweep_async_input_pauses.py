"""A sweep over an async input (a Pager, the CLI's id reader) keeps going through the pauses
that 429s bring: every wait needs a waker, also when the next id is already read. Run on a
loop with a virtual clock: a wait that nothing can end fails at once (``Stalled``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from _virtual_time import in_virtual_time

from lean_async import RateLimitError, RetryPolicy
from lean_async._ratelimit import RateControl
from lean_async._sweep import run_sweep

pytestmark = pytest.mark.timeout(30)

POLICY = RetryPolicy(max_retries=0, initial_delay=0.001, max_delay=0.01)


async def _ids(count: int) -> AsyncIterator[str]:
    for number in range(count):
        yield f"customer-{number}"


@pytest.mark.parametrize("retry_after", [0.02, None], ids=["Retry-After", "backoff"])
@in_virtual_time
async def test_a_sweep_over_an_async_input_ends_after_429_pauses(
    retry_after: float | None,
) -> None:
    turned_away: set[str] = set()

    async def fetch(customer_id: str) -> list[object]:
        await asyncio.sleep(0.001)
        if customer_id.endswith("7") and customer_id not in turned_away:
            turned_away.add(customer_id)
            raise RateLimitError(429, code="RATE_LIMIT_EXCEEDED", retry_after=retry_after)
        return []

    async def sweep() -> list[str]:
        results = run_sweep(
            fetch, _ids(100), concurrency=8, policy=POLICY, control=RateControl(policy=POLICY)
        )
        return [result.customer_id async for result in results]

    swept = await asyncio.wait_for(sweep(), 5)
    assert sorted(swept) == sorted(f"customer-{n}" for n in range(100))

"""A soak: 50,000 customers swept against the fake server with 5% mixed faults and a rate
limit. Every customer is accounted for exactly once, in bounded time, within the retry
budget. (About 35 s on a 2-core machine; kept in the default run on purpose.)"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from _pool import connections_in_use

from lean_async import APIConnectionError, DecodeError, RetryPolicy, ServerError, SweepProgress
from lean_async.testing import FakeLean, Faults

CUSTOMERS = 50_000
POLICY = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.1)
FAULTS = Faults(
    error_rate=0.02,  # 500/502/503, half of them a proxy's HTML page
    drop_rate=0.01,
    truncate_rate=0.01,
    malformed_rate=0.005,  # 200 with a broken body: a DecodeError, never retried
    slow_body_rate=0.005,
    slow_body_delay=0.01,
    rate_limit=3000,  # requests per second, beyond it 429 with Retry-After
    seed=7,
)


@pytest.mark.timeout(300)
async def test_a_faulty_rate_limited_sweep_of_50000_customers_accounts_for_each_once() -> None:
    started = time.monotonic()
    async with FakeLean(customers=CUSTOMERS, seed=3, faults=FAULTS) as server:
        progress = SweepProgress()
        seen: Counter[str] = Counter()
        failures: Counter[type] = Counter()
        async with server.client(retry=POLICY) as client:
            async for result in client.payment_sources.sweep(
                server.customer_ids, concurrency=32, progress=progress
            ):
                seen[result.customer_id] += 1
                if result.error is not None:
                    failures[type(result.error)] += 1
                else:
                    assert result.sources == server.data.payment_sources(result.customer_id)
            assert connections_in_use(client) == 0
        stats = server.stats

    elapsed = time.monotonic() - started
    # A bound against a pathological slow-down, not a speed target (that is benchmarks/'s):
    # about 35 s alone on 2 cores, over 150 s on the same cores shared with other suites.
    assert elapsed < 240
    # Each customer exactly once.
    assert len(seen) == CUSTOMERS and set(seen.values()) == {1}
    assert progress.done == CUSTOMERS
    # Only what no retry can mend fails: broken bodies, and the rare customer whose every
    # attempt met a fault.
    assert set(failures) <= {DecodeError, APIConnectionError, ServerError}
    assert sum(failures.values()) < CUSTOMERS * 0.01
    # The retry budget: each fetch makes at most 1 + max_retries attempts, and a fetch is
    # repeated only after a 429 (the sweep's requeue), which the sweep keeps rare.
    fetches = CUSTOMERS + progress.rate_limited
    assert stats.requests <= fetches * (1 + POLICY.max_retries)
    assert stats.rate_limited == progress.rate_limited
    assert progress.rate_limited < CUSTOMERS * 0.01
    assert stats.requests < CUSTOMERS * 1.1  # ~5% faults cost ~5% more requests, not more

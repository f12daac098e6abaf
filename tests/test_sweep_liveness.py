"""The sweep never stalls: every input kind against every pacing state (a table of
cases, each bounded in time so that a hang fails), and hypothesis over random limiters,
inputs and concurrencies. Each case checks that every customer ends ok, exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from _server import serve_route
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lean_async
from lean_async import RetryPolicy, SweepProgress

FAST_RETRY = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.05)
CASE_TIMEOUT = 20.0  # seconds: a case that takes longer has hung
SOURCE = b'[{"id":"d8d7a9b3-c401-49f6-81a4-386d8398aa2c","customer_id":"%s","status":"ACTIVE"}]'


def customer(n: int) -> str:
    return str(uuid.UUID(int=n + 1, version=4))


@dataclass
class Limiter:
    """A local server's limit: 429 (with ``retry_after`` when set) beyond it."""

    rate: float | None = None  # a token bucket of ``burst`` requests
    burst: float = 1.0
    max_in_flight: int | None = None
    refuse_first: int = 0  # 429 to the first N requests whatever the rate
    retry_after: str | None = None
    latency: float = 0.002
    requests: Counter[str] = field(default_factory=Counter)
    answered_ok: Counter[str] = field(default_factory=Counter)
    refused: int = 0
    in_flight: int = 0
    _tokens: float = 0.0
    _last: float = field(default_factory=time.monotonic)

    def admits(self) -> bool:
        total = sum(self.requests.values())
        if total <= self.refuse_first:
            return False
        if self.max_in_flight is not None and self.in_flight > self.max_in_flight:
            return False
        if self.rate is None:
            return True
        now = time.monotonic()
        self._tokens = min(self._tokens + (now - self._last) * self.rate, self.burst)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    async def handle(self, request: web.Request) -> web.Response:
        cid = request.match_info["customer_id"]
        self.requests[cid] += 1
        self.in_flight += 1
        try:
            if not self.admits():
                self.refused += 1
                headers = {"Retry-After": self.retry_after} if self.retry_after else {}
                body = b'{"status":"RATE_LIMIT_EXCEEDED","message":"slow down"}'
                return web.Response(
                    status=429, body=body, content_type="application/json", headers=headers
                )
            await asyncio.sleep(self.latency)
            self.answered_ok[cid] += 1
            return web.Response(body=SOURCE % cid.encode(), content_type="application/json")
        finally:
            self.in_flight -= 1


def serve(limiter: Limiter) -> contextlib.AbstractAsyncContextManager[str]:
    return serve_route("/customers/v1/{customer_id}/payment-sources", limiter.handle)


# -- the input kinds -----------------------------------------------------------------


def as_list(ids: list[str]) -> Iterable[str]:
    return list(ids)


def sync_generator(ids: list[str]) -> Iterator[str]:
    yield from ids


async def async_generator(ids: list[str]) -> AsyncIterator[str]:
    for cid in ids:
        yield cid


async def slow_async_generator(ids: list[str]) -> AsyncIterator[str]:
    for n, cid in enumerate(ids):
        if n % 7 == 0:
            await asyncio.sleep(0.03)  # a database cursor fetching its next page
        yield cid


def endless_sync(ids: list[str]) -> Iterator[str]:
    yield from ids
    for n in itertools.count(10_000):  # never ends: the consumer breaks
        yield customer(n)


async def endless_async(ids: list[str]) -> AsyncIterator[str]:
    for cid in ids:
        yield cid
    for n in itertools.count(10_000):
        await asyncio.sleep(0)
        yield customer(n)


Input = Callable[[list[str]], Any]
INPUTS: dict[str, Input] = {
    "list": as_list,
    "sync generator": sync_generator,
    "async generator": async_generator,
    "slow async generator": slow_async_generator,
    "endless sync generator, break": endless_sync,
    "endless async generator, break": endless_async,
}

# -- the pacing states: (the server's limit, the client's options) ---------------------

STATES: dict[str, tuple[Callable[[], Limiter], dict[str, Any]]] = {
    "unpaced": (Limiter, {}),
    "paced at a known rate": (Limiter, {"rate_limit": 300}),
    "paced by what 429s taught": (lambda: Limiter(rate=300, burst=3), {}),
    "paused for Retry-After": (lambda: Limiter(refuse_first=12, retry_after="0.1"), {}),
    "paused without Retry-After": (lambda: Limiter(refuse_first=12), {}),
    "concurrency cut to its floor": (lambda: Limiter(max_in_flight=1), {}),
    "every limit at once": (
        lambda: Limiter(rate=250, burst=2, max_in_flight=3, refuse_first=5, retry_after="0.05"),
        {},
    ),
}


async def sweep_all(
    limiter: Limiter, make_input: Input, count: int, concurrency: int, **options: Any
) -> tuple[list[lean_async.SweepResult[str]], SweepProgress]:
    """Sweep ``count`` customers (then break, for an endless input), within CASE_TIMEOUT."""
    ids = [customer(n) for n in range(count)]
    progress = SweepProgress()
    results: list[lean_async.SweepResult[str]] = []

    async def run() -> None:
        async with (
            serve(limiter) as url,
            lean_async.LeanClient(app_token="t", base_url=url, retry=FAST_RETRY, **options) as lean,
        ):
            sweep = lean.payment_sources.sweep(
                make_input(ids), concurrency=concurrency, progress=progress
            )
            async with contextlib.aclosing(sweep):
                async for result in sweep:
                    results.append(result)
                    if len(results) == count and "endless" in make_input.__name__:
                        break

    await asyncio.wait_for(run(), timeout=CASE_TIMEOUT)
    return results, progress


def assert_each_customer_once_and_ok(
    results: list[lean_async.SweepResult[str]], count: int, endless: bool
) -> None:
    seen = Counter(r.customer_id for r in results)
    assert set(seen.values()) == {1}, "a customer came out twice"
    failed = [r for r in results if not r.ok]
    assert not failed, failed[:3]
    if not endless:
        assert set(seen) == {customer(n) for n in range(count)}
    else:
        assert len(seen) == count


@pytest.mark.parametrize("state", list(STATES))
@pytest.mark.parametrize("input_kind", list(INPUTS))
async def test_every_input_kind_in_every_pacing_state_ends_with_each_customer_once(
    input_kind: str, state: str
) -> None:
    make_limiter, options = STATES[state]
    limiter = make_limiter()
    count = 60
    results, progress = await sweep_all(limiter, INPUTS[input_kind], count, 16, **options)
    endless = "endless" in input_kind
    assert_each_customer_once_and_ok(results, count, endless=endless)
    if endless:
        # A 429 to a request still on its way when the loop broke off is never read.
        assert limiter.refused - 16 <= progress.rate_limited <= limiter.refused
    else:
        assert progress.rate_limited == limiter.refused


async def test_the_issues_stall_an_async_input_paused_with_nothing_in_flight_ends() -> None:
    """The stall of issue 10: an async input whose next id was already read while the
    sweep was paced with nothing in flight and no timer set. 429s to every request for a
    burst at the start, no Retry-After, an async input, concurrency far above what is
    admitted."""
    limiter = Limiter(rate=100, burst=5, latency=0.01)
    results, progress = await sweep_all(limiter, async_generator, 150, 64)
    assert_each_customer_once_and_ok(results, 150, endless=False)
    assert progress.rate_limited > 0


@st.composite
def limiters(draw: st.DrawFn) -> Limiter:
    return Limiter(
        rate=draw(st.none() | st.floats(min_value=80, max_value=600)),
        burst=draw(st.integers(min_value=1, max_value=10)),
        max_in_flight=draw(st.none() | st.integers(min_value=1, max_value=8)),
        # More would fail a customer by design: three 429s in a row with no success of
        # the sweep in between (test_sweep.py covers that rule).
        refuse_first=draw(st.integers(min_value=0, max_value=2)),
        retry_after=draw(st.sampled_from([None, "0", "0.05", "0.2"])),
        latency=draw(st.sampled_from([0.0, 0.002, 0.01])),
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    limiter=limiters(),
    input_kind=st.sampled_from(sorted(INPUTS)),
    concurrency=st.integers(min_value=1, max_value=48),
    count=st.integers(min_value=1, max_value=80),
    known_rate=st.none() | st.sampled_from([150.0, 400.0]),
)
def test_any_limiter_any_input_any_concurrency_ends_with_each_customer_once(
    limiter: Limiter, input_kind: str, concurrency: int, count: int, known_rate: float | None
) -> None:
    options = {} if known_rate is None else {"rate_limit": known_rate}
    results, _ = asyncio.run(sweep_all(limiter, INPUTS[input_kind], count, concurrency, **options))
    assert_each_customer_once_and_ok(results, count, endless="endless" in input_kind)

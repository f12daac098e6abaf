"""The sweep against a real aiohttp.web server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from _pool import connections_in_use
from _server import serve_route
from aiohttp import web

import lean_async
from lean_async import (
    APIConnectionError,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    SweepProgress,
)

FAST_RETRY = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.05)
SOURCE = (
    b'{"id":"d8d7a9b3-c401-49f6-81a4-386d8398aa2c","customer_id":"%s","status":"ACTIVE",'
    b'"beneficiaries":[],"accounts":[]}'
)


def customer(n: int) -> str:
    return str(uuid.UUID(int=n + 1, version=4))


@dataclass
class SweepServer:
    """Answers by a plan per customer; observes in-flight requests and counts."""

    plan: dict[str, str] = field(default_factory=dict)  # id -> ok|404|500|flaky|slow
    latency: float = 0.0
    rate: float | None = None  # admitted requests per second, else 429
    retry_after: str | None = "1"
    always_429: bool = False
    in_flight: int = 0
    peak: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    cancelled: int = 0
    _tokens: float = 0.0
    _last: float = 0.0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        cid = request.match_info["customer_id"]
        self.requests[cid] += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            response = await self._answer(cid)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1
        self.statuses[response.status] += 1
        return response

    async def _answer(self, cid: str) -> web.Response:
        if self.always_429 or not self._admit():
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return _error(429, "RATE_LIMIT_EXCEEDED", headers)
        kind = self.plan.get(cid, "ok")
        if kind == "slow":
            await asyncio.sleep(30)
        elif self.latency:
            await asyncio.sleep(self.latency)
        if kind == "404":
            return _error(404, "UNKNOWN_PAYMENT_SOURCE")
        if kind == "500" or (kind == "flaky" and self.requests[cid] == 1):
            return _error(500, "INTERNAL_SERVER_ERROR")
        body = b"[" + SOURCE % cid.encode() + b"]"
        return web.Response(body=body, content_type="application/json")

    def _admit(self) -> bool:
        if self.rate is None:
            return True
        now = time.monotonic()
        # A token bucket holding at most a tenth of a second's worth of requests.
        self._tokens = min(self._tokens + (now - self._last) * self.rate, max(self.rate / 10, 1))
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


def _error(status: int, code: str, headers: dict[str, str] | None = None) -> web.Response:
    body = b'{"status":"%s","message":"test","metadata":null}' % code.encode()
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def serve(server: SweepServer) -> contextlib.AbstractAsyncContextManager[str]:
    return serve_route("/customers/v1/{customer_id}/payment-sources", server.handle)


def client_for(url: str, **options: object) -> lean_async.LeanClient:
    options.setdefault("retry", FAST_RETRY)
    return lean_async.LeanClient(app_token="test-token", base_url=url, **options)  # type: ignore[arg-type]


def other_tasks() -> set[asyncio.Task[object]]:
    """Tasks still running on the client's side (the test server's own are left out)."""
    server_side = ("aiohttp/web", "_accept_connection")  # the server's, accepting
    return {
        t
        for t in asyncio.all_tasks()
        if t is not asyncio.current_task()
        and not any(
            mark in t.get_coro().cr_code.co_filename + t.get_coro().__qualname__  # type: ignore[union-attr]
            for mark in server_side
        )
    }


async def test_every_customer_is_accounted_for_exactly_once_with_typed_errors() -> None:
    ids = [customer(n) for n in range(3000)]
    plan = {}
    for n, cid in enumerate(ids):
        plan[cid] = {0: "404", 1: "500", 2: "flaky"}.get(n % 20, "ok")
    server = SweepServer(plan=plan)
    async with serve(server) as url, client_for(url) as lean:
        results = [r async for r in lean.payment_sources.sweep(ids, concurrency=16)]

    assert sorted(r.customer_id for r in results) == sorted(ids)
    by_id = {r.customer_id: r for r in results}
    for cid, kind in plan.items():
        result = by_id[cid]
        if kind == "404":
            assert isinstance(result.error, NotFoundError) and result.sources is None
            assert result.error.code == "UNKNOWN_PAYMENT_SOURCE"
        elif kind == "500":
            assert isinstance(result.error, ServerError) and not result.ok
        else:
            assert result.ok and result.sources is not None
            assert result.sources[0].customer_id == cid
    assert 1 <= server.peak <= 16
    # A permanent 500 is tried 1 + max_retries times; a 404 once.
    assert server.requests[ids[1]] == 3 and server.requests[ids[0]] == 1


async def test_in_flight_requests_never_exceed_concurrency_at_the_server() -> None:
    server = SweepServer(latency=0.01)
    ids = [customer(n) for n in range(400)]
    async with serve(server) as url, client_for(url) as lean:
        async for _ in lean.payment_sources.sweep(ids, concurrency=7):
            pass
    assert server.peak == 7


async def test_invalid_ids_become_failed_results_and_are_never_sent() -> None:
    server = SweepServer()
    ids: list[object] = [customer(1), "../../admin", "", uuid.UUID(int=5), 42, customer(2)]
    async with serve(server) as url, client_for(url) as lean:
        results = {repr(r.customer_id): r async for r in lean.payment_sources.sweep(ids)}
    assert len(results) == 6
    for bad in ("'../../admin'", "''", "42"):
        assert isinstance(results[bad].error, lean_async.InvalidIdError)
    assert results[repr(uuid.UUID(int=5))].ok
    assert sum(server.requests.values()) == 3


class CountingIds:
    """A sync iterable that counts how many ids were pulled from it."""

    def __init__(self, limit: int | None) -> None:
        self.pulled = 0
        self.limit = limit

    def __iter__(self) -> Iterator[str]:
        for n in itertools.count() if self.limit is None else range(self.limit):
            self.pulled += 1
            yield customer(n)


@pytest.mark.parametrize("concurrency", [1, 8, 50])
async def test_sync_input_is_read_lazily(concurrency: int) -> None:
    ids = CountingIds(1000)
    worst = 0
    async with serve(SweepServer()) as url, client_for(url) as lean:
        yielded = 0
        async for _ in lean.payment_sources.sweep(ids, concurrency=concurrency):
            yielded += 1
            worst = max(worst, ids.pulled - yielded)
            await asyncio.sleep(0)  # a consumer that does some work of its own
    assert yielded == 1000
    assert worst <= concurrency + 1


async def test_async_generator_input_is_read_lazily() -> None:
    pulled = 0

    async def database_cursor() -> AsyncIterator[uuid.UUID]:
        nonlocal pulled
        for n in range(500):
            await asyncio.sleep(0)
            pulled += 1
            yield uuid.UUID(customer(n))

    worst = 0
    async with serve(SweepServer()) as url, client_for(url) as lean:
        results = 0
        async for result in lean.payment_sources.sweep(database_cursor(), concurrency=10):
            assert result.ok and isinstance(result.customer_id, uuid.UUID)
            results += 1
            worst = max(worst, pulled - results)
    assert results == 500
    assert worst <= 11


async def test_a_slow_async_input_does_not_hold_back_finished_results() -> None:
    stalled = asyncio.Event()

    async def trickle() -> AsyncIterator[str]:
        yield customer(0)
        stalled.set()
        await asyncio.sleep(2)  # the next id is slow to come
        yield customer(1)

    async with serve(SweepServer()) as url, client_for(url) as lean:
        started = time.monotonic()
        sweep = lean.payment_sources.sweep(trickle(), concurrency=4)
        async with contextlib.aclosing(sweep) as results:
            first = await anext(results)
            assert time.monotonic() - started < 1
            assert first.customer_id == customer(0) and stalled.is_set()
            rest = [r.customer_id async for r in results]
    assert rest == [customer(1)]


async def test_cancelling_a_sweep_waiting_on_its_input_cancels_the_read() -> None:
    cancelled = asyncio.Event()

    async def stuck() -> AsyncIterator[str]:
        yield customer(0)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        yield customer(1)

    async with serve(SweepServer()) as url, client_for(url) as lean:
        async with contextlib.aclosing(lean.payment_sources.sweep(stuck())) as results:
            async for _ in results:
                break
        assert cancelled.is_set()
        assert other_tasks() == set()


async def test_endless_input_can_be_consumed_partially_and_the_client_stays_usable() -> None:
    ids = CountingIds(None)
    server = SweepServer(latency=0.002)
    async with serve(server) as url, client_for(url) as lean:
        seen = 0
        async with contextlib.aclosing(lean.payment_sources.sweep(ids, concurrency=20)) as sweep:
            async for _ in sweep:
                seen += 1
                if seen == 300:
                    break
        assert ids.pulled <= 300 + 21
        assert other_tasks() == set()
        assert connections_in_use(lean) == 0
        assert len(await lean.payment_sources.list(customer(0))) == 1


async def test_break_cancels_in_flight_requests_promptly() -> None:
    ids = [customer(n) for n in range(50)]
    server = SweepServer(plan={cid: "slow" for cid in ids[1:]})
    async with serve(server) as url, client_for(url) as lean:
        started = time.monotonic()
        async with contextlib.aclosing(lean.payment_sources.sweep(ids, concurrency=10)) as sweep:
            async for result in sweep:
                assert result.customer_id == ids[0]
                break
        assert time.monotonic() - started < 2
        assert other_tasks() == set()
        assert connections_in_use(lean) == 0
        await asyncio.sleep(0.05)  # let the server see the dropped connections
        assert server.in_flight == 0
        assert await lean.payment_sources.list(ids[0])


async def test_break_without_aclosing_still_cleans_up_once_the_sweep_is_dropped() -> None:
    ids = [customer(n) for n in range(30)]
    server = SweepServer(plan={cid: "slow" for cid in ids[1:]})
    async with serve(server) as url, client_for(url) as lean:
        async for _ in lean.payment_sources.sweep(ids, concurrency=5):
            break
        for _ in range(50):  # the event loop closes the dropped generator soon after
            if not other_tasks():
                break
            await asyncio.sleep(0.02)
        assert other_tasks() == set()
        assert connections_in_use(lean) == 0


async def test_cancelling_the_task_running_a_sweep_propagates_and_leaves_nothing() -> None:
    ids = [customer(n) for n in range(100)]
    server = SweepServer(plan={cid: "slow" for cid in ids[20:]})
    async with serve(server) as url, client_for(url) as lean:

        async def job() -> None:
            async for _ in lean.payment_sources.sweep(ids, concurrency=10):
                pass

        task = asyncio.create_task(job())
        for _ in range(500):
            if server.in_flight == 10:
                break
            await asyncio.sleep(0.01)
        assert server.in_flight == 10
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert other_tasks() == set()
        assert connections_in_use(lean) == 0
        assert await lean.payment_sources.list(ids[0])


async def test_an_error_in_the_loop_body_cancels_the_sweep() -> None:
    ids = [customer(n) for n in range(40)]
    server = SweepServer(plan={cid: "slow" for cid in ids[1:]})
    async with serve(server) as url, client_for(url) as lean:
        with pytest.raises(KeyError):
            async with contextlib.aclosing(lean.payment_sources.sweep(ids, concurrency=8)) as s:
                async for _ in s:
                    raise KeyError("boom")
        assert other_tasks() == set()
        assert connections_in_use(lean) == 0


async def test_an_input_that_fails_ends_the_sweep_with_its_exception() -> None:
    def broken() -> Iterator[str]:
        yield customer(1)
        raise OSError("cursor lost")

    async with serve(SweepServer(latency=0.05)) as url, client_for(url) as lean:
        with pytest.raises(OSError, match="cursor lost"):
            async for _ in lean.payment_sources.sweep(broken()):
                pass
        assert other_tasks() == set()


async def test_a_rate_limited_server_is_swept_completely_with_few_429s() -> None:
    server = SweepServer(rate=300, latency=0.002, retry_after="0.2")
    ids = [customer(n) for n in range(1200)]
    progress = SweepProgress()
    async with serve(server) as url, client_for(url) as lean:
        results = [
            r async for r in lean.payment_sources.sweep(ids, concurrency=64, progress=progress)
        ]
    assert len(results) == 1200 and all(r.ok for r in results)
    assert {r.customer_id for r in results} == set(ids)
    assert server.statuses[429] == progress.rate_limited
    assert server.statuses[429] < len(ids) * 0.1
    # It slowed down by pacing its starts: a rate limit, which fewer in flight would not
    # help (the sweep used to halve its concurrency instead).
    assert progress.paced_rate is not None and progress.paced_rate < 2 * 300


async def test_a_rate_limited_server_without_retry_after_is_swept_completely() -> None:
    server = SweepServer(rate=400, latency=0.002, retry_after=None)
    ids = [customer(n) for n in range(800)]
    async with serve(server) as url, client_for(url) as lean:
        results = [r async for r in lean.payment_sources.sweep(ids, concurrency=32)]
    assert all(r.ok for r in results) and len(results) == 800
    assert server.statuses[429] < len(ids) * 0.25


async def test_a_rate_limited_sweep_requeues_and_slows_down_even_with_no_retries() -> None:
    server = SweepServer(rate=300, latency=0.002, retry_after=None)
    ids = [customer(n) for n in range(600)]
    progress = SweepProgress()
    async with serve(server) as url, client_for(url, max_retries=0) as lean:
        sweep = lean.payment_sources.sweep(ids, concurrency=32, progress=progress)
        results = [r async for r in sweep]
    assert all(r.ok for r in results) and len(results) == 600
    assert progress.rate_limited == server.statuses[429] > 0
    assert server.statuses[429] < len(ids) * 0.25  # it slowed down instead of hammering


async def test_a_server_that_only_answers_429_fails_each_customer_after_bounded_attempts() -> None:
    server = SweepServer(always_429=True, retry_after=None)
    ids = [customer(n) for n in range(20)]
    async with serve(server) as url, client_for(url) as lean:
        results = [r async for r in lean.payment_sources.sweep(ids, concurrency=4)]
    assert len(results) == 20
    assert all(isinstance(r.error, RateLimitError) for r in results)
    # Never more than 1 + max_retries attempts per customer when nothing makes progress.
    assert max(server.requests.values()) <= 3


async def test_a_retry_after_beyond_the_limit_fails_the_customer_at_once() -> None:
    server = SweepServer(always_429=True, retry_after="3600")
    ids = [customer(n) for n in range(5)]
    async with serve(server) as url, client_for(url) as lean:
        started = time.monotonic()
        results = [r async for r in lean.payment_sources.sweep(ids)]
    assert time.monotonic() - started < 2
    assert all(isinstance(r.error, RateLimitError) and r.error.retry_after == 3600 for r in results)
    assert sum(server.requests.values()) == 5


async def test_progress_counts_match_the_results() -> None:
    ids = [customer(n) for n in range(200)]
    server = SweepServer(plan={ids[3]: "404", ids[4]: "500"})
    progress = SweepProgress()
    async with serve(server) as url, client_for(url) as lean:
        observed = [
            progress.done
            async for _ in lean.payment_sources.sweep(ids, concurrency=8, progress=progress)
        ]
    assert observed == list(range(1, 201))
    assert (progress.done, progress.ok, progress.failed, progress.sources) == (200, 198, 2, 198)
    assert progress.errors == Counter({"UNKNOWN_PAYMENT_SOURCE": 1, "INTERNAL_SERVER_ERROR": 1})
    assert progress.elapsed > 0 and progress.rate > 0 and progress.in_flight == 0
    assert "200 customers (198 ok, 2 failed)" in progress.summary()


async def test_list_many_returns_every_result_keyed_by_id() -> None:
    ids = [customer(n) for n in range(30)]
    async with serve(SweepServer(plan={ids[0]: "404"})) as url, client_for(url) as lean:
        results = await lean.payment_sources.list_many(ids, concurrency=4)
    assert set(results) == set(ids)
    assert not results[ids[0]].ok and results[ids[1]].ok


async def test_concurrent_sweeps_share_the_client_rate_limit() -> None:
    ids = [customer(n) for n in range(20)]
    async with serve(SweepServer()) as url, client_for(url, rate_limit=50) as lean:
        started = time.monotonic()
        await asyncio.gather(
            lean.payment_sources.list_many(ids[:10]), lean.payment_sources.list_many(ids[10:])
        )
        elapsed = time.monotonic() - started
    # 20 requests spaced 1/50 s apart take at least 19/50 s, however many sweeps share them.
    assert elapsed >= 0.36


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_concurrency_must_be_a_positive_whole_number_when_the_sweep_is_made(bad: object) -> None:
    lean = client_for("http://127.0.0.1:1")
    with pytest.raises(ValueError, match="concurrency"):
        lean.payment_sources.sweep([customer(1)], concurrency=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [customer(1), customer(1).encode(), 42])
def test_customer_ids_must_be_an_iterable_of_ids(bad: object) -> None:
    lean = client_for("http://127.0.0.1:1")
    with pytest.raises(TypeError, match="iterable of ids"):
        lean.payment_sources.sweep(bad)  # type: ignore[arg-type]


async def test_a_progress_object_given_to_a_second_sweep_counts_that_sweep_only() -> None:
    progress = SweepProgress()
    async with serve(SweepServer()) as url, client_for(url) as lean:
        await lean.payment_sources.list_many([customer(n) for n in range(5)], progress=progress)
        await lean.payment_sources.list_many([customer(n) for n in range(3)], progress=progress)
    assert (progress.done, progress.ok, progress.sources) == (3, 3, 3)


async def test_an_unreachable_api_ends_the_sweep_early_with_one_connection_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ids = [customer(n) for n in range(1000)]
    yielded = 0
    async with client_for(f"http://127.0.0.1:{port}") as lean:
        started = time.monotonic()
        with pytest.raises(APIConnectionError, match="unreachable") as raised:
            async for _ in lean.payment_sources.sweep(ids, concurrency=32):
                yielded += 1
        assert time.monotonic() - started < 5
        assert other_tasks() == set()
    assert yielded == 0  # no failure line for customers that were never tried properly
    assert "cannot connect" in str(raised.value)


async def test_connection_failures_before_the_first_answer_are_yielded_once_it_comes() -> None:
    ids = [customer(n) for n in range(40)]
    server = SweepServer(latency=0.01)
    async with serve(server) as url, client_for(url, max_retries=0) as lean:
        lean._transport.rate_control._limits.window = 1  # one at a time: in order

        async def first_refused() -> AsyncIterator[str]:
            yield customer(999)
            for cid in ids:
                yield cid

        real_fetch = lean.payment_sources._list_for_sweep
        calls = 0

        def fetch(customer_id: str) -> Any:
            """The first three attempts cannot connect, then the API answers."""
            nonlocal calls
            calls += 1
            if calls <= 3:
                raise APIConnectionError("cannot connect: refused (test)")
            return real_fetch(customer_id)

        lean.payment_sources._list_for_sweep = fetch  # type: ignore[method-assign]
        results = [r async for r in lean.payment_sources.sweep(first_refused())]
    assert len(results) == 41 and len({r.customer_id for r in results}) == 41
    assert sum(isinstance(r.error, APIConnectionError) for r in results) == 3


@pytest.mark.parametrize("concurrency", [1, 2, 8])
@pytest.mark.parametrize("fails_after", [0, 1, 5])
async def test_a_sync_input_that_fails_while_a_worker_reads_it_ends_the_sweep_with_its_error(
    concurrency: int, fails_after: int
) -> None:
    # A worker reads a sync input itself, in its own loop: with one worker, nobody else
    # is left to notice, so its crash must reach the results generator, or the sweep
    # ends as if the input were done (or waits for good).
    def broken() -> Iterator[str]:
        yield from (customer(n) for n in range(fails_after))
        raise OSError("cursor lost")

    results = []

    async def consume(lean: lean_async.LeanClient) -> None:
        async for result in lean.payment_sources.sweep(broken(), concurrency=concurrency):
            results.append(result)  # noqa: PERF401 (kept as they come: the sweep raises)

    async with serve(SweepServer()) as url, client_for(url) as lean:
        with pytest.raises(OSError, match="cursor lost"):
            await asyncio.wait_for(consume(lean), timeout=10)
        assert other_tasks() == set()
    assert all(r.ok for r in results) and len(results) <= fails_after


async def test_one_retry_after_of_an_hour_does_not_pause_the_rest_of_the_sweep() -> None:
    # The first burst is refused with Retry-After: 3600 (beyond max_retry_after): those
    # customers fail at once, and the pause of every start that the refusals cause is
    # the client's own backoff, not the hour.
    server = SweepServer(rate=None, retry_after="3600")
    refused = 8
    handle = server.handle

    async def refuse_the_first_burst(request: web.Request) -> web.StreamResponse:
        if sum(server.requests.values()) < refused:
            server.requests[request.match_info["customer_id"]] += 1
            return _error(429, "RATE_LIMIT_EXCEEDED", {"Retry-After": "3600"})
        return await handle(request)

    server.handle = refuse_the_first_burst  # type: ignore[method-assign]
    ids = [customer(n) for n in range(40)]
    async with serve(server) as url, client_for(url) as lean:

        async def sweep() -> list[lean_async.SweepResult[str]]:
            return [r async for r in lean.payment_sources.sweep(ids, concurrency=4)]

        results = await asyncio.wait_for(sweep(), timeout=20)
    assert len(results) == 40
    turned_away = [r for r in results if not r.ok]
    assert all(isinstance(r.error, RateLimitError) for r in turned_away)
    assert 0 < len(turned_away) <= refused
    assert sum(r.ok for r in results) == 40 - len(turned_away)

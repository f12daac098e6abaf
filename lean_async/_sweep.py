"""The sweep engine: list many customers' payment sources with bounded concurrency,
streaming results, adapting to 429s, and accounting for every input id exactly once."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Callable,
    Coroutine,
    Iterable,
)
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgspec

from ._constants import (
    SWEEP_MIN_RATE,
    SWEEP_MIN_RATE_SAMPLES,
    SWEEP_MIN_RATE_WINDOW,
    SWEEP_RATE_BACKOFF,
    SWEEP_RATE_GROWTH,
    SWEEP_RATE_SAMPLE_EVERY,
    SWEEP_RATE_WINDOW,
    SWEEP_STALLED_429_LIMIT,
)
from ._exceptions import LeanError, RateLimitError
from ._retry import RetryPolicy, backoff_delay
from .types.payment_sources import PaymentSource

__all__ = ["SweepProgress", "SweepResult", "run_sweep"]

Id = TypeVar("Id")
Fetch = Callable[[Any], Coroutine[Any, Any, list[PaymentSource]]]


class SweepResult(msgspec.Struct, Generic[Id], frozen=True):
    """The outcome for one input customer id: its sources, or the error that stopped it."""

    customer_id: Id
    sources: list[PaymentSource] | None = None
    error: LeanError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(slots=True)
class SweepProgress:
    """Live counters of a sweep, updated as results are yielded (read them any time)."""

    done: int = 0
    ok: int = 0
    failed: int = 0
    sources: int = 0
    in_flight: int = 0
    concurrency: int = 0  # the effective limit, lowered under 429s
    rate_limited: int = 0  # 429 answers seen (each such customer is requeued, not failed)
    errors: Counter[str] = field(default_factory=Counter)  # failures by error class or code
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def elapsed(self) -> float:
        if self.started_at is None:
            return 0.0
        end = self.finished_at if self.finished_at is not None else time.monotonic()
        return end - self.started_at

    @property
    def rate(self) -> float:
        """Customers per second so far."""
        elapsed = self.elapsed
        return self.done / elapsed if elapsed > 0 else 0.0

    def start(self, concurrency: int) -> None:
        """Zero the counters for a new sweep (done by the sweep itself)."""
        self.done = self.ok = self.failed = self.sources = self.in_flight = 0
        self.rate_limited = 0
        self.errors = Counter()
        self.concurrency = concurrency
        self.started_at = time.monotonic()
        self.finished_at = None

    def summary(self) -> str:
        return (
            f"{self.done} customers ({self.ok} ok, {self.failed} failed), "
            f"{self.sources} payment sources in {self.elapsed:.1f} s ({self.rate:.0f}/s)"
        )


def error_kind(error: LeanError) -> str:
    """A short label for counting failures: Lean's code, else the error class."""
    code = getattr(error, "code", None)
    return str(code) if code else type(error).__name__


class _Congestion:
    """How fast the sweep may go. Under 429s, like TCP: the number of requests in flight is
    halved (once per window) and grows back by one per window of successes; the start rate
    is paced just below the success rate the server was seen to admit, then creeps back up;
    and the whole sweep pauses for the server's Retry-After (else a backoff delay)."""

    def __init__(self, ceiling: int, policy: RetryPolicy, clock: Callable[[], float]) -> None:
        self.ceiling = ceiling
        self.limit = ceiling
        self.pause_until = 0.0
        self.ready_at = 0.0  # the clock time before which no new request may start
        self.rate: float | None = None  # starts per second once paced, else unpaced
        self._clock = clock
        self._policy = policy
        self._credit = 0
        self._consecutive_429 = 0
        self._started = 0  # requests started so far: numbers the "windows"
        self._decreased_at = -1
        # (active time, successes) every SWEEP_RATE_SAMPLE_EVERY successes, "active" leaving
        # out the pauses, over the last second: the admitted rate is estimated from them.
        self._paused_before = 0.0  # length of the pauses that ended before the current one
        self._pause_start = 0.0
        self._successes = 0
        self._samples: deque[tuple[float, int]] = deque([(clock(), 0)])

    def started(self) -> int:
        self._started += 1
        if self.rate is not None:
            now = self._clock()
            self.ready_at = max(self.ready_at, now) + 1.0 / self.rate
        return self._started

    def on_success(self) -> None:
        self._consecutive_429 = 0
        self._successes += 1
        if not self._successes % SWEEP_RATE_SAMPLE_EVERY:
            self._sample()
        if self.rate is not None:
            self.rate += SWEEP_RATE_GROWTH  # per success: about +10% per second
        if self.limit < self.ceiling:
            self._credit += 1
            if self._credit >= self.limit:  # +1 per window of `limit` successes
                self._credit = 0
                self.limit += 1

    def _active(self, now: float) -> float:
        """``now`` on a clock that stands still while the sweep is paused."""
        current = min(max(now - self._pause_start, 0.0), self.pause_until - self._pause_start)
        return now - self._paused_before - current

    def _sample(self) -> None:
        active = self._active(self._clock())
        samples = self._samples
        samples.append((active, self._successes))
        # Keep one sample older than the window, as its baseline.
        while len(samples) > 2 and samples[1][0] <= active - SWEEP_RATE_WINDOW:
            samples.popleft()

    def on_rate_limited(self, started_as: int, retry_after: float | None) -> None:
        now = self._clock()
        # Only one decrease per window: the other 429s of the same window were already sent.
        if started_as > self._decreased_at:
            self.limit = max(1, self.limit // 2)
            self._credit = 0
            self._decreased_at = self._started
            admitted = self._admitted_rate(now)
            if admitted is not None:
                rate = admitted if self.rate is None else min(self.rate, admitted)
                self.rate = max(rate * SWEEP_RATE_BACKOFF, SWEEP_MIN_RATE)
        if retry_after is None:
            retry_after = backoff_delay(self._consecutive_429, self._policy, random.random())
        self._consecutive_429 += 1
        until = now + retry_after
        if until > self.pause_until:
            if now >= self.pause_until:  # a new pause: the last one has ended
                self._paused_before += self.pause_until - self._pause_start
                self._pause_start = now
            self.pause_until = until
        self.ready_at = max(self.ready_at, self.pause_until)

    def _admitted_rate(self, now: float) -> float | None:
        """Successes per second lately, or None with too few to tell (then only the
        pause and the lower concurrency slow the sweep down)."""
        active = self._active(now)
        origin = self._samples[0][0] if self._samples[0][1] == 0 else None
        start = active - SWEEP_RATE_WINDOW
        if origin is not None:
            start = max(start, min(origin, active - SWEEP_MIN_RATE_WINDOW))
        baseline = 0
        for when, count in reversed(self._samples):
            if when <= start:
                baseline = count
                break
        recent = self._successes - baseline
        if recent < SWEEP_MIN_RATE_SAMPLES:
            return None
        return recent / max(active - start, SWEEP_MIN_RATE_WINDOW)


class _Item:
    __slots__ = ("customer_id", "progress_mark", "strikes")

    def __init__(self, customer_id: Any, progress_mark: int) -> None:
        self.customer_id = customer_id
        self.progress_mark = progress_mark  # successes counted when it was last turned away
        self.strikes = 0  # 429s in a row with no progress of the sweep in between


_END = object()


async def run_sweep(
    fetch: Fetch,
    customer_ids: Iterable[Id] | AsyncIterable[Id],
    *,
    concurrency: int,
    policy: RetryPolicy,
    progress: SweepProgress | None = None,
) -> AsyncGenerator[SweepResult[Id], None]:
    """Yield one SweepResult per input id, in completion order.

    ``fetch`` must raise RateLimitError on 429 without retrying it: the sweep requeues the
    customer itself, for as long as the sweep is still making progress.
    """
    check_sweep(customer_ids, concurrency)
    stats = progress if progress is not None else SweepProgress()
    stats.start(concurrency)
    run = _Run(fetch, customer_ids, concurrency, policy, stats)
    try:
        async for result in run.results():
            yield result
    finally:
        stats.finished_at = time.monotonic()
        stats.in_flight = 0
        await run.stop()


_Job = tuple[_Item, int]  # a customer to fetch, and its number among the requests started
# A job's outcome: its sources, or the error that ended it.
_Outcome = tuple[_Item, int, "list[PaymentSource] | None", "LeanError | None"]


class _Run:
    """One sweep: ``concurrency`` worker tasks fetch, this generator hands out the work and
    turns outcomes into results.

    A worker that has just finished takes the next customer itself when the limit allows
    (no hand-over, no task per customer); otherwise it parks until the generator hands it
    one. Customers taken but not yet yielded never number more than the limit plus one.
    """

    def __init__(
        self,
        fetch: Fetch,
        customer_ids: Iterable[Any] | AsyncIterable[Any],
        concurrency: int,
        policy: RetryPolicy,
        stats: SweepProgress,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._fetch = fetch
        self._policy = policy
        self._stats = stats
        self._control = _Congestion(concurrency, policy, self._loop.time)
        self._next_id = _next_id(customer_ids)
        # An async input is read by a task awaited alongside the requests, so that a slow
        # input never holds back results that are already done.
        self._pull = _async_puller(customer_ids)
        self._pulling: asyncio.Task[Any] | None = None
        self._exhausted = False
        self._retry_queue: deque[_Item] = deque()
        self._in_flight = 0
        self._done: deque[_Outcome] = deque()
        self._parked: deque[asyncio.Future[_Job | None]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._crashed: BaseException | None = None
        self._workers = [self._loop.create_task(self._work()) for _ in range(concurrency)]
        for worker in self._workers:
            worker.add_done_callback(self._worker_ended)

    def _wake(self, _: object = None) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _worker_ended(self, worker: asyncio.Task[None]) -> None:
        if not worker.cancelled() and worker.exception() is not None:
            self._crashed = worker.exception()  # not a LeanError: a bug, or the input failed
            self._wake()

    def _take(self, slack: int) -> _Job | None:
        """The next customer to fetch, if the limit, a pause and the input allow one."""
        control = self._control
        if self._in_flight + len(self._done) >= control.limit + slack:
            return None
        if control.ready_at and self._loop.time() < control.ready_at:
            return None
        if self._retry_queue:
            item = self._retry_queue.popleft()
        elif self._exhausted:
            return None
        else:
            if self._pull is None:
                customer_id = self._next_id()
            else:
                pulling = self._pulling
                if pulling is None:
                    self._pulling = pulling = self._loop.create_task(self._pull())
                    pulling.add_done_callback(self._wake)
                if not pulling.done():
                    return None
                self._pulling = None
                customer_id = pulling.result()
            if customer_id is _END:
                self._exhausted = True
                return None
            item = _Item(customer_id, self._stats.ok)
        self._in_flight += 1
        return item, control.started()

    async def _work(self) -> None:
        job: _Job | None = None
        while True:
            if job is None:
                parked: asyncio.Future[_Job | None] = self._loop.create_future()
                self._parked.append(parked)
                self._wake()  # the generator may be waiting for an idle worker
                job = await parked
                if job is None:
                    return
            item, started_as = job
            try:
                sources = await self._fetch(item.customer_id)
                outcome: _Outcome = (item, started_as, sources, None)
            except LeanError as error:
                outcome = (item, started_as, None, error)
            self._in_flight -= 1
            self._done.append(outcome)
            self._wake()
            # Only a sync input is read here; an async one is read by its own task.
            job = self._take(slack=1) if self._pull is None else None

    def _hand_out(self) -> None:
        while self._parked:
            job = self._take(slack=0)
            if job is None:
                return
            self._parked.popleft().set_result(job)

    async def results(self) -> AsyncGenerator[SweepResult[Any], None]:
        stats, control, policy = self._stats, self._control, self._policy
        while True:
            self._hand_out()
            if self._crashed is not None:
                raise self._crashed
            stats.in_flight = self._in_flight
            stats.concurrency = control.limit
            if self._done:
                item, started_as, sources, error = self._done.popleft()
                if sources is not None:
                    control.on_success()
                    stats.done += 1
                    stats.ok += 1
                    stats.sources += len(sources)
                    yield SweepResult(item.customer_id, sources, None)
                    continue
                assert error is not None
                if isinstance(error, RateLimitError):
                    # Every 429 slows the sweep down, whether or not the customer goes back.
                    stats.rate_limited += 1
                    honoured = error.retry_after
                    if honoured is not None and honoured > policy.max_retry_after:
                        honoured = None  # that customer fails; the sweep only backs off
                    control.on_rate_limited(started_as, honoured)
                    if _requeue(item, error, stats.ok, policy):
                        self._retry_queue.append(item)
                        continue
                stats.done += 1
                stats.failed += 1
                stats.errors[error_kind(error)] += 1
                yield SweepResult(item.customer_id, None, error)
                continue
            waiting_for_input = self._pulling is not None
            if (
                self._exhausted
                and not self._retry_queue
                and self._in_flight == 0
                and not waiting_for_input
            ):
                return
            await self._wait()

    async def _wait(self) -> None:
        """Until a worker finishes, the input gives an id, or a pause ends."""
        waiter = self._waiter = self._loop.create_future()
        timer = None
        if (
            self._parked
            and self._in_flight + len(self._done) < self._control.limit
            and (self._retry_queue or (not self._exhausted and self._pulling is None))
        ):
            # Idle workers and work for them: only a pause (or pacing) holds them back. The
            # timer is set even if that pause has just ended (the clock moved on since it
            # was checked), or nothing would ever wake this generator again.
            ready_at = max(self._control.ready_at, self._loop.time())
            timer = self._loop.call_at(ready_at, self._wake)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def stop(self) -> None:
        """Cancel what is in flight and wait until every worker has ended."""
        unfinished: list[asyncio.Future[Any]] = [*self._workers]
        if self._pulling is not None:
            unfinished.append(self._pulling)
        for future in unfinished:
            future.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)


def _requeue(item: _Item, error: RateLimitError, successes: int, policy: RetryPolicy) -> bool:
    """Whether a customer turned away with 429 goes back in the queue (else it fails)."""
    if error.retry_after is not None and error.retry_after > policy.max_retry_after:
        return False
    if successes > item.progress_mark:
        item.strikes = 0
    item.strikes += 1
    item.progress_mark = successes
    return item.strikes < SWEEP_STALLED_429_LIMIT


def check_sweep(customer_ids: object, concurrency: object) -> None:
    """The mistakes a sweep's caller can make, caught where the sweep is made."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a whole number >= 1, got {concurrency!r}")
    if isinstance(customer_ids, (str, bytes)):
        raise TypeError("customer_ids must be an iterable of ids, not a single string")
    if not isinstance(customer_ids, (Iterable, AsyncIterable)):
        raise TypeError(f"customer_ids must be an iterable of ids, got {customer_ids!r:.80}")


def _next_id(customer_ids: Iterable[Any] | AsyncIterable[Any]) -> Callable[[], Any]:
    """The next id of a sync iterable, _END when done (unused for an async one)."""
    if isinstance(customer_ids, AsyncIterable):
        return lambda: _END
    iterator = iter(customer_ids)
    return lambda: next(iterator, _END)


def _async_puller(
    customer_ids: Iterable[Any] | AsyncIterable[Any],
) -> Callable[[], Coroutine[Any, Any, Any]] | None:
    """An awaitable "next id" of an async iterable, _END when done; None for a sync one."""
    if not isinstance(customer_ids, AsyncIterable):
        return None
    iterator = aiter(customer_ids)

    async def pull() -> Any:
        try:
            return await anext(iterator)
        except StopAsyncIteration:
            return _END

    return pull

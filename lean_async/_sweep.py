"""The sweep engine: list many customers' payment sources with bounded concurrency,
streaming results, requeueing customers turned away with 429, and accounting for every
input id exactly once. How fast requests start is the client's rate control's business
(``_ratelimit``); the rules about 429 and Retry-After are ``_retry``'s."""

from __future__ import annotations

import asyncio
import heapq
import random
import time
from collections import Counter, deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
)
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgspec

from ._constants import SWEEP_UNREACHABLE_AFTER
from ._exceptions import APIConnectionError, APIError, LeanError, RateLimitError
from ._ratelimit import RateControl
from ._retry import RetryPolicy, requeue_after_429, strikes_after_429
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
    in_flight: int = 0  # customers being fetched (or waiting for their start)
    # Requests the client lets into flight at once now: the sweep's concurrency, or less
    # while the client's rate control has narrowed its window (a limit on requests in
    # progress, or the gentle start).
    concurrency: int = 0
    # Request starts per second the client is paced to now; None while unpaced.
    paced_rate: float | None = None
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
        self.paced_rate = None
        self.started_at = time.monotonic()
        self.finished_at = None

    def summary(self) -> str:
        return (
            f"{_count(self.done, 'customer')} ({self.ok} ok, {self.failed} failed), "
            f"{_count(self.sources, 'payment source')} in {self.elapsed:.1f} s "
            f"({self.rate:.0f}/s)"
        )


def _count(number: int, noun: str) -> str:
    """``1 customer``, ``2 customers``."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def error_kind(error: LeanError) -> str:
    """A short label for counting failures: Lean's code, else the error class."""
    code = getattr(error, "code", None)
    return str(code) if code else type(error).__name__


async def run_sweep(
    fetch: Fetch,
    customer_ids: Iterable[Id] | AsyncIterable[Id],
    *,
    concurrency: int,
    policy: RetryPolicy,
    control: RateControl,
    progress: SweepProgress | None = None,
) -> AsyncGenerator[SweepResult[Id], None]:
    """Yield one SweepResult per input id, in completion order.

    ``fetch`` must raise RateLimitError on 429 without retrying it: the sweep requeues the
    customer itself, for as long as the sweep is still making progress. Raises
    APIConnectionError, and yields nothing more, when the first SWEEP_UNREACHABLE_AFTER
    customers to end all failed to connect (the host is unreachable).
    """
    check_sweep(customer_ids, concurrency)
    stats = progress if progress is not None else SweepProgress()
    stats.start(concurrency)
    run = _Run(fetch, customer_ids, concurrency, policy, control, stats)
    try:
        async for result in run.results():
            yield result
    finally:
        stats.finished_at = time.monotonic()
        stats.in_flight = 0
        await run.stop()


class _Item:
    __slots__ = ("customer_id", "progress_mark", "strikes")

    def __init__(self, customer_id: Any, progress_mark: int) -> None:
        self.customer_id = customer_id
        self.progress_mark = progress_mark  # successes counted when it was last turned away
        self.strikes = 0  # 429s in a row with no progress of the sweep in between


# A customer's end: its sources, or the error that ended it.
_Outcome = tuple[_Item, "list[PaymentSource] | None", "LeanError | None"]
_END = object()


class _Run:
    """One sweep: ``concurrency`` worker tasks take customers and fetch them; the results
    generator yields what they finished.

    A worker takes its next customer itself: a requeued one whose time has come, else the
    next id of the input (a sync input is read right there; an async one by a feeder
    task, one id ahead). Customers taken and not yet yielded never number more than
    ``concurrency`` plus one, plus the one id the feeder holds.

    Every wait has its waker. An idle worker (nothing it may take) is woken by: a
    requeue, the feeder's next id, the consumer making room, the end of the work, or the
    timer it arms itself for the first requeued customer's time. The feeder is woken when
    its id is taken or room is made; the results generator by each finished customer, a
    worker ending, or a crash.

    Times due are read from the event loop's clock, the one its timers run on (a test
    can run the sweep on a loop with a virtual clock).
    """

    def __init__(
        self,
        fetch: Fetch,
        customer_ids: Iterable[Any] | AsyncIterable[Any],
        concurrency: int,
        policy: RetryPolicy,
        control: RateControl,
        stats: SweepProgress,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._fetch = fetch
        self._policy = policy
        self._control = control
        self._stats = stats
        self._concurrency = concurrency
        self._busy = 0  # customers taken by a worker and being fetched
        self._successes = 0
        self._done: deque[_Outcome] = deque()
        self._requeued: list[tuple[float, int, _Item]] = []  # a heap by time due
        self._requeues = 0
        self._fed: deque[Any] = deque()  # ids the feeder read and no worker took yet
        self._input_ended = False
        self._idle: deque[asyncio.Future[None]] = deque()
        self._feeder_waiting: asyncio.Future[None] | None = None
        self._consumer: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._crashed: BaseException | None = None
        self._next_id: Callable[[], Any] | None = None
        self._feeder: asyncio.Task[None] | None = None
        if isinstance(customer_ids, AsyncIterable):
            self._feeder = self._loop.create_task(self._feed(aiter(customer_ids)))
        else:
            iterator = iter(customer_ids)
            self._next_id = lambda: next(iterator, _END)
        self._live = concurrency
        self._workers = [self._loop.create_task(self._work()) for _ in range(concurrency)]

    # -- waking ------------------------------------------------------------------------

    def _wake_consumer(self) -> None:
        consumer = self._consumer
        if consumer is not None and not consumer.done():
            consumer.set_result(None)

    def _wake_idle(self, every: bool = False) -> None:
        idle = self._idle
        while idle:
            waiter = idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if not every:
                    return

    def _wake_feeder(self) -> None:
        waiter = self._feeder_waiting
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _on_timer(self) -> None:
        self._timer = None
        self._wake_idle()

    def _crash(self, error: BaseException) -> None:
        """Not a LeanError: a bug, or the input failed. The results generator raises it."""
        if self._crashed is None:
            self._crashed = error
        self._wake_consumer()

    # -- the workers -------------------------------------------------------------------

    def _has_room(self, slack: int = 0) -> bool:
        return self._busy + len(self._done) < self._concurrency + slack

    def _take(self, slack: int) -> _Item | None:
        """The next customer for a worker, or None when there is none it may take now.
        A worker that has just finished takes with a ``slack`` of one: it goes on with
        the next customer itself, without waiting for the results generator to yield its
        last one (a hand-over per customer would cost more than the rest of the sweep)."""
        if not self._has_room(slack):
            return None
        requeued = self._requeued
        if requeued and requeued[0][0] <= self._loop.time():
            return heapq.heappop(requeued)[2]
        if self._next_id is not None:  # a sync input, read here
            if self._input_ended:
                return None
            customer_id = self._next_id()
            if customer_id is _END:
                self._input_ended = True
                return None
        elif self._fed:
            customer_id = self._fed.popleft()
            self._wake_feeder()
        else:
            return None
        return _Item(customer_id, self._successes)

    def _finished(self) -> bool:
        """No customer left: the input is read, none is requeued, none is being fetched."""
        return self._input_ended and not self._fed and not self._requeued and self._busy == 0

    async def _idle_until_woken(self) -> None:
        requeued = self._requeued
        if requeued and self._has_room():
            # Nobody else would wake this worker when the first requeued customer is due.
            due = requeued[0][0]
            if self._timer is None or due < self._timer_at:
                if self._timer is not None:
                    self._timer.cancel()
                self._timer_at = due
                self._timer = self._loop.call_later(
                    max(due - self._loop.time(), 0.0), self._on_timer
                )
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._idle.append(waiter)
        await waiter

    async def _work(self) -> None:
        slack = 0
        try:
            while True:
                item = self._take(slack)
                slack = 0
                if item is None:
                    if self._finished():
                        return
                    await self._idle_until_woken()
                    continue
                if self._idle and self._more_to_take():
                    self._wake_idle()  # one wake-up may have made room for several
                self._busy += 1
                try:
                    sources = await self._fetch(item.customer_id)
                except RateLimitError as error:
                    outcome = self._turned_away(item, error)
                except LeanError as error:
                    outcome = (item, None, error)
                else:
                    self._successes += 1
                    outcome = (item, sources, None)
                finally:
                    self._busy -= 1
                if outcome is not None:
                    self._done.append(outcome)
                    self._wake_consumer()
                if self._finished():
                    self._wake_idle(every=True)  # the end: every idle worker returns
                slack = 1
        except Exception as error:  # not a LeanError: handed to the results generator
            self._crash(error)
        finally:
            self._live -= 1
            self._wake_consumer()

    def _more_to_take(self) -> bool:
        requeued = self._requeued
        return self._has_room() and bool(
            self._fed
            or (requeued and requeued[0][0] <= self._loop.time())
            or (self._next_id is not None and not self._input_ended)
        )

    def _turned_away(self, item: _Item, error: RateLimitError) -> _Outcome | None:
        """A 429: the customer goes back in the queue (None), or fails (its outcome)."""
        self._stats.rate_limited += 1
        item.strikes = strikes_after_429(item.strikes, self._successes > item.progress_mark)
        item.progress_mark = self._successes
        delay = requeue_after_429(error.retry_after, item.strikes, self._policy, random.random())
        if delay is None:
            return item, None, error
        self._requeues += 1
        heapq.heappush(self._requeued, (self._loop.time() + delay, self._requeues, item))
        self._wake_idle()
        return None

    async def _feed(self, source: AsyncIterator[Any]) -> None:
        """Reads an async input, one id ahead of the workers, while there is room."""
        try:
            while True:
                while self._fed or not self._has_room():
                    self._feeder_waiting = self._loop.create_future()
                    await self._feeder_waiting
                try:
                    customer_id = await anext(source)
                except StopAsyncIteration:
                    return
                self._fed.append(customer_id)
                self._wake_idle()
        except Exception as error:  # the input failed: the sweep ends with its error
            self._crash(error)
        finally:
            self._input_ended = True
            self._wake_idle(every=True)

    # -- the results ---------------------------------------------------------------------

    async def results(self) -> AsyncGenerator[SweepResult[Any], None]:
        stats, control = self._stats, self._control
        done = self._done
        held: list[_Outcome] = []  # connection failures while the API never answered
        answered = False
        while True:
            if self._crashed is not None:
                raise self._crashed
            if not done:
                if self._live == 0:
                    for outcome in held:
                        yield self._result(outcome)
                    return
                self._consumer = self._loop.create_future()
                await self._consumer
                continue
            outcome = done.popleft()
            if self._idle:
                self._wake_idle()  # room for one more customer
            self._wake_feeder()
            stats.in_flight = self._busy
            stats.concurrency = min(self._concurrency, control.window)
            stats.paced_rate = control.rate
            if not answered:
                error = outcome[2]
                if isinstance(error, APIConnectionError):
                    held.append(outcome)
                    if len(held) >= SWEEP_UNREACHABLE_AFTER:
                        raise _unreachable(len(held), error)
                    continue
                if error is None or isinstance(error, APIError):
                    answered = True
                    for earlier in held:
                        yield self._result(earlier)
                    held.clear()
            yield self._result(outcome)

    def _result(self, outcome: _Outcome) -> SweepResult[Any]:
        item, sources, error = outcome
        stats = self._stats
        stats.done += 1
        if sources is not None:
            stats.ok += 1
            stats.sources += len(sources)
            return SweepResult(item.customer_id, sources, None)
        assert error is not None
        stats.failed += 1
        stats.errors[error_kind(error)] += 1
        return SweepResult(item.customer_id, None, error)

    async def stop(self) -> None:
        """Cancel what is in flight and wait until every task has ended."""
        if self._timer is not None:
            self._timer.cancel()
        unfinished: list[asyncio.Future[Any]] = [*self._workers]
        if self._feeder is not None:
            unfinished.append(self._feeder)
        for future in unfinished:
            future.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)


def _unreachable(count: int, last: APIConnectionError) -> APIConnectionError:
    return APIConnectionError(
        f"the API is unreachable: the first {count} customers all failed to connect and "
        f"none got an answer; the last: {last}"
    )


def check_sweep(customer_ids: object, concurrency: object) -> None:
    """The mistakes a sweep's caller can make, caught where the sweep is made."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a whole number >= 1, got {concurrency!r}")
    if isinstance(customer_ids, (str, bytes)):
        raise TypeError("customer_ids must be an iterable of ids, not a single string")
    if not isinstance(customer_ids, (Iterable, AsyncIterable)):
        raise TypeError(f"customer_ids must be an iterable of ids, got {customer_ids!r:.80}")

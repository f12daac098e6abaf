"""The sweep engine (``_sweep.run_sweep``) with a fetch function in place of the HTTP
client: requeueing after 429, strikes, the requeue heap's order, the unreachable-API rule,
crashes and the progress counters, each checked without a server. The async tests run on
a loop with a virtual clock (``_virtual_time``): a Retry-After of 30 s takes no time, the
times a customer is sent are asserted exactly, and a wait nothing can end fails at once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any

import pytest
from _virtual_time import in_virtual_time

from lean_async import (
    APIConnectionError,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    SweepProgress,
    SweepResult,
)
from lean_async._constants import SWEEP_STALLED_429_LIMIT, SWEEP_UNREACHABLE_AFTER
from lean_async._ratelimit import RateControl
from lean_async._sweep import error_kind, run_sweep

pytestmark = pytest.mark.timeout(30)

POLICY = RetryPolicy(max_retries=2, initial_delay=0.001, max_delay=0.01)
CASE_TIMEOUT = 120.0  # virtual seconds: a sweep that takes longer has hung


def _refused(retry_after: float | None = None) -> RateLimitError:
    return RateLimitError(429, code="RATE_LIMIT_EXCEEDED", retry_after=retry_after)


async def _sweep(
    fetch: Callable[[Any], Awaitable[list[Any]]],
    ids: Iterable[Any] | AsyncIterator[Any],
    *,
    concurrency: int = 4,
    progress: SweepProgress | None = None,
    control: Any = None,
    policy: RetryPolicy = POLICY,
) -> list[SweepResult[Any]]:
    """Every result of a sweep, in the order yielded, bounded in time."""

    async def collect() -> list[SweepResult[Any]]:
        results = run_sweep(
            fetch,  # type: ignore[arg-type]
            ids,
            concurrency=concurrency,
            policy=policy,
            control=control or RateControl(policy=policy),
            progress=progress,
        )
        return [result async for result in results]

    return await asyncio.wait_for(collect(), CASE_TIMEOUT)


def _tasks_left() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


# -- results and progress, as plain values ------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (NotFoundError(404, code="UNKNOWN_PAYMENT_SOURCE"), "UNKNOWN_PAYMENT_SOURCE"),
        (ServerError(500), "ServerError"),
        (APIConnectionError("refused"), "APIConnectionError"),
    ],
)
def test_a_failure_is_counted_under_lean_s_code_else_its_class(error: Any, kind: str) -> None:
    assert error_kind(error) == kind


def test_a_result_is_ok_exactly_when_it_has_no_error() -> None:
    assert SweepResult("c", [], None).ok is True
    assert SweepResult("c", None, ServerError(500)).ok is False


def test_a_result_cannot_be_changed_once_yielded() -> None:
    result = SweepResult("c", [], None)
    with pytest.raises(AttributeError):
        result.error = ServerError(500)  # type: ignore[misc]


def test_a_progress_object_reads_zero_before_its_sweep_starts() -> None:
    # A progress bar drawn before the first result shows nothing done, nothing in flight.
    progress = SweepProgress()
    assert (progress.done, progress.ok, progress.failed, progress.sources) == (0, 0, 0, 0)
    assert (progress.in_flight, progress.concurrency, progress.rate_limited) == (0, 0, 0)
    assert progress.paced_rate is None and not progress.errors
    assert progress.elapsed == 0.0 and progress.rate == 0.0
    assert progress.summary().startswith("0 customers (0 ok, 0 failed), 0 payment sources")


def test_a_progress_object_refuses_a_misspelt_counter() -> None:
    progress = SweepProgress()
    with pytest.raises(AttributeError):
        progress.rate_limitted = 1  # type: ignore[attr-defined]


def test_a_finished_sweep_s_elapsed_time_and_rate_stay_fixed() -> None:
    progress = SweepProgress(done=10, started_at=100.0, finished_at=104.0)
    assert progress.elapsed == 4.0
    assert progress.rate == 2.5
    assert progress.summary() == "10 customers (0 ok, 0 failed), 0 payment sources in 4.0 s (2/s)"


def test_a_running_sweep_s_elapsed_time_counts_up_to_now() -> None:
    progress = SweepProgress(started_at=time.monotonic() - 5.0)
    assert 5.0 <= progress.elapsed < 60.0


@pytest.mark.parametrize(
    ("done", "elapsed", "rate"), [(3, 0.0, 0.0), (1, 0.5, 2.0), (10, 4.0, 2.5), (0, 2.0, 0.0)]
)
def test_the_rate_is_customers_done_per_second_and_zero_for_no_time(
    done: int, elapsed: float, rate: float
) -> None:
    assert SweepProgress(done=done, started_at=7.0, finished_at=7.0 + elapsed).rate == rate


def test_starting_a_progress_object_zeroes_it_and_records_the_start() -> None:
    progress = SweepProgress(
        done=5, ok=4, failed=1, sources=9, in_flight=2, rate_limited=3, paced_rate=10.0,
        errors=Counter({"X": 1}), started_at=1.0, finished_at=2.0,
    )  # fmt: skip
    before = time.monotonic()
    progress.start(7)
    assert (progress.done, progress.ok, progress.failed, progress.sources) == (0, 0, 0, 0)
    assert (progress.in_flight, progress.rate_limited, progress.concurrency) == (0, 0, 7)
    assert progress.paced_rate is None and progress.errors == Counter()
    assert progress.started_at is not None and progress.started_at >= before
    assert progress.finished_at is None


# -- every customer once --------------------------------------------------------------------


@in_virtual_time
async def test_every_id_ends_once_with_its_sources_or_its_error_and_progress_agrees() -> None:
    errors = {"c3": NotFoundError(404, code="UNKNOWN_PAYMENT_SOURCE"), "c5": ServerError(500)}

    async def fetch(customer_id: str) -> list[Any]:
        await asyncio.sleep(0.001)
        if customer_id in errors:
            raise errors[customer_id]
        return [customer_id, customer_id]  # two "sources" each

    progress = SweepProgress()
    ids = [f"c{n}" for n in range(20)]
    results = await _sweep(fetch, ids, progress=progress)
    assert sorted(r.customer_id for r in results) == sorted(ids)
    by_id = {r.customer_id: r for r in results}
    assert by_id["c3"].error is errors["c3"] and by_id["c3"].sources is None
    assert by_id["c0"].sources == ["c0", "c0"] and by_id["c0"].error is None
    assert (progress.done, progress.ok, progress.failed, progress.sources) == (20, 18, 2, 36)
    assert progress.errors == Counter({"UNKNOWN_PAYMENT_SOURCE": 1, "ServerError": 1})
    assert progress.in_flight == 0 and progress.finished_at is not None
    assert _tasks_left() == set()


@pytest.mark.parametrize("concurrency", [1, 3, 8])
@in_virtual_time
async def test_the_sweep_fetches_exactly_concurrency_customers_at_once(concurrency: int) -> None:
    in_flight = peak = 0

    async def fetch(customer_id: int) -> list[Any]:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1
        return []

    results = await _sweep(fetch, range(4 * concurrency), concurrency=concurrency)
    assert len(results) == 4 * concurrency
    assert peak == concurrency


@in_virtual_time
async def test_progress_shows_customers_in_flight_and_the_rate_control_s_window_and_pace() -> None:
    class Control:  # what the sweep reads of the client's rate control
        window = 2
        rate = 5.0

    seen: list[tuple[int, int, float | None]] = []
    progress = SweepProgress()

    async def fetch(customer_id: int) -> list[Any]:
        await asyncio.sleep(0.002)
        return []

    async def collect() -> None:
        results = run_sweep(
            fetch,  # type: ignore[arg-type]
            range(30),
            concurrency=4,
            policy=POLICY,
            control=Control(),  # type: ignore[arg-type]
            progress=progress,
        )
        seen.extend(
            [(progress.in_flight, progress.concurrency, progress.paced_rate) async for _ in results]
        )

    await asyncio.wait_for(collect(), CASE_TIMEOUT)
    assert {(window, rate) for _, window, rate in seen} == {(2, 5.0)}
    assert max(busy for busy, _, _ in seen) > 0
    assert progress.in_flight == 0


@in_virtual_time
async def test_a_progress_object_given_to_a_second_sweep_counts_that_sweep_only() -> None:
    async def fetch(customer_id: int) -> list[Any]:
        await asyncio.sleep(1.0)
        return [customer_id]

    progress = SweepProgress()
    await _sweep(fetch, range(5), progress=progress)
    first_started = progress.started_at
    await _sweep(fetch, range(3), progress=progress)
    assert (progress.done, progress.ok, progress.sources) == (3, 3, 3)
    assert first_started is not None and progress.started_at is not None
    assert progress.started_at > first_started  # restarted with the second sweep


@in_virtual_time
async def test_a_sweep_broken_off_leaves_nothing_in_flight_and_its_end_recorded() -> None:
    async def fetch(customer_id: int) -> list[Any]:
        await asyncio.sleep(0.01 * (customer_id + 1))
        return []

    progress = SweepProgress()
    results = run_sweep(
        fetch,  # type: ignore[arg-type]
        range(100),
        concurrency=8,
        policy=POLICY,
        control=RateControl(policy=POLICY),
        progress=progress,
    )
    async for _ in results:
        assert progress.in_flight > 0  # the other seven are still being fetched
        break
    await results.aclose()
    assert progress.in_flight == 0 and progress.finished_at is not None
    assert _tasks_left() == set()


@in_virtual_time
async def test_a_sweep_broken_off_while_its_async_input_is_slow_cancels_the_read() -> None:
    reading_cancelled = False

    async def fetch(customer_id: int) -> list[Any]:
        return []

    async def slow_input() -> AsyncIterator[int]:
        nonlocal reading_cancelled
        yield 1
        try:
            await asyncio.sleep(3600.0)  # the next id is slow to come
        except asyncio.CancelledError:
            reading_cancelled = True
            raise
        yield 2

    results = run_sweep(
        fetch,  # type: ignore[arg-type]
        slow_input(),
        concurrency=2,
        policy=POLICY,
        control=RateControl(policy=POLICY),
    )
    async for _ in results:
        break
    await results.aclose()
    assert reading_cancelled
    assert _tasks_left() == set()


@pytest.mark.parametrize(
    ("ids", "concurrency", "error"),
    [
        ([1], 0, ValueError),
        ([1], -1, ValueError),
        ([1], 2.0, ValueError),
        ([1], True, ValueError),
        ("c1", 1, TypeError),
        (b"c1", 1, TypeError),
        (42, 1, TypeError),
    ],
)
@in_virtual_time
async def test_a_sweep_refuses_a_bad_concurrency_or_a_single_string_for_ids(
    ids: Any, concurrency: Any, error: type[Exception]
) -> None:
    async def fetch(customer_id: Any) -> list[Any]:
        return []

    # The sweep's own message, not whatever iterating a non-iterable would raise.
    message = "concurrency must be" if error is ValueError else "customer_ids must be an iterable"
    with pytest.raises(error, match=message):
        await _sweep(fetch, ids, concurrency=concurrency)


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("kind", ["sync", "async"])
@in_virtual_time
async def test_a_consumer_that_holds_a_result_holds_the_input_back_to_the_bound(
    kind: str, concurrency: int
) -> None:
    # Read and not yet yielded, while the consumer holds a result: concurrency + 1 from a
    # sync input (a worker that has just finished goes on with one more); concurrency
    # from an async one, whose feeder reads ahead only while there is room.
    read = 0

    def counted() -> Iterator[int]:
        nonlocal read
        for n in range(1000):
            read += 1
            yield n

    async def counted_async() -> AsyncIterator[int]:
        for n in counted():
            yield n

    async def fetch(customer_id: int) -> list[Any]:
        await asyncio.sleep(0.01)
        return []

    ids: Any = counted() if kind == "sync" else counted_async()
    results = run_sweep(
        fetch,
        ids,
        concurrency=concurrency,
        policy=POLICY,
        control=RateControl(policy=POLICY),
    )
    async for _ in results:
        await asyncio.sleep(10.0)  # the consumer holds its first result; the sweep idles
        break
    await results.aclose()
    assert read - 1 == concurrency + (kind == "sync")  # the room is filled, not beyond


# -- 429: requeued, in the order due ----------------------------------------------------------


@in_virtual_time
async def test_a_customer_turned_away_with_429_is_sent_again_and_ends_ok() -> None:
    attempts: Counter[str] = Counter()

    async def fetch(customer_id: str) -> list[Any]:
        attempts[customer_id] += 1
        if customer_id == "c1" and attempts[customer_id] == 1:
            raise _refused()
        return []

    progress = SweepProgress()
    results = await _sweep(fetch, ["c0", "c1", "c2"], progress=progress)
    assert all(r.ok for r in results) and len(results) == 3
    assert attempts == Counter({"c0": 1, "c1": 2, "c2": 1})
    assert progress.rate_limited == 1 and progress.failed == 0


@pytest.mark.parametrize("concurrency", [1, 4])
@in_virtual_time
async def test_a_requeued_customer_is_not_sent_again_before_its_retry_after(
    concurrency: int,
) -> None:
    sent_at: dict[str, list[float]] = {}
    clock = asyncio.get_running_loop().time

    async def fetch(customer_id: str) -> list[Any]:
        sent_at.setdefault(customer_id, []).append(clock())
        if customer_id == "c0" and len(sent_at[customer_id]) == 1:
            raise _refused(retry_after=2.0)  # (one of a second or less: whole-second rounding)
        return []

    results = await _sweep(fetch, ["c0", "c1"], concurrency=concurrency)
    assert all(r.ok for r in results)
    first, second = sent_at["c0"]
    assert second - first == pytest.approx(2.0, abs=1e-9)  # when it is due, not before


@in_virtual_time
async def test_a_customer_due_sooner_is_sent_again_before_one_due_later() -> None:
    # The requeue is a heap by time due: the sweep takes its top, whatever was pushed
    # last. "later" waits 30 s; "sooner" must not wait with it.
    sent: list[tuple[str, float]] = []
    clock = asyncio.get_running_loop().time

    async def fetch(customer_id: str) -> list[Any]:
        sent.append((customer_id, clock()))
        if [name for name, _ in sent].count(customer_id) == 1:
            raise _refused(retry_after=30.0 if customer_id == "later" else 1.5)
        return []

    results = await _sweep(fetch, ["later", "sooner"], concurrency=2)
    assert [r.customer_id for r in results] == ["sooner", "later"]
    assert sent == [
        ("later", 0.0),
        ("sooner", 0.0),
        ("sooner", pytest.approx(1.5, abs=1e-9)),
        ("later", pytest.approx(30.0, abs=1e-9)),
    ]


@in_virtual_time
async def test_an_idle_worker_rearms_its_timer_for_a_customer_due_sooner() -> None:
    # One worker: it idles with a timer for "later" (30 s), then "sooner" comes from the
    # input and is requeued due 1.5 s later; the timer must move up to it.
    sent: list[tuple[str, float]] = []
    clock = asyncio.get_running_loop().time

    async def fetch(customer_id: str) -> list[Any]:
        sent.append((customer_id, clock()))
        if [name for name, _ in sent].count(customer_id) == 1:
            raise _refused(retry_after=30.0 if customer_id == "later" else 1.5)
        return []

    async def later_first() -> AsyncIterator[str]:
        yield "later"
        await asyncio.sleep(1.0)  # the worker idles, its timer set for "later"
        yield "sooner"

    results = await _sweep(fetch, later_first(), concurrency=1)
    assert [r.customer_id for r in results] == ["sooner", "later"]
    assert sent == [
        ("later", 0.0),
        ("sooner", pytest.approx(1.0, abs=1e-9)),
        ("sooner", pytest.approx(2.5, abs=1e-9)),
        ("later", pytest.approx(30.0, abs=1e-9)),
    ]


@pytest.mark.parametrize("retry_after", [None, 0.01])
@in_virtual_time
async def test_a_customer_refused_with_no_progress_in_between_fails_after_the_strike_limit(
    retry_after: float | None,
) -> None:
    attempts = 0

    async def fetch(customer_id: str) -> list[Any]:
        nonlocal attempts
        attempts += 1
        raise _refused(retry_after)

    progress = SweepProgress()
    [result] = await _sweep(fetch, ["c0"], progress=progress)
    assert isinstance(result.error, RateLimitError)
    assert attempts == SWEEP_STALLED_429_LIMIT == progress.rate_limited
    assert progress.errors == Counter({"RATE_LIMIT_EXCEEDED": 1})


@in_virtual_time
async def test_strikes_count_from_the_sweep_s_last_progress_not_from_the_customer_s_start() -> None:
    # "slow" is taken first; the other worker finishes everything else while it is in
    # flight. Its 429s then come with no progress in between: it fails after the limit.
    attempts: Counter[str] = Counter()

    async def fetch(customer_id: str) -> list[Any]:
        attempts[customer_id] += 1
        if customer_id == "slow":
            if attempts[customer_id] == 1:
                await asyncio.sleep(0.1)
            raise _refused()
        return []

    results = await _sweep(fetch, ["slow", *(f"c{n}" for n in range(20))], concurrency=2)
    [slow] = [r for r in results if r.customer_id == "slow"]
    assert isinstance(slow.error, RateLimitError)
    assert attempts["slow"] == SWEEP_STALLED_429_LIMIT


@in_virtual_time
async def test_a_customer_refused_while_the_sweep_progresses_is_kept_until_it_ends_ok() -> None:
    # Each of its 429s comes after others succeeded: no strike limit applies.
    attempts: Counter[str] = Counter()
    refusals = SWEEP_STALLED_429_LIMIT + 2

    async def fetch(customer_id: str) -> list[Any]:
        attempts[customer_id] += 1
        if customer_id == "busy" and attempts["busy"] <= refusals:
            raise _refused(retry_after=0.02)
        await asyncio.sleep(0.002)
        return []

    async def ids() -> AsyncIterator[str]:
        yield "busy"
        for n in range(100_000):  # bounded by "busy" ending: the test breaks off then
            yield f"c{n}"

    async def until_busy_ends() -> SweepResult[str]:
        results = run_sweep(
            fetch,  # type: ignore[arg-type]
            ids(),
            concurrency=2,
            policy=POLICY,
            control=RateControl(policy=POLICY),
        )
        async for result in results:
            if result.customer_id == "busy":
                await results.aclose()
                return result
        raise AssertionError("the sweep ended without 'busy'")

    busy = await asyncio.wait_for(until_busy_ends(), CASE_TIMEOUT)
    assert busy.ok
    assert attempts["busy"] == refusals + 1


@in_virtual_time
async def test_a_retry_after_beyond_the_policy_s_limit_fails_the_customer_at_once() -> None:
    attempts = 0

    async def fetch(customer_id: str) -> list[Any]:
        nonlocal attempts
        attempts += 1
        raise _refused(retry_after=POLICY.max_retry_after + 1)

    [result] = await _sweep(fetch, ["c0"])
    assert isinstance(result.error, RateLimitError) and attempts == 1


@in_virtual_time
async def test_a_retry_after_at_the_policy_s_limit_is_waited_out() -> None:
    policy = RetryPolicy(max_retries=2, initial_delay=0.001, max_delay=0.01, max_retry_after=2.0)
    sent_at: list[float] = []
    clock = asyncio.get_running_loop().time

    async def fetch(customer_id: str) -> list[Any]:
        sent_at.append(clock())
        if len(sent_at) == 1:
            raise _refused(retry_after=2.0)
        return []

    [result] = await _sweep(fetch, ["c0"], policy=policy)
    assert result.ok
    assert sent_at == [0.0, pytest.approx(2.0, abs=1e-9)]


@in_virtual_time
async def test_several_customers_due_at_once_are_sent_again_side_by_side() -> None:
    # Five customers are refused together: four come due together, the fifth (the
    # heap's last entry) much later. The timer wakes one worker; each take must wake the
    # next while more is due, or three of the four wait for a worker to come free.
    in_flight = peak_second_round = 0
    attempts: Counter[int] = Counter()

    async def fetch(customer_id: int) -> list[Any]:
        nonlocal in_flight, peak_second_round
        attempts[customer_id] += 1
        if attempts[customer_id] == 1:
            await asyncio.sleep(0.01)  # all five are in flight, then all refused
            raise _refused(retry_after=10.0 if customer_id == 4 else 0.1)
        if customer_id != 4:
            in_flight += 1
            peak_second_round = max(peak_second_round, in_flight)
            await asyncio.sleep(0.05)
            in_flight -= 1
        return []

    results = await _sweep(fetch, range(5), concurrency=5)
    assert all(r.ok for r in results)
    assert peak_second_round == 4


# -- an unreachable API, and crashes ----------------------------------------------------------


@in_virtual_time
async def test_as_many_connection_failures_as_the_limit_end_the_sweep_as_unreachable() -> None:
    async def fetch(customer_id: int) -> list[Any]:
        raise APIConnectionError("cannot connect (test)")

    yielded: list[SweepResult[Any]] = []

    async def consume() -> None:
        results = run_sweep(
            fetch,  # type: ignore[arg-type]
            range(100),
            concurrency=1,
            policy=POLICY,
            control=RateControl(policy=POLICY),
        )
        async for result in results:
            yielded.append(result)  # noqa: PERF401 (kept as they come: the sweep raises)

    with pytest.raises(APIConnectionError, match="unreachable") as raised:
        await asyncio.wait_for(consume(), CASE_TIMEOUT)
    assert yielded == []
    assert f"the first {SWEEP_UNREACHABLE_AFTER} customers" in str(raised.value)
    assert "cannot connect (test)" in str(raised.value)
    assert _tasks_left() == set()


@in_virtual_time
async def test_one_connection_failure_fewer_than_the_limit_is_yielded_once_an_answer_comes() -> (
    None
):
    failing = SWEEP_UNREACHABLE_AFTER - 1
    fetched = 0

    async def fetch(customer_id: int) -> list[Any]:
        nonlocal fetched
        fetched += 1
        if customer_id < failing:
            raise APIConnectionError("cannot connect (test)")
        return []

    async def collect() -> list[tuple[int, int]]:
        results = run_sweep(
            fetch,  # type: ignore[arg-type]
            range(failing + 1),
            concurrency=1,
            policy=POLICY,
            control=RateControl(policy=POLICY),
        )
        return [(result.customer_id, fetched) async for result in results]

    yielded = await asyncio.wait_for(collect(), CASE_TIMEOUT)
    # Held back until the answer came, then yielded in their order, once each.
    assert yielded == [(n, failing + 1) for n in range(failing + 1)]


@in_virtual_time
async def test_connection_failures_after_an_api_error_answer_are_yielded_at_once() -> None:
    async def fetch(customer_id: int) -> list[Any]:
        if customer_id == 0:
            raise NotFoundError(404, code="UNKNOWN_PAYMENT_SOURCE")
        raise APIConnectionError("cannot connect (test)")

    count = SWEEP_UNREACHABLE_AFTER + 2
    results = await _sweep(fetch, range(count), concurrency=1)
    assert [r.customer_id for r in results] == list(range(count))


@in_virtual_time
async def test_connection_failures_only_are_yielded_when_the_input_ends_below_the_limit() -> None:
    async def fetch(customer_id: int) -> list[Any]:
        raise APIConnectionError("cannot connect (test)")

    results = await _sweep(fetch, range(3), concurrency=2)
    assert sorted(r.customer_id for r in results) == [0, 1, 2]
    assert all(isinstance(r.error, APIConnectionError) for r in results)


@pytest.mark.parametrize("concurrency", [1, 4])
@in_virtual_time
async def test_a_fetch_that_raises_a_non_lean_error_ends_the_sweep_with_it(
    concurrency: int,
) -> None:
    async def fetch(customer_id: int) -> list[Any]:
        if customer_id == 2:
            raise KeyError("a bug")
        await asyncio.sleep(0.001)
        return []

    with pytest.raises(KeyError, match="a bug"):
        await _sweep(fetch, range(50), concurrency=concurrency)
    assert _tasks_left() == set()


@in_virtual_time
async def test_an_async_input_that_fails_ends_the_sweep_with_its_error() -> None:
    async def fetch(customer_id: int) -> list[Any]:
        return []

    async def broken() -> AsyncIterator[int]:
        yield 1
        raise OSError("cursor lost")

    with pytest.raises(OSError, match="cursor lost"):
        await _sweep(fetch, broken(), concurrency=2)
    assert _tasks_left() == set()


@in_virtual_time
async def test_an_async_input_failing_ends_the_sweep_at_once_not_when_fetches_end() -> None:
    clock = asyncio.get_running_loop().time

    async def fetch(customer_id: int) -> list[Any]:
        await asyncio.sleep(30.0)  # a long fetch in flight when the input fails
        return []

    async def broken() -> AsyncIterator[int]:
        yield 1
        await asyncio.sleep(1.0)
        raise OSError("cursor lost")

    with pytest.raises(OSError, match="cursor lost"):
        await _sweep(fetch, broken(), concurrency=2)
    assert clock() == pytest.approx(1.0, abs=1e-9)
    assert _tasks_left() == set()


@pytest.mark.parametrize("concurrency", [2, 5])
@in_virtual_time
async def test_an_async_input_that_ends_late_ends_the_sweep_with_every_worker_idle(
    concurrency: int,
) -> None:
    # Every result is yielded and every worker idles when the input ends: all must return.
    async def fetch(customer_id: int) -> list[Any]:
        return []

    async def ends_late() -> AsyncIterator[int]:
        yield 1
        yield 2
        await asyncio.sleep(1.0)

    results = await _sweep(fetch, ends_late(), concurrency=concurrency)
    assert sorted(r.customer_id for r in results) == [1, 2]


@pytest.mark.parametrize("concurrency", [1, 3])
@in_virtual_time
async def test_an_empty_input_ends_with_no_result(concurrency: int) -> None:
    async def fetch(customer_id: int) -> list[Any]:
        raise AssertionError("nothing to fetch")

    async def nothing() -> AsyncIterator[int]:
        return
        yield

    assert await _sweep(fetch, [], concurrency=concurrency) == []
    assert await _sweep(fetch, nothing(), concurrency=concurrency) == []


@pytest.mark.parametrize(
    ("done", "ok", "sources", "shown"),
    [
        (1, 1, 1, "1 customer (1 ok, 0 failed), 1 payment source in "),
        (1, 1, 0, "1 customer (1 ok, 0 failed), 0 payment sources in "),
        (2, 2, 3, "2 customers (2 ok, 0 failed), 3 payment sources in "),
    ],
)
def test_the_summary_says_one_customer_and_one_payment_source_in_the_singular(
    done: int, ok: int, sources: int, shown: str
) -> None:
    progress = SweepProgress(done=done, ok=ok, sources=sources, started_at=0.0, finished_at=1.0)
    assert progress.summary().startswith(shown)

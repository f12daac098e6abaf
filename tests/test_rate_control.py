"""The client's rate control: its decisions on a fake clock (``_Limits``), and its waiting
(``RateControl``) on the event loop, each wait bounded in time."""

from __future__ import annotations

import asyncio
import logging

import pytest

from lean_async import RetryPolicy
from lean_async._constants import (
    RATE_BACKOFF,
    RATE_CATCH_UP,
    RATE_INITIAL_WINDOW,
    RATE_REFUSING_MARGIN,
    RATE_SLOW_START_SUCCESSES,
    RATE_WINDOW_GROWTH_PERIOD,
)
from lean_async._ratelimit import _CUBIC_K, RateControl, Ticket, _Limits

POLICY = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.05)


def limits(known_rate: float | None = None) -> _Limits:
    return _Limits(known_rate, POLICY, 0.0)


ROUND_TRIP = 0.05


def succeed_steadily(lim: _Limits, rate: float, start: float, seconds: float) -> float:
    """Requests started at ``rate`` per second, each answered ROUND_TRIP later; returns
    the time of the last answer."""
    now = start
    for _ in range(round(rate * seconds)):
        lim.answered(lim.start(now), now + ROUND_TRIP)
        now += 1 / rate
    return now - 1 / rate + ROUND_TRIP


class TestGentleStart:
    def test_a_sweep_starts_with_a_small_window_that_grows_a_quarter_per_round_trip(
        self,
    ) -> None:
        lim = limits()
        tickets = [lim.start(0.0) for _ in range(RATE_INITIAL_WINDOW)]
        assert lim.ready_at(0.0, background=True) is None  # the window is full
        for ticket in tickets:
            lim.answered(ticket, 0.05)
        assert lim.window == RATE_INITIAL_WINDOW + RATE_INITIAL_WINDOW // RATE_SLOW_START_SUCCESSES

    def test_the_applications_own_calls_are_not_held_by_the_gentle_start(self) -> None:
        lim = limits()
        for _ in range(RATE_INITIAL_WINDOW):
            lim.start(0.0)
        assert lim.ready_at(0.0, background=False) == 0.0

    def test_a_429_before_any_success_halves_the_window(self) -> None:
        lim = limits()
        tickets = [lim.start(0.0) for _ in range(RATE_INITIAL_WINDOW)]
        change = lim.rate_limited(tickets[-1], None, 0.01)
        assert lim.window == RATE_INITIAL_WINDOW // 2 and lim.rate is None
        assert change is not None and "too early" in change


class TestPacing:
    def test_a_429_paces_starts_below_the_admitted_rate(self) -> None:
        lim = limits()
        now = succeed_steadily(lim, 200, 0.0, 1.0)
        lim.rate_limited(lim.start(now), None, now)
        assert lim.rate == pytest.approx(200 * RATE_BACKOFF, rel=0.05)

    def test_a_late_start_is_made_up_for_on_the_ideal_timeline(self) -> None:
        lim = limits(known_rate=100)
        lim.start(0.0)
        assert lim.ready_at(0.0, background=True) == pytest.approx(0.01)
        lim.start(0.015)  # woke up 5 ms late
        # The next slot follows the late one's ideal slot, not the late start.
        assert lim.ready_at(0.015, background=True) == pytest.approx(0.02)

    def test_catching_up_is_bounded_and_an_idle_client_does_not_burst(self) -> None:
        lim = limits(known_rate=100)
        lim.start(0.0)
        lim.start(10.0)  # idle for ten seconds: no saved-up slots
        assert lim.ready_at(10.0, background=True) == pytest.approx(10.01)
        lim.start(10.0 + 0.01 * (RATE_CATCH_UP + 5))  # very late: the timeline restarts
        assert lim.ready_at(10.07, background=True) > 10.07

    def test_a_known_rate_paces_from_the_first_start_and_is_never_exceeded(self) -> None:
        lim = limits(known_rate=50)
        assert lim.rate == 50
        now = succeed_steadily(lim, 40, 0.0, 1.0)
        lim.rate_limited(lim.start(now), None, now)
        assert lim.rate is not None and lim.rate < 50
        succeed_steadily(lim, 40, now + 0.1, 10.0)
        assert lim.rate == 50

    def test_the_pace_comes_back_to_the_admitted_rate_then_probes_above(self) -> None:
        lim = limits()
        now = succeed_steadily(lim, 100, 0.0, 1.0)
        lim.rate_limited(lim.start(now), None, now)
        cut = lim.rate
        assert cut is not None
        lim.answered(lim.start(now + _CUBIC_K), now + _CUBIC_K)
        assert lim.rate == pytest.approx(100, rel=0.05)
        lim.answered(lim.start(now + _CUBIC_K + 2), now + _CUBIC_K + 2)
        assert lim.rate > 110


class TestCongestionEvents:
    def test_one_cut_per_window_a_429_sent_before_the_cut_changes_nothing(self) -> None:
        lim = limits()
        now = succeed_steadily(lim, 100, 0.0, 1.0)
        sent_before = [lim.start(now) for _ in range(RATE_REFUSING_MARGIN)]
        lim.rate_limited(sent_before[0], None, now + 0.01)
        paced = lim.rate
        for ticket in sent_before[1:]:
            assert lim.rate_limited(ticket, None, now + 0.02) is None
        assert lim.rate == paced and lim.pause_until == 0.0

    def refuse(self, lim: _Limits, count: int, now: float, retry_after: float | None) -> None:
        tickets = [lim.start(now) for _ in range(count)]
        for ticket in tickets:
            lim.rate_limited(ticket, retry_after, now + 0.001)

    def test_a_server_refusing_more_than_it_admits_pauses_every_start_for_retry_after(
        self,
    ) -> None:
        lim = limits()
        now = succeed_steadily(lim, 100, 0.0, 1.0)
        self.refuse(lim, 1, now, 2.0)
        assert lim.pause_until == 0.0  # it admitted plenty before: the cut pace is enough
        later = now + 0.1
        self.refuse(lim, RATE_REFUSING_MARGIN, later, 2.0)  # then refused everything
        assert lim.pause_until == pytest.approx(later + 0.001 + 2.0)
        assert lim.ready_at(later, background=False) == pytest.approx(later + 2.001)

    @pytest.mark.parametrize("retry_after", [3600.0, POLICY.max_retry_after + 0.5])
    def test_a_retry_after_beyond_max_retry_after_pauses_for_the_backoff_not_for_it(
        self, retry_after: float
    ) -> None:
        # One answer saying "come back in an hour" must not hold every start of a sweep
        # for an hour: such a request fails at once, and the pause is the own backoff.
        lim = limits()
        now = succeed_steadily(lim, 100, 0.0, 1.0)
        self.refuse(lim, 1, now, None)
        later = now + 0.1
        self.refuse(lim, RATE_REFUSING_MARGIN, later, retry_after)
        assert later < lim.pause_until <= later + 0.001 + POLICY.max_delay
        assert lim.ready_at(later, background=True) <= later + 0.001 + POLICY.max_delay

    def test_without_retry_after_the_pause_backs_off_exponentially(self) -> None:
        lim = limits()
        now = succeed_steadily(lim, 100, 0.0, 1.0)
        self.refuse(lim, 1, now, None)
        pauses = []
        for _ in range(3):
            now = max(now, lim.pause_until) + 0.01
            self.refuse(lim, RATE_REFUSING_MARGIN, now, None)
            pauses.append(lim.pause_until - now)
        assert 0 < pauses[0] < pauses[1] <= POLICY.max_delay + 0.01

    def test_429s_from_some_number_in_flight_on_are_a_limit_on_requests_in_progress(
        self,
    ) -> None:
        lim = limits(known_rate=1000)
        now = 0.0
        for _ in range(50):  # at most 5 in flight, all succeed
            tickets = [lim.start(now) for _ in range(5)]
            for ticket in tickets:
                lim.answered(ticket, now + 0.05)
            now += 0.05
        tickets = [lim.start(now) for _ in range(7)]  # the 6th and 7th are refused
        change = lim.rate_limited(tickets[5], None, now + 0.001)
        assert change is not None and "in progress" in change
        assert lim.window == 5 and lim.rate == 1000  # the pace is left alone
        assert lim.in_flight_limited
        assert lim.ready_at(now, background=False) is None  # now every call waits

    def test_429s_at_any_number_in_flight_are_a_rate_limit(self) -> None:
        lim = limits(known_rate=1000)
        now = 0.0
        for step in range(50):  # 1 to 7 in flight; every seventh request refused
            tickets = [lim.start(now) for _ in range(7)]
            for n, ticket in enumerate(tickets):
                if n == step % 7:
                    lim.rate_limited(ticket, None, now + 0.001)
                else:
                    lim.answered(ticket, now + 0.05)
            now += 0.05
        assert not lim.in_flight_limited and lim.rate is not None and lim.rate < 1000

    def test_a_window_cut_grows_back_by_one_per_period_while_it_holds_starts(self) -> None:
        lim = limits(known_rate=1000)
        lim.in_flight_limited, lim.window = True, 3
        now = 0.0
        for step in range(40):
            now = step * RATE_WINDOW_GROWTH_PERIOD / 10
            tickets = [lim.start(now) for _ in range(lim.window)]
            assert lim.ready_at(now, background=True) is None
            for ticket in tickets:
                lim.answered(ticket, now + 0.01)
        assert 5 <= lim.window <= 7


class TestWaiting:
    async def test_calls_waiting_for_a_start_go_before_a_sweeps_requests(self) -> None:
        control = RateControl()
        held = [control.try_start(background=True) for _ in range(RATE_INITIAL_WINDOW)]
        assert all(held)
        order: list[str] = []

        async def wait(name: str, background: bool) -> Ticket:
            ticket = await control.acquire(background)
            order.append(name)
            return ticket

        sweep = asyncio.ensure_future(wait("sweep", True))
        await asyncio.sleep(0)
        call = asyncio.ensure_future(wait("call", False))  # not held by the window
        control.answered(await asyncio.wait_for(call, timeout=2))
        first = held.pop()
        assert first is not None
        control.answered(first)
        await asyncio.wait_for(sweep, timeout=2)
        assert order == ["call", "sweep"]

    async def test_every_waiter_is_woken_by_a_finish_or_by_a_timer(self) -> None:
        control = RateControl(200)  # paced: 5 ms apart
        started: list[Ticket] = []

        async def request() -> None:
            ticket = await control.acquire(background=True)
            started.append(ticket)
            await asyncio.sleep(0.01)
            control.answered(ticket)

        await asyncio.wait_for(asyncio.gather(*(request() for _ in range(60))), timeout=5)
        assert len(started) == 60 and control.in_flight == 0

    async def test_a_cancelled_start_gives_its_slot_back(self) -> None:
        control = RateControl(5)
        first = control.try_start()
        assert first is not None
        waiting = asyncio.ensure_future(control.acquire())
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert control.in_flight == 1

    async def test_each_change_of_state_is_logged_at_debug(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        control = RateControl()
        tickets = [control.try_start(background=True) for _ in range(3)]
        caplog.set_level(logging.DEBUG, logger="lean_async")
        assert tickets[0] is not None and tickets[1] is not None
        control.rate_limited(tickets[0], None)
        control.rate_limited(tickets[1], None)  # the same window: no second line
        lines = [r.getMessage() for r in caplog.records if "rate control" in r.getMessage()]
        assert len(lines) == 1 and "in flight" in lines[0]

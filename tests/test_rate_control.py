"""The client's rate control: its decisions on a fake clock (``_Limits``), and its waiting
(``RateControl``) on the event loop, each wait bounded in time."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lean_async import RetryPolicy
from lean_async._constants import (
    RATE_BACKOFF,
    RATE_CATCH_UP,
    RATE_CURVE_REQUESTS,
    RATE_INITIAL_WINDOW,
    RATE_MIN,
    RATE_REFUSING_MARGIN,
    RATE_SLOW_START_SUCCESSES,
    RATE_WINDOW_GROWTH_PERIOD,
)
from lean_async._ratelimit import _CUBIC_K, RateControl, Ticket, _curve_second, _Limits

POLICY = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.05)


def limits(known_rate: float | None = None) -> _Limits:
    return _Limits(known_rate, POLICY, 0.0)


ROUND_TRIP = 0.05


def succeed_steadily(lim: _Limits, rate: float, start: float, seconds: float) -> float:
    """Requests started at ``rate`` per second whatever the limits say (each asks first,
    so that a window or a pace holding it back counts), each answered ROUND_TRIP later;
    returns the time of the last answer."""
    now = start
    pending: deque[Ticket] = deque()
    for _ in range(round(rate * seconds)):
        while pending and pending[0].at + ROUND_TRIP <= now:
            ticket = pending.popleft()
            lim.answered(ticket, ticket.at + ROUND_TRIP)
        lim.ready_at(now, background=True)
        pending.append(lim.start(now))
        now += 1 / rate
    for ticket in pending:
        lim.answered(ticket, ticket.at + ROUND_TRIP)
    return now - 1 / rate + ROUND_TRIP


def send_at_pace(lim: _Limits, start: float, until: float) -> float:
    """A sweep with plenty to send: each request starts as soon as the limits allow and
    is admitted ROUND_TRIP later, until ``until``; returns the time then."""
    now = start
    pending: deque[Ticket] = deque()
    while now < until:
        ready = lim.ready_at(now, background=True)
        due = pending[0].at + ROUND_TRIP if pending else math.inf
        if ready is None or ready > due:  # an answer comes first
            ticket = pending.popleft()
            now = max(now, due)
            lim.answered(ticket, now)
            continue
        now = max(now, ready)
        pending.append(lim.start(now))
    for ticket in pending:
        lim.answered(ticket, max(now, ticket.at + ROUND_TRIP))
    return now


class TestGentleStart:
    def test_a_sweep_sends_one_request_first_then_a_paced_window_growing_each_round_trip(
        self,
    ) -> None:
        lim = limits()
        first = lim.start(0.0)
        assert lim.ready_at(0.0, background=True) is None  # one alone, until its answer
        lim.answered(first, ROUND_TRIP)
        assert lim.window == RATE_INITIAL_WINDOW
        assert lim.rate == pytest.approx(RATE_INITIAL_WINDOW / ROUND_TRIP)  # spread evenly
        now = ROUND_TRIP
        tickets = []
        for _ in range(RATE_INITIAL_WINDOW):
            now = max(now, lim.ready_at(now, background=True) or now)
            tickets.append(lim.start(now))
        assert lim.ready_at(now, background=True) is None  # the window is full
        for ticket in tickets:
            lim.answered(ticket, ticket.at + ROUND_TRIP)
        window = RATE_INITIAL_WINDOW + RATE_INITIAL_WINDOW // RATE_SLOW_START_SUCCESSES
        assert lim.window == window
        assert lim.rate == pytest.approx(window / ROUND_TRIP)

    def test_the_applications_own_calls_are_not_held_by_the_gentle_start(self) -> None:
        lim = limits()
        for _ in range(RATE_INITIAL_WINDOW):
            lim.start(0.0)
        assert lim.ready_at(0.0, background=False) == 0.0

    def test_a_429_before_any_success_pauses_every_start(self) -> None:
        lim = limits()
        change = lim.rate_limited(lim.start(0.0), None, 0.01)
        assert lim.window == 1 and lim.rate is None
        assert lim.pause_until > 0.01 and lim.ready_at(0.01, background=False) > 0.01
        assert change is not None and "too few admitted" in change


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
        send_at_pace(lim, now + 0.1, now + 10.0)
        assert lim.rate == 50

    def test_the_pace_comes_back_to_the_admitted_rate_then_probes_above(self) -> None:
        lim = limits()
        now = succeed_steadily(lim, 100, 0.0, 1.0)
        lim.rate_limited(lim.start(now), None, now)
        cut = lim.rate
        assert cut is not None and cut < 100
        unit = _curve_second(100)  # below RATE_CURVE_REQUESTS/s, longer than a second
        assert unit == pytest.approx(RATE_CURVE_REQUESTS / 100)
        back = now + _CUBIC_K * unit
        send_at_pace(lim, now, back)
        assert lim.rate == pytest.approx(100, rel=0.05)
        send_at_pace(lim, back, back + 0.5 * unit)
        assert lim.rate == pytest.approx(100, rel=0.1)  # a plateau
        send_at_pace(lim, back + 0.5 * unit, back + 2 * unit)
        assert lim.rate > 110

    def test_the_pace_does_not_grow_on_what_the_client_did_not_try(self) -> None:
        # Sending less than the pace allows (RFC 9438, application-limited), the curve
        # stands still: an hour of one call a minute leaves the pace where it was.
        lim = limits()
        now = succeed_steadily(lim, 100, 0.0, 1.0)
        lim.rate_limited(lim.start(now), None, now)
        paced = lim.rate
        for minute in range(60):
            at = now + 60 * (minute + 1)
            lim.ready_at(at, background=True)
            lim.answered(lim.start(at), at + ROUND_TRIP)
        assert lim.rate == paced

    def test_a_limit_that_drops_is_followed_within_a_few_429s(self) -> None:
        # Paced at 200/s, then a token bucket admits 80/s (holding 5): a 429 comes back at once, so
        # what was sent since the last cut shows the drop within a few of them.
        lim = limits(known_rate=200)
        now, refilled, tokens, refused = 0.0, 0.0, 1.0, 0
        pending: list[Ticket] = []
        while now < 2.0:  # the first second admitted, then a token bucket at 80/s
            ready = lim.ready_at(now, background=True)
            due = pending[0].at + ROUND_TRIP if pending else math.inf
            if ready is None or ready > due:  # an answer comes first
                now = max(now, due)
                lim.answered(pending.pop(0), now)
                continue
            now = max(now, ready)
            tokens, refilled = min(5.0, tokens + 80 * (now - refilled)), now
            ticket = lim.start(now)
            if now < 1.0 or tokens >= 1.0:
                tokens -= now >= 1.0
                pending.append(ticket)
            else:
                refused += 1
                lim.rate_limited(ticket, None, now + 0.001)
        assert lim.rate is not None and 60 < lim.rate < 85 and not lim.in_flight_limited
        assert refused <= 15


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

    def refuse(self, lim: _Limits, count: int, now: float, retry_after: float | None) -> float:
        """``count`` requests sent one after another, each refused at once (a spent
        quota); returns the time of the last 429."""
        for _ in range(count):
            lim.rate_limited(lim.start(now), retry_after, now + 0.001)
            now += 0.002
        return now - 0.001

    def test_a_server_refusing_more_than_it_admits_pauses_every_start_for_retry_after(
        self,
    ) -> None:
        lim = limits()
        now = succeed_steadily(lim, 100, 0.0, 1.0)
        self.refuse(lim, 1, now, 2.0)
        assert lim.pause_until == 0.0  # it admitted plenty before: the cut pace is enough
        later = now + 0.1
        # Then every request sent is refused: the first is one more cut, the next
        # RATE_REFUSING_MARGIN show that the server refuses everything.
        last = self.refuse(lim, 1 + RATE_REFUSING_MARGIN - 1, later, 2.0)
        assert lim.pause_until == 0.0
        last = self.refuse(lim, 1, last + 0.001, 2.0)
        assert lim.pause_until == pytest.approx(last + 2.0)
        assert lim.ready_at(last, background=False) == pytest.approx(last + 2.0)

    def test_requests_still_waiting_for_an_answer_are_no_spent_quota(self) -> None:
        # A 429 comes back at once, a success a round trip later: a request sent since
        # the cut and not refused in time was admitted, most likely.
        lim = limits()
        now = succeed_steadily(lim, 100, 0.0, 1.0)
        self.refuse(lim, 1, now, None)
        waiting = lim.start(now + 0.1)  # not refused: admitted, its answer on the way
        self.refuse(lim, RATE_REFUSING_MARGIN, now + 0.11, None)
        assert lim.pause_until == 0.0 and waiting.refused is False

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
        last = self.refuse(lim, 1 + RATE_REFUSING_MARGIN, later, retry_after)
        assert last < lim.pause_until <= last + POLICY.max_delay

    def test_without_retry_after_the_pause_backs_off_exponentially(self) -> None:
        lim = limits()
        now = succeed_steadily(lim, 100, 0.0, 1.0)
        self.refuse(lim, 1, now, None)
        last = self.refuse(lim, 1 + RATE_REFUSING_MARGIN, now + 0.1, None)
        pauses = [lim.pause_until - last]
        for _ in range(3):  # after each pause, the first request sent is refused again
            last = self.refuse(lim, 1, lim.pause_until, None)
            pauses.append(lim.pause_until - last)
        assert 0 < pauses[0] < pauses[1] < pauses[2] <= POLICY.max_delay
        assert pauses[3] <= POLICY.max_delay

    def test_every_request_refused_from_more_in_flight_than_any_admitted_is_an_in_flight_limit(
        self,
    ) -> None:
        lim = limits()
        now = 0.0
        for _ in range(10):  # 3 in flight at most, all admitted
            tickets = [lim.start(now) for _ in range(3)]
            for ticket in tickets:
                lim.answered(ticket, now + 0.3)
            now += 0.3
        held = [lim.start(now) for _ in range(3)]
        self.refuse(lim, 1 + RATE_REFUSING_MARGIN, now + 0.01, None)  # 4 in flight: refused
        assert lim.in_flight_limited and lim.window == 3 and lim.pause_until == 0.0
        assert len(held) == 3

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
        changes = []
        for _ in range(2):  # twice, a round trip apart: the 6th and 7th are refused
            tickets = [lim.start(now) for _ in range(7)]
            pace = lim.rate
            for ticket in tickets[5:]:
                changes.append(lim.rate_limited(ticket, None, now + 0.001))  # noqa: PERF401
            for ticket in tickets[:5]:
                lim.answered(ticket, now + 0.05)
            now += 0.06
        # The first 429 alone is no evidence (a rate limit refuses at any number in
        # flight, this one too): the pace is cut. The next ones are.
        assert changes[0] is not None and "paced at" in changes[0]
        assert changes[2] is not None and "in progress" in changes[2]
        assert lim.window == 5 and lim.rate == pace  # the pace is left alone
        assert lim.in_flight_limited
        for _ in range(5):
            lim.start(now)
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
            for _ in range(20):  # well over RATE_CURVE_REQUESTS successes per period
                tickets = [lim.start(now) for _ in range(lim.window)]
                assert lim.ready_at(now, background=True) is None
                for ticket in tickets:
                    lim.answered(ticket, now + 0.001)
        assert 5 <= lim.window <= 7

    def test_at_a_low_rate_a_window_cut_grows_back_by_one_per_curve_requests(self) -> None:
        # 3 successes a second: one more in flight only after RATE_CURVE_REQUESTS of
        # them, so that the probe's 429 stays as small a share as at a high rate.
        lim = limits(known_rate=1000)
        lim.in_flight_limited, lim.window = True, 3
        for step in range(RATE_CURVE_REQUESTS // 3 - 1):
            now = step * RATE_WINDOW_GROWTH_PERIOD
            tickets = [lim.start(now) for _ in range(3)]
            assert lim.ready_at(now, background=True) is None
            for ticket in tickets:
                lim.answered(ticket, now + 0.3)
        assert lim.window == 3
        now += RATE_WINDOW_GROWTH_PERIOD
        tickets = [lim.start(now) for _ in range(3)]
        assert lim.ready_at(now, background=True) is None
        for ticket in tickets:
            lim.answered(ticket, now + 0.3)
        assert lim.window == 4


class TestWaiting:
    async def test_calls_waiting_for_a_start_go_before_a_sweeps_requests(self) -> None:
        control = RateControl()
        held = [control.try_start(background=True) for _ in range(control.window)]
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
        control._limits.window = 3
        tickets = [control.try_start(background=True) for _ in range(3)]
        caplog.set_level(logging.DEBUG, logger="lean_async")
        assert tickets[0] is not None and tickets[1] is not None
        control.rate_limited(tickets[0], None)
        control.rate_limited(tickets[1], None)  # sent before that cut: no second line
        lines = [r.getMessage() for r in caplog.records if "rate control" in r.getMessage()]
        assert len(lines) == 1 and "every request refused" in lines[0]


# -- invariants over any sequence of answers (hypothesis) -------------------------------

_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["start", "admitted", "refused", "refused-retry-after", "no answer"]),
        st.floats(min_value=0.0, max_value=0.5),  # seconds since the step before
    ),
    max_size=300,
)


@settings(max_examples=150, deadline=None)
@given(steps=_STEPS, known_rate=st.one_of(st.none(), st.floats(min_value=1, max_value=1000)))
def test_any_answers_leave_a_pace_a_window_and_a_pause_a_waiter_can_wait_out(
    steps: list[tuple[str, float]], known_rate: float | None
) -> None:
    lim = limits(known_rate)
    now = 0.0
    in_flight: list[Ticket] = []
    for action, gap in steps:
        now += gap
        if action == "start" or not in_flight:
            ready = lim.ready_at(now, background=True)
            if ready is not None and ready <= now:  # (else it waits: a later step)
                in_flight.append(lim.start(now))
        else:
            ticket = in_flight.pop(0)
            if action == "admitted":
                lim.answered(ticket, now)
            elif action == "no answer":
                lim.no_answer(ticket)
            else:
                retry_after = 2.0 if action == "refused-retry-after" else None
                lim.rate_limited(ticket, retry_after, now)
        assert lim.in_flight == len(in_flight)
        assert lim.window >= 1
        assert lim.rate is None or (math.isfinite(lim.rate) and lim.rate >= RATE_MIN)
        if known_rate is not None:
            assert lim.rate is not None and lim.rate <= known_rate
        # Every wait has a waker: with nothing in flight, a start is due at a time, and
        # that time is never further than the longest pause.
        ready = lim.ready_at(now, background=True)
        if not in_flight:
            assert ready is not None
            assert ready <= now + max(2.0, POLICY.max_delay) + 1.0 / (lim.rate or 1.0)


def test_a_429_from_within_the_window_undoes_an_in_flight_diagnosis() -> None:
    # Taken for a limit on requests in progress, the limit refuses a request started
    # with no more in flight than the window allows: a rate limit after all.
    lim = limits(known_rate=1000)
    lim.in_flight_limited, lim.window = True, 5
    now = succeed_steadily(lim, 50, 0.0, 1.0)  # one or two in flight at a time
    assert lim.in_flight_limited
    change = lim.rate_limited(lim.start(now), None, now + 0.001)
    assert not lim.in_flight_limited and change is not None and "paced at" in change
    assert lim.ready_at(now, background=False) is not None  # calls are not held by it

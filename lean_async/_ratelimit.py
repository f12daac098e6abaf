"""The client's rate control: when each request may start. One per LeanClient, shared by
its ordinary calls and its sweeps, learnt from the server's 429s.

The decisions (``_Limits``) are plain arithmetic on a clock; ``RateControl`` adds the
waiting: a queue of waiters, each of which is woken by a timer (a pace or a pause to wait
out) or by a request finishing (the window is full).

What it does, and where the ideas come from:

- **Gentle start** (TCP slow start, slower): a sweep has at most ``RATE_INITIAL_WINDOW``
  requests in flight until answers come back; every RATE_SLOW_START_SUCCESSES successes
  widen the window by one (a quarter more per round trip), until a 429 shows a limit. No
  burst of a sweep's whole ``concurrency`` into an unknown limit. (An application's own
  calls are not held back by it.)
- **Paced starts on an ideal timeline** (a virtual-time scheduler, like a token bucket's
  fill): each start takes the next slot ``1 / rate`` after the previous slot, not after
  the moment the start happened, so a late wake-up is made up for (by at most
  ``RATE_CATCH_UP`` slots at once).
- **One congestion event per window** (TCP, CUBIC): a 429 to a request started before the
  last cut tells nothing new; only a 429 to a request started since counts.
- **Estimate the admitted rate, do not just react to each loss** (BBR, botocore's adaptive
  mode): at a congestion event the pace becomes ``RATE_BACKOFF`` times the success rate
  over the last second (or the current pace, if lower), then grows back along a cubic
  curve (CUBIC, as botocore does): quickly back to that rate, a plateau near it, then
  probing further. A limit that drops is found at the next event, one that rises by the
  probe.
- **A rate limit or a limit on requests in progress?** (Netflix's concurrency-limits
  estimate the latter from latency; a 429 is a sharper signal): a 429 to a request started
  with more requests in flight than any that succeeded lately points at an in-flight
  limit: the window is cut to what succeeded, and the pace is left alone. Otherwise it is
  a rate limit: the pace is cut and the window is left alone (fewer in flight would not
  help). A window cut grows back by one per second while it holds starts back.
- **A server that stops admitting** (the client-side throttling of Google's SRE book backs
  off as accepts fall behind requests): at a congestion event after which the server
  refused more requests than it admitted (a window's quota is spent), every start pauses
  for Retry-After, else an exponential backoff (``_retry.pause_after_429``).
- ``LeanClient(rate_limit=...)``, a known limit: starts are paced at it from the first
  request and the pace never goes above it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable

from ._constants import (
    LOGGER_NAME,
    RATE_BACKOFF,
    RATE_CATCH_UP,
    RATE_CUBIC_C,
    RATE_ESTIMATE_WINDOW,
    RATE_IN_PROGRESS_NOISE,
    RATE_INITIAL_WINDOW,
    RATE_MAX_WINDOW,
    RATE_MIN,
    RATE_MIN_SAMPLES,
    RATE_MIN_SPAN,
    RATE_PACED_ROUND_TRIPS,
    RATE_REFUSING_MARGIN,
    RATE_SLOW_START_SUCCESSES,
    RATE_START_ROUND_TRIPS,
    RATE_WINDOW_GROWTH_PERIOD,
)
from ._retry import RetryPolicy, pause_after_429

__all__ = ["RateControl", "Ticket", "check_rate"]

logger = logging.getLogger(LOGGER_NAME)

# Room for the success times of the estimate: at a higher rate, the estimate spans less
# than RATE_ESTIMATE_WINDOW (still hundreds of milliseconds).
_SUCCESS_LOG = 8192
# A start this close to its time goes now (timers fire a little early or coarsely).
_EARLY = 0.0005
# The cubic curve's time to get back to the admitted rate after a cut.
_CUBIC_K = ((1.0 - RATE_BACKOFF) / RATE_CUBIC_C) ** (1.0 / 3.0)


def check_rate(rate: object) -> float:
    """A known rate limit, in requests per second; ValueError when it is not one."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise ValueError(f"rate_limit must be a number of requests per second, got {rate!r}")
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"rate_limit must be > 0 requests per second, got {rate!r}")
    return float(rate)


class Ticket:
    """One request's start: handed back to ``RateControl.finished`` exactly once."""

    __slots__ = ("at", "level", "number")

    def __init__(self, number: int, level: int, at: float) -> None:
        self.number = number  # starts numbered from 1
        self.level = level  # requests in flight once this one started, itself included
        self.at = at  # when it started


class _Limits:
    """The decisions, on a clock: the pace, the window, the pause, and how each 429 and
    each success changes them."""

    def __init__(self, known_rate: float | None, policy: RetryPolicy, now: float) -> None:
        self.known_rate = known_rate
        self.rate: float | None = known_rate  # paced starts per second; None: unpaced
        self.window = RATE_INITIAL_WINDOW
        self.in_flight = 0
        self.pause_until = 0.0
        # A 429 showed a limit on requests in progress: the window holds every call back,
        # and grows back slowly. Until then it grows a quarter per round trip whenever it
        # held a start back, and holds back only a sweep's.
        self.in_flight_limited = False
        self._policy = policy
        self._next_slot = -math.inf
        self._started = 0
        self._cut_after = 0  # starts up to this number were sent before the last cut
        self._cut_at = -math.inf
        self._round_trip = 0.0  # a smoothed duration of the requests that succeeded
        # Refusing events (the server refused clearly more requests than it admitted since
        # the last event: it has stopped admitting, for now) with no success in between.
        self._refusing_in_a_row = 0
        self._admitted_since_event = 0
        self._refused_since_event = 0
        self._first_start: float | None = None
        self._successes: deque[float] = deque(maxlen=_SUCCESS_LOG)
        # Answers by the number in flight when their request started, halved at each
        # congestion event (recent history): tells an in-flight limit from a rate limit.
        self._admitted_at: list[float] = []
        self._refused_at: list[float] = []
        self._window_held = False  # the window held a start back since it last grew
        self._window_credit = 0
        self._window_grown_at = now
        self._reference = 0.0  # the rate the cubic curve returns to; 0 before any cut
        self._event_at = now

    # -- starting ------------------------------------------------------------------

    def ready_at(self, now: float, background: bool) -> float | None:
        """When the next start may happen (``<= now``: at once); None while the window is
        full, until a request finishes. The gentle start's window holds back only
        ``background`` requests (a sweep's): an application's own calls are as many as
        it makes, until a 429 shows a limit on requests in progress."""
        if self.in_flight >= self.window and (background or self.in_flight_limited):
            self._window_held = True
            return None
        ready = self.pause_until
        if self.rate is not None and self._next_slot > ready:
            ready = self._next_slot
        return ready

    def start(self, now: float) -> Ticket:
        self._started += 1
        self.in_flight += 1
        if self._first_start is None:
            self._first_start = now
        rate = self.rate
        if rate is not None:
            interval = 1.0 / rate
            # The next slot follows this one on the ideal timeline: a start that woke up
            # late leaves the next one ready early, making up for up to RATE_CATCH_UP
            # slots. Further behind, the client was idle: no burst, the timeline restarts.
            slot = self._next_slot
            if slot < now - RATE_CATCH_UP * interval:
                slot = now
            self._next_slot = slot + interval
        return Ticket(self._started, self.in_flight, now)

    def give_back(self, ticket: Ticket) -> None:
        """A start that was never sent."""
        self.in_flight -= 1
        if self.rate is not None:
            self._next_slot -= 1.0 / self.rate

    # -- answers -------------------------------------------------------------------

    def answered(self, ticket: Ticket, now: float) -> str | None:
        """Any answer but 429: the server admitted the request. Returns what changed, if
        worth a log line."""
        self.in_flight -= 1
        self._successes.append(now)
        self._admitted_since_event += 1
        self._refusing_in_a_row = 0
        took = now - ticket.at
        self._round_trip = took if not self._round_trip else 0.875 * self._round_trip + 0.125 * took
        level, admitted_at = ticket.level, self._admitted_at
        if level < len(admitted_at):
            admitted_at[level] += 1
        else:
            _count(admitted_at, level)
        change = self._widen(now) if self._window_held else None
        if self.rate is not None and self._reference:
            self._follow_curve(now)
        return change

    def no_answer(self) -> None:
        """The request failed before an answer (or was cancelled): nothing learnt."""
        self.in_flight -= 1

    def rate_limited(self, ticket: Ticket, retry_after: float | None, now: float) -> str | None:
        """A 429. Returns what changed, if anything: one change per congestion event."""
        self.in_flight -= 1
        self._refused_since_event += 1
        _count(self._refused_at, ticket.level)
        # Refusing: clearly more 429s than successes since the last event (a window's
        # quota is spent). The first event has no "since": a gentle start's burst is
        # turned away before any answer is back.
        refusing = (
            self._cut_at > -math.inf
            and now >= self.pause_until
            and self._refused_since_event >= self._admitted_since_event + RATE_REFUSING_MARGIN
        )
        if not refusing and (
            ticket.number <= self._cut_after or ticket.at < self._cut_at + self._round_trip
        ):
            # Sent before the last cut, or before it could take effect (one round trip):
            # that cut already answered it.
            return None
        self._cut_after = self._started
        self._cut_at = now
        limit_in_progress = self._limit_in_progress(ticket.level)
        for counts in (self._admitted_at, self._refused_at):
            counts[:] = [count / 2 for count in counts]
        if refusing or self._admitted_since_event:
            # Counted afresh; while nothing succeeds, 429s add up across events.
            self._refused_since_event = self._admitted_since_event = 0
        if self.rate is not None and not refusing and limit_in_progress is not None:
            # Refused from this many in flight on, admitted below: a limit on requests in
            # progress. (Before the pace is set, the gentle start's growing window makes
            # every 429 look like this one.)
            self.window = limit_in_progress
            self.in_flight_limited = True
            self._window_grown_at = now
            return (
                f"429s from {ticket.level} requests in flight on, successes below: a limit "
                f"on requests in progress, at most {self.window} in flight"
            )
        refusals = 0
        if refusing:
            self._refusing_in_a_row += 1  # back to 0 at the next success
            refusals = self._refusing_in_a_row
        admitted = self.admitted_rate(now, refusing)
        reference = admitted if admitted is not None else self.rate
        if reference is not None and self.rate is not None:
            reference = min(reference, self.rate)
        if reference is None:  # unpaced, too few successes to tell: halve the window
            self.window = max(1, min(self.window, self.in_flight + 1) // 2)
            change = f"429 too early to measure a rate: at most {self.window} in flight"
        else:
            if self.known_rate is not None:
                reference = min(reference, self.known_rate)
            self._reference = reference
            self._event_at = now
            self.rate = max(reference * RATE_BACKOFF, RATE_MIN)
            measured = f"{admitted:.1f}/s admitted" if admitted is not None else "no estimate"
            change = f"429: paced at {self.rate:.1f}/s ({measured})"
        pause = pause_after_429(retry_after, refusals, self._policy, random.random())
        if pause > 0:
            self.pause_until = max(self.pause_until, now + pause)
            change += f"; every start paused {pause:.2f} s (more 429s than successes lately)"
        return change

    # -- estimates -----------------------------------------------------------------

    def _limit_in_progress(self, level: int) -> int | None:
        """The number of requests in progress the server allows, if its recent answers
        show one: mostly 429s from ``level`` in flight on, and (nearly) only successes
        below it, enough of them to tell. None for a rate limit, whose 429s come at any
        number in flight."""
        admitted, refused = self._admitted_at, self._refused_at
        admitted_below = sum(admitted[:level])
        refused_below = sum(refused[:level])
        admitted_above = sum(admitted[level:])
        refused_above = sum(refused[level:])
        if (
            level > 1
            and admitted_below >= RATE_MIN_SAMPLES
            and refused_below <= RATE_IN_PROGRESS_NOISE * admitted_below
            and refused_above >= admitted_above
        ):
            return level - 1
        return None

    def admitted_rate(self, now: float, refusing: bool = False) -> float | None:
        """Successes per second lately; None with too few successes to tell.

        Paced, at a few 429s, the client was sending about as fast as the limit: its
        successes of the last few round trips show the limit (BBR's delivery rate), and
        follow one that dropped; a longer span would lag behind a pace still growing.
        Otherwise (the gentle start's growing window, or a window's quota spent), over
        the last RATE_ESTIMATE_WINDOW: a window limit's fresh quota shows a burst, not
        the rate it admits, over a shorter span.
        """
        times = self._successes
        span = RATE_ESTIMATE_WINDOW
        if self._round_trip and (self.rate is None or not refusing):
            rounds = RATE_START_ROUND_TRIPS if self.rate is None else RATE_PACED_ROUND_TRIPS
            span = min(max(rounds * self._round_trip, RATE_MIN_SPAN), span)
        since = now - span
        if self._first_start is not None and self._first_start > since:
            since = self._first_start
        if len(times) == times.maxlen and times[0] > since:
            since = times[0]  # the log holds less than the span
        count = 0
        for when in reversed(times):
            if when <= since:
                break
            count += 1
        if count < RATE_MIN_SAMPLES:
            return None
        return count / max(now - since, RATE_MIN_SPAN)

    def _follow_curve(self, now: float) -> None:
        """The pace after a cut, along the cubic curve through the admitted rate."""
        elapsed = now - self._event_at - _CUBIC_K
        rate = self._reference * (1.0 + RATE_CUBIC_C * elapsed * elapsed * elapsed)
        if self.known_rate is not None and rate > self.known_rate:
            rate = self.known_rate
        self.rate = max(rate, RATE_MIN)

    def _widen(self, now: float) -> str | None:
        """A success may widen the window, if the window held starts back."""
        if not self._window_held or self.window >= RATE_MAX_WINDOW:
            return None
        if not self.in_flight_limited:
            self._window_credit += 1
            if self._window_credit >= RATE_SLOW_START_SUCCESSES:
                self._window_credit = 0
                self.window += 1
            return None
        if now - self._window_grown_at < RATE_WINDOW_GROWTH_PERIOD:
            return None
        self._window_grown_at = now
        self._window_held = False
        self.window += 1
        return f"window widened to {self.window} in flight"


def _count(counts: list[float], level: int) -> None:
    if level >= len(counts):
        counts.extend([0.0] * (level + 1 - len(counts)))
    counts[level] += 1


class RateControl:
    """Admits request starts by the pace, the window and any pause of ``_Limits``.

    Calls wait in two queues: ordinary calls first, then ``background`` ones (sweeps), so
    that a sweep filling the window does not starve an application's own calls.
    """

    def __init__(
        self,
        known_rate: float | None = None,
        *,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if known_rate is not None:
            known_rate = check_rate(known_rate)
        self._clock = clock
        self._limits = _Limits(known_rate, policy or RetryPolicy(), clock())
        self._calls: deque[asyncio.Future[Ticket]] = deque()
        self._background: deque[asyncio.Future[Ticket]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    # -- what it is doing (for progress displays) -------------------------------------

    @property
    def known_rate(self) -> float | None:
        return self._limits.known_rate

    @property
    def rate(self) -> float | None:
        """Starts per second the client is paced to; None while unpaced."""
        return self._limits.rate

    @property
    def window(self) -> int:
        """Requests allowed in flight at once."""
        return self._limits.window

    @property
    def in_flight(self) -> int:
        return self._limits.in_flight

    @property
    def paused_for(self) -> float:
        """Seconds left of a pause of every start (0 when none)."""
        return max(self._limits.pause_until - self._clock(), 0.0)

    # -- starting --------------------------------------------------------------------

    def try_start(self, background: bool = False) -> Ticket | None:
        """A start at once, if nothing waits ahead and the limits allow it."""
        if self._calls or (background and self._background):
            return None
        limits = self._limits
        now = self._clock()
        ready = limits.ready_at(now, background)
        if ready is None or ready > now + _EARLY:
            return None
        return limits.start(now)

    async def acquire(self, background: bool = False) -> Ticket:
        """Wait for a start; every waiter is woken by a timer or by a request finishing."""
        ticket = self.try_start(background)
        if ticket is not None:
            return ticket
        waiter: asyncio.Future[Ticket] = asyncio.get_running_loop().create_future()
        queue = self._background if background else self._calls
        queue.append(waiter)
        self._dispatch()
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._limits.give_back(waiter.result())  # started, but never sent
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            self._dispatch()
            raise

    # -- answers ---------------------------------------------------------------------

    def answered(self, ticket: Ticket) -> None:
        change = self._limits.answered(ticket, self._clock())
        if change is not None or self._calls or self._background:
            self._changed(change)

    def rate_limited(self, ticket: Ticket, retry_after: float | None) -> None:
        self._changed(self._limits.rate_limited(ticket, retry_after, self._clock()))

    def no_answer(self, ticket: Ticket) -> None:
        self._limits.no_answer()
        self._dispatch()

    def _changed(self, change: str | None) -> None:
        if change is not None:
            logger.debug("rate control: %s", change)
        if self._calls or self._background:
            self._dispatch()

    # -- waking waiters ----------------------------------------------------------------

    def _dispatch(self) -> None:
        """Start as many waiters as the limits allow. When they allow none: a timer is set
        for the moment they will, or the window is full and a finishing request calls
        this again. No waiter is ever left without one or the other."""
        limits = self._limits
        while True:
            queue = self._calls or self._background
            while queue and queue[0].done():  # cancelled while waiting
                queue.popleft()
            if not queue:
                queue = self._calls or self._background
                if not queue:
                    return
                continue
            now = self._clock()
            ready = limits.ready_at(now, queue is self._background)
            if ready is None:
                return  # in_flight >= window >= 1: a request in flight will finish
            if ready > now + _EARLY:
                self._wake_at(ready, now)
                return
            queue.popleft().set_result(limits.start(now))

    def _wake_at(self, when: float, now: float) -> None:
        if self._timer is not None:
            if self._timer_at <= when:
                return
            self._timer.cancel()
        self._timer_at = when
        self._timer = asyncio.get_running_loop().call_later(when - now, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        self._dispatch()

    def __repr__(self) -> str:
        pace = f"{self.rate:.1f}/s" if self.rate is not None else "unpaced"
        return f"RateControl({pace}, window={self.window}, in_flight={self.in_flight})"

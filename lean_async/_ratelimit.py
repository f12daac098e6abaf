"""The client's rate control: when each request may start. One per LeanClient, shared by
its ordinary calls and its sweeps, learnt from the server's 429s.

The decisions (``_Limits``) are plain arithmetic on a clock; ``RateControl`` adds the
waiting: a queue of waiters, each of which is woken by a timer (a pace or a pause to wait
out) or by a request finishing (the window is full).

What it does, and where the ideas come from:

- **Gentle start** (TCP slow start, paced, as BBR's startup): untold, the first request
  goes alone and its answer measures the round trip; from then on a sweep has at most a
  window of requests in flight (RATE_INITIAL_WINDOW, then one more per
  RATE_SLOW_START_SUCCESSES successes: a quarter more per round trip), started evenly at
  the window per round trip, until the first 429. No burst of a sweep's whole
  ``concurrency`` into an unknown limit. (An application's own calls are not held back
  by the window.)
- **Paced starts on an ideal timeline** (a virtual-time scheduler, like a token bucket's
  fill): each start takes the next slot ``1 / rate`` after the previous slot, not after
  the moment the start happened, so a late wake-up is made up for (by at most
  ``RATE_CATCH_UP`` slots at once).
- **One congestion event per round trip** (TCP, CUBIC): a 429 to a request sent before
  the last cut tells nothing new; within a round trip of a cut, RATE_REFUSING_MARGIN
  429s to requests sent since are one more (that cut was not enough).
- **Estimate the admitted rate, do not just react to each loss** (BBR, botocore's adaptive
  mode): a 429 comes back at once, a success a round trip later, so what the server
  admits shows first in the requests *sent* lately: those not refused in time count as
  admitted. At a congestion event the pace becomes ``RATE_BACKOFF`` times that rate over
  the last few round trips' starts (over the starts since the last cut, within a round
  trip of it: a limit that dropped is followed within a few 429s), then grows back along
  a cubic curve (CUBIC, as botocore does): quickly back to that rate, a plateau near it,
  then probing further. Below RATE_CURVE_REQUESTS per second, the curve's time runs in
  requests, not seconds, so that probes cost as small a share of the requests at 10/s;
  while the client sends less than the pace allows, it stands still (RFC 9438: no
  growth on what was not tried). A cut never raises the pace.
- **A window's quota spent** (the client-side throttling of Google's SRE book backs off
  as accepts fall behind requests): every request sent since the last cut refused, none
  left waiting for its answer longer than a 429 takes. What the server admits per window
  shows in what was admitted over the whole last window: the pace holds at
  ``RATE_SPENT_SHARE`` of it for ``RATE_CRUISE`` seconds before probing gently (BBR's
  ProbeBW: at the estimate most of the time), so that the next windows are not spent;
  every start pauses for a Retry-After longer than a second, else briefly, longer at
  each spent event in a row (``_retry.pause_after_429``), until a request is admitted.
- **A rate limit or a limit on requests in progress?** (Netflix's concurrency-limits
  estimate the latter from latency; a 429 is a sharper signal): 429s from some number in
  flight on and successes below it, or every request refused from more in flight than
  any request admitted lately, point at an in-flight limit: the window is cut to what
  succeeded, and the pace is left alone. Otherwise it is a rate limit: the pace is cut
  and the window is left alone (fewer in flight would not help). A window cut grows back
  by one per second (or per RATE_CURVE_REQUESTS successes, if slower) while it holds
  starts back.
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
    RATE_BELOW_ESTIMATE,
    RATE_CATCH_UP,
    RATE_CRUISE,
    RATE_CUBIC_C,
    RATE_CURVE_REQUESTS,
    RATE_ESTIMATE_WINDOW,
    RATE_IN_PROGRESS_NOISE,
    RATE_IN_PROGRESS_REFUSALS,
    RATE_INITIAL_WINDOW,
    RATE_MAX_WINDOW,
    RATE_MIN,
    RATE_MIN_SAMPLES,
    RATE_MIN_SPAN,
    RATE_PACED_ROUND_TRIPS,
    RATE_PROBE_C,
    RATE_REFUSING_MARGIN,
    RATE_SLOW_START_SUCCESSES,
    RATE_SPENT_SHARE,
    RATE_WINDOW_GROWTH_PERIOD,
)
from ._retry import RetryPolicy, pause_after_429

__all__ = ["RateControl", "Ticket", "check_rate"]

logger = logging.getLogger(LOGGER_NAME)

# Room for the starts the estimates count: above 8,192 per second, a spent quota's
# estimate spans less than RATE_ESTIMATE_WINDOW.
_START_LOG = 8192
# A start this close to its time goes now (timers fire a little early or coarsely).
_EARLY = 0.0005
# Starts since a recent cut an estimate needs (fewer than RATE_MIN_SAMPLES: it is used
# to follow a limit that dropped, within a few 429s).
_SINCE_CUT_SAMPLES = 5
# A round trip counts as at least this long (a coarse clock may show none).
_SHORTEST_TRIP = 0.001
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
    """One request's start: handed back exactly once, to ``RateControl.answered``,
    ``rate_limited`` or ``no_answer`` (or given back when never sent)."""

    __slots__ = ("at", "level", "number", "refused", "sent")

    def __init__(self, number: int, level: int, at: float) -> None:
        self.number = number  # starts numbered from 1
        self.level = level  # requests in flight once this one started, itself included
        self.at = at  # when it started
        self.refused = False  # answered 429
        self.sent = True  # False: never sent, or no answer came: no estimate counts it


class _Limits:
    """The decisions, on a clock: the pace, the window, the pause, and how each 429 and
    each success changes them."""

    def __init__(self, known_rate: float | None, policy: RetryPolicy, now: float) -> None:
        self.known_rate = known_rate
        self.rate: float | None = known_rate  # paced starts per second; None: unpaced
        # Untold, the first request goes alone: its answer measures the round trip, and
        # the start is paced from then on (no burst into an unknown limit).
        self.window = RATE_INITIAL_WINDOW if known_rate is not None else 1
        self.in_flight = 0
        self.pause_until = 0.0
        # A 429 showed a limit on requests in progress: the window holds every call back,
        # and grows back slowly. Until then it grows a quarter per round trip whenever it
        # held a start back, and holds back only a sweep's.
        self.in_flight_limited = False
        # The gentle start: untold, the pace is the window per round trip, both growing a
        # quarter per round trip, until the first 429.
        self.starting = known_rate is None
        self._policy = policy
        self._next_slot = -math.inf
        self._started = 0
        self._cut_after = 0  # starts up to this number were sent before the last cut
        self._cut_at = -math.inf
        self._fresh_refused = 0  # 429s to requests sent since the last cut
        self._fresh_lowest = RATE_MAX_WINDOW  # the fewest in flight at the start of one
        self._round_trip = 0.0  # a smoothed duration of the requests that succeeded
        self._refuse_trip = 0.0  # a smoothed time to a 429 (often far shorter)
        # Spent-quota events (the server refused every request sent since the last cut)
        # with no success in between.
        self._refusing_in_a_row = 0
        self._spent_after = 0  # starts up to this number were sent before it
        self._sending_since = math.inf  # the first start, or the end of the last pause
        self._first_start = math.inf
        self._sent: deque[Ticket] = deque(maxlen=_START_LOG)
        # Answers by the number in flight when their request started, halved at each
        # congestion event (recent history): tells an in-flight limit from a rate limit.
        self._admitted_at: list[float] = []
        self._refused_at: list[float] = []
        self._held = False  # the window held a start back since it last grew
        self._pace_held = False  # the pace held a start back since the curve last moved
        self._curve_at = now  # when the curve last moved
        self._window_credit = 0
        self._window_grown_at = now
        self._reference = 0.0  # the rate the cubic curve returns to; 0 before any cut
        self._event_at = now
        self._cruise = 0.0  # seconds the pace holds at the reference before probing
        self._probe_c = RATE_CUBIC_C
        self._curve_second = 1.0  # the cubic curve's unit of time, in seconds

    # -- starting ------------------------------------------------------------------

    def ready_at(self, now: float, background: bool) -> float | None:
        """When the next start may happen (``<= now``: at once); None while the window is
        full, until a request finishes. The gentle start's window holds back only
        ``background`` requests (a sweep's): an application's own calls are as many as
        it makes, until a 429 shows a limit on requests in progress."""
        if self.in_flight >= self.window and (background or self.in_flight_limited):
            self._held = True
            return None
        ready = self.pause_until
        # The gentle start's pace, like its window, holds back only a sweep's requests.
        paced = self.rate is not None and (background or not self.starting)
        if paced and self._next_slot > ready:
            ready = self._next_slot
        if ready > now:
            self._pace_held = True
        return ready

    def start(self, now: float) -> Ticket:
        self._started += 1
        self.in_flight += 1
        if self._first_start == math.inf:
            self._first_start = now
        if self._sending_since == math.inf or self._sending_since < self.pause_until:
            self._sending_since = max(now, self.pause_until)
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
        ticket = Ticket(self._started, self.in_flight, now)
        self._sent.append(ticket)
        return ticket

    def give_back(self, ticket: Ticket) -> None:
        """A start that was never sent."""
        self.in_flight -= 1
        ticket.sent = False  # no estimate counts it
        if self.rate is not None:
            self._next_slot -= 1.0 / self.rate

    # -- answers -------------------------------------------------------------------

    def answered(self, ticket: Ticket, now: float) -> str | None:
        """Any answer but 429: the server admitted the request. Returns what changed, if
        worth a log line."""
        self.in_flight -= 1
        if ticket.number > self._spent_after:  # admitted since the last spent quota
            self._refusing_in_a_row = 0
        self._round_trip = _smoothed(self._round_trip, max(now - ticket.at, _SHORTEST_TRIP))
        level, admitted_at = ticket.level, self._admitted_at
        if level < len(admitted_at):
            admitted_at[level] += 1
        else:
            _count(admitted_at, level)
        change = self._widen(now) if self._held else None
        if self.starting:
            self._set_rate(self.window / self._round_trip, now)
        elif self.rate is not None and self._reference:
            self._follow_curve(now)
        return change

    def no_answer(self, ticket: Ticket) -> None:
        """The request failed before an answer (or was cancelled): nothing learnt."""
        self.in_flight -= 1
        ticket.sent = False  # no estimate counts it

    def rate_limited(self, ticket: Ticket, retry_after: float | None, now: float) -> str | None:
        """A 429. Returns what changed, if anything: one change per congestion event."""
        self.in_flight -= 1
        ticket.refused = True
        self._refuse_trip = _smoothed(self._refuse_trip, max(now - ticket.at, _SHORTEST_TRIP))
        _count(self._refused_at, ticket.level)
        if ticket.number <= self._cut_after:
            return None  # sent before the last cut: that cut answered it
        self._fresh_refused += 1
        self._fresh_lowest = min(self._fresh_lowest, ticket.level)
        # One congestion event per round trip (TCP): the 429s that follow a cut within a
        # round trip count as one more only when they add up (the cut was not enough).
        if (
            self._fresh_refused < RATE_REFUSING_MARGIN
            and now < self._cut_at + self._round_trip
            and not self._refusing_in_a_row
        ):
            return None
        spent = self._spent(now)
        # The last cut is recent (within an estimate's span): that cut was not enough, and
        # what was sent since, at its pace, shows what the server admits now (a limit that
        # dropped), where the span would mix in what was sent before it.
        since_cut = self._cut_at if now < self._cut_at + self._estimate_span() else None
        self._cut_after = self._started
        self._cut_at = now
        self._fresh_refused = 0
        limit_in_progress = None if self.starting else self._limit_in_progress(ticket.level)
        if self.in_flight_limited and limit_in_progress is None and ticket.level <= self.window:
            # Refused with no more in flight than the window allows: the limit taken for
            # one on requests in progress was a rate limit after all. The window holds only
            # a sweep's requests again, and grows while it holds them.
            self.in_flight_limited = False
        for counts in (self._admitted_at, self._refused_at):
            counts[:] = [count / 2 for count in counts]
        lowest, self._fresh_lowest = self._fresh_lowest, RATE_MAX_WINDOW
        if spent and self._round_trip and lowest > max(self._most_admitted(), 1):
            # Every request refused, but from more in flight than any admitted: a limit on
            # requests in progress, not a spent quota.
            spent, limit_in_progress = False, lowest - 1
        if not spent and limit_in_progress is not None:
            # Refused from this many in flight on, admitted below: a limit on requests in
            # progress. The window holds the requests back, not the pace.
            self.window = limit_in_progress
            self.in_flight_limited = True
            self._window_grown_at = now
            self._window_credit = 0
            self.starting = False
            return (
                f"429s from {ticket.level} requests in flight on, successes below: a limit "
                f"on requests in progress, at most {self.window} in flight"
            )
        self.starting = self.starting and not self._round_trip  # (none yet: it goes on)
        if not spent:
            return self._cut(now, since_cut)
        self._refusing_in_a_row += 1  # back to 0 at the success of a request sent since
        self._spent_after = self._started
        change = self._quota_spent(now)
        pause = pause_after_429(retry_after, self._refusing_in_a_row, self._policy, random.random())
        if pause > 0:
            self.pause_until = max(self.pause_until, now + pause)
            change += f"; every start paused {pause:.2f} s (every request refused)"
        return change

    def _cut(self, now: float, since_cut: float | None) -> str:
        """A 429 to a request sent at the pace: the pace goes below what was admitted."""
        admitted = None if since_cut is None else self._admitted_since(since_cut, now)
        if admitted is None:
            admitted = self.admitted_rate(now)
        if not admitted:  # none admitted of those counted: no rate to go by but the pace
            admitted = None
        reference = admitted if admitted is not None else self.rate
        if reference is not None and self.rate is not None:
            reference = min(reference, self.rate)  # a cut never raises the pace
        if reference is None:  # unpaced, too few answers to tell: halve the window
            self.window = max(1, min(self.window, self.in_flight + 1) // 2)
            return f"429 too early to measure a rate: at most {self.window} in flight"
        reference = self._capped(reference)
        self._reference = reference
        self._curve_second = _curve_second(reference)
        self._event_at = self._curve_at = now
        self._cruise, self._probe_c = 0.0, RATE_CUBIC_C
        self.rate = max(reference * RATE_BACKOFF, RATE_MIN)
        measured = f"{admitted:.1f}/s admitted" if admitted is not None else "no estimate"
        return f"429: paced at {self.rate:.1f}/s ({measured})"

    def _quota_spent(self, now: float) -> str:
        """Every request sent since the last cut was refused: a window's quota is spent.
        What it admits per window shows in what was admitted over the last whole window
        (however long the client has been sending); the pace holds a little below that,
        cruising before it probes again, so that the next windows are not spent (once the
        client has sent for a whole window: before, the estimate is only a floor). Spent
        again with no success since (the window has not reset yet): only the pause
        grows."""
        if self._refusing_in_a_row > 1:
            return f"429: every request still refused ({self._refusing_in_a_row} in a row)"
        admitted = self._admitted_over(now - RATE_ESTIMATE_WINDOW)
        if admitted < RATE_MIN_SAMPLES:
            return "429: every request refused, too few admitted to measure a rate"
        # Sending for less than a window: per second of sending (a bucket's burst spent;
        # a window's quota would show again at the next window, over a whole one).
        whole = now - self._first_start >= RATE_ESTIMATE_WINDOW
        span = RATE_ESTIMATE_WINDOW if whole else max(now - self._first_start, RATE_MIN_SPAN)
        quota = admitted / span
        quota = self._capped(quota)
        self._reference = self.rate = max(quota * RATE_SPENT_SHARE, RATE_MIN)
        self._curve_second = _curve_second(self._reference)
        self._event_at = now - _CUBIC_K * self._curve_second  # at the reference already
        self._curve_at = now
        if whole:
            self._cruise, self._probe_c = RATE_CRUISE, RATE_PROBE_C
        else:  # sending for less than a window: at least this much, maybe more (a bucket)
            self._cruise, self._probe_c = 0.0, RATE_CUBIC_C
        return f"429: every request refused, {quota:.1f}/s admitted, paced at {self.rate:.1f}/s"

    def _capped(self, estimate: float) -> float:
        """An estimate of the admitted rate, at most the known rate; and below the last
        spent quota's estimate when refused while holding at it (it was too high: a
        window's quota spent a little early at every window)."""
        if self._cruise and self.rate is not None and self.rate <= self._reference:
            estimate = min(estimate, self._reference * RATE_BELOW_ESTIMATE)
        if self.known_rate is not None:
            estimate = min(estimate, self.known_rate)
        return estimate

    def _spent(self, now: float) -> bool:
        """Every request sent since the last cut that could have been refused by now (a
        429 comes back far sooner than a success) was refused, at least
        RATE_REFUSING_MARGIN of them; after a spent quota with no success since, one."""
        if not self._round_trip:
            return True  # nothing admitted yet: whatever this is, wait before more
        needed = 1 if self._refusing_in_a_row else RATE_REFUSING_MARGIN
        if self._fresh_refused < needed:
            return False
        horizon = now - self._refusal_horizon()
        for ticket in reversed(self._sent):
            if ticket.number <= self._cut_after:
                return True
            if ticket.sent and not ticket.refused and ticket.at <= horizon:
                return False  # not refused in time: admitted, most likely
        return True

    def _refusal_horizon(self) -> float:
        """How long a request may wait for its 429: a few smoothed 429 times, and never
        more than the round trip (a success takes that long)."""
        horizon = 3.0 * self._refuse_trip + _EARLY
        return min(horizon, self._round_trip) if self._round_trip else horizon

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
            and refused_above >= max(admitted_above, RATE_IN_PROGRESS_REFUSALS)
        ):
            return level - 1
        return None

    def _most_admitted(self) -> int:
        """The most requests in flight at the start of a request admitted lately."""
        for level in range(len(self._admitted_at) - 1, -1, -1):
            if self._admitted_at[level] >= 0.5:
                return level
        return 0

    def _estimate_span(self) -> float:
        """The span of the starts an estimate counts: a few round trips, and at least
        the time 2 * RATE_MIN_SAMPLES starts take at the pace."""
        span = max(RATE_PACED_ROUND_TRIPS * self._round_trip, RATE_MIN_SPAN)
        if self.rate is not None:
            span = max(span, 2 * RATE_MIN_SAMPLES / self.rate)
        return span

    def admitted_rate(self, now: float) -> float | None:
        """What the server admits per second lately, from the requests sent lately: those
        not refused in time count as admitted (a 429 comes back at once, a success a
        round trip later: counted at their answers, successes would lag behind a limit
        that dropped). Over the last RATE_PACED_ROUND_TRIPS round trips' starts, at least
        RATE_MIN_SAMPLES of them (else None: the pace in force is all there is to go by)."""
        horizon = now - self._refusal_horizon()
        span = self._estimate_span()
        # Never across a pause or an idle spell longer than the span: what the client did
        # not send tells nothing of the server.
        since = max(horizon - span, self._sending_since)
        count = admitted = 0
        first = last = horizon
        for ticket in reversed(self._sent):
            if ticket.at > horizon or not ticket.sent:
                continue
            if ticket.at < since:
                break
            if not count:
                last = ticket.at
            count += 1
            admitted += not ticket.refused
            first = ticket.at
        if count < RATE_MIN_SAMPLES:
            return None
        return _per_second(admitted, count, first, last)

    def _admitted_since(self, since: float, now: float) -> float | None:
        """What the server admits per second, from the requests sent since ``since`` (a
        recent cut: few, all at its pace); None with too few of them."""
        horizon = now - self._refusal_horizon()
        count = admitted = 0
        first = last = horizon
        for ticket in reversed(self._sent):
            if ticket.at <= since:
                break
            if ticket.at <= horizon and ticket.sent:
                if not count:
                    last = ticket.at
                count += 1
                admitted += not ticket.refused
                first = ticket.at
        if count >= _SINCE_CUT_SAMPLES:
            return _per_second(admitted, count, first, last)
        # Too few answered in time (a round trip hardly longer than a 429's): the share of
        # all the requests sent since that were not refused, at the pace.
        sent = refused = 0
        for ticket in reversed(self._sent):
            if ticket.at <= since:
                break
            sent += ticket.sent
            refused += ticket.sent and ticket.refused
        if self.rate is None or sent < _SINCE_CUT_SAMPLES:
            return None
        return self.rate * (sent - refused) / sent

    def _admitted_over(self, since: float) -> int:
        """Requests sent since ``since`` and not refused (admitted, or still in flight)."""
        count = 0
        for ticket in reversed(self._sent):
            if ticket.at <= since:
                break
            count += ticket.sent and not ticket.refused
        return count

    def _follow_curve(self, now: float) -> None:
        """The pace after a cut: back up to the admitted rate along the cubic curve through
        it, a cruise there (after a spent quota), then probing above it, gently after a
        spent quota (a window limit shows an excess only when its quota is spent)."""
        if not self._pace_held:
            # The client sent less than the pace allowed (RFC 9438, application-limited):
            # the curve does not grow on what was not tried.
            self._event_at += now - self._curve_at
        self._pace_held = False
        self._curve_at = now
        elapsed = (now - self._event_at) / self._curve_second - _CUBIC_K
        if elapsed <= 0:
            growth = RATE_CUBIC_C * elapsed * elapsed * elapsed
        else:
            elapsed = max(elapsed - self._cruise / self._curve_second, 0.0)
            growth = self._probe_c * elapsed * elapsed * elapsed
        self._set_rate(self._reference * (1.0 + growth), now)

    def _set_rate(self, rate: float, now: float) -> None:
        """A new pace, within RATE_MIN and the known rate; a faster one brings a slot
        taken at the slower pace in to one interval of it."""
        if self.known_rate is not None and rate > self.known_rate:
            rate = self.known_rate
        rate = max(rate, RATE_MIN)
        if self.rate is not None and rate > self.rate:
            self._next_slot = min(self._next_slot, now + 1.0 / rate)
        self.rate = rate

    def _widen(self, now: float) -> str | None:
        """A success may widen the window, if the window held starts back."""
        if self.window >= RATE_MAX_WINDOW:
            return None
        if not self.in_flight_limited:
            self._window_credit += 1
            if (
                self._window_credit >= RATE_SLOW_START_SUCCESSES
                or self.window < RATE_INITIAL_WINDOW
            ):
                self._window_credit = 0
                if not self.starting:
                    self._held = False  # past the start, it grows only while it holds
                self.window = max(self.window + 1, RATE_INITIAL_WINDOW)
            return None
        # Back up by one a second, or per RATE_CURVE_REQUESTS successes if slower: a
        # probe's 429 as small a share of the requests at any rate.
        self._window_credit += 1
        if (
            now - self._window_grown_at < RATE_WINDOW_GROWTH_PERIOD
            or self._window_credit < RATE_CURVE_REQUESTS
        ):
            return None
        self._window_grown_at = now
        self._window_credit = 0
        self._held = False
        self.window += 1
        return f"window widened to {self.window} in flight"


def _curve_second(reference: float) -> float:
    """The cubic curve's unit of time at a reference rate: a second, or the time that
    RATE_CURVE_REQUESTS requests take at a lower rate, so that a probe's 429s stay as
    small a share of the requests at 10/s as at 150/s."""
    return max(1.0, RATE_CURVE_REQUESTS / max(reference, RATE_MIN))


def _per_second(admitted: int, sent: int, first: float, last: float) -> float:
    """The rate the server admitted ``admitted`` of ``sent`` requests at, sent from
    ``first`` to ``last``: the rate they were sent at, times the share admitted."""
    sending = (sent - 1) / max(last - first, RATE_MIN_SPAN / RATE_MIN_SAMPLES)
    return sending * admitted / sent


def _smoothed(average: float, sample: float) -> float:
    """A moving average of durations (TCP's smoothed round trip); the first sample as is."""
    return sample if not average else 0.875 * average + 0.125 * sample


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
        self._limits.no_answer(ticket)
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

"""Retry rules as pure functions: what is retried, how long to wait, Retry-After parsing,
and every rule about 429 and Retry-After, for the transport, the rate control and the
sweep alike."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import backoff

from ._constants import (
    DEFAULT_MAX_RETRIES,
    MAX_RETRY_AFTER,
    RATE_PAUSE_INITIAL,
    RETRY_INITIAL_DELAY,
    RETRY_MAX_DELAY,
    RETRYABLE_4XX,
    SHORT_RETRY_AFTER,
    SWEEP_STALLED_429_LIMIT,
)
from ._exceptions import APIConnectionError, APIError, is_server_error

RATE_LIMITED = 429


@dataclass(frozen=True)
class RetryPolicy:
    """How a call is retried. The defaults suit Lean's API; tests shrink the delays."""

    max_retries: int = DEFAULT_MAX_RETRIES
    initial_delay: float = RETRY_INITIAL_DELAY
    max_delay: float = RETRY_MAX_DELAY
    max_retry_after: float = MAX_RETRY_AFTER

    def __post_init__(self) -> None:
        for name in ("max_retries", "initial_delay", "max_delay", "max_retry_after"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not isinstance(self.max_retries, int):
            raise ValueError(f"max_retries must be a whole number, got {self.max_retries!r}")


def is_retryable_status(status_code: int) -> bool:
    return status_code in RETRYABLE_4XX or is_server_error(status_code)


def should_retry(exc: BaseException, policy: RetryPolicy) -> bool:
    """Whether an attempt that failed with ``exc`` is worth another attempt."""
    if isinstance(exc, APIConnectionError):
        return exc.retryable
    if isinstance(exc, APIError):
        if not is_retryable_status(exc.status_code):
            return False
        return not too_long_to_wait(exc.retry_after, policy)
    return False


def too_long_to_wait(retry_after: float | None, policy: RetryPolicy) -> bool:
    """Whether a Retry-After is beyond ``policy.max_retry_after``: it is not waited out
    (neither by a call's retry, nor by a sweep's pause or requeue); the request fails with
    its answer instead. The one place of that cap."""
    return retry_after is not None and retry_after > policy.max_retry_after


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date).

    ``now`` is the current Unix time. Garbage, negative and non-finite values give None,
    so the caller falls back to its own backoff; a date in the past gives 0.
    """
    if value is None:
        return None
    # No strip(): float() and the date parser both ignore surrounding whitespace.
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        return None
    return max(when.timestamp() - now, 0.0)


# Past this many doublings every policy's wait is at its cap (and 2**n stays a float).
_MAX_DOUBLINGS = 32


def _exponential(initial: float, maximum: float) -> Iterator[float]:
    """``backoff.expo``'s waits: initial * 2**n, capped at ``maximum``."""
    waits = backoff.expo(factor=initial, max_value=maximum)
    next(waits)  # backoff's wait generators are primed before their first wait
    return waits


def exponential_delay(n: int, initial: float, maximum: float) -> float:
    """The n-th (from 0) of ``backoff.expo``'s waits: ``initial * 2**n``, at most ``maximum``."""
    doublings = min(max(n, 0), _MAX_DOUBLINGS)
    return float(next(itertools.islice(_exponential(initial, maximum), doublings, None)))


def _jittered(base: float, rand: float) -> float:
    """``base`` less up to a quarter at random (``rand`` in [0, 1)): retries spread out,
    and none waits longer than its cap."""
    return base * (1.0 - 0.25 * rand)


def backoff_delay(retry_number: int, policy: RetryPolicy, rand: float) -> float:
    """Exponential backoff with jitter: the n-th retry (from 0) waits about
    initial * 2**n, capped at max_delay, less up to a quarter at random (``rand`` in [0, 1))."""
    base = exponential_delay(retry_number, policy.initial_delay, policy.max_delay)
    return _jittered(base, rand)


def retry_waits(
    policy: RetryPolicy, rand: Callable[[], float] = random.random
) -> Generator[float, BaseException | None, None]:
    """The waits between a call's attempts, as a wait generator in ``backoff``'s protocol:
    primed with ``send(None)``, then sent each failure, it yields the wait before the next
    attempt: the server's Retry-After when it sent one, else the next of ``backoff.expo``'s
    waits, jittered."""
    exponential = _exponential(policy.initial_delay, policy.max_delay)
    exc = yield 0.0  # backoff primes the generator with send(None)
    while True:
        assert exc is not None
        base = next(exponential)  # every retry moves the exponential on, Retry-After or not
        if isinstance(exc, APIError) and exc.retry_after is not None:
            exc = yield exc.retry_after
        else:
            exc = yield _jittered(base, rand())


def give_up(
    policy: RetryPolicy, *, retry_rate_limited: bool = True
) -> Callable[[Exception, int], bool]:
    """Whether a call whose attempt failed with ``exc`` after ``retries_done`` retries
    ends there: its retries are spent or no retry is due. Without ``retry_rate_limited``
    a 429 is final (the sweep handles 429s itself: it slows down and requeues the
    customer)."""

    def _give_up(exc: Exception, retries_done: int) -> bool:
        if retries_done >= policy.max_retries:
            return True
        if not retry_rate_limited and isinstance(exc, APIError) and exc.status_code == RATE_LIMITED:
            return True
        return not should_retry(exc, policy)

    return _give_up


# -- 429 and Retry-After ---------------------------------------------------------------


def honoured_retry_after(retry_after: float | None, policy: RetryPolicy) -> float | None:
    """The server's Retry-After as far as it is followed: one beyond
    ``policy.max_retry_after`` is not waited out (the request fails instead)."""
    if retry_after is None or too_long_to_wait(retry_after, policy):
        return None
    return retry_after


def long_retry_after(retry_after: float | None, policy: RetryPolicy) -> float | None:
    """The server's Retry-After as a sweep's pause or requeue waits it out: only one longer
    than SHORT_RETRY_AFTER (and within ``policy.max_retry_after``). ``Retry-After: 1`` is
    a per-second limit's whole-second rounding (HTTP has no fractions): waited out, it
    would cost up to a second at every spent window; the rate control paces instead."""
    honoured = honoured_retry_after(retry_after, policy)
    return honoured if honoured is not None and honoured > SHORT_RETRY_AFTER else None


def requeue_delay(
    retry_after: float | None, strikes_in_a_row: int, policy: RetryPolicy, rand: float
) -> float:
    """How long a customer turned away with 429 waits before the sweep sends it again: no
    time at its first strike (the client's rate control has cut the pace, and its next
    start waits for that pace, or for the pause of every start when the server refuses
    everything), the backoff of its earlier strikes after that. A Retry-After longer than
    SHORT_RETRY_AFTER is a minimum (RFC 9110); a shorter one is a per-second limit's
    whole-second rounding, left to the rate control's pause (as ``pause_after_429``)."""
    delay = 0.0 if strikes_in_a_row <= 1 else backoff_delay(strikes_in_a_row - 2, policy, rand)
    honoured = long_retry_after(retry_after, policy)
    return delay if honoured is None else max(delay, honoured)


def requeues_after_429(
    retry_after: float | None, strikes_in_a_row: int, policy: RetryPolicy
) -> bool:
    """Whether the sweep sends a customer again after its ``strikes_in_a_row``-th 429 with
    no progress of the sweep in between (else that customer fails with the 429)."""
    if too_long_to_wait(retry_after, policy):
        return False
    return strikes_in_a_row < SWEEP_STALLED_429_LIMIT


def pause_after_429(
    retry_after: float | None, refusing_in_a_row: int, policy: RetryPolicy, rand: float
) -> float:
    """How long the whole client holds back every start after a congestion event.

    While the server still admits most requests (``refusing_in_a_row`` is 0), slowing
    the pace is enough: no pause. When it refused every request sent since the last
    event (a window's quota is spent, or it admits nothing at all): a Retry-After longer
    than SHORT_RETRY_AFTER is waited out by every start; a shorter one is a per-second
    limit's whole-second rounding (HTTP has no fractions), and ``Retry-After: 1`` would
    cost up to a second at every spent window: the pause is short instead
    (RATE_PAUSE_INITIAL, or the policy's initial delay if shorter), doubling at each
    such event in a row, so that a window's reset is found soon after it comes.
    """
    if refusing_in_a_row <= 0:
        return 0.0
    honoured = long_retry_after(retry_after, policy)
    if honoured is not None:
        return honoured
    first = min(RATE_PAUSE_INITIAL, policy.initial_delay)
    base = exponential_delay(refusing_in_a_row - 1, first, policy.max_delay)
    return _jittered(base, rand)


# -- a sweep's customer turned away with 429 -----------------------------------------------


def strikes_after_429(strikes_in_a_row: int, sweep_progressed: bool) -> int:
    """A customer's 429s in a row, this one counted: a success of the sweep anywhere
    since its last 429 starts the count again."""
    return 1 if sweep_progressed else strikes_in_a_row + 1


def requeue_after_429(
    retry_after: float | None, strikes_in_a_row: int, policy: RetryPolicy, rand: float
) -> float | None:
    """Seconds until the sweep sends a customer turned away with 429 again, or None when
    the customer fails with that 429 (a Retry-After beyond ``policy.max_retry_after``, or
    its ``strikes_in_a_row``-th 429 with no progress in between is one too many)."""
    if not requeues_after_429(retry_after, strikes_in_a_row, policy):
        return None
    return requeue_delay(retry_after, strikes_in_a_row, policy, rand)

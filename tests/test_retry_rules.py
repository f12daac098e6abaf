"""The pure retry rules of lean_async._retry, as tables of cases."""

from __future__ import annotations

import math
from email.utils import formatdate

import pytest

from lean_async import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    BadRequestError,
    DecodeError,
    InvalidIdError,
    RateLimitError,
    RetryPolicy,
    ServerError,
)
from lean_async._retry import (
    backoff_delay,
    exponential_delay,
    give_up,
    honoured_retry_after,
    parse_retry_after,
    pause_after_429,
    requeue_after_429,
    requeue_delay,
    requeues_after_429,
    retry_waits,
    should_retry,
    strikes_after_429,
)

NOW = 1_700_000_000.0  # a fixed "current" Unix time for HTTP-date cases
POLICY = RetryPolicy()


def _api_error(status: int, retry_after: float | None = None) -> APIError:
    return APIError(status, retry_after=retry_after)


RETRIED = pytest.mark.parametrize(
    ("exc", "retried"),
    [
        (APIConnectionError("refused"), True),
        (APIConnectionError("bad certificate", retryable=False), False),
        (APITimeoutError("timed out"), True),
        (_api_error(408), True),
        (_api_error(429), True),
        (RateLimitError(429), True),
        (_api_error(500), True),
        (ServerError(502), True),
        (_api_error(503), True),
        (_api_error(504), True),
        (_api_error(599), True),
        (_api_error(429, retry_after=60.0), True),
        (_api_error(503, retry_after=0.0), True),
        (_api_error(429, retry_after=60.5), False),
        (_api_error(503, retry_after=3600.0), False),
        (BadRequestError(400), False),
        (_api_error(401), False),
        (_api_error(403), False),
        (_api_error(404), False),
        (_api_error(405), False),
        (_api_error(409), False),
        (_api_error(422), False),
        (_api_error(499), False),  # the last 4xx: not a 5xx
        (_api_error(302), False),
        (DecodeError("bad json"), False),
        (InvalidIdError("bad id"), False),
        (ValueError("not ours"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)


@RETRIED
def test_should_retry_follows_the_table(exc: BaseException, retried: bool) -> None:
    assert should_retry(exc, POLICY) is retried


@RETRIED
def test_backoff_gives_up_exactly_where_no_retry_is_due(exc: Exception, retried: bool) -> None:
    assert give_up(POLICY)(exc, 0) is (not retried)


def test_without_rate_limit_retries_a_429_is_final_and_a_503_is_not() -> None:
    sweep_give_up = give_up(POLICY, retry_rate_limited=False)
    assert sweep_give_up(_api_error(429), 0) is True
    assert sweep_give_up(RateLimitError(429, retry_after=1.0), 0) is True
    assert sweep_give_up(_api_error(503), 0) is False
    assert give_up(POLICY)(_api_error(429), 0) is False


@pytest.mark.parametrize("retry_rate_limited", [True, False])
@pytest.mark.parametrize("retries_done", [0, 1, 2, 3])
@pytest.mark.parametrize(
    ("exc", "retried"),
    [
        (_api_error(503), True),
        (_api_error(429), True),
        (APIConnectionError("reset"), True),
        (_api_error(400), False),
    ],
    ids=["503", "429", "reset", "400"],
)
def test_give_up_combines_spent_retries_the_429_rule_and_the_error(
    exc: Exception, retried: bool, retries_done: int, retry_rate_limited: bool
) -> None:
    policy = RetryPolicy(max_retries=2)
    spent = retries_done >= 2
    final_429 = not retry_rate_limited and getattr(exc, "status_code", None) == 429
    expected = spent or final_429 or not retried
    assert give_up(policy, retry_rate_limited=retry_rate_limited)(exc, retries_done) is expected


def test_a_policy_without_retries_gives_up_on_the_first_failure() -> None:
    assert give_up(RetryPolicy(max_retries=0))(_api_error(503), 0) is True


def test_should_retry_respects_a_policy_with_a_lower_retry_after_ceiling() -> None:
    policy = RetryPolicy(max_retry_after=5.0)
    assert should_retry(_api_error(429, retry_after=5.0), policy)
    assert not should_retry(_api_error(429, retry_after=5.1), policy)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("0", 0.0),
        ("1", 1.0),
        ("120", 120.0),
        ("0.25", 0.25),
        (" 2 ", 2.0),
        (formatdate(NOW + 30, usegmt=True), 30.0),
        (formatdate(NOW + 1, usegmt=True), 1.0),
        (formatdate(NOW - 30, usegmt=True), 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        (None, None),
        ("", None),
        ("   ", None),
        ("soon", None),
        ("5 seconds", None),
        ("-1", None),
        ("-0.5", None),
        ("nan", None),
        ("NaN", None),
        ("inf", None),
        ("-inf", None),
        ("Infinity", None),
        ("Wed, 99 Foo 2015 07:28:00 GMT", None),
        ("Wed, 21 Oct 2015 07:28:00", None),
    ],
)
def test_parse_retry_after_follows_the_table(header: str | None, seconds: float | None) -> None:
    result = parse_retry_after(header, NOW)
    if seconds is None:
        assert result is None
    else:
        assert result == pytest.approx(seconds)


@pytest.mark.parametrize("retry_number", [0, 1, 2, 3, 4, 5, 10, 1000])
@pytest.mark.parametrize("rand", [0.0, 0.5, 0.999999])
def test_backoff_delay_stays_within_its_bounds(retry_number: int, rand: float) -> None:
    ceiling = min(POLICY.initial_delay * 2.0 ** min(retry_number, 32), POLICY.max_delay)
    delay = backoff_delay(retry_number, POLICY, rand)
    assert 0.75 * ceiling <= delay <= ceiling
    assert math.isfinite(delay)


def test_backoff_first_delay_is_about_half_a_second() -> None:
    assert 0.375 <= backoff_delay(0, POLICY, 0.999999) <= backoff_delay(0, POLICY, 0.0) == 0.5


def test_backoff_doubles_until_the_cap() -> None:
    delays = [backoff_delay(n, POLICY, 0.0) for n in range(8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]
    assert max(delays) == POLICY.max_delay


def test_backoff_jitter_varies_the_delay() -> None:
    assert backoff_delay(2, POLICY, 0.0) != backoff_delay(2, POLICY, 0.9)


def test_backoff_delay_follows_a_shrunk_policy() -> None:
    policy = RetryPolicy(initial_delay=0.01, max_delay=0.03)
    assert [backoff_delay(n, policy, 0.0) for n in range(4)] == [0.01, 0.02, 0.03, 0.03]


def test_retry_waits_use_retry_after_when_the_server_sent_one() -> None:
    waits = retry_waits(POLICY, rand=lambda: 0.0)
    assert waits.send(None) == 0.0  # backoff primes the generator
    assert waits.send(_api_error(503)) == 0.5
    assert waits.send(_api_error(429, retry_after=0.3)) == 0.3
    assert waits.send(APIConnectionError("reset")) == 2.0


# (n, initial, maximum) -> backoff.expo's n-th wait
EXPONENTIAL = [
    (0, 0.5, 8.0, 0.5),
    (3, 0.5, 8.0, 4.0),
    (4, 0.5, 8.0, 8.0),
    (5, 0.5, 8.0, 8.0),
    (-1, 0.5, 8.0, 0.5),  # a handler that never failed waits the first step
    (10**9, 0.5, 8.0, 8.0),  # no endless stepping, no overflow
    (2000, 1e-300, 1e300, 1e300 if 1e-300 * 2.0**32 > 1e300 else 1e-300 * 2.0**32),
    (3, 0.0, 8.0, 0.0),
    (3, 0.5, 0.0, 0.0),
]


@pytest.mark.parametrize(("n", "initial", "maximum", "expected"), EXPONENTIAL)
def test_exponential_delay_is_backoff_expos_nth_wait_capped(
    n: int, initial: float, maximum: float, expected: float
) -> None:
    assert exponential_delay(n, initial, maximum) == pytest.approx(expected)


def test_retry_waits_are_backoff_expos_waits_jittered(monkeypatch: pytest.MonkeyPatch) -> None:
    import backoff

    stepped: list[float] = []

    def expo(factor: float, max_value: float):  # type: ignore[no-untyped-def]
        yield
        for wait in (0.7, 1.1, 1.3):
            stepped.append(wait)
            yield wait

    monkeypatch.setattr(backoff, "expo", expo)
    waits = retry_waits(POLICY, rand=lambda: 0.5)
    waits.send(None)
    assert waits.send(_api_error(503)) == pytest.approx(0.7 * 0.875)
    assert waits.send(_api_error(429, retry_after=0.3)) == 0.3  # the step is still taken
    assert waits.send(APIConnectionError("reset")) == pytest.approx(1.3 * 0.875)
    assert stepped == [0.7, 1.1, 1.3]


@pytest.mark.parametrize(
    "options",
    [
        {"max_retries": -1},
        {"initial_delay": -0.1},
        {"max_delay": float("inf")},
        {"max_retry_after": float("nan")},
        {"max_retries": True},
        {"max_retries": 1.5},
        {"initial_delay": "1"},
    ],
)
def test_retry_policy_rejects_bad_values(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**options)  # type: ignore[arg-type]


# (retry_after, refusing events in a row) -> the pause of every start (rand = 0).
PAUSES = [
    (None, 0, 0.0),  # still admitting most: the cut pace is enough
    (30.0, 0, 0.0),
    (None, 1, 0.1),  # refusing: a short pause (RATE_PAUSE_INITIAL), doubling
    (None, 2, 0.2),
    (None, 5, 1.6),
    (None, 12, 5.0),  # at most max_delay
    (1.0, 1, 0.1),  # a per-second limit's whole-second rounding: the short pause instead
    (2.5, 1, 2.5),  # longer: every start waits it out
    (61.0, 1, 0.1),  # beyond max_retry_after: not waited out
]


@pytest.mark.parametrize(("retry_after", "refusing", "pause"), PAUSES)
def test_pause_after_429_follows_the_table(
    retry_after: float | None, refusing: int, pause: float
) -> None:
    assert pause_after_429(retry_after, refusing, POLICY, 0.0) == pause


@pytest.mark.parametrize(
    ("retry_after", "strikes", "delay"),
    [
        (None, 1, 0.0),  # the first strike: at once, at the pace the rate control cut
        (None, 2, 0.5),  # then the backoff of the strikes before
        (None, 3, 1.0),
        (0.0, 1, 0.0),
        (1.0, 1, 0.0),  # a whole-second rounding: left to the rate control's pause
        (1.0, 2, 0.5),
        (3.0, 1, 3.0),  # a longer Retry-After: a minimum
        (3.0, 3, 3.0),
        (0.2, 2, 0.5),
    ],
)
def test_a_requeued_customer_waits_its_backoff_or_a_longer_retry_after(
    retry_after: float | None, strikes: int, delay: float
) -> None:
    assert requeue_delay(retry_after, strikes, POLICY, 0.0) == delay


@pytest.mark.parametrize(
    ("retry_after", "strikes", "requeued"),
    [(None, 1, True), (None, 2, True), (None, 3, False), (60.0, 1, True), (61.0, 1, False)],
)
def test_a_customer_is_requeued_until_its_third_429_in_a_row_or_a_too_long_retry_after(
    retry_after: float | None, strikes: int, requeued: bool
) -> None:
    assert requeues_after_429(retry_after, strikes, POLICY) is requeued


def test_a_retry_policy_cannot_be_changed_once_made() -> None:
    # Shared by the client, its transport and every sweep: a change would reach them all.
    policy = RetryPolicy()
    with pytest.raises(AttributeError):
        policy.max_retries = 9  # type: ignore[misc]
    assert hash(policy) == hash(RetryPolicy())


def test_a_retry_policy_of_zeros_is_valid_no_retry_no_wait() -> None:
    policy = RetryPolicy(max_retries=0, initial_delay=0, max_delay=0, max_retry_after=0)
    assert backoff_delay(5, policy, 0.5) == 0.0
    assert honoured_retry_after(0.0, policy) == 0.0
    assert honoured_retry_after(0.5, policy) is None


@pytest.mark.parametrize(
    ("retry_after", "honoured"),
    [(None, None), (0.0, 0.0), (59.5, 59.5), (60.0, 60.0), (60.001, None), (3600.0, None)],
)
def test_a_retry_after_up_to_max_retry_after_is_honoured_beyond_it_not(
    retry_after: float | None, honoured: float | None
) -> None:
    assert honoured_retry_after(retry_after, RetryPolicy(max_retry_after=60.0)) == honoured


def test_the_backoff_exponent_stops_growing_at_32_doublings() -> None:
    # Beyond that a float would overflow long before any max_delay is reached.
    policy = RetryPolicy(initial_delay=1e-9, max_delay=1e9)
    assert backoff_delay(40, policy, 0.0) == pytest.approx(1e-9 * 2.0**32)
    assert backoff_delay(32, policy, 0.0) == backoff_delay(10_000, policy, 0.0)


@pytest.mark.parametrize("header", ["\t2\n", "  Wed, 21 Oct 2015 07:28:00 GMT  "])
def test_parse_retry_after_ignores_surrounding_whitespace(header: str) -> None:
    assert parse_retry_after(header, NOW) == parse_retry_after(header.strip(), NOW)


@pytest.mark.parametrize(
    ("strikes", "progressed", "after"), [(0, False, 1), (2, False, 3), (2, True, 1), (0, True, 1)]
)
def test_a_429_adds_a_strike_unless_the_sweep_progressed_since_the_last_one(
    strikes: int, progressed: bool, after: int
) -> None:
    assert strikes_after_429(strikes, progressed) == after


@pytest.mark.parametrize(
    ("retry_after", "strikes", "delay"),
    [
        (None, 1, 0.0),  # the first strike: at once (the rate control paces it)
        (None, 2, 0.5),  # the first backoff (rand 0: no jitter)
        (None, 3, None),  # the third 429 in a row with no progress: the customer fails
        (5.0, 1, 5.0),  # a Retry-After longer than a second is waited out
        (0.1, 2, 0.5),  # a shorter one is a whole-second rounding: the backoff
        (60.0, 1, 60.0),  # at max_retry_after: honoured
        (60.5, 1, None),  # beyond it: the customer fails at once, no hour-long requeue
        (3600.0, 1, None),
    ],
)
def test_a_customer_turned_away_with_429_is_requeued_after_this_delay_or_fails(
    retry_after: float | None, strikes: int, delay: float | None
) -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=8.0, max_retry_after=60.0)
    assert requeue_after_429(retry_after, strikes, policy, 0.0) == delay

"""The client's rate control against the rate-limit benchmark's servers, in virtual time
(``benchmarks.ratesim``): the real sweep and rate control, the server simulated in
process, a 10 s sweep in a fraction of a second and the same figures at every run. The
benchmark's targets hold here exactly, and for lower rates and slower answers than the
benchmark's too; ``benchmarks.ratelimit`` measures them on real sockets and clocks."""

from __future__ import annotations

import pytest

from benchmarks import ratesim
from benchmarks.ratelimit import (
    CASES,
    TARGET_429_SHARE,
    TARGETS,
    Case,
    FixedWindow,
    InFlight,
    SlidingWindow,
    TokenBucket,
)


def check(result: dict[str, object], time_target: float, share_target: float) -> None:
    assert not result["hung"] and result["exactly_once"] and result["all_ok"], result
    assert result["ratio"] <= time_target, result  # type: ignore[operator]
    assert result["share_429"] <= share_target, result  # type: ignore[operator]


@pytest.mark.parametrize("retry_after", [False, True], ids=["no Retry-After", "Retry-After"])
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_an_untold_sweep_meets_the_benchmarks_targets(case: Case, retry_after: bool) -> None:
    for seed in range(2):
        result = ratesim.run_virtual(case, 10.0, retry_after=retry_after, told=False, seed=seed)
        check(result, TARGETS[case.kind], TARGET_429_SHARE)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_sweep_told_the_limit_is_no_slower(case: Case) -> None:
    result = ratesim.run_virtual(case, 10.0, retry_after=False, told=True, seed=0)
    check(result, TARGETS[case.kind], TARGET_429_SHARE)


# Slower servers and lower limits than the benchmark's (Lean states none): (name, the
# limit, the rate it admits), answers in 250-350 ms, each for 30 s of ideal time.
SLOW = [
    ("a token bucket of 10/s, answers in 300 ms", lambda: TokenBucket(10, burst=2), 10.0),
    ("fixed windows of 20 a second, answers in 300 ms", lambda: FixedWindow(20), 20.0),
    ("a sliding window of 40 a second, answers in 300 ms", lambda: SlidingWindow(40), 40.0),
    ("3 requests in progress, answers in 300 ms", lambda: InFlight(3), 10.0),
]


@pytest.mark.parametrize(("limit", "rate"), [s[1:] for s in SLOW], ids=[s[0] for s in SLOW])
def test_lower_limits_and_slower_answers_are_followed_as_closely(
    limit: object, rate: float
) -> None:
    case = Case("slow", "window", lambda seconds: (limit(), round(rate * seconds), rate))  # type: ignore[operator]
    result = ratesim.run_virtual(case, 30.0, retry_after=False, told=False, latency=(0.25, 0.35))
    check(result, 1.15, 0.04)


def test_a_burst_spent_early_is_no_window_quota_to_hold_to() -> None:
    # A bucket's 5 saved tokens spent 0.1 s into a sweep look like a window's quota spent;
    # measured over a whole second they said 14/s and held a 100/s limit there for
    # seconds. Sending for less than a window, the estimate is per second of sending.
    case = Case("b", "window", lambda seconds: (TokenBucket(100, 5), round(100 * seconds), 100.0))
    result = ratesim.run_virtual(case, 1.5, retry_after=False, told=False, latency=(0.0095, 0.0105))
    check(result, 1.3, 0.15)

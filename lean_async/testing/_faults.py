"""Fault knobs, and the pure decisions drawn from them for each request."""

from __future__ import annotations

import enum
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, fields

__all__ = ["Fault", "Faults", "Plan", "RateLimiter", "plan"]

# Fixed seconds, a (low, high) uniform range, or any distribution drawn from the RNG.
Latency = float | tuple[float, float] | Callable[[random.Random], float]


class Fault(enum.Enum):
    NONE = "none"
    ERROR = "error"
    DROP = "drop"
    TRUNCATE = "truncate"
    MALFORMED = "malformed"
    SLOW_BODY = "slow_body"


# The shared faults, in the order a request's roll of the dice is matched against them.
_SHARES = (
    ("error_rate", Fault.ERROR),
    ("drop_rate", Fault.DROP),
    ("truncate_rate", Fault.TRUNCATE),
    ("malformed_rate", Fault.MALFORMED),
    ("slow_body_rate", Fault.SLOW_BODY),
)
_RATES = tuple(name for name, _ in _SHARES)


@dataclass(frozen=True)
class Faults:
    """What goes wrong, and how often. Shares are fractions of all requests in [0, 1];
    one request suffers at most one of the shared faults (their sum must be <= 1), plus
    latency and the rate limit. ``seed`` makes the draws reproducible."""

    latency: Latency = 0.0
    # Answer 500/502/503 before the request is handled; a share of those is the HTML page
    # of a proxy in front of Lean instead of Lean's JSON error body.
    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500, 502, 503)
    html_error_share: float = 0.5
    # Requests per second over the whole server (a token bucket holding one second's
    # worth); beyond it, 429 RATE_LIMIT_EXCEEDED with Retry-After in whole seconds.
    rate_limit: float | None = None
    retry_after: bool = True
    # The request is handled (a delete happens), then the connection closes unanswered.
    drop_rate: float = 0.0
    # The answer declares a Content-Length larger than what is sent before closing.
    truncate_rate: float = 0.0
    # 200 with a body that is not JSON (cut-off JSON or an HTML page).
    malformed_rate: float = 0.0
    # The answer body trickles out in chunks of slow_body_chunk bytes.
    slow_body_rate: float = 0.0
    slow_body_chunk: int = 64
    slow_body_delay: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        for name in (*_RATES, "html_error_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        if sum(getattr(self, name) for name in _RATES) > 1.0 + 1e-9:
            raise ValueError(f"the shares {', '.join(_RATES)} must add up to at most 1")
        if self.rate_limit is not None and not (
            math.isfinite(self.rate_limit) and self.rate_limit > 0
        ):
            raise ValueError(f"rate_limit must be > 0 requests/second, got {self.rate_limit!r}")
        if self.error_rate and not all(500 <= s <= 599 for s in self.error_statuses):
            raise ValueError(f"error_statuses must be 5xx, got {self.error_statuses!r}")
        if self.slow_body_chunk < 1 or self.slow_body_delay < 0:
            raise ValueError("slow_body_chunk must be >= 1 and slow_body_delay >= 0")
        if isinstance(self.latency, tuple):
            low, high = self.latency
            if not 0 <= low <= high:
                raise ValueError(f"latency range must be 0 <= low <= high, got {self.latency!r}")
        elif not callable(self.latency) and self.latency < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {self.latency!r}")

    @property
    def any_share(self) -> bool:
        return any(getattr(self, name) for name in _RATES)

    def describe(self) -> str:
        """The knobs that differ from the defaults, e.g. ``error_rate=0.1, latency=0.05``."""
        changed = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != f.default
        ]
        return ", ".join(changed) or "none"


@dataclass(frozen=True)
class Plan:
    """What happens to one request."""

    latency: float = 0.0
    fault: Fault = Fault.NONE
    status: int = 200  # for ERROR
    html: bool = False  # for ERROR and MALFORMED


NO_FAULT = Plan()


def draw_latency(latency: Latency, rng: random.Random) -> float:
    if isinstance(latency, tuple):
        return rng.uniform(*latency)
    if callable(latency):
        return max(float(latency(rng)), 0.0)
    return float(latency)


def plan(faults: Faults, rng: random.Random) -> Plan:
    """Draw one request's fate; draws nothing for knobs that are off."""
    latency = draw_latency(faults.latency, rng) if faults.latency else 0.0
    fault = Fault.NONE
    if faults.any_share:
        roll = rng.random()
        for name, share_fault in _SHARES:
            roll -= getattr(faults, name)
            if roll < 0:
                fault = share_fault
                break
    if fault is Fault.ERROR:
        status = rng.choice(faults.error_statuses)
        return Plan(latency, fault, status, rng.random() < faults.html_error_share)
    if fault is Fault.MALFORMED:
        return Plan(latency, fault, html=rng.random() < 0.5)
    if fault is Fault.NONE and not latency:
        return NO_FAULT
    return Plan(latency, fault)


class RateLimiter:
    """A token bucket: ``rate`` tokens per second, holding at most one second's worth."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._capacity = max(rate, 1.0)
        self._tokens = self._capacity
        self._clock = clock
        self._updated = clock()

    def take(self) -> float:
        """0 when the request may pass; else the seconds until a token is free."""
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate

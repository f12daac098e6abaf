"""A client-wide request rate limit shared by every call and every sweep."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable


class RateLimiter:
    """Spaces request starts at least ``1 / rate`` seconds apart (a virtual-time
    scheduler: each caller reserves the next free slot, then sleeps until it)."""

    def __init__(
        self, rate: float, *, burst: int = 1, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)):
            raise ValueError(f"rate_limit must be a number of requests per second, got {rate!r}")
        if not math.isfinite(rate) or rate <= 0:
            raise ValueError(f"rate_limit must be > 0 requests per second, got {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        self.rate = float(rate)
        self._interval = 1.0 / rate
        self._burst_window = (burst - 1) * self._interval
        self._clock = clock
        self._next_slot = -math.inf

    def reserve(self) -> float:
        """Reserve the next slot; the seconds to wait before using it."""
        now = self._clock()
        slot = max(self._next_slot, now - self._burst_window)
        self._next_slot = slot + self._interval
        return max(slot - now, 0.0)

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                # The request will not be sent: give its slot back, or an abandoned sweep
                # would hold the slots of every request it had queued.
                self._next_slot -= self._interval
                raise

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate})"

"""What the fake server has seen, for tests and benchmarks to assert on."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Stats"]


@dataclass
class Stats:
    """Counters since the server started or since ``reset()``."""

    requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    # Keyed by the request path as sent, e.g. "/customers/v1/<id>/payment-sources".
    by_path: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    peak_in_flight: int = 0
    rate_limited: int = 0
    token_requests: int = 0
    # Connections closed on purpose without a complete answer (drop and truncate faults).
    dropped: int = 0

    def reset(self) -> None:
        """Zero the counters; requests still in flight stay counted as in flight."""
        self.requests = self.rate_limited = self.token_requests = self.dropped = 0
        self.by_status.clear()
        self.by_path.clear()
        self.peak_in_flight = self.in_flight

    def list_requests(self, customer_id: str) -> int:
        """How many times this customer's payment-source list was requested."""
        return self.by_path[f"/customers/v1/{customer_id}/payment-sources"]

"""Observability as an API: what the client tells an ``on_request``/``on_retry`` hook
about each attempt and each retry, as plain frozen values (no credentials, no bodies)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ._exceptions import LeanError


@dataclass(frozen=True)
class RequestEvent:
    """One attempt of one call, after it ended (answered or not)."""

    method: str
    #: The request path with its query string, percent-encoded, without host or credentials.
    path: str
    #: 1 for the first attempt of a call, 2 for its first retry, ...
    attempt: int
    #: The HTTP status, or None when no answer came (connection failure, timeout).
    status: int | None
    #: Seconds from sending the request to reading the whole answer (or to the failure).
    elapsed: float
    #: Lean's request id from the answer's headers, when it sent one.
    request_id: str | None
    #: The error this attempt ended in, or None when it succeeded.
    error: LeanError | None


@dataclass(frozen=True)
class RetryEvent:
    """A failed attempt that will be tried again after ``wait`` seconds."""

    method: str
    path: str
    #: The attempt that failed (1 for the first).
    attempt: int
    #: Seconds until the next attempt starts.
    wait: float
    #: Why: ``"HTTP 503"``, ``"HTTP 429"``, ``"APIConnectionError"``, ``"APITimeoutError"``...
    cause: str
    #: The HTTP status of the failed attempt, or None when no answer came.
    status: int | None
    error: LeanError


OnRequest = Callable[[RequestEvent], None]
OnRetry = Callable[[RetryEvent], None]

"""Reading a webhook request body under abuse: a size limit, a deadline, and a budget of
bytes held in memory at once across every connection.

Lean's deliveries are well under 1 KiB and arrive with their headers; a body that is large,
slow, or one of very many at once is not Lean's. The budget is the part that needs care: a
body's bytes are reserved as they arrive (a client trickling a byte a second holds a byte),
and a body past ``small_body`` bytes may only use three quarters of the budget, so that
large bodies cannot crowd out small ones (real deliveries) however many there are. A body
that finds no room is refused with 503 at once rather than waiting: waiting would hold its
connection and let a flood of clients queue valid deliveries behind them; Lean retries a
503 later.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

__all__ = ["BodyBudget", "Refusal", "held_body"]


class BodyBudget:
    """Bytes of request bodies held at once by one receiver; pure accounting, no I/O."""

    def __init__(self, limit: int, small_body: int) -> None:
        if limit < 1 or small_body < 1:
            raise ValueError("the body budget and the small-body size must be at least 1 byte")
        self.limit = limit
        self.small_body = small_body
        # A quarter stays for small bodies: large ones cannot starve real deliveries.
        self.large_limit = limit - limit // 4
        self.used = 0
        self.peak = 0

    def take(self, held: int, more: int) -> bool:
        """Reserve ``more`` bytes for a body already holding ``held``; False when there is
        no room for them."""
        ceiling = self.limit if held + more <= self.small_body else self.large_limit
        if self.used + more > ceiling:
            return False
        self.used += more
        self.peak = max(self.peak, self.used)
        return True

    def give_back(self, size: int) -> None:
        self.used -= size


class Refusal(enum.Enum):
    """Why a body was not read; the value is the status to answer."""

    TOO_LARGE = 413
    TOO_SLOW = 408
    NO_ROOM = 503
    CLIENT_GONE = 499  # nothing can be answered: the client hung up


# What reading the body of a request whose client hung up raises.
_CLIENT_GONE = (ConnectionError, aiohttp.ClientPayloadError, EOFError)


class _Reading:
    __slots__ = ("budget", "held")

    def __init__(self, budget: BodyBudget) -> None:
        self.budget = budget
        self.held = 0

    async def read(self, request: web.Request, limit: int) -> bytes | Refusal:
        chunks: list[bytes] = []
        content = request.content
        while chunk := await content.readany():
            size = len(chunk)
            if self.held + size > limit:
                return Refusal.TOO_LARGE
            if not self.budget.take(self.held, size):
                return Refusal.NO_ROOM
            self.held += size
            chunks.append(chunk)
        return b"".join(chunks) if len(chunks) != 1 else chunks[0]


@contextlib.asynccontextmanager
async def held_body(
    request: web.Request, *, limit: int, timeout: float, budget: BodyBudget
) -> AsyncIterator[bytes | Refusal]:
    """The raw body of ``request`` (or why it was not read), counted in ``budget`` until the
    block ends: read at most ``limit`` bytes within ``timeout`` seconds."""
    reading = _Reading(budget)
    try:
        if request.content_length is not None and request.content_length > limit:
            yield Refusal.TOO_LARGE
            return
        try:
            outcome = await asyncio.wait_for(reading.read(request, limit), timeout)
        except asyncio.TimeoutError:
            outcome = Refusal.TOO_SLOW
        except _CLIENT_GONE:
            outcome = Refusal.CLIENT_GONE
        yield outcome
    finally:
        budget.give_back(reading.held)

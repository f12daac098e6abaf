"""Reading a webhook request body under abuse: a size limit, a deadline, and a budget of
bytes held in memory at once across every connection.

Lean's deliveries are well under 1 KiB and arrive with their headers; a body that is large,
slow, or one of very many at once is not Lean's. The budget is the part that needs care: a
body's bytes are reserved as they arrive (a client trickling a byte a second holds a byte),
and a body past ``small_body`` bytes may only use three quarters of the budget, so that
large bodies cannot crowd out small ones (real deliveries) however many there are. A large
body whose declared length does not fit is refused before any of it is read. A body
that finds no room is refused with 503 at once rather than waiting: waiting would hold its
connection and let a flood of clients queue valid deliveries behind them; Lean retries a
503 later.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import enum
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

__all__ = ["BodyBudget", "FreedMemory", "Refusal", "held_body", "malloc_trim"]


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

    def admits(self, declared: int | None) -> bool:
        """Whether a body of ``declared`` bytes (None: not declared) could be held now;
        checked before reading, so that a large body finding no room costs no reading."""
        if declared is None or declared <= self.small_body:
            return True
        return self.used + declared <= self.large_limit

    def give_back(self, size: int) -> None:
        self.used -= size


def malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None elsewhere (musl, macOS, Windows)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


class FreedMemory:
    """Gives the memory freed after a burst of request bodies back to the system.

    glibc keeps freed memory for reuse, so after a flood of large or numerous bodies (the
    receiver's and aiohttp's buffers) the process would stay at the flood's peak for good.
    Once ``burst`` bytes of bodies have come through since the last time, and then nothing
    for ``quiet`` seconds, ``trim`` (``malloc_trim()``) runs in a thread. Nothing happens
    without glibc.
    """

    def __init__(self, burst: int, quiet: float, trim: Callable[[int], int] | None) -> None:
        self._trim = trim  # malloc_trim(), or None where there is none
        self._burst = burst
        self._quiet = quiet
        self._seen = 0
        self._timer: asyncio.TimerHandle | None = None

    def note(self, size: int) -> None:
        """``size`` bytes of a body came in (or were declared and refused)."""
        if self._trim is None:
            return
        self._seen += size
        if self._seen < self._burst:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self._quiet, self._give_back)

    def _give_back(self) -> None:
        self._seen = 0
        self._timer = None
        if self._trim is not None:
            asyncio.get_running_loop().run_in_executor(None, self._trim, 0)


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
    request: web.Request,
    *,
    limit: int,
    timeout: float,
    budget: BodyBudget,
    freed: FreedMemory | None = None,
) -> AsyncIterator[bytes | Refusal]:
    """The raw body of ``request`` (or why it was not read), counted in ``budget`` until the
    block ends: read at most ``limit`` bytes within ``timeout`` seconds."""
    reading = _Reading(budget)
    declared = request.content_length
    try:
        if declared is not None and declared > limit:
            yield Refusal.TOO_LARGE
            return
        if not budget.admits(declared):
            yield Refusal.NO_ROOM
            return
        try:
            if request.content.is_eof():
                # It all came with the headers, as Lean's do: nothing to wait for.
                outcome = await reading.read(request, limit)
            else:
                outcome = await asyncio.wait_for(reading.read(request, limit), timeout)
        except asyncio.TimeoutError:
            outcome = Refusal.TOO_SLOW
        except _CLIENT_GONE:
            outcome = Refusal.CLIENT_GONE
        yield outcome
    finally:
        budget.give_back(reading.held)
        if freed is not None:
            freed.note(max(reading.held, min(declared or 0, limit)))

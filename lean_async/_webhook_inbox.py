"""The durable inbox of a webhook receiver: what an inbox must do, and the rules its worker
follows (retry delays, backfill), with no storage in this module.

An event is added, durably, before its delivery is answered 200; the worker claims due
events, runs the handler, and marks each one done, or failed for a later attempt, or parked
after the last attempt. ``SQLiteInbox`` is the standard library's implementation; a team
can implement ``Inbox`` on Postgres or Redis with the same meaning.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterable, AsyncIterator, Collection
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from ._constants import (
    WEBHOOK_BACKFILL_BATCH,
    WEBHOOK_RETRY_INITIAL_DELAY,
    WEBHOOK_RETRY_MAX_DELAY,
)
from ._retry import exponential_delay
from ._webhook_events import WebhookEvent

if TYPE_CHECKING:
    from ._client import LeanClient

__all__ = ["Inbox", "InboxEntry", "backfill", "handler_retry_delay"]


@dataclasses.dataclass(frozen=True)
class InboxEntry:
    """An event held by an inbox, with what became of its handler so far."""

    event: WebhookEvent
    attempts: int  # handler runs started, this one included when just claimed
    received_at: datetime
    last_error: str | None = None


class Inbox(Protocol):
    """Durable storage of received events, keyed by ``event_id``.

    Every method may be called concurrently from one event loop. ``add`` must not return
    before the event would survive a crash of the process (committed and synced); the
    others may be as lazy as the store allows, since losing one of their writes only means
    that a handler runs once more.
    """

    async def add(self, event: WebhookEvent) -> bool:
        """Keep ``event`` as pending, durably; False (and nothing changes) when its
        ``event_id`` is held already, in whatever state. Raises if it cannot be stored."""
        ...

    async def recover(self) -> int:
        """Make pending again the events claimed by a process that is gone (its handlers
        were interrupted); called once when a receiver starts. Returns how many."""
        ...

    async def claim(self, limit: int) -> list[InboxEntry]:
        """Up to ``limit`` pending events whose next attempt is due, oldest first, now
        marked as being handled (and their attempt counted)."""
        ...

    async def complete(self, event_ids: Collection[str]) -> None:
        """The handlers of these claimed events returned: they are done. (The worker marks
        the events of handlers that end together in one call.)"""
        ...

    async def fail(self, event_id: str, error: str, retry_at: datetime | None) -> None:
        """The handler of a claimed event raised ``error``: pending again from ``retry_at``,
        or, when that is None, parked as failed (kept, with its payload)."""
        ...

    async def failed(self) -> list[InboxEntry]:
        """The parked events, oldest first."""
        ...

    async def retry_failed(self, event_ids: Collection[str] | None = None) -> int:
        """Make parked events (all, or those of ``event_ids``) pending again with a fresh
        count of attempts; returns how many."""
        ...

    async def close(self) -> None:
        """Release the store's resources; a later call may open them again."""
        ...


def handler_retry_delay(
    attempts: int,
    initial: float = WEBHOOK_RETRY_INITIAL_DELAY,
    maximum: float = WEBHOOK_RETRY_MAX_DELAY,
) -> float:
    """Seconds before the next run of a handler that has failed ``attempts`` times:
    doubling from ``initial``, at most ``maximum``."""
    return exponential_delay(attempts - 1, initial, maximum)


async def backfill(
    inbox: Inbox,
    lean: LeanClient,
    *,
    since: datetime,
    until: datetime | None = None,
    type: str | None = None,
) -> int:
    """Add to ``inbox`` the events Lean's Events API lists from ``since`` (to ``until``,
    of one ``type``) that it does not hold; returns how many were new. The receiver's
    worker handles them like any delivery, and a redelivery of one is dropped."""
    added = 0
    async for batch in _batches(lean.events.list(since=since, until=until, type=type)):
        # Added together: one commit for the batch, not one per event.
        added += sum(await asyncio.gather(*(inbox.add(event) for event in batch)))
    return added


async def _batches(events: AsyncIterable[WebhookEvent]) -> AsyncIterator[list[WebhookEvent]]:
    batch: list[WebhookEvent] = []
    async for event in events:
        batch.append(event)
        if len(batch) >= WEBHOOK_BACKFILL_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch

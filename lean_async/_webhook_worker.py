"""The worker that runs a receiver's handler on the events of its inbox, in the background.

It claims due events (as many as it has free slots, once a quarter of them are free), runs
the handler on each, and marks
each one done, or due again after a backoff, or parked as failed after its last attempt.
It is woken when the receiver adds an event and when a handler finishes, and otherwise
looks at the inbox every ``poll_interval`` seconds (for retries coming due, and events
added by a backfill or another process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

from ._constants import LOGGER_NAME, WEBHOOK_INBOX_POLL
from ._constants import WEBHOOK_CANCEL_GRACE as _CANCEL_GRACE
from ._webhook_events import EventHandler, WebhookEvent
from ._webhook_inbox import Inbox, InboxEntry

__all__ = ["InboxWorker"]

logger = logging.getLogger(f"{LOGGER_NAME}.webhooks")

_RECOVER_RETRY = 5.0  # seconds between tries at reading an inbox that failed at start


class InboxWorker:
    def __init__(
        self,
        inbox: Inbox,
        handler: EventHandler,
        *,
        concurrency: int,
        max_attempts: int,
        retry_delay: Callable[[int], float],
        on_outcome: Callable[[str], None],
        poll_interval: float = WEBHOOK_INBOX_POLL,
    ) -> None:
        if concurrency < 1 or max_attempts < 1:
            raise ValueError("concurrency and max_attempts must be at least 1")
        self._inbox = inbox
        self._handler = handler
        self._concurrency = concurrency
        self._claim_batch = max(1, concurrency // 4)
        self._max_attempts = max_attempts
        self._retry_delay = retry_delay
        self._on_outcome = on_outcome  # "processed", "retried" or "parked", for the stats
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        # Handled events not yet marked done, and the task marking them, in batches.
        self._done: list[WebhookEvent] = []
        self._marking: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def running(self) -> int:
        """How many handlers are running."""
        return len(self._tasks)

    def wake(self) -> None:
        self._idle.clear()
        self._wake.set()

    def start(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._run(), name="lean-webhook-inbox-worker")

    async def idle(self) -> None:
        """Wait until no handler runs and the inbox had nothing due at the last look."""
        if self._loop_task is None:
            return
        await self._idle.wait()

    async def stop(self, timeout: float) -> None:
        """Claim nothing more; wait up to ``timeout`` seconds for running handlers, then
        cancel them (their events stay in the inbox, handled again at the next start)."""
        self._stopping.set()
        self._wake.set()
        loop_task, self._loop_task = self._loop_task, None
        if loop_task is not None:
            await asyncio.gather(loop_task, return_exceptions=True)
        if self._tasks:
            await self._drain(timeout)
        if self._marking is not None:
            await asyncio.gather(self._marking, return_exceptions=True)

    async def _drain(self, timeout: float) -> None:
        _, still_running = await asyncio.wait(set(self._tasks), timeout=timeout)
        if still_running:
            logger.error(
                "%d webhook handlers still running at shutdown: cancelled; their events stay "
                "in the inbox and are handled again at the next start",
                len(still_running),
            )
            for task in still_running:
                task.cancel()
            await asyncio.wait(still_running, timeout=_CANCEL_GRACE)

    async def _run(self) -> None:
        while True:
            try:
                recovered = await self._inbox.recover()
                break
            except Exception:
                logger.exception(
                    "the webhook inbox cannot be read: events are stored but not handled; "
                    "trying again in %g s",
                    _RECOVER_RETRY,
                )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), _RECOVER_RETRY)
            if self._stopping.is_set():
                return
        if recovered:
            logger.warning(
                "%d webhook events were being handled when the last process ended: "
                "handling them again",
                recovered,
            )
        while not self._stopping.is_set():
            self._wake.clear()
            free = self._concurrency - len(self._tasks)
            # Claimed in batches: one claim per freed slot would cost a write per event.
            if free >= self._claim_batch or (free > 0 and not self._tasks):
                try:
                    entries = await self._inbox.claim(free)
                except Exception:
                    logger.exception("claiming webhook events from the inbox failed")
                    entries = []
                if self._stopping.is_set():
                    # Claimed as the receiver stops: back to pending at the next start.
                    break
                for entry in entries:
                    self._start(entry)
                if not entries and not self._tasks:
                    self._idle.set()
                if len(entries) == free:
                    continue  # there may be more due; a slot frees when a handler ends
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)

    def _start(self, entry: InboxEntry) -> None:
        task = asyncio.create_task(self._handle(entry), name=f"lean-webhook-{entry.event.event_id}")
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wake.set()

    async def _handle(self, entry: InboxEntry) -> None:
        event = entry.event
        try:
            await self._handler(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._failed(entry, exc)
        else:
            self._on_outcome("processed")
            self._done.append(event)
            if self._marking is None:
                self._marking = asyncio.create_task(self._mark_done())

    async def _mark_done(self) -> None:
        """Mark the handled events done, those that ended meanwhile in one write."""
        try:
            while self._done:
                events, self._done = self._done, []
                try:
                    await self._inbox.complete([event.event_id for event in events])
                except Exception:
                    logger.exception(
                        "%d handled webhook events could not be marked done in the inbox: "
                        "they are handled again at the next start",
                        len(events),
                    )
        finally:
            self._marking = None

    async def _failed(self, entry: InboxEntry, exc: Exception) -> None:
        event = entry.event
        error = f"{type(exc).__name__}: {exc}"
        if entry.attempts >= self._max_attempts:
            self._on_outcome("parked")
            logger.error(
                "webhook handler failed for event %s (%s), attempt %d of %d: parked as failed",
                event.event_id,
                event.type,
                entry.attempts,
                self._max_attempts,
                exc_info=exc,
            )
            await self._record(event, self._inbox.fail(event.event_id, error, None), "failed")
            return
        delay = self._retry_delay(entry.attempts)
        self._on_outcome("retried")
        logger.warning(
            "webhook handler failed for event %s (%s), attempt %d of %d: %s; again in %.1f s",
            event.event_id,
            event.type,
            entry.attempts,
            self._max_attempts,
            error,
            delay,
        )
        retry_at = datetime.now(timezone.utc) + timedelta(seconds=delay)
        await self._record(event, self._inbox.fail(event.event_id, error, retry_at), "retried")

    @staticmethod
    async def _record(event: WebhookEvent, write: Awaitable[None], what: str) -> None:
        try:
            await write
        except Exception:
            logger.exception(
                "webhook %s (%s) could not be marked %s in the inbox: it is handled again at "
                "the next start",
                event.event_id,
                event.type,
                what,
            )

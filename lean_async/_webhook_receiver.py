"""An aiohttp.web receiver for Lean webhooks: refuse what is not Lean's cheaply, verify,
keep, answer 200, handle in the background, once per ``event_id``.

Lean counts a delivery only when it is answered 200 within 10 seconds, retries after 1, 2,
5, 10, 60 and 180 minutes otherwise, and never resends an event it saw answered 200. Two
modes:

- With ``inbox=`` (e.g. ``SQLiteInbox``): the event is written to the inbox, durably,
  before the 200; a failure to store it is answered 500, so that Lean retries. A worker
  runs the handler from the inbox, retries a failing one with backoff and parks the event
  as failed after ``max_attempts``; events pending at a crash are handled at the next
  start. At-least-once: a handler runs twice only when the process died while it ran.
- Without: the event is kept in memory only. A handler that fails is logged, counted and
  kept in ``failed`` (``retry_failed()`` runs those again); on shutdown running handlers
  are awaited for ``drain_timeout``. A crash loses every event not yet handled.

In both, before the body is read: the ``lean-signature`` header must be present and of the
form ``sha512=<digest>`` (else 401), and a declared length over ``max_body_size`` is
answered 413. The body must then arrive within ``body_timeout`` (else 408) and find room in
the receiver's budget of body bytes held at once (else 503). Connections refused before
their body was read are closed.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import Callable
from logging import INFO, WARNING
from typing import Final, Protocol

from aiohttp import web

from ._constants import LOGGER_NAME
from ._constants import WEBHOOK_BODY_MEMORY as DEFAULT_BODY_MEMORY
from ._constants import WEBHOOK_BODY_TIMEOUT as DEFAULT_BODY_TIMEOUT
from ._constants import WEBHOOK_CANCEL_GRACE as _CANCEL_GRACE
from ._constants import WEBHOOK_DRAIN_TIMEOUT as DEFAULT_DRAIN_TIMEOUT
from ._constants import WEBHOOK_HANDLER_CONCURRENCY as DEFAULT_HANDLER_CONCURRENCY
from ._constants import WEBHOOK_MAX_ATTEMPTS as DEFAULT_MAX_ATTEMPTS
from ._constants import WEBHOOK_MAX_BODY_SIZE as DEFAULT_MAX_BODY_SIZE
from ._constants import WEBHOOK_MAX_FAILED as DEFAULT_MAX_FAILED
from ._constants import WEBHOOK_REFUSAL_LOG_INTERVAL as _REFUSAL_LOG_INTERVAL
from ._constants import WEBHOOK_SMALL_BODY as DEFAULT_SMALL_BODY
from ._constants import WEBHOOK_STORE_SIZE as DEFAULT_STORE_SIZE
from ._constants import WEBHOOK_TRIM_BURST as _TRIM_BURST
from ._constants import WEBHOOK_TRIM_QUIET as _TRIM_QUIET
from ._exceptions import ConfigurationError, DecodeError, WebhookSignatureError
from ._webhook_body import BodyBudget, FreedMemory, Refusal, held_body, malloc_trim
from ._webhook_events import EventHandler, WebhookEvent, decode_event
from ._webhook_inbox import Inbox, handler_retry_delay
from ._webhook_signature import (
    SIGNATURE_HEADER,
    check_secret,
    signature_digests,
    verify_digests,
)
from ._webhook_worker import InboxWorker

__all__ = [
    "RECEIVER_KEY",
    "EventHandler",
    "EventStore",
    "FailedEvent",
    "MemoryEventStore",
    "ReceiverStats",
    "WebhookReceiver",
    "receiver",
]

logger = logging.getLogger(f"{LOGGER_NAME}.webhooks")


class EventStore(Protocol):
    """Where the ids of successfully handled events are kept, to drop redeliveries.

    Share one (e.g. in Redis or a database) between processes to deduplicate across them.
    """

    async def seen(self, event_id: str) -> bool:
        """Whether ``event_id`` was handled successfully before."""
        ...

    async def add(self, event_id: str) -> None:
        """Record that ``event_id`` was handled successfully."""
        ...


class MemoryEventStore:
    """An in-process EventStore keeping the ``max_size`` most recently used ids."""

    def __init__(self, max_size: int = DEFAULT_STORE_SIZE) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self._max_size = max_size
        self._ids: collections.OrderedDict[str, None] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._ids)

    async def seen(self, event_id: str) -> bool:
        if event_id not in self._ids:
            return False
        self._ids.move_to_end(event_id)
        return True

    async def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self._max_size:
            self._ids.popitem(last=False)


@dataclasses.dataclass
class ReceiverStats:
    """Counters since the receiver was made."""

    accepted: int = 0  # answered 200 and handed to the handler (with an inbox: stored)
    duplicates: int = 0  # answered 200 and dropped
    bad_signature: int = 0  # answered 401
    undecodable: int = 0  # answered 400
    too_large: int = 0  # answered 413
    too_slow: int = 0  # answered 408: the body did not arrive within body_timeout
    no_room: int = 0  # answered 503: the bodies held at once filled max_body_memory
    disconnected: int = 0  # the client hung up before its body was read
    store_failed: int = 0  # answered 500 (inbox) or 503 (event store): not kept
    processed: int = 0  # handler returned
    failed: int = 0  # handler raised, or was cancelled at shutdown
    parked: int = 0  # with an inbox: handler failed its last attempt, event kept as failed


class _RefusalLog:
    """Logs each kind of refused request at most once per ``interval`` seconds, saying how
    many more there were, so that a flood of bad requests is a few lines, not a flood."""

    def __init__(self, interval: float = _REFUSAL_LOG_INTERVAL) -> None:
        self._interval = interval
        self._quiet_until: dict[str, float] = {}
        self._unlogged: collections.Counter[str] = collections.Counter()

    def __call__(self, level: int, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if now < self._quiet_until.get(kind, 0.0):
            self._unlogged[kind] += 1
            return
        self._quiet_until[kind] = now + self._interval
        unlogged = self._unlogged.pop(kind, 0)
        if unlogged:
            message += " (and %d more since the last such line)"
            args = (*args, unlogged)
        logger.log(level, message, *args)


@dataclasses.dataclass(frozen=True)
class FailedEvent:
    """An acknowledged event whose handler raised (or was cancelled at shutdown)."""

    event: WebhookEvent
    error: BaseException


class WebhookReceiver:
    """The state behind a webhook endpoint; ``handle`` is its aiohttp request handler.

    ``attach(app, path)`` adds the route, starts the inbox's worker with the app and makes
    the app's cleanup wait for running handlers; ``receiver()`` does the same on a new
    sub-application.
    """

    def __init__(
        self,
        secret: str | bytes,
        handler: EventHandler,
        *,
        inbox: Inbox | None = None,
        store: EventStore | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        max_body_memory: int = DEFAULT_BODY_MEMORY,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
        max_failed: int = DEFAULT_MAX_FAILED,
        concurrency: int = DEFAULT_HANDLER_CONCURRENCY,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        retry_delay: Callable[[int], float] = handler_retry_delay,
    ) -> None:
        self._key = check_secret(secret)
        if inbox is not None and store is not None:
            raise ConfigurationError("pass inbox= or store=, not both: an inbox drops duplicates")
        if not (body_timeout > 0):
            raise ConfigurationError(f"body_timeout must be > 0 seconds, got {body_timeout!r}")
        self._handler = handler
        self._store: EventStore = store if store is not None else MemoryEventStore()
        self.inbox = inbox
        self._max_body_size = max_body_size
        self._body_timeout = body_timeout
        try:
            self._budget = BodyBudget(max_body_memory, min(max_body_size, DEFAULT_SMALL_BODY))
            self._worker = (
                None
                if inbox is None
                else InboxWorker(
                    inbox,
                    handler,
                    concurrency=concurrency,
                    max_attempts=max_attempts,
                    retry_delay=retry_delay,
                    on_outcome=self._count_outcome,
                )
            )
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        self._drain_timeout = drain_timeout
        self._failed: collections.deque[FailedEvent] = collections.deque(maxlen=max_failed)
        self._in_flight: set[str] = set()
        # Strong references: the event loop keeps only weak ones to tasks.
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._freed = FreedMemory(_TRIM_BURST, _TRIM_QUIET, malloc_trim())
        self._log_refusal = _RefusalLog()
        self.stats = ReceiverStats()

    def __repr__(self) -> str:
        return f"<WebhookReceiver pending={self.pending} stats={self.stats}>"

    @property
    def pending(self) -> int:
        """How many handlers are running."""
        return self._worker.running if self._worker is not None else len(self._tasks)

    @property
    def failed(self) -> list[FailedEvent]:
        """Without an inbox: the most recent failed events, oldest first. With one, this
        is empty: ask the inbox (``await inbox.failed()``)."""
        return list(self._failed)

    @property
    def body_memory(self) -> int:
        """Bytes of request bodies held right now."""
        return self._budget.used

    def attach(self, app: web.Application, path: str) -> None:
        """Serve ``POST path`` on ``app``, start the inbox's worker on its startup, and
        wait for running handlers on its cleanup."""
        app.router.add_post(path, self.handle)
        app.on_startup.append(self._on_startup)
        app.on_cleanup.append(self._on_cleanup)

    def start(self) -> None:
        """Start handling the inbox's events (``attach`` does it on the app's startup)."""
        if self._worker is not None:
            self._worker.start()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Refuse, or verify, keep and acknowledge one delivery; its handler runs after."""
        if self._closing:
            # Not acknowledged, so Lean delivers it again later.
            return await _answer_unread(request, 503, "shutting down")
        try:
            digests = signature_digests(request.headers.get(SIGNATURE_HEADER))
        except WebhookSignatureError as exc:
            self.stats.bad_signature += 1
            self._log_refusal(WARNING, "401", "webhook from %s rejected: %s", request.remote, exc)
            return await _answer_unread(request, 401, "invalid signature")
        async with held_body(
            request,
            limit=self._max_body_size,
            timeout=self._body_timeout,
            budget=self._budget,
            freed=self._freed,
        ) as body:
            if isinstance(body, Refusal):
                return await self._refuse(request, body)
            try:
                verify_digests(body, digests, self._key)
                event = decode_event(body)
            except WebhookSignatureError as exc:
                self.stats.bad_signature += 1
                self._log_refusal(
                    WARNING, "401", "webhook from %s rejected: %s", request.remote, exc
                )
                return web.Response(status=401, text="invalid signature")
            except DecodeError as exc:
                self.stats.undecodable += 1
                self._log_refusal(
                    WARNING, "400", "webhook from %s rejected: %s", request.remote, exc
                )
                return web.Response(status=400, text=str(exc))
        return await self._accept(event)

    async def _refuse(self, request: web.Request, refusal: Refusal) -> web.StreamResponse:
        where = request.remote
        log = self._log_refusal
        if refusal is Refusal.CLIENT_GONE:
            self.stats.disconnected += 1
            log(INFO, "gone", "webhook from %s: the client hung up before its body arrived", where)
            return web.Response(status=400)  # goes nowhere: the connection is gone
        if refusal is Refusal.TOO_LARGE:
            self.stats.too_large += 1
            log(
                WARNING,
                "413",
                "webhook from %s rejected: body over %d bytes",
                where,
                self._max_body_size,
            )
            return await _answer_unread(request, 413, "body too large")
        if refusal is Refusal.TOO_SLOW:
            self.stats.too_slow += 1
            log(
                WARNING,
                "408",
                "webhook from %s rejected: body not received within %g s",
                where,
                self._body_timeout,
            )
            return await _answer_unread(request, 408, "body too slow")
        self.stats.no_room += 1
        log(
            WARNING,
            "503",
            "webhook from %s refused with 503: %d bytes of bodies held already",
            where,
            self._budget.used,
        )
        return await _answer_unread(request, 503, "busy", {"Retry-After": "1"})

    async def _accept(self, event: WebhookEvent) -> web.Response:
        """Keep ``event`` (with an inbox: durably), then acknowledge it."""
        durable = self._worker is not None
        try:
            new = await (self._add_to_inbox(event) if durable else self._dispatch(event))
        except Exception:
            self.stats.store_failed += 1
            logger.exception(
                "webhook %s (%s) not acknowledged: the %s failed to store it",
                event.event_id,
                event.type,
                "inbox" if durable else "event store",
            )
            # Not acknowledged, so Lean delivers it again later.
            return web.Response(status=500 if durable else 503, text="not stored; try again")
        if new:
            self.stats.accepted += 1
            logger.debug("webhook %s (%s) accepted", event.event_id, event.type)
        else:
            self.stats.duplicates += 1
            logger.info("webhook %s (%s) is a duplicate: dropped", event.event_id, event.type)
        return web.Response(text="ok")

    async def _add_to_inbox(self, event: WebhookEvent) -> bool:
        assert self.inbox is not None and self._worker is not None
        new = await self.inbox.add(event)
        if new:
            self._worker.wake()
        return new

    async def retry_failed(self) -> int:
        """Run the handler again for the failed events (with an inbox: its parked ones);
        returns how many were started (an event handled meanwhile, e.g. through a
        redelivery, is not run again)."""
        if self.inbox is not None and self._worker is not None:
            started = await self.inbox.retry_failed()
            self._worker.wake()
            return started
        started = 0
        for _ in range(len(self._failed)):
            failure = self._failed.popleft()
            try:
                started += await self._dispatch(failure.event)
            except BaseException:
                self._failed.appendleft(failure)
                raise
        return started

    async def join(self) -> None:
        """Wait until no handler is running (with an inbox: and none is due)."""
        if self._worker is not None:
            await self._worker.idle()
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def aclose(self, timeout: float | None = None) -> None:
        """Refuse new deliveries (503), then wait up to ``timeout`` seconds (None: the
        drain timeout) for running handlers; those still running are cancelled (with an
        inbox their events stay in it for the next start; without, they are kept in
        ``failed``)."""
        self._closing = True
        timeout = self._drain_timeout if timeout is None else timeout
        if self._worker is not None and self.inbox is not None:
            await self._worker.stop(timeout)
            await self.inbox.close()
            return
        try:
            await asyncio.wait_for(self.join(), timeout)
        except asyncio.TimeoutError:
            still_running = set(self._tasks)
            logger.error(
                "%d webhook handlers still running at shutdown: cancelled", len(still_running)
            )
            for task in still_running:
                task.cancel()
            await asyncio.wait(still_running, timeout=_CANCEL_GRACE)

    async def _on_startup(self, app: web.Application) -> None:
        self.start()

    async def _on_cleanup(self, app: web.Application) -> None:
        await self.aclose()

    def _count_outcome(self, outcome: str) -> None:
        if outcome == "processed":
            self.stats.processed += 1
        else:
            self.stats.failed += 1
            if outcome == "parked":
                self.stats.parked += 1

    async def _dispatch(self, event: WebhookEvent) -> bool:
        """Start the handler for ``event`` unless it runs or ran already; True if started."""
        event_id = event.event_id
        if event_id in self._in_flight:
            return False
        # Claimed before the first await, so a concurrent copy sees it.
        self._in_flight.add(event_id)
        started = False
        try:
            if not await self._store.seen(event_id):
                task = asyncio.create_task(self._run(event), name=f"lean-webhook-{event_id}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                started = True
        finally:
            if not started:
                self._in_flight.discard(event_id)
        return started

    async def _run(self, event: WebhookEvent) -> None:
        try:
            await self._handler(event)
        except asyncio.CancelledError as exc:
            self._record_failure(event, exc)
            raise
        except Exception as exc:
            self._record_failure(event, exc)
        else:
            self.stats.processed += 1
            await self._remember(event)
        finally:
            self._in_flight.discard(event.event_id)

    async def _remember(self, event: WebhookEvent) -> None:
        try:
            await self._store.add(event.event_id)
        except Exception:
            logger.exception(
                "webhook %s (%s) handled, but not recorded: a redelivery would run it again",
                event.event_id,
                event.type,
            )

    def _record_failure(self, event: WebhookEvent, error: BaseException) -> None:
        self.stats.failed += 1
        self._failed.append(FailedEvent(event, error))
        logger.error(
            "webhook handler failed for event %s (%s); kept in failed",
            event.event_id,
            event.type,
            exc_info=error,
        )


RECEIVER_KEY: Final = web.AppKey("lean_async.webhooks.receiver", WebhookReceiver)
"""Where ``receiver()`` keeps its WebhookReceiver: ``app[RECEIVER_KEY]``."""


def receiver(
    secret: str | bytes,
    handler: EventHandler,
    *,
    inbox: Inbox | None = None,
    store: EventStore | None = None,
    path: str = "/",
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    max_body_memory: int = DEFAULT_BODY_MEMORY,
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
    max_failed: int = DEFAULT_MAX_FAILED,
    concurrency: int = DEFAULT_HANDLER_CONCURRENCY,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    retry_delay: Callable[[int], float] = handler_retry_delay,
) -> web.Application:
    """An aiohttp application serving ``POST path``: run it, or mount it with
    ``app.add_subapp(prefix, ...)``. Its WebhookReceiver is ``app[RECEIVER_KEY]``.

    With ``inbox=``, every event is stored durably before its 200 and handled from the
    inbox (``concurrency`` handlers at once, ``max_attempts`` runs, ``retry_delay(attempts)``
    seconds apart); without, it is kept in memory only (see the module's documentation)."""
    state = WebhookReceiver(
        secret,
        handler,
        inbox=inbox,
        store=store,
        max_body_size=max_body_size,
        body_timeout=body_timeout,
        max_body_memory=max_body_memory,
        drain_timeout=drain_timeout,
        max_failed=max_failed,
        concurrency=concurrency,
        max_attempts=max_attempts,
        retry_delay=retry_delay,
    )
    app = web.Application()
    state.attach(app, path)
    app[RECEIVER_KEY] = state
    return app


async def _answer_unread(
    request: web.Request, status: int, text: str, headers: dict[str, str] | None = None
) -> web.StreamResponse:
    """Answer ``status`` and close the connection, whose body is left unread (aiohttp would
    otherwise keep reading and discarding it for up to 10 s)."""
    response = web.Response(status=status, text=text, headers=headers)
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()
    return response

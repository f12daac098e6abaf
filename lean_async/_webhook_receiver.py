"""An aiohttp.web receiver for Lean webhooks: verify, answer 200 at once, handle in the
background, once per ``event_id``.

Lean counts a delivery only when it is answered 200 within 10 seconds, and retries after
1, 2, 5, 10, 60 and 180 minutes otherwise. So the receiver answers before the handler
runs, and from then on the event is the receiver's to keep: a handler that fails is
logged, counted and kept in ``failed`` (``retry_failed()`` runs those again), and on
shutdown the running handlers are awaited.

Duplicates: an event is recorded in the store only once its handler has succeeded, so a
redelivery of an event whose handler failed is handled again; while a handler runs, any
copy of its event arriving in the same process is acknowledged and dropped. (Lean does
not redeliver an event it saw acknowledged, so ``failed``, the log and ``retry_failed()``
are what keeps a failed event; a redelivery comes only when the 200 got lost.)
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

from aiohttp import web

from ._constants import LOGGER_NAME
from ._constants import WEBHOOK_CANCEL_GRACE as _CANCEL_GRACE
from ._constants import WEBHOOK_DRAIN_TIMEOUT as DEFAULT_DRAIN_TIMEOUT
from ._constants import WEBHOOK_MAX_BODY_SIZE as DEFAULT_MAX_BODY_SIZE
from ._constants import WEBHOOK_MAX_FAILED as DEFAULT_MAX_FAILED
from ._constants import WEBHOOK_STORE_SIZE as DEFAULT_STORE_SIZE
from ._exceptions import DecodeError, WebhookSignatureError
from ._webhook_events import WebhookEvent, parse_event
from ._webhook_signature import SIGNATURE_HEADER, check_secret

logger = logging.getLogger(f"{LOGGER_NAME}.webhooks")


EventHandler = Callable[[WebhookEvent], Awaitable[None]]
"""The user's callback: ``async def handler(event: WebhookEvent) -> None``."""


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

    accepted: int = 0  # answered 200 and handed to the handler
    duplicates: int = 0  # answered 200 and dropped
    bad_signature: int = 0  # answered 401
    undecodable: int = 0  # answered 400
    too_large: int = 0  # answered 413
    processed: int = 0  # handler returned
    failed: int = 0  # handler raised, or was cancelled at shutdown


@dataclasses.dataclass(frozen=True)
class FailedEvent:
    """An acknowledged event whose handler raised (or was cancelled at shutdown)."""

    event: WebhookEvent
    error: BaseException


class WebhookReceiver:
    """The state behind a webhook endpoint; ``handle`` is its aiohttp request handler.

    ``attach(app, path)`` adds the route and makes the app's cleanup wait for running
    handlers; ``receiver()`` does the same on a new sub-application.
    """

    def __init__(
        self,
        secret: str | bytes,
        handler: EventHandler,
        *,
        store: EventStore | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
        max_failed: int = DEFAULT_MAX_FAILED,
    ) -> None:
        self._key = check_secret(secret)
        self._handler = handler
        self._store: EventStore = store if store is not None else MemoryEventStore()
        self._max_body_size = max_body_size
        self._drain_timeout = drain_timeout
        self._failed: collections.deque[FailedEvent] = collections.deque(maxlen=max_failed)
        self._in_flight: set[str] = set()
        # Strong references: the event loop keeps only weak ones to tasks.
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self.stats = ReceiverStats()

    def __repr__(self) -> str:
        return f"<WebhookReceiver pending={self.pending} stats={self.stats}>"

    @property
    def pending(self) -> int:
        """How many handlers are running."""
        return len(self._tasks)

    @property
    def failed(self) -> list[FailedEvent]:
        """The most recent failed events, oldest first."""
        return list(self._failed)

    def attach(self, app: web.Application, path: str) -> None:
        """Serve ``POST path`` on ``app``, and wait for running handlers on its cleanup."""
        app.router.add_post(path, self.handle)
        app.on_cleanup.append(self._on_cleanup)

    async def handle(self, request: web.Request) -> web.Response:
        """Verify and acknowledge one delivery; its handler runs after the answer."""
        if self._closing:
            # Not acknowledged, so Lean delivers it again later.
            return web.Response(status=503, text="shutting down")
        body = await _read_body(request, self._max_body_size)
        if body is None:
            self.stats.too_large += 1
            logger.warning(
                "webhook from %s rejected: body over %d bytes", request.remote, self._max_body_size
            )
            return web.Response(status=413, text="body too large")
        try:
            event = parse_event(body, request.headers.get(SIGNATURE_HEADER), self._key)
        except WebhookSignatureError as exc:
            self.stats.bad_signature += 1
            logger.warning("webhook from %s rejected: %s", request.remote, exc)
            return web.Response(status=401, text="invalid signature")
        except DecodeError as exc:
            self.stats.undecodable += 1
            logger.warning("webhook from %s rejected: %s", request.remote, exc)
            return web.Response(status=400, text=str(exc))
        try:
            dispatched = await self._dispatch(event)
        except Exception:
            logger.exception(
                "webhook %s (%s) not acknowledged: the event store failed",
                event.event_id,
                event.type,
            )
            return web.Response(status=503, text="try again later")
        if dispatched:
            self.stats.accepted += 1
            logger.debug("webhook %s (%s) accepted", event.event_id, event.type)
        else:
            self.stats.duplicates += 1
            logger.info("webhook %s (%s) is a duplicate: dropped", event.event_id, event.type)
        return web.Response(text="ok")

    async def retry_failed(self) -> int:
        """Run the handler again for the kept failed events; returns how many were started
        (an event handled meanwhile, e.g. through a redelivery, is not run again)."""
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
        """Wait until no handler is running."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def aclose(self, timeout: float | None = None) -> None:
        """Refuse new deliveries (503), then wait up to ``timeout`` seconds (None: the
        drain timeout) for running handlers; those still running are cancelled and kept
        in ``failed``."""
        self._closing = True
        try:
            await asyncio.wait_for(self.join(), self._drain_timeout if timeout is None else timeout)
        except asyncio.TimeoutError:
            still_running = set(self._tasks)
            logger.error(
                "%d webhook handlers still running at shutdown: cancelled", len(still_running)
            )
            for task in still_running:
                task.cancel()
            await asyncio.wait(still_running, timeout=_CANCEL_GRACE)

    async def _on_cleanup(self, app: web.Application) -> None:
        await self.aclose()

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
    store: EventStore | None = None,
    path: str = "/",
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
    max_failed: int = DEFAULT_MAX_FAILED,
) -> web.Application:
    """An aiohttp application serving ``POST path``: run it, or mount it with
    ``app.add_subapp(prefix, ...)``. Its WebhookReceiver is ``app[RECEIVER_KEY]``."""
    state = WebhookReceiver(
        secret,
        handler,
        store=store,
        max_body_size=max_body_size,
        drain_timeout=drain_timeout,
        max_failed=max_failed,
    )
    app = web.Application()
    state.attach(app, path)
    app[RECEIVER_KEY] = state
    return app


async def _read_body(request: web.Request, limit: int) -> bytes | None:
    """The raw body, or None when it is longer than ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    while chunk := await request.content.readany():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)

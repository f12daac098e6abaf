"""SQLiteInbox: the durable inbox on the standard library's sqlite3.

One thread owns the database connection and runs every statement; the event loop only
queues work to it and awaits the answer. The thread runs whatever is queued in one
transaction and commits once, so that under load hundreds of deliveries share one commit
and one sync to disk (group commit); when a piece fails, the pieces run again one
transaction each, so that only the failing one fails its caller. WAL with
``synchronous=FULL`` for every commit that holds a new event: it survives a crash of the
process or of the machine, as far as SQLite and the disk promise. Claims and done marks
alone are committed without a sync (a crash of the process keeps them too; a power cut may
lose the last of them, and their events are then handled once more).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Collection
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from ._constants import LOGGER_NAME, WEBHOOK_SQLITE_BUSY_TIMEOUT
from ._webhook_events import decode_event, encode_event
from ._webhook_inbox import InboxEntry
from ._webhook_inbox import backfill as backfill_inbox

if TYPE_CHECKING:
    from ._client import LeanClient
    from ._webhook_events import WebhookEvent

__all__ = ["SQLiteInbox"]

logger = logging.getLogger(f"{LOGGER_NAME}.webhooks")

T = TypeVar("T")

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
STATES = (PENDING, RUNNING, DONE, FAILED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lean_webhook_events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    received_at REAL NOT NULL,
    finished_at REAL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS lean_webhook_events_due
    ON lean_webhook_events (next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS lean_webhook_events_unfinished
    ON lean_webhook_events (state) WHERE state IN ('running', 'failed');
"""
_COLUMNS = "event_id, body, attempts, received_at, last_error"
_CHECKPOINT_INTERVAL = 1.0
_SYNCED = "PRAGMA synchronous = FULL"
_UNSYNCED = "PRAGMA synchronous = NORMAL"
# Statements queued at once beyond this wait for the next commit.
_MAX_BATCH = 2000

# (work, its caller's future and loop, whether its commit must be synced to disk)
_Job = tuple[
    Callable[[sqlite3.Connection], Any], asyncio.Future[Any], asyncio.AbstractEventLoop, bool
]


class SQLiteInbox:
    """A durable webhook inbox in the SQLite database file at ``path`` (created if
    missing). Constructing it does no I/O; the database is opened on first use, in a
    thread of its own, and closed by ``close()`` (or ``async with``).

    One receiver process per file: a second one would make the first one's events pending
    again when it starts. Other processes may read it and retry its failed events (the
    ``lean-async webhooks`` commands do).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        # The thread and its queue; a new pair after close().
        self._thread: tuple[threading.Thread, queue.SimpleQueue[_Job | None]] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SQLiteInbox({str(self.path)!r})"

    async def __aenter__(self) -> SQLiteInbox:
        await self._call(lambda db: None)  # opens it, so that a bad path fails here
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- the Inbox protocol ------------------------------------------------------------

    async def add(self, event: WebhookEvent) -> bool:
        body = encode_event(event)
        now = time.time()

        def insert(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "INSERT OR IGNORE INTO lean_webhook_events"
                " (event_id, type, body, state, next_attempt_at, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (event.event_id, event.type, body, PENDING, now, now),
            )
            return cursor.rowcount == 1

        return await self._call(insert, durable=True)

    async def recover(self) -> int:
        def release(db: sqlite3.Connection) -> int:
            cursor = db.execute(
                "UPDATE lean_webhook_events SET state = ? WHERE state = ?", (PENDING, RUNNING)
            )
            return cursor.rowcount

        return await self._call(release)

    async def claim(self, limit: int) -> list[InboxEntry]:
        def take(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
            rows = db.execute(
                f"SELECT seq, {_COLUMNS} FROM lean_webhook_events"
                " WHERE state = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, seq LIMIT ?",
                (PENDING, time.time(), limit),
            ).fetchall()
            db.executemany(
                "UPDATE lean_webhook_events SET state = ?, attempts = attempts + 1 WHERE seq = ?",
                [(RUNNING, row[0]) for row in rows],
            )
            return [(row[1], row[2], row[3] + 1, row[4], row[5]) for row in rows]

        return [_entry(row) for row in await self._call(take)]

    async def complete(self, event_ids: Collection[str]) -> None:
        now = time.time()
        done = [(DONE, now, event_id, RUNNING) for event_id in event_ids]

        def update(db: sqlite3.Connection) -> None:
            db.executemany(
                "UPDATE lean_webhook_events SET state = ?, last_error = NULL, finished_at = ?"
                " WHERE event_id = ? AND state = ?",
                done,
            )

        await self._call(update)

    async def fail(self, event_id: str, error: str, retry_at: datetime | None) -> None:
        now = time.time()
        state, due = (FAILED, now) if retry_at is None else (PENDING, retry_at.timestamp())

        def update(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE lean_webhook_events SET state = ?, last_error = ?, finished_at = ?,"
                " next_attempt_at = ? WHERE event_id = ? AND state = ?",
                (state, error, now, due, event_id, RUNNING),
            )

        await self._call(update)

    async def failed(self) -> list[InboxEntry]:
        return [_entry(row) for row in await self._select(FAILED)]

    async def retry_failed(self, event_ids: Collection[str] | None = None) -> int:
        def reset(db: sqlite3.Connection) -> int:
            update = (
                "UPDATE lean_webhook_events SET state = ?, attempts = 0, next_attempt_at = ?"
                " WHERE state = ?"
            )
            now = time.time()
            if event_ids is None:
                return db.execute(update, (PENDING, now, FAILED)).rowcount
            return sum(
                db.execute(update + " AND event_id = ?", (PENDING, now, FAILED, i)).rowcount
                for i in event_ids
            )

        return await self._call(reset, durable=True)

    async def close(self) -> None:
        with self._lock:
            running, self._thread = self._thread, None
            if running is None:
                return
            thread, jobs = running
            jobs.put(None)
        await asyncio.to_thread(thread.join)

    # -- beyond the protocol -------------------------------------------------------------

    async def backfill(
        self,
        lean: LeanClient,
        *,
        since: datetime,
        until: datetime | None = None,
        type: str | None = None,
    ) -> int:
        """Add the events Lean's Events API lists from ``since`` that this inbox lacks;
        returns how many were new (see ``webhooks.backfill``)."""
        return await backfill_inbox(self, lean, since=since, until=until, type=type)

    async def counts(self) -> dict[str, int]:
        """How many events are in each state: pending, running, done, failed."""

        def count(db: sqlite3.Connection) -> dict[str, int]:
            rows = db.execute("SELECT state, COUNT(*) FROM lean_webhook_events GROUP BY state")
            return {state: 0 for state in STATES} | dict(rows.fetchall())

        return await self._call(count)

    async def prune(self, before: datetime) -> int:
        """Forget the done events received before ``before``; returns how many. A
        redelivery or a backfill of one of them would be handled again: prune only past
        Lean's retries (4.3 hours) and any backfill you may run (the Events API keeps 90
        days)."""
        cutoff = before.timestamp()

        def delete(db: sqlite3.Connection) -> int:
            return db.execute(
                "DELETE FROM lean_webhook_events WHERE state = ? AND received_at < ?",
                (DONE, cutoff),
            ).rowcount

        return await self._call(delete)

    async def events(self, state: str) -> list[InboxEntry]:
        """The events in ``state`` (pending, running, done, failed), oldest first."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}, got {state!r}")
        return [_entry(row) for row in await self._select(state)]

    # -- the thread ----------------------------------------------------------------------

    async def _select(self, state: str) -> list[tuple[Any, ...]]:
        def select(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return db.execute(
                f"SELECT {_COLUMNS} FROM lean_webhook_events WHERE state = ? ORDER BY seq",
                (state,),
            ).fetchall()

        return await self._call(select)

    def _call(
        self, work: Callable[[sqlite3.Connection], T], *, durable: bool = False
    ) -> asyncio.Future[T]:
        """Run ``work`` in the thread; with ``durable``, its commit is synced to disk before
        the future resolves (an added event must be; a claim or a done mark need not: lost
        in a power cut, an event is only handled once more)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if self._thread is None or not self._thread[0].is_alive():
                jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
                thread = threading.Thread(
                    target=_serve, args=(self.path, jobs), name=f"{self!r}", daemon=True
                )
                thread.start()
                self._thread = (thread, jobs)
            self._thread[1].put((work, future, loop, durable))
        return future


def _entry(row: tuple[Any, ...]) -> InboxEntry:
    _, body, attempts, received_at, last_error = row
    return InboxEntry(
        event=decode_event(body),
        attempts=attempts,
        received_at=datetime.fromtimestamp(received_at, timezone.utc),
        last_error=last_error,
    )


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(
        path,
        isolation_level=None,  # transactions are this module's: BEGIN ... COMMIT
        check_same_thread=False,
        timeout=WEBHOOK_SQLITE_BUSY_TIMEOUT,
    )
    try:
        db.execute("PRAGMA journal_mode = WAL")
        # FULL: every commit is synced to disk before it is reported done.
        # FULL: a commit is synced to disk before it is reported done; NORMAL (set for a
        # batch with nothing durable in it) leaves the sync to the next FULL commit.
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA fullfsync = ON")  # macOS: a real sync, not a drive-cache flush
        # Checkpoints run in a thread of their own: within a commit, one stalls every
        # delivery waiting on it for tens of milliseconds.
        db.execute("PRAGMA wal_autocheckpoint = 0")
        db.executescript(_SCHEMA)
    except BaseException:
        db.close()
        raise
    return db


def _serve(path: Path, jobs: queue.SimpleQueue[_Job | None]) -> None:
    """The thread: run queued jobs in batches until told to stop. The database is opened
    for the first batch; when it cannot be, that batch fails and the next one tries again."""
    db: sqlite3.Connection | None = None
    checkpoints: _Checkpointer | None = None
    try:
        while True:
            batch: list[_Job] = []
            stop = _take_batch(jobs, batch)
            if batch:
                if db is None:
                    try:
                        db = _connect(path)
                    except Exception as exc:
                        _settle(batch, [(False, exc)] * len(batch))
                        continue
                    checkpoints = _Checkpointer(path)
                _run_batch(db, batch)
            if stop:
                return
    finally:
        if checkpoints is not None:
            checkpoints.stop()
        if db is not None:
            db.close()


class _Checkpointer:
    """Copies the write-ahead log into the database every ``interval`` seconds, in a thread
    and on a connection of its own, alongside the writer (SQLite's PASSIVE checkpoint)."""

    def __init__(self, path: Path, interval: float = _CHECKPOINT_INTERVAL) -> None:
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(path, interval), name=f"checkpoints of {path}", daemon=True
        )
        self._thread.start()

    def _run(self, path: Path, interval: float) -> None:
        try:
            db = sqlite3.connect(path, timeout=WEBHOOK_SQLITE_BUSY_TIMEOUT)
        except sqlite3.Error:
            logger.exception("the webhook inbox's checkpoints cannot open %s", path)
            return
        try:
            while not self._stopped.wait(interval):
                self._checkpoint(db)
        finally:
            db.close()

    @staticmethod
    def _checkpoint(db: sqlite3.Connection) -> None:
        try:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:  # the next one takes over
            logger.warning("checkpoint of the webhook inbox failed: %s", exc)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


def _take_batch(jobs: queue.SimpleQueue[_Job | None], batch: list[_Job]) -> bool:
    """Wait for a job, then take every queued one; True when told to stop."""
    job = jobs.get()
    while job is not None:
        batch.append(job)
        if len(batch) >= _MAX_BATCH:
            return False
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            return False
    return True


def _run_batch(db: sqlite3.Connection, batch: list[_Job]) -> None:
    """Run ``batch`` in one transaction; when a job fails, each job again in its own, so
    that only the failing one fails."""
    durable = any(job[3] for job in batch)
    try:
        db.execute(_SYNCED if durable else _UNSYNCED)
        db.execute("BEGIN IMMEDIATE")
        outcomes: list[tuple[bool, Any]] = [(True, work(db)) for work, _, _, _ in batch]
        db.execute("COMMIT")
    except Exception as exc:
        with contextlib.suppress(sqlite3.Error):
            if db.in_transaction:
                db.execute("ROLLBACK")
        if len(batch) > 1:
            for job in batch:
                _run_batch(db, [job])
            return
        outcomes = [(False, exc)]
    _settle(batch, outcomes)


def _settle(batch: list[_Job], outcomes: list[tuple[bool, Any]]) -> None:
    """Hand each job's outcome to its loop, one call per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for (_, future, loop, _), (ok, value) in zip(batch, outcomes, strict=True):
        by_loop.setdefault(loop, []).append((future, ok, value))
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
            loop.call_soon_threadsafe(_resolve, settled)


def _resolve(settled: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in settled:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

"""The durable inbox: SQLiteInbox's states, and the receiver that stores every event before
its 200 and handles it from the inbox (retries, parking, restarts, duplicates)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from lean_async import webhooks
from tests.test_webhooks_receiver import PATH, SECRET, Recorder, deliver, delivery

pytestmark = pytest.mark.timeout(30)

Client = TestClient[web.Request, web.Application]


def event(
    event_id: str = "evt-1", event_type: str = "payment_source.beneficiary.updated"
) -> webhooks.WebhookEvent:
    return webhooks.decode_event(delivery(event_id, event_type))


def states(path: Path) -> dict[str, str]:
    """event_id -> state, read by a connection of this test's own, as another process would."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return dict(db.execute("SELECT event_id, state FROM lean_webhook_events"))


async def eventually(condition: Callable[[], bool], what: str, seconds: float = 5) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.asynccontextmanager
async def serving(
    handler: webhooks.EventHandler, inbox: webhooks.Inbox, **options: Any
) -> AsyncIterator[tuple[Client, webhooks.WebhookReceiver]]:
    app = webhooks.receiver(SECRET, handler, inbox=inbox, path=PATH, **options)
    async with TestClient(TestServer(app)) as client:
        yield client, app[webhooks.RECEIVER_KEY]


class Flaky:
    """A handler failing its first ``failures`` runs of each event, then recording it."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.runs: collections.Counter[str] = collections.Counter()
        self.handled: list[str] = []

    async def __call__(self, event: webhooks.WebhookEvent) -> None:
        self.runs[event.event_id] += 1
        if self.runs[event.event_id] <= self.failures:
            raise RuntimeError(f"database unavailable ({self.runs[event.event_id]})")
        self.handled.append(event.event_id)


def quick_retries(attempts: int) -> float:
    return 0.01


# --- SQLiteInbox --------------------------------------------------------------------------


async def test_an_event_id_is_added_once_even_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    async with webhooks.SQLiteInbox(path) as inbox:
        assert await inbox.add(event("evt-1")) is True
        assert await inbox.add(event("evt-1")) is False
    async with webhooks.SQLiteInbox(path) as reopened:
        assert await reopened.add(event("evt-1")) is False
        assert await reopened.counts() == {"pending": 1, "running": 0, "done": 0, "failed": 0}


async def test_claim_takes_due_events_oldest_first_and_marks_them_running(tmp_path: Path) -> None:
    async with webhooks.SQLiteInbox(tmp_path / "inbox.db") as inbox:
        for i in range(5):
            await inbox.add(event(f"evt-{i}"))
        first = await inbox.claim(3)
        assert [e.event.event_id for e in first] == ["evt-0", "evt-1", "evt-2"]
        assert [e.attempts for e in first] == [1, 1, 1]
        assert [e.event.event_id for e in await inbox.claim(10)] == ["evt-3", "evt-4"]
        assert await inbox.claim(10) == []
        assert await inbox.recover() == 5
        assert [e.attempts for e in await inbox.claim(10)] == [2] * 5


async def test_a_failed_attempt_is_claimed_again_only_when_due(tmp_path: Path) -> None:
    async with webhooks.SQLiteInbox(tmp_path / "inbox.db") as inbox:
        await inbox.add(event("later"))
        await inbox.add(event("soon"))
        later, soon = await inbox.claim(2)
        now = datetime.now(timezone.utc)
        await inbox.fail(later.event.event_id, "boom", now + timedelta(hours=1))
        await inbox.fail(soon.event.event_id, "boom", now - timedelta(seconds=1))
        assert [e.event.event_id for e in await inbox.claim(10)] == ["soon"]


async def test_a_parked_event_keeps_its_payload_and_error_until_retried(tmp_path: Path) -> None:
    async with webhooks.SQLiteInbox(tmp_path / "inbox.db") as inbox:
        original = event("evt-1", "payment_source.created")
        await inbox.add(original)
        await inbox.claim(1)
        await inbox.fail("evt-1", "RuntimeError: no", None)
        (parked,) = await inbox.failed()
        assert parked.event == original
        assert (parked.attempts, parked.last_error) == (1, "RuntimeError: no")
        assert await inbox.claim(1) == []
        assert await inbox.retry_failed(["evt-unknown"]) == 0
        assert await inbox.retry_failed(["evt-1"]) == 1
        (again,) = await inbox.claim(1)
        assert again.attempts == 1  # a fresh count
        await inbox.complete(["evt-1"])
        assert await inbox.counts() == {"pending": 0, "running": 0, "done": 1, "failed": 0}


async def test_an_inbox_that_cannot_be_opened_fails_each_call_and_recovers(
    tmp_path: Path,
) -> None:
    inbox = webhooks.SQLiteInbox(tmp_path / "missing-dir" / "inbox.db")
    with pytest.raises(sqlite3.OperationalError):
        await inbox.add(event())
    (tmp_path / "missing-dir").mkdir()
    assert await inbox.add(event()) is True
    await inbox.close()


@pytest.mark.parametrize(
    "event_type",
    [
        "payment_source.created",
        "payment_source.updated",
        "payment_source.beneficiary.created",
        "payment_source.beneficiary.updated",
        "payment.created",  # not typed: the payload stays a dict
    ],
)
def test_a_stored_event_decodes_back_equal(event_type: str) -> None:
    original = event("evt-1", event_type)
    assert webhooks.decode_event(webhooks.encode_event(original)) == original


@pytest.mark.parametrize("payload", [[1, 2], None, "text", {"nested": {"a": [1]}}])
def test_a_stored_event_of_an_unknown_type_keeps_any_payload(payload: object) -> None:
    original = webhooks.WebhookEvent(
        type="results.ready",
        event_id="evt-1",
        timestamp=datetime(2026, 5, 13, 10, 50, 10, 476351, tzinfo=timezone.utc),
        payload=payload,
        message=None,
    )
    assert webhooks.decode_event(webhooks.encode_event(original)) == original


# --- the receiver with an inbox -------------------------------------------------------------


async def test_an_event_is_on_disk_when_its_200_arrives(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    gate = asyncio.Event()  # the handler waits: only the inbox has the event
    handler = Recorder(gate)
    async with serving(handler, webhooks.SQLiteInbox(path)) as (client, receiver):
        try:
            assert await deliver(client, delivery("evt-1")) == 200
            assert states(path)["evt-1"] in ("pending", "running")
        finally:
            gate.set()  # whatever happened, the handler must not hold up the shutdown
        await eventually(lambda: handler.ids == ["evt-1"], "the handler")
        await eventually(lambda: states(path) == {"evt-1": "done"}, "done")
    assert receiver.stats.accepted == receiver.stats.processed == 1


async def test_a_store_failure_is_answered_500_so_that_lean_retries() -> None:
    class BrokenInbox(webhooks.SQLiteInbox):
        async def add(self, event: webhooks.WebhookEvent) -> bool:
            raise sqlite3.OperationalError("disk I/O error")

    handler = Recorder()
    async with serving(handler, BrokenInbox(":memory:")) as (client, receiver):
        assert await deliver(client, delivery()) == 500
    assert receiver.stats.store_failed == 1
    assert handler.events == []


async def test_pending_events_are_handled_when_the_receiver_starts(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    async with webhooks.SQLiteInbox(path) as inbox:
        await inbox.add(event("evt-pending"))
        await inbox.add(event("evt-interrupted"))
        await inbox.claim(1)  # as if a handler ran when the process died
        await inbox.add(event("evt-done"))
        await inbox.claim(10)
        await inbox.complete(["evt-done"])
    handler = Recorder()
    async with serving(handler, webhooks.SQLiteInbox(path)):
        await eventually(lambda: len(handler.ids) == 2, "the pending events")
        await asyncio.sleep(0.1)
    assert sorted(handler.ids) == ["evt-interrupted", "evt-pending"]


async def test_a_failing_handler_is_retried_then_parked_then_retried_on_demand(
    tmp_path: Path,
) -> None:
    inbox = webhooks.SQLiteInbox(tmp_path / "inbox.db")
    handler = Flaky(failures=3)
    async with serving(handler, inbox, max_attempts=3, retry_delay=quick_retries) as (
        client,
        receiver,
    ):
        assert await deliver(client, delivery("evt-1")) == 200
        await eventually(lambda: receiver.stats.parked == 1, "parking")
        (parked,) = await inbox.failed()
        assert parked.event.event_id == "evt-1"
        assert parked.last_error == "RuntimeError: database unavailable (3)"
        assert handler.runs["evt-1"] == 3
        assert await receiver.retry_failed() == 1
        await eventually(lambda: handler.handled == ["evt-1"], "the retried event")
        assert await inbox.failed() == []
    assert (receiver.stats.failed, receiver.stats.processed) == (3, 1)


async def test_handlers_run_at_most_concurrency_at_once(tmp_path: Path) -> None:
    running = 0
    peak = 0
    handled = 0

    async def handler(event: webhooks.WebhookEvent) -> None:
        nonlocal running, peak, handled
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        handled += 1

    inbox = webhooks.SQLiteInbox(tmp_path / "inbox.db")
    async with serving(handler, inbox, concurrency=3) as (client, _):
        statuses = await asyncio.gather(*(deliver(client, delivery(f"e{i}")) for i in range(20)))
        assert statuses == [200] * 20
        await eventually(lambda: handled == 20, "every handler")
    assert peak == 3


async def test_handlers_cut_off_at_shutdown_run_again_at_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    never = asyncio.Event()
    first = Recorder(never)
    async with serving(first, webhooks.SQLiteInbox(path), drain_timeout=0.1) as (client, r):
        assert await deliver(client, delivery("evt-1")) == 200
        await eventually(lambda: r.pending == 1, "the handler to start")
    assert states(path) == {"evt-1": "running"}
    second = Recorder()
    async with serving(second, webhooks.SQLiteInbox(path)):
        await eventually(lambda: second.ids == ["evt-1"], "the event again")
    assert first.ids == []


# Each redelivery moment against each handler outcome: handled successfully exactly once.
@pytest.mark.parametrize("failures", [0, 1], ids=["handler-ok", "handler-fails-once"])
@pytest.mark.parametrize(
    "redelivered", ["while-handled", "after-handled", "after-restart", "twice-at-once"]
)
async def test_a_redelivery_never_runs_a_handled_event_again(
    tmp_path: Path, failures: int, redelivered: str
) -> None:
    path = tmp_path / "inbox.db"
    handler = Flaky(failures)
    body = delivery("evt-1")
    options: dict[str, Any] = {"retry_delay": quick_retries}
    async with serving(handler, webhooks.SQLiteInbox(path), **options) as (client, receiver):
        if redelivered == "twice-at-once":
            statuses = await asyncio.gather(deliver(client, body), deliver(client, body))
            assert sorted(statuses) == [200, 200]
        else:
            assert await deliver(client, body) == 200
        if redelivered == "while-handled":
            assert await deliver(client, body) == 200
        await eventually(lambda: handler.handled == ["evt-1"], "the handler")
        if redelivered == "after-handled":
            assert await deliver(client, body) == 200
        await receiver.join()
    if redelivered == "after-restart":
        async with serving(handler, webhooks.SQLiteInbox(path), **options) as (client, again):
            assert await deliver(client, body) == 200
            await again.join()
            assert again.stats.duplicates == 1
    assert handler.handled == ["evt-1"]
    assert handler.runs["evt-1"] == failures + 1


async def test_a_commit_holding_a_new_event_is_synced_and_others_need_not_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = webhooks.SQLiteInbox(tmp_path / "inbox.db")

    def sync_level(db: sqlite3.Connection) -> int:
        level: int = db.execute("PRAGMA synchronous").fetchone()[0]
        return level

    assert await inbox._call(sync_level, durable=True) == 2  # FULL
    assert await inbox._call(sync_level) == 1  # NORMAL
    durable_calls: list[bool] = []
    call = inbox._call

    def spy(work: Any, *, durable: bool = False) -> Any:
        durable_calls.append(durable)
        return call(work, durable=durable)

    monkeypatch.setattr(inbox, "_call", spy)
    await inbox.add(event("evt-1"))
    await inbox.claim(1)
    await inbox.complete(["evt-1"])
    await inbox.retry_failed()
    assert durable_calls == [True, False, False, True]
    await inbox.close()


async def test_the_log_is_checkpointed_into_the_database_in_the_background(
    tmp_path: Path,
) -> None:
    path = tmp_path / "inbox.db"
    async with webhooks.SQLiteInbox(path) as inbox:
        size_before = path.stat().st_size
        await asyncio.gather(*(inbox.add(event(f"evt-{i}")) for i in range(300)))
        await eventually(lambda: path.stat().st_size > size_before + 100_000, "a checkpoint")


async def test_a_worker_whose_inbox_fails_at_start_tries_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lean_async import _webhook_worker

    monkeypatch.setattr(_webhook_worker, "_RECOVER_RETRY", 0.05)

    class FailsFirst(webhooks.SQLiteInbox):
        failures = 2

        async def recover(self) -> int:
            if self.failures:
                self.failures -= 1
                raise sqlite3.OperationalError("database is locked")
            return await super().recover()

    handler = Recorder()
    async with serving(handler, FailsFirst(tmp_path / "inbox.db")) as (client, _):
        assert await deliver(client, delivery("evt-1")) == 200  # stored meanwhile
        await eventually(lambda: handler.ids == ["evt-1"], "the handler")


async def test_prune_forgets_only_done_events_received_before_the_moment(tmp_path: Path) -> None:
    async with webhooks.SQLiteInbox(tmp_path / "inbox.db") as inbox:
        for event_id in ("done-old", "failed-old", "pending-old"):
            await inbox.add(event(event_id))
        await inbox.claim(2)
        await inbox.complete(["done-old"])
        await inbox.fail("failed-old", "RuntimeError: no", None)
        moment = datetime.now(timezone.utc)
        await asyncio.sleep(0.01)
        await inbox.add(event("done-new"))
        await inbox.claim(10)
        await inbox.complete(["done-new"])
        assert await inbox.prune(moment) == 1
        assert await inbox.counts() == {"pending": 0, "running": 1, "done": 1, "failed": 1}
        assert await inbox.add(event("done-old")) is True  # forgotten: new again

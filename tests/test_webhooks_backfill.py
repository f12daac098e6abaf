"""The whole loop offline: the receiver is down while the fake Lean server creates events
and gives up delivering them; after it comes back, ``inbox.backfill`` finds them on the
Events API, and the handler sees each exactly once, however many copies also arrive by
redelivery, before or after the backfill."""

from __future__ import annotations

import asyncio
import collections
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest
from _apps import free_port, served

from lean_async import webhooks
from lean_async.testing import FakeLean

pytestmark = pytest.mark.timeout(60)

SECRET = "whsec-backfill"


class Counting:
    def __init__(self) -> None:
        self.runs: collections.Counter[str] = collections.Counter()

    async def __call__(self, event: webhooks.WebhookEvent) -> None:
        self.runs[event.event_id] += 1


async def wait_until_handled(handler: Counting, ids: set[str]) -> None:
    for _ in range(500):
        if set(handler.runs) >= ids:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(ids - set(handler.runs))} events never handled")


async def test_events_missed_while_down_are_handled_once_after_backfill(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks/lean"
    started = datetime.now(timezone.utc) - timedelta(seconds=1)
    async with FakeLean(
        customers=5, seed=11, webhook_url=url, webhook_secret=SECRET, webhook_retry_delays=(0.01,)
    ) as lean_server:
        # Before the receiver is up: every delivery fails and is given up.
        for customer in lean_server.customer_ids:
            lean_server.add_payment_source(customer)
        await lean_server.webhooks_idle()
        assert lean_server.webhooks is not None
        missed = lean_server.events[:]
        assert len(missed) == 10
        assert not any(d.delivered for d in lean_server.webhooks.deliveries)

        handler = Counting()
        inbox = webhooks.SQLiteInbox(tmp_path / "inbox.db")
        app = webhooks.receiver(SECRET, handler, inbox=inbox, path="/hooks/lean")
        async with served(app, port):
            # Lean redelivers a few before the backfill, a few after; events keep coming.
            lean_server.webhooks.send(missed[:3])
            await lean_server.webhooks_idle()
            source = lean_server.add_payment_source(lean_server.customer_ids[0])
            await lean_server.webhooks_idle()
            async with lean_server.client() as lean:
                added = await inbox.backfill(lean, since=started)
                lean_server.webhooks.send(missed[2:6])
                await lean_server.webhooks_idle()
                again = await inbox.backfill(lean, since=started)
            every_id = {event["event_id"] for event in lean_server.events}
            await wait_until_handled(handler, every_id)
            await asyncio.sleep(0.2)  # time for any second run to show

    assert added == 7  # 10 missed, 3 of them redelivered before the backfill
    assert again == 0
    assert len(every_id) == 12
    assert source.id in {e["payload"]["id"] for e in lean_server.events}
    assert handler.runs == dict.fromkeys(every_id, 1)
    receiver_stats = app[webhooks.RECEIVER_KEY].stats
    assert receiver_stats.duplicates == 4  # missed[2:6], all already held


async def test_backfill_counts_only_what_the_inbox_lacks(tmp_path: Path) -> None:
    async with FakeLean(customers=4, seed=12) as lean_server:
        for customer in lean_server.customer_ids:
            lean_server.add_payment_source(customer)
        async with webhooks.SQLiteInbox(tmp_path / "inbox.db") as inbox:
            assert await inbox.add(_event(lean_server.events[0]))
            async with lean_server.client() as lean:
                since = datetime(2020, 1, 1)
                assert await inbox.backfill(lean, since=since, type="payment_source.created") == 3
                assert await webhooks.backfill(inbox, lean, since=since) == 4
                assert await inbox.backfill(lean, since=since) == 0
            assert (await inbox.counts())["pending"] == 8


def _event(raw: dict[str, object]) -> webhooks.WebhookEvent:
    return webhooks.decode_event(msgspec.json.encode(raw))

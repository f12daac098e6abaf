"""``lean.events.list``: Lean's Events API through the shared pager, against the fake
server that records every event it creates, and against a server that shows the query."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from _apps import served
from aiohttp import web

from lean_async import AuthenticationError, LeanClient, RetryPolicy, webhooks
from lean_async.resources.events import query_time
from lean_async.testing import FakeLean, Faults
from lean_async.testing._events import event_time

pytestmark = pytest.mark.timeout(60)

SECRET = "whsec-events"


async def collect(lean: LeanClient, **filters: Any) -> list[webhooks.WebhookEvent]:
    since = filters.pop("since", datetime(2020, 1, 1, tzinfo=timezone.utc))
    return [event async for event in lean.events.list(since=since, **filters)]


def make_events(server: FakeLean, sources: int) -> None:
    """Two events per payment source: payment_source.created, beneficiary.created."""
    for i in range(sources):
        server.add_payment_source(server.customer_ids[i % len(server.customer_ids)])


async def test_every_event_the_server_created_is_listed_once_across_pages() -> None:
    async with FakeLean(customers=3, seed=1) as server:
        make_events(server, 11)
        async with server.client() as lean:
            events = [e async for e in lean.events.list(since=datetime(2020, 1, 1), page_size=4)]
    assert len(events) == 22
    assert sorted(e.event_id for e in events) == sorted(e["event_id"] for e in server.events)
    assert server.stats.by_path["/events/v1"] == 6  # 22 events in pages of 4


async def test_listed_events_are_decoded_exactly_as_their_deliveries() -> None:
    delivered: list[webhooks.WebhookEvent] = []

    async def handle(event: webhooks.WebhookEvent) -> None:
        delivered.append(event)

    app = webhooks.receiver(SECRET, handle, path="/hooks")
    async with served(app) as port:
        url = f"http://127.0.0.1:{port}/hooks"
        async with FakeLean(customers=2, seed=2, webhook_url=url, webhook_secret=SECRET) as server:
            source = server.add_payment_source(server.customer_ids[0])
            server.activate_beneficiary(server.customer_ids[0], source.id)
            async with server.client() as lean:
                await lean.payment_sources.delete(server.customer_ids[0], source.id)
                await server.webhooks_idle()
                await app[webhooks.RECEIVER_KEY].join()
                listed = await collect(lean)
    assert len(listed) == 4
    assert {e.type for e in listed} == {t.value for t in webhooks.EventType}
    assert sorted(listed, key=lambda e: e.event_id) == sorted(delivered, key=lambda e: e.event_id)


async def test_filters_by_type_and_time() -> None:
    async with FakeLean(customers=2, seed=3) as server:
        make_events(server, 3)
        await asyncio.sleep(0.01)
        middle = datetime.now(timezone.utc)
        await asyncio.sleep(0.01)
        make_events(server, 2)
        async with server.client() as lean:
            later = await collect(lean, since=middle)
            earlier = await collect(lean, since=middle - timedelta(days=1), until=middle)
            created = await collect(lean, type="payment_source.created")
            later_created = await collect(lean, since=middle, type="payment_source.created")
    assert len(later) == 4
    assert len(earlier) == 6
    assert all(e.timestamp >= middle for e in later)
    assert len(created) == 5
    assert all(isinstance(e.payload, webhooks.PaymentSourceCreated) for e in created)
    assert len(later_created) == 2


async def test_a_listing_through_server_errors_yields_each_event_once() -> None:
    async with FakeLean(customers=3, seed=4) as server:
        make_events(server, 30)
        server.faults = Faults(error_rate=0.3, seed=9)
        async with server.client(retry=RetryPolicy(max_retries=8, initial_delay=0.001)) as lean:
            events = [e async for e in lean.events.list(since=datetime(2020, 1, 1), page_size=7)]
    assert sorted(e.event_id for e in events) == sorted(e["event_id"] for e in server.events)


async def test_events_need_the_applications_credentials() -> None:
    async with FakeLean(customers=1, seed=5) as server:
        make_events(server, 1)
        async with server.client(app_token="not-the-token") as lean:
            with pytest.raises(AuthenticationError):
                await collect(lean)
        async with server.client(oauth=True) as lean:
            assert len(await collect(lean)) == 2


# --- on the wire --------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def query_recorder() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A server answering one empty page of events, keeping each request's query."""
    queries: list[dict[str, str]] = []

    async def answer(request: web.Request) -> web.Response:
        queries.append(dict(request.query))
        body = {"data": [], "page": {"number": 0, "size": 50, "total_elements": 0}}
        return web.Response(body=msgspec.json.encode(body), content_type="application/json")

    app = web.Application()
    app.router.add_get("/events/v1", answer)
    async with served(app) as port:
        yield f"http://127.0.0.1:{port}", queries


async def test_the_query_carries_page_size_and_filters_as_lean_names_them() -> None:
    since = datetime(2026, 5, 13, 14, 50, 10, tzinfo=timezone(timedelta(hours=4)))
    async with query_recorder() as (url, queries), LeanClient(app_token="t", base_url=url) as lean:
        await collect(lean, since=since, until=datetime(2026, 5, 14), type="payment.created")
    assert queries == [
        {
            "page": "0",
            "size": "50",
            "from": "2026-05-13T10:50:10Z",
            "to": "2026-05-14T00:00:00Z",
            "type": "payment.created",
        }
    ]


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 5, 13, 10, 50, 10), "2026-05-13T10:50:10Z"),  # naive: UTC
        (datetime(2026, 5, 13, 10, 50, 10, 5, tzinfo=timezone.utc), "2026-05-13T10:50:10.000005Z"),
        (
            datetime(2026, 5, 13, 0, 30, tzinfo=timezone(timedelta(hours=-5))),
            "2026-05-13T05:30:00Z",
        ),
    ],
)
def test_query_times_are_utc(moment: datetime, text: str) -> None:
    assert query_time(moment) == text


def test_until_before_since_is_refused_before_any_request() -> None:
    lean = LeanClient(app_token="t", base_url="http://127.0.0.1:1")
    with pytest.raises(ValueError, match="until is before since"):
        lean.events.list(since=datetime(2026, 5, 2), until=datetime(2026, 5, 1))


def test_the_fake_server_reads_lean_timestamps_with_nanoseconds() -> None:
    moment = event_time({"timestamp": "2026-05-13T10:50:10.476351058Z"})
    assert moment == datetime(2026, 5, 13, 10, 50, 10, 476351, tzinfo=timezone.utc)

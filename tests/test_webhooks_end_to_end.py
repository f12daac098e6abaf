"""The whole webhook loop offline: the fake Lean server signs and sends what happens in it,
the library's receiver verifies, deduplicates and hands typed events to a handler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from _apps import served

from lean_async import webhooks
from lean_async.testing import FakeLean

SECRET = "whsec-end-to-end"
Received = tuple[str, list[webhooks.WebhookEvent], webhooks.ReceiverStats]


@pytest.fixture
async def received() -> AsyncIterator[Received]:
    """A receiver on 127.0.0.1: its URL, the events its handler got in order, its stats."""
    events: list[webhooks.WebhookEvent] = []

    async def handle(event: webhooks.WebhookEvent) -> None:
        events.append(event)

    app = webhooks.receiver(SECRET, handle, path="/hooks/lean")
    async with served(app) as port:
        yield f"http://127.0.0.1:{port}/hooks/lean", events, app[webhooks.RECEIVER_KEY].stats


async def wait_for(events: list[webhooks.WebhookEvent], count: int) -> None:
    for _ in range(200):
        if len(events) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"received {len(events)} events, expected {count}")


async def test_a_new_payment_source_and_its_cool_off_arrive_as_typed_events(
    received: Received,
) -> None:
    url, events, stats = received
    async with FakeLean(customers=3, seed=7, webhook_url=url, webhook_secret=SECRET) as lean:
        customer = lean.customer_ids[0]
        source = lean.add_payment_source(customer)
        lean.activate_beneficiary(customer, source.id)
        await lean.webhooks_idle()
        await wait_for(events, 3)

    created, beneficiary_created, beneficiary_updated = events
    assert isinstance(created.payload, webhooks.PaymentSourceCreated)
    assert (created.payload.id, created.payload.customer_id) == (source.id, customer)
    assert isinstance(beneficiary_created.payload, webhooks.BeneficiaryCreated)
    assert beneficiary_created.payload.status == "AWAITING_BENEFICIARY_COOL_OFF"
    assert isinstance(beneficiary_updated.payload, webhooks.BeneficiaryUpdated)
    assert beneficiary_updated.payload.payment_source_id == source.id
    assert beneficiary_updated.payload.status == "ACTIVE"
    assert len({e.event_id for e in events}) == 3
    assert stats.accepted == stats.processed == 3


async def test_deleting_through_the_client_announces_the_revoked_source(
    received: Received,
) -> None:
    url, events, _ = received
    async with FakeLean(customers=3, seed=7, webhook_url=url, webhook_secret=SECRET) as lean:
        customer = lean.customer_ids[0]
        source = lean.add_payment_source(customer, cool_off=False)
        async with lean.client() as client:
            await client.payment_sources.delete(customer, source.id)
        await lean.webhooks_idle()
        await wait_for(events, 3)

    updated = events[-1]
    assert updated.type == webhooks.EventType.PAYMENT_SOURCE_UPDATED
    assert isinstance(updated.payload, webhooks.PaymentSourceUpdated)
    assert (updated.payload.id, updated.payload.status) == (source.id, "REVOKED")


async def test_deliveries_signed_with_another_secret_are_refused(
    received: Received,
) -> None:
    url, events, stats = received
    async with FakeLean(
        customers=1, webhook_url=url, webhook_secret="not-the-secret", webhook_retry_delays=()
    ) as lean:
        lean.add_payment_source(lean.customer_ids[0])
        await lean.webhooks_idle()
    await asyncio.sleep(0.05)
    assert events == []
    assert stats.bad_signature == 2  # payment_source.created and beneficiary.created

"""The aiohttp.web webhook receiver, served for real on 127.0.0.1 by aiohttp's TestServer."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from lean_async import webhooks

pytestmark = pytest.mark.timeout(30)

SECRET = "whsec-receiver-test-0d9e"
PATH = "/lean"
Client = TestClient[web.Request, web.Application]


def delivery(
    event_id: str = "evt-1", event_type: str = "payment_source.beneficiary.updated"
) -> bytes:
    payload = {
        "id": "5A0E7C39-1B2D-4C3E-8F4A-6B7C8D9E0F12",
        "customer_id": "2f0b3c1d-7a45-4f2e-8c7b-6d5e4f3a2b10",
        "payment_source_id": "9B1F4C2E-3C6D-4E8A-9D9B-2B0F5E6A7C11",
        "payment_destination_id": "c2e3f4a5-b6c7-4d8e-9f01-23456789abcd",
        "status": "ACTIVE",
        "payment_source_bank_identifier": "ENBD_UAE",
    }
    return json.dumps(
        {
            "type": event_type,
            "payload": payload,
            "message": "Beneficiary is active.",
            "timestamp": "2026-05-13T10:50:10.476351058Z",
            "event_id": event_id,
        }
    ).encode()


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha512=" + hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()


class Recorder:
    """A handler that records each event, after waiting for ``gate`` when one is given."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.gate = gate
        self.events: list[webhooks.WebhookEvent] = []

    async def __call__(self, event: webhooks.WebhookEvent) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.events.append(event)

    @property
    def ids(self) -> list[str]:
        return [event.event_id for event in self.events]


class FailingOnce:
    """A handler that raises for the first delivery of each event, then records."""

    def __init__(self) -> None:
        self.attempts: collections.Counter[str] = collections.Counter()
        self.handled: list[str] = []

    async def __call__(self, event: webhooks.WebhookEvent) -> None:
        self.attempts[event.event_id] += 1
        if self.attempts[event.event_id] == 1:
            raise RuntimeError("database unavailable")
        self.handled.append(event.event_id)


@contextlib.asynccontextmanager
async def serving(
    handler: webhooks.EventHandler, **options: Any
) -> AsyncIterator[tuple[Client, webhooks.WebhookReceiver]]:
    app = webhooks.receiver(SECRET, handler, path=PATH, **options)
    async with TestClient(TestServer(app)) as client:
        yield client, app[webhooks.RECEIVER_KEY]


async def deliver(
    client: Client, body: bytes, header: str | None = "sign", path: str = PATH
) -> int:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers[webhooks.SIGNATURE_HEADER] = signature(body) if header == "sign" else header
    async with client.post(path, data=body, headers=headers) as response:
        await response.read()
        return response.status


# --- answers --------------------------------------------------------------------------


async def test_good_delivery_is_answered_200_and_handled() -> None:
    handler = Recorder()
    async with serving(handler) as (client, receiver):
        assert await deliver(client, delivery("evt-1")) == 200
        await receiver.join()
    assert handler.ids == ["evt-1"]
    assert isinstance(handler.events[0].payload, webhooks.BeneficiaryUpdated)


async def test_bad_signature_is_answered_401_and_not_handled() -> None:
    handler = Recorder()
    async with serving(handler) as (client, receiver):
        status = await deliver(client, delivery(), header=signature(delivery(), "wrong-secret"))
        await receiver.join()
    assert status == 401
    assert handler.events == []
    assert receiver.stats.bad_signature == 1


async def test_missing_signature_is_answered_401() -> None:
    async with serving(Recorder()) as (client, _):
        assert await deliver(client, delivery(), header=None) == 401


async def test_signed_body_that_is_not_an_event_is_answered_400() -> None:
    handler = Recorder()
    async with serving(handler) as (client, receiver):
        assert await deliver(client, b'{"type": "payment_source.created"') == 400
    assert handler.events == []
    assert receiver.stats.undecodable == 1


async def test_declared_body_over_the_size_limit_is_answered_413() -> None:
    handler = Recorder()
    async with serving(handler, max_body_size=64) as (client, receiver):
        assert await deliver(client, delivery()) == 413
    assert handler.events == []
    assert receiver.stats.too_large == 1


async def test_streamed_body_over_the_size_limit_is_answered_413() -> None:
    body = delivery()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 32):
            yield body[start : start + 32]

    async with serving(Recorder(), max_body_size=64) as (client, _):
        headers = {webhooks.SIGNATURE_HEADER: signature(body)}
        async with client.post(PATH, data=chunks(), headers=headers) as response:
            assert response.status == 413


async def test_200_is_answered_before_a_slow_handler_finishes() -> None:
    gate = asyncio.Event()
    handler = Recorder(gate)
    async with serving(handler) as (client, receiver):
        assert await asyncio.wait_for(deliver(client, delivery()), timeout=5) == 200
        assert handler.events == []
        assert receiver.pending == 1
        gate.set()
        await receiver.join()
    assert handler.ids == ["evt-1"]


async def test_delivery_during_shutdown_is_answered_503_so_lean_redelivers() -> None:
    handler = Recorder()
    async with serving(handler) as (client, receiver):
        await receiver.aclose()
        assert await deliver(client, delivery()) == 503
    assert handler.events == []


# --- duplicates -----------------------------------------------------------------------


async def test_redelivery_of_a_handled_event_is_answered_200_and_dropped() -> None:
    handler = Recorder()
    async with serving(handler) as (client, receiver):
        assert await deliver(client, delivery("evt-1")) == 200
        await receiver.join()
        assert await deliver(client, delivery("evt-1")) == 200
        await receiver.join()
    assert handler.ids == ["evt-1"]
    assert receiver.stats.duplicates == 1


async def test_copies_arriving_while_the_event_is_handled_are_dropped() -> None:
    gate = asyncio.Event()
    handler = Recorder(gate)
    async with serving(handler) as (client, receiver):
        statuses = [await deliver(client, delivery("evt-1")) for _ in range(3)]
        gate.set()
        await receiver.join()
    assert statuses == [200, 200, 200]
    assert handler.ids == ["evt-1"]


async def test_redelivery_of_an_event_whose_handler_failed_is_handled_again() -> None:
    handler = FailingOnce()
    async with serving(handler) as (client, receiver):
        for _ in range(2):
            assert await deliver(client, delivery("evt-1")) == 200
            await receiver.join()
    assert handler.handled == ["evt-1"]


async def test_200_events_delivered_twice_concurrently_are_each_handled_once() -> None:
    counts: collections.Counter[str] = collections.Counter()

    async def handler(event: webhooks.WebhookEvent) -> None:
        await asyncio.sleep(0.01)
        counts[event.event_id] += 1

    ids = [f"evt-{n}" for n in range(200)]
    async with serving(handler) as (client, receiver):
        statuses = await asyncio.gather(
            *(deliver(client, delivery(event_id)) for event_id in ids + ids[::-1])
        )
        await receiver.join()
    assert set(statuses) == {200}
    assert counts == dict.fromkeys(ids, 1)
    assert (receiver.stats.accepted, receiver.stats.duplicates) == (200, 200)


class SetStore:
    """An EventStore over a plain set, standing in for a shared database."""

    def __init__(self, *event_ids: str) -> None:
        self.ids = set(event_ids)

    async def seen(self, event_id: str) -> bool:
        return event_id in self.ids

    async def add(self, event_id: str) -> None:
        self.ids.add(event_id)


async def test_event_already_in_the_store_is_dropped() -> None:
    handler = Recorder()
    async with serving(handler, store=SetStore("evt-1")) as (client, receiver):
        assert await deliver(client, delivery("evt-1")) == 200
        await receiver.join()
    assert handler.events == []


async def test_event_is_recorded_in_the_store_once_its_handler_succeeded() -> None:
    store = SetStore()
    async with serving(Recorder(), store=store) as (client, receiver):
        await deliver(client, delivery("evt-1"))
        await receiver.join()
    assert store.ids == {"evt-1"}


async def test_event_whose_handler_failed_is_not_recorded_in_the_store() -> None:
    store = SetStore()
    async with serving(FailingOnce(), store=store) as (client, receiver):
        await deliver(client, delivery("evt-1"))
        await receiver.join()
    assert store.ids == set()


async def test_store_failure_is_answered_503_and_not_handled() -> None:
    class BrokenStore(SetStore):
        async def seen(self, event_id: str) -> bool:
            raise ConnectionError("redis is down")

    handler = Recorder()
    async with serving(handler, store=BrokenStore()) as (client, receiver):
        assert await deliver(client, delivery()) == 503
        await receiver.join()
    assert handler.events == []


# --- failures are not lost ------------------------------------------------------------


async def test_handler_failure_is_logged_with_event_id_and_type(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="lean_async.webhooks")
    async with serving(FailingOnce()) as (client, receiver):
        await deliver(client, delivery("evt-7"))
        await receiver.join()
    [record] = [r for r in caplog.records if r.name == "lean_async.webhooks"]
    assert "evt-7" in record.getMessage()
    assert "payment_source.beneficiary.updated" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


async def test_handler_failure_is_counted_and_kept_with_its_error() -> None:
    async with serving(FailingOnce()) as (client, receiver):
        await deliver(client, delivery("evt-7"))
        await receiver.join()
    assert receiver.stats.failed == 1
    [failure] = receiver.failed
    assert failure.event.event_id == "evt-7"
    assert isinstance(failure.error, RuntimeError)


async def test_retry_failed_runs_the_handler_again_for_failed_events() -> None:
    handler = FailingOnce()
    async with serving(handler) as (client, receiver):
        await deliver(client, delivery("evt-7"))
        await receiver.join()
        assert await receiver.retry_failed() == 1
        await receiver.join()
    assert handler.handled == ["evt-7"]
    assert receiver.failed == []


async def test_shutdown_waits_for_running_handlers() -> None:
    async def slow_handler(event: webhooks.WebhookEvent) -> None:
        await asyncio.sleep(0.2)
        handled.append(event.event_id)

    handled: list[str] = []
    async with serving(slow_handler) as (client, _):
        assert await deliver(client, delivery("evt-1")) == 200
    assert handled == ["evt-1"]


async def test_handler_still_running_at_the_drain_timeout_is_cancelled_and_kept() -> None:
    never = asyncio.Event()
    async with serving(Recorder(never), drain_timeout=0.1) as (client, receiver):
        await deliver(client, delivery("evt-1"))
    assert receiver.pending == 0
    [failure] = receiver.failed
    assert failure.event.event_id == "evt-1"
    assert isinstance(failure.error, asyncio.CancelledError)


async def test_logs_hold_neither_the_secret_nor_any_signature(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="lean_async.webhooks")
    bodies = [delivery("evt-1"), delivery("evt-2"), delivery("evt-1")]
    async with serving(FailingOnce()) as (client, receiver):
        for body in bodies:
            await deliver(client, body)
        await deliver(client, bodies[0], header=signature(bodies[0], "wrong-secret"))
        await deliver(client, bodies[0], header="sha256=" + "ab" * 32)
        await receiver.join()
    digests = [signature(body).partition("=")[2] for body in bodies]
    digests.append(signature(bodies[0], "wrong-secret").partition("=")[2])
    logged = caplog.text + "".join(str(r.exc_info) for r in caplog.records)
    assert len(caplog.records) >= 5
    assert SECRET not in logged
    assert not [digest for digest in digests if digest in logged]


# --- mounting -------------------------------------------------------------------------


async def test_receiver_mounted_as_a_sub_application_serves_under_its_prefix() -> None:
    handler = Recorder()
    main = web.Application()
    main.add_subapp("/hooks", webhooks.receiver(SECRET, handler, path=PATH))
    async with TestClient(TestServer(main)) as client:
        assert await deliver(client, delivery(), path="/hooks" + PATH) == 200
    assert handler.ids == ["evt-1"]


async def test_attached_receiver_serves_on_an_existing_application() -> None:
    handler = Recorder()
    app = web.Application()
    receiver = webhooks.WebhookReceiver(SECRET, handler)
    receiver.attach(app, "/webhooks/lean")
    async with TestClient(TestServer(app)) as client:
        assert await deliver(client, delivery(), path="/webhooks/lean") == 200
    assert handler.ids == ["evt-1"]


# --- MemoryEventStore -----------------------------------------------------------------


async def test_memory_store_forgets_the_least_recently_used_id_beyond_its_size() -> None:
    store = webhooks.MemoryEventStore(max_size=2)
    await store.add("a")
    await store.add("b")
    assert await store.seen("a")  # "b" is now the least recently used
    await store.add("c")
    assert [await store.seen(event_id) for event_id in ("a", "b", "c")] == [True, False, True]


async def test_memory_store_refuses_a_size_below_one() -> None:
    with pytest.raises(ValueError, match="max_size"):
        webhooks.MemoryEventStore(max_size=0)

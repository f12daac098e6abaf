"""Signed webhook deliveries for what happens in the fake server."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import aiohttp
import msgspec

from ..types.payment_sources import Beneficiary, PaymentSource
from ..webhooks import SIGNATURE_HEADER, sign
from ._data import BANKS_BY_ID

__all__ = ["Delivery", "WebhookSender", "beneficiary_event", "envelope", "source_event"]

# Lean counts a delivery only when answered 200 within 10 seconds.
DELIVERY_TIMEOUT = 10.0
# Lean waits 1, 2, 5, 10, 60 and 180 minutes; a fake server waits as many short moments.
DEFAULT_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.5)


def nanosecond_timestamp(ns: int | None = None) -> str:
    """UTC time as Lean's webhooks write it: ``2026-05-13T10:50:10.476351058Z``."""
    seconds, nanos = divmod(time.time_ns() if ns is None else ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"


def envelope(event_type: str, payload: dict[str, Any], message: str) -> dict[str, Any]:
    return {
        "type": event_type,
        "payload": payload,
        "message": message,
        "timestamp": nanosecond_timestamp(),
        "event_id": str(uuid.uuid4()),
    }


def source_event(event_type: str, source: PaymentSource, message: str) -> dict[str, Any]:
    """``payment_source.created`` / ``payment_source.updated`` (whose payload Lean does not
    document: this server sends the same fields as for ``created``)."""
    bank = BANKS_BY_ID.get(source.bank_identifier or "")
    payload: dict[str, Any] = {
        "id": source.id,
        "customer_id": source.customer_id,
        "status": source.status,
        "bank_identifier": source.bank_identifier,
        "bank_name": bank.name if bank else source.bank_identifier,
    }
    if source.end_user_ids:
        payload["end_user_id"] = source.end_user_ids[0]
    return envelope(event_type, payload, message)


def beneficiary_event(
    event_type: str, source: PaymentSource, beneficiary: Beneficiary, message: str
) -> dict[str, Any]:
    payload = {
        "id": beneficiary.id,
        "customer_id": source.customer_id,
        "payment_source_id": source.id,
        "payment_destination_id": beneficiary.payment_destination_id,
        "status": beneficiary.status,
        "payment_source_bank_identifier": source.bank_identifier,
    }
    return envelope(event_type, payload, message)


@dataclass(frozen=True)
class Delivery:
    """One event and how its delivery ended."""

    event: dict[str, Any]
    attempts: int
    status: int | None  # the last answer's status; None when no answer came
    delivered: bool


class WebhookSender:
    """POSTs events to one URL, signed with ``lean-signature``; each failed delivery is
    retried after each of ``retry_delays`` in turn, then given up."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        timeout: float = DELIVERY_TIMEOUT,
    ) -> None:
        self.url = url
        self._secret = secret
        self.retry_delays = tuple(retry_delays)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._last: asyncio.Future[None] | None = None
        self.deliveries: list[Delivery] = []

    def send(self, events: Sequence[dict[str, Any]]) -> None:
        """Deliver ``events`` in the background, after those sent before (so that a
        receiver sees them in the order they happened)."""
        self._last = asyncio.ensure_future(self._deliver_after(self._last, events))

    async def idle(self) -> None:
        """Wait until every delivery sent so far succeeded or was given up."""
        while self._last is not None and not self._last.done():
            await asyncio.shield(self._last)

    async def close(self) -> None:
        """Abandon deliveries still under way and close the connection pool."""
        last, self._last = self._last, None
        if last is not None:
            last.cancel()
            await asyncio.gather(last, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _deliver_after(
        self, previous: asyncio.Future[None] | None, events: Sequence[dict[str, Any]]
    ) -> None:
        if previous is not None:
            # Cancelling this delivery cancels the ones before it too.
            await asyncio.gather(previous, return_exceptions=True)
        for event in events:
            self.deliveries.append(await self._deliver(event))

    async def _deliver(self, event: dict[str, Any]) -> Delivery:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        body = msgspec.json.encode(event)
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, self._secret)}
        status: int | None = None
        delays = (*self.retry_delays, None)
        for attempt, delay in enumerate(delays, start=1):
            try:
                async with self._session.post(self.url, data=body, headers=headers) as response:
                    status = response.status
                    await response.read()
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                status = None
            if status == 200:
                return Delivery(event, attempt, status, delivered=True)
            if delay is not None:
                await asyncio.sleep(delay)
        return Delivery(event, len(delays), status, delivered=False)

"""``client.payment_destinations``: the accounts that payments are made to."""

from __future__ import annotations

import builtins

from .._ids import CustomerLike, IdLike, validate_customer_id, validate_id
from .._transport import Transport
from ..types.payment_destinations import (
    PaymentDestination,
    decode_payment_destination,
    decode_payment_destinations,
)

__all__ = ["PaymentDestinations"]

_PATH = "/payments/v1/destinations"


class PaymentDestinations:
    """The Payment Destinations API. Ids are UUIDs, as for payment sources."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def list(self) -> builtins.list[PaymentDestination]:
        """Every payment destination of the application."""
        return await self._transport.request("GET", _PATH, decode_payment_destinations)

    async def get(self, payment_destination_id: IdLike) -> PaymentDestination:
        """One payment destination, e.g. a beneficiary's ``payment_destination_id``;
        ``NotFoundError`` when there is none."""
        path = f"{_PATH}/{validate_id(payment_destination_id, 'payment_destination_id')}"
        return await self._transport.request("GET", path, decode_payment_destination)

    async def list_for_customer(
        self, customer_id: CustomerLike
    ) -> builtins.list[PaymentDestination]:
        """The payment destinations of one customer (a ``Customer`` stands for its id)."""
        path = f"/customers/v1/{validate_customer_id(customer_id)}/destinations"
        return await self._transport.request("GET", path, decode_payment_destinations)

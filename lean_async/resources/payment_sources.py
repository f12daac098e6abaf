"""``client.payment_sources``: list, get and delete a customer's payment sources."""

from __future__ import annotations

import builtins
import enum

import msgspec

from .._constants import DEFAULT_DELETE_REASON
from .._ids import IdLike, validate_id
from .._transport import Transport
from ..models import PaymentSource, decode_payment_source, decode_payment_sources

__all__ = ["DeleteReason", "PaymentSources"]


class DeleteReason(str, enum.Enum):
    """Why a payment source is deleted (Lean's published values)."""

    USER_REQUESTED = "USER_REQUESTED"
    TPP_REQUESTED = "TPP_REQUESTED"

    def __str__(self) -> str:
        return self.value


_DEFAULT_DELETE_BODY = msgspec.json.encode({"reason": DEFAULT_DELETE_REASON})


def _list_path(customer_id: str) -> str:
    return f"/customers/v1/{customer_id}/payment-sources"


def _decode_list(status: int, body: bytes) -> builtins.list[PaymentSource]:
    return decode_payment_sources(body)


def _decode_one(status: int, body: bytes) -> PaymentSource:
    return decode_payment_source(body)


def _ignore_body(status: int, body: bytes) -> None:
    return None


class PaymentSources:
    """The Payment Sources API. Ids are UUID strings (any case, sent as given) or
    ``uuid.UUID``; anything else raises ``InvalidIdError`` before a request is made."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def list(self, customer_id: IdLike) -> builtins.list[PaymentSource]:
        """All payment sources of a customer (an empty list when it has none)."""
        path = _list_path(validate_id(customer_id, "customer_id"))
        return await self._transport.request("GET", path, _decode_list)

    async def get(self, customer_id: IdLike, payment_source_id: IdLike) -> PaymentSource:
        """One payment source; ``NotFoundError`` when absent or not this customer's."""
        path = self._source_path(customer_id, payment_source_id)
        return await self._transport.request("GET", path, _decode_one)

    async def delete(
        self,
        customer_id: IdLike,
        payment_source_id: IdLike,
        *,
        reason: DeleteReason | str = DeleteReason.USER_REQUESTED,
    ) -> None:
        """Delete a payment source, revoking its Account-on-File consent.

        If an earlier attempt may have reached Lean (a lost connection, a timeout, a 5xx)
        and the retry finds the source gone, the delete counts as done.
        """
        path = self._source_path(customer_id, payment_source_id)
        reason = str(reason.value if isinstance(reason, DeleteReason) else reason)
        if not reason or not reason.strip():
            raise ValueError("reason must be a non-empty string such as 'USER_REQUESTED'")
        body = (
            _DEFAULT_DELETE_BODY
            if reason == DEFAULT_DELETE_REASON
            else msgspec.json.encode({"reason": reason})
        )
        await self._transport.request(
            "DELETE", path, _ignore_body, json_body=body, missing_ok_after_retry=True
        )

    @staticmethod
    def _source_path(customer_id: IdLike, payment_source_id: IdLike) -> str:
        customer = validate_id(customer_id, "customer_id")
        source = validate_id(payment_source_id, "payment_source_id")
        return f"{_list_path(customer)}/{source}"

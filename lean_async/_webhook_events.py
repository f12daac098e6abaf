"""Webhook events as msgspec structs: the envelope, and one payload struct per known type.

A known type decodes its payload into its struct; any other type keeps the payload as a
``dict``, so an event type Lean adds later is delivered, never rejected. Identifiers are
required (an event without them cannot be acted on); every other field is optional and
unknown fields are ignored. Statuses are plain strings, as in ``models``.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, Generic, TypeAlias, TypeVar

import msgspec

from ._decode import decode_json
from ._webhook_signature import verify_signature


class EventType(str, enum.Enum):
    """The payment-source event types this library decodes into typed payloads."""

    PAYMENT_SOURCE_CREATED = "payment_source.created"  # announced as soon deprecated
    PAYMENT_SOURCE_UPDATED = "payment_source.updated"
    BENEFICIARY_CREATED = "payment_source.beneficiary.created"
    BENEFICIARY_UPDATED = "payment_source.beneficiary.updated"  # Lean: act on this one

    def __str__(self) -> str:
        return self.value


class PaymentSourceCreated(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """Payload of ``payment_source.created``: a customer linked a bank account."""

    id: str
    customer_id: str
    status: str | None = None
    bank_identifier: str | None = None
    bank_name: str | None = None
    end_user_id: str | None = None


class _BeneficiaryEvent(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    id: str
    customer_id: str
    payment_source_id: str
    payment_destination_id: str
    status: str | None = None
    payment_source_bank_identifier: str | None = None


class BeneficiaryCreated(_BeneficiaryEvent, kw_only=True, frozen=True, gc=False):
    """Payload of ``payment_source.beneficiary.created``."""


class BeneficiaryUpdated(_BeneficiaryEvent, kw_only=True, frozen=True, gc=False):
    """Payload of ``payment_source.beneficiary.updated`` (e.g. the cool-off has ended)."""


class _PaymentSourceUpdatedFields(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    # Undocumented payload: a payment source's scalar fields, none required.
    id: str | None = None
    customer_id: str | None = None
    app_id: str | None = None
    status: str | None = None
    bank_identifier: str | None = None
    bank_name: str | None = None
    end_user_id: str | None = None


class PaymentSourceUpdated(_PaymentSourceUpdatedFields, kw_only=True, frozen=True):
    """Payload of ``payment_source.updated``, which Lean does not document: the fields it
    is likely to share with a payment source, all optional, and ``raw``, the payload as
    sent. Fetch the payment source for its full state."""

    raw: dict[str, Any] = msgspec.field(default_factory=dict)


WebhookPayload: TypeAlias = (
    PaymentSourceCreated | PaymentSourceUpdated | BeneficiaryCreated | BeneficiaryUpdated | Any
)
"""Every payload type: a struct for a known event type, otherwise the raw JSON as it came
(usually a ``dict``; any JSON value is kept, never rejected)."""


class WebhookEvent(msgspec.Struct, kw_only=True, frozen=True):
    """One webhook delivery. ``event_id`` is the same in every redelivery of an event;
    ``payload`` is the struct of a known ``type``, else the payload as a ``dict``."""

    type: str
    event_id: str
    timestamp: datetime
    payload: WebhookPayload
    message: str | None = None


EventHandler = Callable[[WebhookEvent], Awaitable[None]]
"""The user's callback: ``async def handler(event: WebhookEvent) -> None``."""


_P = TypeVar("_P")


class _Envelope(msgspec.Struct, Generic[_P], kw_only=True, frozen=True):
    # Decoded with the payload type of its event type, so errors say `$.payload.<field>`.
    type: str
    event_id: str
    timestamp: datetime
    payload: _P
    message: str | None = None


class _EventType(msgspec.Struct):
    type: str


_TYPE_DECODER = msgspec.json.Decoder(_EventType)
_RAW_DECODER = msgspec.json.Decoder(_Envelope[dict[str, Any]])
_UNKNOWN_DECODER = msgspec.json.Decoder(_Envelope[Any])
_DECODERS: dict[str, msgspec.json.Decoder[_Envelope[Any]]] = {
    EventType.PAYMENT_SOURCE_CREATED.value: msgspec.json.Decoder(_Envelope[PaymentSourceCreated]),
    EventType.PAYMENT_SOURCE_UPDATED.value: msgspec.json.Decoder(
        _Envelope[_PaymentSourceUpdatedFields]
    ),
    EventType.BENEFICIARY_CREATED.value: msgspec.json.Decoder(_Envelope[BeneficiaryCreated]),
    EventType.BENEFICIARY_UPDATED.value: msgspec.json.Decoder(_Envelope[BeneficiaryUpdated]),
}
_WHAT = "the webhook event"


def decode_event(body: bytes) -> WebhookEvent:
    """Decode a webhook body WITHOUT checking its signature (for callers who verified it
    elsewhere); raises DecodeError saying where the body does not fit."""
    event_type = decode_json(_TYPE_DECODER, body, _WHAT).type
    envelope: _Envelope[Any] = decode_json(_DECODERS.get(event_type, _UNKNOWN_DECODER), body, _WHAT)
    payload = envelope.payload
    if isinstance(payload, _PaymentSourceUpdatedFields):
        raw = decode_json(_RAW_DECODER, body, _WHAT).payload
        payload = PaymentSourceUpdated(**msgspec.structs.asdict(payload), raw=raw)
    timestamp = envelope.timestamp
    if timestamp.tzinfo is None:
        # Lean sends UTC ("...Z"); a timestamp without an offset is taken as UTC too.
        timestamp = timestamp.replace(tzinfo=timezone.utc)
    return WebhookEvent(
        type=envelope.type,
        event_id=envelope.event_id,
        timestamp=timestamp,
        payload=payload,
        message=envelope.message,
    )


class _StoredEvent(msgspec.Struct, kw_only=True):
    type: str
    event_id: str
    timestamp: datetime
    payload: Any
    message: str | None = None


def encode_event(event: WebhookEvent) -> bytes:
    """The JSON of ``event`` as Lean sends it, which ``decode_event`` turns back into an
    equal event (to store an event, e.g. in an inbox)."""
    payload = event.payload
    if isinstance(payload, PaymentSourceUpdated):
        payload = payload.raw or {
            k: v for k, v in msgspec.structs.asdict(payload).items() if k != "raw" and v is not None
        }
    stored = _StoredEvent(
        type=event.type,
        event_id=event.event_id,
        timestamp=event.timestamp,
        payload=payload,
        message=event.message,
    )
    return msgspec.json.encode(stored)


def parse_event(body: bytes, signature_header: str | None, secret: str | bytes) -> WebhookEvent:
    """Verify the ``lean-signature`` header of a delivery, then decode its body; raises
    WebhookSignatureError, then DecodeError."""
    verify_signature(body, signature_header, secret)
    return decode_event(body)

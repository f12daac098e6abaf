"""Lean webhooks: the ``lean-signature`` check and typed payment-source events.

Sans-I/O, for any framework::

    event = webhooks.parse_event(body, request_headers.get(webhooks.SIGNATURE_HEADER), secret)
    if isinstance(event.payload, webhooks.BeneficiaryUpdated): ...

Pass the raw request bytes: the signature is over them, not over re-encoded JSON.
"""

from __future__ import annotations

from ._webhook_events import (
    BeneficiaryCreated,
    BeneficiaryUpdated,
    EventType,
    PaymentSourceCreated,
    PaymentSourceUpdated,
    WebhookEvent,
    WebhookPayload,
    decode_event,
    parse_event,
)
from ._webhook_signature import SIGNATURE_HEADER, WebhookSignatureError, sign, verify_signature

__all__ = [
    "SIGNATURE_HEADER",
    "BeneficiaryCreated",
    "BeneficiaryUpdated",
    "EventType",
    "PaymentSourceCreated",
    "PaymentSourceUpdated",
    "WebhookEvent",
    "WebhookPayload",
    "WebhookSignatureError",
    "decode_event",
    "parse_event",
    "sign",
    "verify_signature",
]

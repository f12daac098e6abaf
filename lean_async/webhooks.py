"""Lean webhooks: the ``lean-signature`` check, typed payment-source events, and a
ready aiohttp.web receiver.

Sans-I/O, for any framework::

    event = webhooks.parse_event(body, request_headers.get(webhooks.SIGNATURE_HEADER), secret)
    if isinstance(event.payload, webhooks.BeneficiaryUpdated): ...

With aiohttp.web::

    app = webhooks.receiver(secret, handle_event, path="/webhooks/lean")
    web.run_app(app)  # handle_event: async def handle_event(event) -> None

Pass the raw request bytes: the signature is over them, not over re-encoded JSON.
"""

from __future__ import annotations

from ._constants import WEBHOOK_DRAIN_TIMEOUT as DEFAULT_DRAIN_TIMEOUT
from ._constants import WEBHOOK_MAX_BODY_SIZE as DEFAULT_MAX_BODY_SIZE
from ._constants import WEBHOOK_MAX_FAILED as DEFAULT_MAX_FAILED
from ._constants import WEBHOOK_STORE_SIZE as DEFAULT_STORE_SIZE
from ._exceptions import WebhookSignatureError
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
from ._webhook_receiver import (
    RECEIVER_KEY,
    EventHandler,
    EventStore,
    FailedEvent,
    MemoryEventStore,
    ReceiverStats,
    WebhookReceiver,
    receiver,
)
from ._webhook_signature import SIGNATURE_HEADER, sign, verify_signature

__all__ = [
    "DEFAULT_DRAIN_TIMEOUT",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_FAILED",
    "DEFAULT_STORE_SIZE",
    "RECEIVER_KEY",
    "SIGNATURE_HEADER",
    "BeneficiaryCreated",
    "BeneficiaryUpdated",
    "EventHandler",
    "EventStore",
    "EventType",
    "FailedEvent",
    "MemoryEventStore",
    "PaymentSourceCreated",
    "PaymentSourceUpdated",
    "ReceiverStats",
    "WebhookEvent",
    "WebhookPayload",
    "WebhookReceiver",
    "WebhookSignatureError",
    "decode_event",
    "parse_event",
    "receiver",
    "sign",
    "verify_signature",
]

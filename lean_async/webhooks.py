"""Lean webhooks: the ``lean-signature`` check, typed payment-source events, and a
ready aiohttp.web receiver.

Sans-I/O, for any framework::

    event = webhooks.parse_event(body, request_headers.get(webhooks.SIGNATURE_HEADER), secret)
    if isinstance(event.payload, webhooks.BeneficiaryUpdated): ...

With aiohttp.web, every event kept on disk before its 200 and handled from there::

    inbox = webhooks.SQLiteInbox("lean-events.db")
    app = webhooks.receiver(secret, handle_event, inbox=inbox, path="/webhooks/lean")
    web.run_app(app)  # handle_event: async def handle_event(event) -> None

Events a receiver missed (it was down): ``await inbox.backfill(lean, since=...)`` adds what
Lean's Events API lists and the inbox lacks.

Pass the raw request bytes: the signature is over them, not over re-encoded JSON.
"""

from __future__ import annotations

from ._constants import WEBHOOK_BODY_MEMORY as DEFAULT_BODY_MEMORY
from ._constants import WEBHOOK_BODY_TIMEOUT as DEFAULT_BODY_TIMEOUT
from ._constants import WEBHOOK_DRAIN_TIMEOUT as DEFAULT_DRAIN_TIMEOUT
from ._constants import WEBHOOK_HANDLER_CONCURRENCY as DEFAULT_HANDLER_CONCURRENCY
from ._constants import WEBHOOK_MAX_ATTEMPTS as DEFAULT_MAX_ATTEMPTS
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
    encode_event,
    parse_event,
)
from ._webhook_inbox import Inbox, InboxEntry, backfill, handler_retry_delay
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
from ._webhook_sqlite import SQLiteInbox

__all__ = [
    "DEFAULT_BODY_MEMORY",
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_DRAIN_TIMEOUT",
    "DEFAULT_HANDLER_CONCURRENCY",
    "DEFAULT_MAX_ATTEMPTS",
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
    "Inbox",
    "InboxEntry",
    "MemoryEventStore",
    "PaymentSourceCreated",
    "PaymentSourceUpdated",
    "ReceiverStats",
    "SQLiteInbox",
    "WebhookEvent",
    "WebhookPayload",
    "WebhookReceiver",
    "WebhookSignatureError",
    "backfill",
    "decode_event",
    "encode_event",
    "handler_retry_delay",
    "parse_event",
    "receiver",
    "sign",
    "verify_signature",
]

"""The msgspec structs of each API resource, one module per resource, decoders built once."""

from .customers import Customer, decode_customer, decode_customer_page
from .payment_destinations import (
    PaymentDestination,
    PaymentDestinationStatus,
    decode_payment_destination,
    decode_payment_destinations,
)

__all__ = [
    "Customer",
    "PaymentDestination",
    "PaymentDestinationStatus",
    "decode_customer",
    "decode_customer_page",
    "decode_payment_destination",
    "decode_payment_destinations",
]

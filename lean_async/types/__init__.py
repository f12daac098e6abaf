"""The msgspec structs of each API resource, one module per resource, decoders built once."""

from .customers import Customer, decode_customer, decode_customer_page
from .payment_destinations import (
    PaymentDestination,
    PaymentDestinationStatus,
    decode_payment_destination,
    decode_payment_destinations,
)
from .payment_sources import (
    AccessToken,
    Account,
    Beneficiary,
    BeneficiaryStatus,
    PaymentSource,
    PaymentSourceStatus,
    decode_payment_source,
    decode_payment_sources,
)

__all__ = [
    "AccessToken",
    "Account",
    "Beneficiary",
    "BeneficiaryStatus",
    "Customer",
    "PaymentDestination",
    "PaymentDestinationStatus",
    "PaymentSource",
    "PaymentSourceStatus",
    "decode_customer",
    "decode_customer_page",
    "decode_payment_destination",
    "decode_payment_destinations",
    "decode_payment_source",
    "decode_payment_sources",
]

"""The payment-source models, kept importable here: they live in
``lean_async.types.payment_sources``, next to the models of the other resources."""

from typing import Any

from ..types import payment_sources as _payment_sources
from ..types.payment_sources import (
    AccessToken,
    Account,
    Beneficiary,
    BeneficiaryStatus,
    PaymentSource,
    PaymentSourceStatus,
    decode_access_token,
    decode_payment_source,
    decode_payment_sources,
)

__all__ = [
    "AccessToken",
    "Account",
    "Beneficiary",
    "BeneficiaryStatus",
    "PaymentSource",
    "PaymentSourceStatus",
    "decode_access_token",
    "decode_payment_source",
    "decode_payment_sources",
]


def __getattr__(name: str) -> Any:
    # Whatever else that module defines, under its old address too.
    return getattr(_payment_sources, name)

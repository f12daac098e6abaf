"""The Payment Sources objects, as msgspec structs decoded straight from response bytes.

Every field but ``id`` is optional and unknown fields are ignored, so fields Lean adds or
drops later never break decoding. Statuses are plain strings: a value this library has
never seen keeps its value as it came; the known ones are listed in the status enums.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import msgspec

from .._json import decode_json

__all__ = [
    "Account",
    "AccessToken",
    "Beneficiary",
    "BeneficiaryStatus",
    "PaymentSource",
    "PaymentSourceStatus",
    "decode_payment_source",
    "decode_payment_sources",
]


class PaymentSourceStatus(str, enum.Enum):
    """Known values of ``PaymentSource.status`` (deprecated by Lean; see beneficiaries)."""

    AWAITING_BENEFICIARY_COOL_OFF = "AWAITING_BENEFICIARY_COOL_OFF"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"

    def __str__(self) -> str:
        return self.value


class BeneficiaryStatus(str, enum.Enum):
    """Known values of ``Beneficiary.status``."""

    AWAITING_BENEFICIARY_COOL_OFF = "AWAITING_BENEFICIARY_COOL_OFF"
    ACTIVE = "ACTIVE"

    def __str__(self) -> str:
        return self.value


class Beneficiary(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """The link between a payment source and a payment destination."""

    id: str
    payment_destination_id: str | None = None
    status: str | None = None
    beneficiary_cool_off_expiry: datetime | None = None
    bank_identifier: str | None = None

    @property
    def is_active(self) -> bool:
        return self.status == BeneficiaryStatus.ACTIVE.value


class Account(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """A chargeable bank account within a payment source."""

    id: str
    account_id: str | None = None  # deprecated by Lean
    account_name: str | None = None
    account_number: str | None = None
    iban: str | None = None
    currency: str | None = None
    balance: float | None = None  # deprecated by Lean
    balance_last_updated: datetime | None = None  # deprecated by Lean
    application_id: str | None = None

    def masked(self) -> Account:
        """A copy with the account number and IBAN masked but for their last four
        characters, for transcripts and logs."""
        return msgspec.structs.replace(
            self, account_number=_mask(self.account_number), iban=_mask(self.iban)
        )

    def __repr__(self) -> str:
        # Keep full account numbers and IBANs out of logs that print a source.
        fields = ", ".join(f"{name}={value!r}" for name, value in self.__rich_repr__())
        return f"Account({fields})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        # msgspec's own would give rich (and its tracebacks) the unmasked values.
        return [
            ("id", self.id),
            ("account_name", self.account_name),
            ("account_number", _mask(self.account_number)),
            ("iban", _mask(self.iban)),
            ("currency", self.currency),
        ]


class PaymentSource(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """A customer's bank account, tokenised once linked through the LinkSDK."""

    id: str
    customer_id: str | None = None
    app_id: str | None = None
    status: str | None = None  # deprecated by Lean: the first beneficiary's status
    bank_identifier: str | None = None
    beneficiary_cool_off_expiry: datetime | None = None  # deprecated by Lean
    consent_id: str | None = None
    account_iban_last4: str | None = None
    currency: str | None = None
    created_at: datetime | None = None
    end_user_ids: list[str] = msgspec.field(default_factory=list)
    beneficiaries: list[Beneficiary] = msgspec.field(default_factory=list)
    accounts: list[Account] = msgspec.field(default_factory=list)

    def masked(self) -> PaymentSource:
        """A copy whose accounts have their numbers and IBANs masked (``Account.masked``)."""
        return msgspec.structs.replace(
            self, accounts=[account.masked() for account in self.accounts]
        )


class AccessToken(msgspec.Struct, kw_only=True, frozen=True):
    """An OAuth2 access token, e.g. a customer-scoped one for the front-end LinkSDK."""

    access_token: str
    token_type: str = "Bearer"
    expires_in: float | None = None
    scope: str | None = None

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.__rich_repr__())
        return f"AccessToken({fields})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [
            ("access_token", "***"),
            ("token_type", self.token_type),
            ("expires_in", self.expires_in),
            ("scope", self.scope),
        ]


def _mask(value: str | None) -> str | None:
    if value is None:
        return None
    return "*" * max(len(value) - 4, 0) + value[-4:]


_LIST_DECODER = msgspec.json.Decoder(list[PaymentSource])
_ONE_DECODER = msgspec.json.Decoder(PaymentSource)
_TOKEN_DECODER = msgspec.json.Decoder(AccessToken)


def decode_payment_sources(data: bytes) -> list[PaymentSource]:
    """Decode a list response (a bare JSON array); raises DecodeError."""
    return decode_json(_LIST_DECODER, data, "the payment source list")


def decode_payment_source(data: bytes) -> PaymentSource:
    """Decode one payment source; raises DecodeError."""
    return decode_json(_ONE_DECODER, data, "the payment source")


def decode_access_token(data: bytes) -> AccessToken:
    """Decode an OAuth2 token answer; raises DecodeError without echoing the body."""
    return decode_json(_TOKEN_DECODER, data, "the token response")

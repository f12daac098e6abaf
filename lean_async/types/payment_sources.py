"""The Payment Sources objects, as msgspec structs decoded straight from response bytes.

Every field but ``id`` is optional and unknown fields are ignored, so fields Lean adds or
drops later never break decoding. Statuses are plain strings: a value this library has
never seen keeps its value as it came; the known ones are listed in the status enums.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import msgspec

from .._decode import decode_json

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


def _list_fields(struct: type[msgspec.Struct]) -> tuple[str, ...]:
    return tuple(
        field.name
        for field in msgspec.structs.fields(struct)
        if typing.get_origin(field.type) is list
    )


def _null_tolerant(struct: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """A twin of ``struct`` whose list fields also take ``null``, and ``null`` elements:
    what a decoder tries only once the strict one has failed, so the fast path keeps its
    speed and every other check stays (a wrong type fails at the same place)."""
    fields: list[tuple[str, Any, Any]] = []
    for field in msgspec.structs.fields(struct):
        kind = field.type
        if typing.get_origin(kind) is list:
            (item,) = typing.get_args(kind)
            kind = typing.Optional[list[typing.Optional[item]]]  # type: ignore[valid-type]  # noqa: UP045
        if field.default is not msgspec.NODEFAULT:
            default = msgspec.field(name=field.encode_name, default=field.default)
        elif field.default_factory is not msgspec.NODEFAULT:
            default = msgspec.field(name=field.encode_name, default=None)
        else:
            default = msgspec.field(name=field.encode_name)
        fields.append((field.name, kind, default))
    return msgspec.defstruct(f"_NullTolerant{struct.__name__}", fields, kw_only=True)


T = TypeVar("T")
_SOURCE_LISTS = _list_fields(PaymentSource)
_TolerantSource: Any = _null_tolerant(PaymentSource)


def _without_nulls(source: Any) -> PaymentSource:
    """The PaymentSource of a null-tolerant twin: a null list empty, null elements dropped."""
    values = msgspec.structs.asdict(source)
    for name in _SOURCE_LISTS:
        values[name] = [item for item in values[name] or () if item is not None]
    return PaymentSource(**values)


def _all_without_nulls(sources: list[Any]) -> list[PaymentSource]:
    return [_without_nulls(source) for source in sources]


_LIST_DECODER = msgspec.json.Decoder(list[PaymentSource])
_ONE_DECODER = msgspec.json.Decoder(PaymentSource)
_TOLERANT_LIST_DECODER = msgspec.json.Decoder(list[_TolerantSource])
_TOLERANT_ONE_DECODER = msgspec.json.Decoder(_TolerantSource)
_TOKEN_DECODER = msgspec.json.Decoder(AccessToken)


def _decode(
    strict: msgspec.json.Decoder[T],
    tolerant: msgspec.json.Decoder[Any],
    without_nulls: Callable[[Any], T],
    data: bytes,
    what: str,
) -> T:
    """``data`` decoded by ``strict``, else (on a ValidationError) by ``tolerant`` with
    its nulls taken out; DecodeError naming ``what`` when neither fits."""
    try:
        return strict.decode(data)
    except msgspec.ValidationError:
        pass  # perhaps a null where a list goes: the tolerant twin says
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return decode_json(strict, data, what)  # raises the DecodeError that says why
    return without_nulls(decode_json(tolerant, data, what))


def decode_payment_sources(data: bytes) -> list[PaymentSource]:
    """Decode a list response (a bare JSON array); raises DecodeError. A ``null`` list
    (``beneficiaries``, ``accounts``, ``end_user_ids``) is empty; ``null`` elements are
    left out."""
    return _decode(
        _LIST_DECODER, _TOLERANT_LIST_DECODER, _all_without_nulls, data, "the payment source list"
    )


def decode_payment_source(data: bytes) -> PaymentSource:
    """Decode one payment source; raises DecodeError. Nulls as in decode_payment_sources."""
    return _decode(_ONE_DECODER, _TOLERANT_ONE_DECODER, _without_nulls, data, "the payment source")


_RAW_LIST_DECODER = msgspec.json.Decoder(list[msgspec.Raw])


def decode_raw_payment_sources(data: bytes) -> list[msgspec.Raw]:
    """A list response's payment sources as Lean sent them, each its JSON bytes (unknown
    fields included), after the same checks as decode_payment_sources; raises DecodeError."""
    decode_payment_sources(data)
    return _RAW_LIST_DECODER.decode(data)


def decode_access_token(data: bytes) -> AccessToken:
    """Decode an OAuth2 token answer; raises DecodeError without echoing the body."""
    return decode_json(_TOKEN_DECODER, data, "the token response")

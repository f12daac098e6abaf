"""The Payment Destinations API's object: an account that payments are made to."""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from .._decode import decode_json
from .payment_sources import _mask

__all__ = [
    "PaymentDestination",
    "PaymentDestinationStatus",
    "decode_payment_destination",
    "decode_payment_destinations",
]


class PaymentDestinationStatus(str, enum.Enum):
    """Known values of ``PaymentDestination.status`` (a value not listed keeps its value)."""

    CONFIRMED = "CONFIRMED"
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"  # what the create example answers

    def __str__(self) -> str:
        return self.value


_MASKED: frozenset[str] = frozenset({"iban", "account_number"})


class PaymentDestination(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """A bank account that payments go to: a beneficiary's ``payment_destination_id``
    names one. The application's own accounts have no ``customer_id``.

    Every field but ``id`` is optional and unknown fields are ignored; ``repr()`` masks
    the IBAN and account number.
    """

    id: str
    status: str | None = None
    default: bool | None = None
    name: str | None = None
    display_name: str | None = None
    iban: str | None = None
    account_number: str | None = None
    swift_code: str | None = None
    currency: str | None = None
    customer_id: str | None = None
    address: str | None = None
    city: str | None = None
    country: str | None = None  # ISO 3166 alpha-3, e.g. ARE
    branch_address: str | None = None
    postal_code: str | None = None
    # International routing numbers.
    ifsc: str | None = None
    transit_number: str | None = None
    sort_code: str | None = None
    routing_number: str | None = None

    def masked(self) -> PaymentDestination:
        """A copy with the IBAN and account number masked but for their last four
        characters, for transcripts and logs."""
        return msgspec.structs.replace(
            self, **{name: _mask(getattr(self, name)) for name in _MASKED}
        )

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.__rich_repr__())
        return f"PaymentDestination({fields})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        # msgspec's own would give rich (and its tracebacks) the unmasked values.
        pairs = ((name, getattr(self, name)) for name in self.__struct_fields__)
        return [
            (name, _mask(value) if name in _MASKED else value)
            for name, value in pairs
            if value is not None or name == "id"
        ]


_LIST_DECODER = msgspec.json.Decoder(list[PaymentDestination])
_ONE_DECODER = msgspec.json.Decoder(PaymentDestination)


def decode_payment_destinations(data: bytes) -> list[PaymentDestination]:
    """Decode a list answer (a bare JSON array); raises DecodeError."""
    return decode_json(_LIST_DECODER, data, "the payment destination list")


def decode_payment_destination(data: bytes) -> PaymentDestination:
    """Decode one payment destination; raises DecodeError."""
    return decode_json(_ONE_DECODER, data, "the payment destination")

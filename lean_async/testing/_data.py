"""The fake server's data set: customers and their payment sources, generated from a seed,
with every answer body encoded once up front so that serving it costs a dict lookup."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

import msgspec

from .._exceptions import InvalidIdError
from .._ids import validate_id
from ..models import (
    Account,
    Beneficiary,
    BeneficiaryStatus,
    PaymentSource,
    PaymentSourceStatus,
)

__all__ = ["BANKS", "Bank", "DataSet", "iban", "is_uuid", "new_payment_source"]


@dataclass(frozen=True)
class Bank:
    identifier: str
    name: str
    country: str  # ISO 3166 alpha-2, which is also the IBAN prefix
    code: str  # the bank code inside the IBAN
    currency: str


BANKS: Final = (
    Bank("ENBD_UAE", "Emirates NBD", "AE", "026", "AED"),
    Bank("ADCB_UAE", "Abu Dhabi Commercial Bank", "AE", "003", "AED"),
    Bank("FAB_UAE", "First Abu Dhabi Bank", "AE", "035", "AED"),
    Bank("MASHREQ_UAE", "Mashreq", "AE", "033", "AED"),
    Bank("ADIB_UAE", "Abu Dhabi Islamic Bank", "AE", "050", "AED"),
    Bank("DIB_UAE", "Dubai Islamic Bank", "AE", "024", "AED"),
    Bank("RAJHI_KSA", "Al Rajhi Bank", "SA", "80", "SAR"),
    Bank("SNB_KSA", "Saudi National Bank", "SA", "10", "SAR"),
    Bank("RIYAD_KSA", "Riyad Bank", "SA", "20", "SAR"),
    Bank("SAB_KSA", "Saudi Awwal Bank", "SA", "45", "SAR"),
    Bank("ALINMA_KSA", "Alinma Bank", "SA", "05", "SAR"),
)
BANKS_BY_ID: Final = {bank.identifier: bank for bank in BANKS}

# BBAN length after the bank code: AE is 3 + 16 digits (23 chars), SA is 2 + 18 (24 chars).
_ACCOUNT_DIGITS: Final = {"AE": 16, "SA": 18}
_ACCOUNT_NAMES: Final = (
    "CURRENT ACCOUNT",
    "SAVINGS ACCOUNT",
    "CURRENCY PASSPORT SAVINGS AC",
    "GOLD SAVINGS ACCOUNT",
    "SALARY ACCOUNT",
)
# Top-level statuses: the reference page's two and the OpenAPI's EXPIRED and REVOKED.
_STATUS_WEIGHTS: Final = {
    PaymentSourceStatus.ACTIVE.value: 50,
    PaymentSourceStatus.AWAITING_BENEFICIARY_COOL_OFF.value: 30,
    PaymentSourceStatus.EXPIRED.value: 10,
    PaymentSourceStatus.REVOKED.value: 10,
}
_SOURCES_PER_CUSTOMER_WEIGHTS: Final = (15, 45, 25, 10, 5)  # 0, 1, 2, 3, 4 sources
# Generated timestamps lie in the year before this instant, so a seed gives the same data
# whenever it runs.
DATA_EPOCH: Final = datetime(2026, 1, 1, tzinfo=timezone.utc)
COOL_OFF: Final = timedelta(hours=24)  # the longest bank cool-off Lean mentions


def iban(country: str, bank_code: str, account_number: str) -> str:
    """An IBAN with its ISO 13616 mod-97 check digits."""
    bban = bank_code + account_number.zfill(_ACCOUNT_DIGITS[country])
    digits = "".join(str(int(char, 36)) for char in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


def is_uuid(value: str) -> bool:
    """Whether ``value`` is a UUID in the form Lean's paths take (the client's own rule)."""
    try:
        validate_id(value, "id")
    except InvalidIdError:
        return False
    return True


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _instant(rng: random.Random, after: datetime, within: timedelta) -> datetime:
    """A random instant in [after, after + within), always with non-zero microseconds."""
    moment = after + timedelta(seconds=rng.uniform(0, within.total_seconds()))
    return moment.replace(microsecond=rng.randint(1, 999_999))


def _account(rng: random.Random, bank: Bank, app_id: str, created_at: datetime) -> Account:
    number = str(rng.randint(10**12, 10**13 - 1))
    currency = bank.currency if rng.random() < 0.75 else "USD"
    with_balance = rng.random() < 0.8  # the single-source example omits the balance
    return Account(
        id=_uuid(rng),
        account_id=_uuid(rng),
        account_name=rng.choice(_ACCOUNT_NAMES),
        account_number=number,
        iban=iban(bank.country, bank.code, number),
        currency=currency,
        balance=round(rng.uniform(0, 250_000), 2) if with_balance else None,
        balance_last_updated=(
            _instant(rng, created_at, timedelta(days=30)) if with_balance else None
        ),
        application_id=app_id if rng.random() < 0.2 else None,
    )


def _beneficiary(
    rng: random.Random, bank: Bank, destination: str, status: str, cool_off_expiry: datetime
) -> Beneficiary:
    beneficiary_id = _uuid(rng)
    return Beneficiary(
        # Lean's own example has an upper-case beneficiary id.
        id=beneficiary_id.upper() if rng.random() < 0.3 else beneficiary_id,
        payment_destination_id=destination,
        status=status,
        beneficiary_cool_off_expiry=cool_off_expiry,
        bank_identifier=bank.identifier if rng.random() < 0.5 else None,
    )


def new_payment_source(
    rng: random.Random,
    *,
    app_id: str,
    customer_id: str,
    destinations: list[str],
    created_at: datetime,
    bank: Bank | None = None,
    status: str | None = None,
) -> PaymentSource:
    """One payment source with 1-3 accounts and a beneficiary for each of ``destinations``;
    the first beneficiary's status is the source's (ACTIVE for EXPIRED and REVOKED ones)."""
    bank = bank or rng.choice(BANKS)
    if status is None:
        status = rng.choices(list(_STATUS_WEIGHTS), weights=list(_STATUS_WEIGHTS.values()))[0]
    accounts = [_account(rng, bank, app_id, created_at) for _ in range(rng.randint(1, 3))]
    cool_off_expiry = _instant(rng, created_at, COOL_OFF)
    awaiting = BeneficiaryStatus.AWAITING_BENEFICIARY_COOL_OFF.value
    beneficiaries = [
        _beneficiary(
            rng,
            bank,
            destinations[0],
            awaiting if status == awaiting else BeneficiaryStatus.ACTIVE.value,
            cool_off_expiry,
        )
    ]
    beneficiaries += [
        _beneficiary(
            rng,
            bank,
            destination,
            rng.choice(list(BeneficiaryStatus)).value,
            _instant(rng, created_at, COOL_OFF),
        )
        for destination in destinations[1:]
    ]
    first_iban = accounts[0].iban or ""
    return PaymentSource(
        id=_uuid(rng),
        customer_id=customer_id,
        app_id=app_id,
        status=status,
        bank_identifier=bank.identifier,
        beneficiary_cool_off_expiry=cool_off_expiry,
        consent_id=_uuid(rng),
        account_iban_last4=first_iban[-4:],
        currency=accounts[0].currency,
        created_at=created_at,
        end_user_ids=[_uuid(rng)] if rng.random() < 0.5 else [],
        beneficiaries=beneficiaries,
        accounts=accounts,
    )


def _without_nulls(value: Any) -> Any:
    """Builtins with None-valued keys left out: Lean omits a field rather than send null."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def encode_source(source: PaymentSource) -> bytes:
    return msgspec.json.encode(_without_nulls(msgspec.to_builtins(source)))


class _File(msgspec.Struct):
    app_id: str
    destinations: list[str]
    customers: dict[str, list[PaymentSource]]


class DataSet:
    """Customers and their payment sources, with each answer body encoded once.

    Ids are looked up case-insensitively and kept as generated (or loaded).
    """

    def __init__(
        self,
        app_id: str,
        destinations: list[str],
        customers: dict[str, list[PaymentSource]],
    ) -> None:
        self.app_id = app_id
        self.destinations = destinations
        self._customer_ids: dict[str, str] = {}  # lower-case -> as given
        self._sources: dict[str, dict[str, PaymentSource]] = {}  # by lower-case ids
        self._source_bodies: dict[tuple[str, str], bytes] = {}
        self._list_bodies: dict[str, bytes] = {}
        for customer_id, sources in customers.items():
            key = self._add_customer(customer_id)
            for source in sources:
                self._store(key, source)
            self._encode_list(key)

    @classmethod
    def generate(cls, customers: int, seed: int = 0) -> DataSet:
        """``customers`` customers with 0 to 4 payment sources each; the same seed always
        gives the same data."""
        rng = random.Random(seed)
        app_id = _uuid(rng)
        destinations = [_uuid(rng) for _ in range(3)]
        data: dict[str, list[PaymentSource]] = {}
        year = timedelta(days=365)
        for _ in range(customers):
            customer_id = _uuid(rng)
            count = rng.choices(range(5), weights=_SOURCES_PER_CUSTOMER_WEIGHTS)[0]
            data[customer_id] = [
                new_payment_source(
                    rng,
                    app_id=app_id,
                    customer_id=customer_id,
                    # Every source pays the app's first destination, some others too.
                    destinations=destinations[:1]
                    + rng.sample(destinations[1:], rng.randint(0, len(destinations) - 1)),
                    created_at=_instant(rng, DATA_EPOCH - year, year),
                )
                for _ in range(count)
            ]
        return cls(app_id, destinations, data)

    @classmethod
    def load(cls, path: str | Path) -> DataSet:
        """A data set saved by ``save``."""
        file = msgspec.json.decode(Path(path).read_bytes(), type=_File)
        return cls(file.app_id, file.destinations, file.customers)

    def save(self, path: str | Path) -> None:
        customers = {
            self._customer_ids[key]: [msgspec.Raw(self._source_bodies[key, s]) for s in ids]
            for key, ids in self._sources.items()
        }
        body = {"app_id": self.app_id, "destinations": self.destinations, "customers": customers}
        Path(path).write_bytes(msgspec.json.format(msgspec.json.encode(body), indent=1))

    @property
    def customer_ids(self) -> list[str]:
        return list(self._customer_ids.values())

    def payment_sources(self, customer_id: str) -> list[PaymentSource]:
        return list(self._sources.get(customer_id.lower(), {}).values())

    def all_payment_sources(self) -> Iterable[PaymentSource]:
        for sources in self._sources.values():
            yield from sources.values()

    def find(self, customer_id: str, payment_source_id: str) -> PaymentSource | None:
        return self._sources.get(customer_id.lower(), {}).get(payment_source_id.lower())

    def list_body(self, customer_id: str) -> bytes | None:
        """The encoded list answer; None for a customer that does not exist."""
        return self._list_bodies.get(customer_id.lower())

    def source_body(self, customer_id: str, payment_source_id: str) -> bytes | None:
        return self._source_bodies.get((customer_id.lower(), payment_source_id.lower()))

    def put(self, customer_id: str, source: PaymentSource) -> None:
        """Add or replace a payment source (creating the customer if new)."""
        key = self._add_customer(customer_id)
        self._store(key, source)
        self._encode_list(key)

    def remove(self, customer_id: str, payment_source_id: str) -> PaymentSource | None:
        key = customer_id.lower()
        source = self._sources.get(key, {}).pop(payment_source_id.lower(), None)
        if source is not None:
            del self._source_bodies[key, source.id.lower()]
            self._encode_list(key)
        return source

    def _add_customer(self, customer_id: str) -> str:
        key = customer_id.lower()
        if key not in self._customer_ids:
            self._customer_ids[key] = customer_id
            self._sources[key] = {}
            self._list_bodies[key] = b"[]"
        return key

    def _store(self, key: str, source: PaymentSource) -> None:
        source_key = source.id.lower()
        self._sources[key][source_key] = source
        self._source_bodies[key, source_key] = encode_source(source)

    def _encode_list(self, key: str) -> None:
        bodies = (self._source_bodies[key, source_key] for source_key in self._sources[key])
        self._list_bodies[key] = b"[" + b",".join(bodies) + b"]"

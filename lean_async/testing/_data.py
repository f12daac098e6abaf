"""The fake server's data set: customers, their payment sources and the payment destinations
those pay, generated from a seed, with every answer body encoded once up front so that
serving it costs a dict lookup."""

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
from ..types.customers import Customer
from ..types.payment_destinations import PaymentDestination, PaymentDestinationStatus

__all__ = [
    "BANKS",
    "Bank",
    "DataSet",
    "iban",
    "is_uuid",
    "new_payment_destination",
    "new_payment_source",
]


@dataclass(frozen=True)
class Bank:
    identifier: str
    name: str
    country: str  # ISO 3166 alpha-2, which is also the IBAN prefix
    code: str  # the bank code inside the IBAN
    currency: str
    swift_code: str = ""


BANKS: Final = (
    Bank("ENBD_UAE", "Emirates NBD", "AE", "026", "AED", "EBILAEADXXX"),
    Bank("ADCB_UAE", "Abu Dhabi Commercial Bank", "AE", "003", "AED", "ADCBAEAAXXX"),
    Bank("FAB_UAE", "First Abu Dhabi Bank", "AE", "035", "AED", "NBADAEAAXXX"),
    Bank("MASHREQ_UAE", "Mashreq", "AE", "033", "AED", "BOMLAEADXXX"),
    Bank("ADIB_UAE", "Abu Dhabi Islamic Bank", "AE", "050", "AED", "ABDIAEADXXX"),
    Bank("DIB_UAE", "Dubai Islamic Bank", "AE", "024", "AED", "DUIBAEADXXX"),
    Bank("RAJHI_KSA", "Al Rajhi Bank", "SA", "80", "SAR", "RJHISARIXXX"),
    Bank("SNB_KSA", "Saudi National Bank", "SA", "10", "SAR", "NCBKSAJEXXX"),
    Bank("RIYAD_KSA", "Riyad Bank", "SA", "20", "SAR", "RIBLSARIXXX"),
    Bank("SAB_KSA", "Saudi Awwal Bank", "SA", "45", "SAR", "SABBSARIXXX"),
    Bank("ALINMA_KSA", "Alinma Bank", "SA", "05", "SAR", "INMASARIXXX"),
)
_UAE_BANKS: Final = tuple(bank for bank in BANKS if bank.country == "AE")
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


# Every customer at this position (0, 4, 8...) of the initial data set has a payment
# destination of its own (for payouts to it); a rule, so that a saved data set loads alike.
_CUSTOMER_DESTINATION_EVERY: Final = 4


def new_payment_destination(
    destination_id: str, *, index: int = 0, customer_id: str | None = None
) -> PaymentDestination:
    """The payment destination of this id, always the same for the same arguments: one of
    the application's accounts (``index`` 0 is its default), or ``customer_id``'s own."""
    rng = random.Random(f"lean-async fake destination {destination_id}")
    bank = rng.choice(_UAE_BANKS)
    number = str(rng.randint(10**8, 10**9 - 1)).zfill(12)
    if customer_id is None:
        currency = "AED" if index % 2 == 0 else "USD"
        name, display_name = "Fake Corp.", f"Fake Corp. - {currency}"
        status = PaymentDestinationStatus.CONFIRMED.value
    else:
        currency = bank.currency
        name = display_name = f"Customer {customer_id[:8]}"
        status = rng.choice(list(PaymentDestinationStatus)).value
    return PaymentDestination(
        id=destination_id,
        status=status,
        default=customer_id is None and index == 0,
        name=name,
        display_name=display_name,
        iban=iban(bank.country, bank.code, number),
        account_number=number,
        swift_code=bank.swift_code,
        currency=currency,
        customer_id=customer_id,
        address="1234 Sky Bldg.",
        city="Abu Dhabi",
        country="ARE",
        branch_address=f"{bank.name}, Abu Dhabi, United Arab Emirates",
    )


def _derived_uuid(*parts: str) -> str:
    """A UUID that depends only on ``parts`` (the seed's random stream is left alone)."""
    return str(uuid.UUID(int=random.Random(" ".join(parts)).getrandbits(128), version=4))


def _without_nulls(value: Any) -> Any:
    """Builtins with None-valued keys left out: Lean omits a field rather than send null."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def encode_without_nulls(value: PaymentSource | PaymentDestination) -> bytes:
    return msgspec.json.encode(_without_nulls(msgspec.to_builtins(value)))


def _join(bodies: Iterable[bytes]) -> bytes:
    return b"[" + b",".join(bodies) + b"]"


class _File(msgspec.Struct):
    app_id: str
    destinations: list[str]
    customers: dict[str, list[PaymentSource]]
    # Missing in files saved before customers had one: then "user-<customer id>".
    app_user_ids: dict[str, str] = msgspec.field(default_factory=dict)


class DataSet:
    """Customers, their payment sources, and payment destinations, with each answer body
    encoded once.

    Ids are looked up case-insensitively and kept as generated (or loaded). Customers keep
    the order they were added in (the order of the customer list). Every
    ``payment_destination_id`` of a beneficiary names a destination of the data set.
    """

    def __init__(
        self,
        app_id: str,
        destinations: list[str],
        customers: dict[str, list[PaymentSource]],
        app_user_ids: dict[str, str] | None = None,
    ) -> None:
        self.app_id = app_id
        self.destinations: list[str] = []  # the application's own, in order
        self._customer_ids: dict[str, str] = {}  # lower-case -> as given, in order
        self._customer_order: list[str] = []  # lower-case ids, for pages by offset
        self._app_user_ids: dict[str, str] = {}  # lower-case customer id -> app user id
        self._by_app_user_id: dict[str, str] = {}  # app user id -> lower-case customer id
        self._customer_bodies: dict[str, bytes] = {}
        self._sources: dict[str, dict[str, PaymentSource]] = {}  # by lower-case ids
        self._source_bodies: dict[tuple[str, str], bytes] = {}
        self._list_bodies: dict[str, bytes] = {}
        self._destinations: dict[str, PaymentDestination] = {}  # by lower-case id
        self._destination_bodies: dict[str, bytes] = {}
        self._customer_destinations: dict[str, list[str]] = {}  # customer -> destinations
        self._destination_list_body = b"[]"
        for destination_id in destinations:
            self._add_destination(destination_id)
        app_user_ids = app_user_ids or {}
        for position, (customer_id, sources) in enumerate(customers.items()):
            key = self._add_customer(customer_id, app_user_ids.get(customer_id))
            for source in sources:
                self._store(key, source)
            self._encode_list(key)
            if position % _CUSTOMER_DESTINATION_EVERY == 0:
                self._add_destination(_derived_uuid("destination", key), customer_id)
        self._encode_destination_list()

    @classmethod
    def generate(cls, customers: int, seed: int = 0) -> DataSet:
        """``customers`` customers (app user ids ``user-1``, ``user-2``...) with 0 to 4
        payment sources each; the same seed always gives the same data."""
        rng = random.Random(seed)
        app_id = _uuid(rng)
        destinations = [_uuid(rng) for _ in range(3)]
        data: dict[str, list[PaymentSource]] = {}
        app_user_ids: dict[str, str] = {}
        year = timedelta(days=365)
        for number in range(1, customers + 1):
            customer_id = _uuid(rng)
            app_user_ids[customer_id] = f"user-{number}"
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
        return cls(app_id, destinations, data, app_user_ids)

    @classmethod
    def load(cls, path: str | Path) -> DataSet:
        """A data set saved by ``save``."""
        file = msgspec.json.decode(Path(path).read_bytes(), type=_File)
        return cls(file.app_id, file.destinations, file.customers, file.app_user_ids)

    def save(self, path: str | Path) -> None:
        customers = {
            self._customer_ids[key]: [msgspec.Raw(self._source_bodies[key, s]) for s in ids]
            for key, ids in self._sources.items()
        }
        app_user_ids = {
            self._customer_ids[key]: app_user_id for key, app_user_id in self._app_user_ids.items()
        }
        body = {
            "app_id": self.app_id,
            "destinations": self.destinations,
            "customers": customers,
            "app_user_ids": app_user_ids,
        }
        Path(path).write_bytes(msgspec.json.format(msgspec.json.encode(body), indent=1))

    # -- customers -----------------------------------------------------------------

    @property
    def customer_ids(self) -> list[str]:
        return list(self._customer_ids.values())

    @property
    def customers(self) -> list[Customer]:
        return [self._customer(key) for key in self._customer_order]

    def _customer(self, key: str) -> Customer:
        return Customer(customer_id=self._customer_ids[key], app_user_id=self._app_user_ids[key])

    def add_customer(self, customer_id: str, app_user_id: str) -> Customer:
        """A new customer; ValueError if the id or the app user id is taken."""
        if customer_id.lower() in self._customer_ids or app_user_id in self._by_app_user_id:
            raise ValueError(f"customer {customer_id} or app user {app_user_id!r} exists")
        return self._customer(self._add_customer(customer_id, app_user_id))

    def customer_key(self, customer_id: str) -> str | None:
        """The customer's lower-case id, None if there is no such customer."""
        key = customer_id.lower()
        return key if key in self._customer_ids else None

    def customer_key_of_app_user(self, app_user_id: str) -> str | None:
        return self._by_app_user_id.get(app_user_id)

    def customer_body(self, key: str) -> bytes:
        return self._customer_bodies[key]

    def customer_page_body(self, number: int, size: int) -> bytes:
        """Page ``number`` (from 0) of ``size`` customers, in Lean's envelope."""
        total = len(self._customer_order)
        start = number * size
        page = msgspec.json.encode(
            {
                "number": number,
                "size": size,
                "total_elements": total,
                "total_pages": -(-total // size),
                "sort": None,
            }
        )
        data = _join(self._customer_bodies[key] for key in self._customer_order[start:][:size])
        return b'{"data":' + data + b',"page":' + page + b"}"

    # -- payment sources -----------------------------------------------------------

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
        """Add or replace a payment source (creating the customer if new, and the
        destinations its beneficiaries pay if unknown)."""
        key = self._add_customer(customer_id)
        self._store(key, source)
        self._encode_list(key)
        unknown = [
            beneficiary.payment_destination_id
            for beneficiary in source.beneficiaries
            if beneficiary.payment_destination_id is not None
            and beneficiary.payment_destination_id.lower() not in self._destinations
        ]
        for destination_id in unknown:
            self._add_destination(destination_id)
        if unknown:
            self._encode_destination_list()

    def remove(self, customer_id: str, payment_source_id: str) -> PaymentSource | None:
        key = customer_id.lower()
        source = self._sources.get(key, {}).pop(payment_source_id.lower(), None)
        if source is not None:
            del self._source_bodies[key, source.id.lower()]
            self._encode_list(key)
        return source

    # -- payment destinations ------------------------------------------------------

    def payment_destination(self, destination_id: str) -> PaymentDestination | None:
        return self._destinations.get(destination_id.lower())

    def destination_body(self, destination_id: str) -> bytes | None:
        return self._destination_bodies.get(destination_id.lower())

    def destination_list_body(self) -> bytes:
        """The application's own payment destinations."""
        return self._destination_list_body

    def customer_destinations_body(self, key: str) -> bytes:
        ids = self._customer_destinations.get(key, ())
        return _join(self._destination_bodies[destination] for destination in ids)

    # -- keeping the bodies ----------------------------------------------------------

    def _add_customer(self, customer_id: str, app_user_id: str | None = None) -> str:
        key = customer_id.lower()
        if key not in self._customer_ids:
            app_user_id = app_user_id or f"user-{customer_id}"
            self._customer_ids[key] = customer_id
            self._customer_order.append(key)
            self._app_user_ids[key] = app_user_id
            self._by_app_user_id[app_user_id] = key
            self._customer_bodies[key] = msgspec.json.encode(self._customer(key))
            self._sources[key] = {}
            self._list_bodies[key] = b"[]"
        return key

    def _add_destination(self, destination_id: str, customer_id: str | None = None) -> None:
        destination = new_payment_destination(
            destination_id, index=len(self.destinations), customer_id=customer_id
        )
        key = destination_id.lower()
        self._destinations[key] = destination
        self._destination_bodies[key] = encode_without_nulls(destination)
        if customer_id is None:
            self.destinations.append(destination_id)
        else:
            self._customer_destinations.setdefault(customer_id.lower(), []).append(key)

    def _encode_destination_list(self) -> None:
        self._destination_list_body = _join(
            self._destination_bodies[destination.lower()] for destination in self.destinations
        )

    def _store(self, key: str, source: PaymentSource) -> None:
        source_key = source.id.lower()
        self._sources[key][source_key] = source
        self._source_bodies[key, source_key] = encode_without_nulls(source)

    def _encode_list(self, key: str) -> None:
        self._list_bodies[key] = _join(
            self._source_bodies[key, source_key] for source_key in self._sources[key]
        )

"""Property-based specifications (hypothesis): ids, decoders, and header parsing hold for
every input, not just the listed cases."""

from __future__ import annotations

import contextlib
import json
import math
import re
import uuid
from datetime import timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from lean_async import DecodeError, InvalidIdError
from lean_async._exceptions import error_from_response
from lean_async._ids import validate_id
from lean_async._retry import parse_retry_after
from lean_async.models import (
    Account,
    Beneficiary,
    PaymentSource,
    decode_payment_source,
    decode_payment_sources,
)
from lean_async.resources.payment_sources import PaymentSources
from lean_async.webhooks import decode_event

CANONICAL = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
SAFE_PATH = re.compile(r"/customers/v1/[0-9a-fA-F-]{36}/payment-sources/[0-9a-fA-F-]{36}")

# -- ids ---------------------------------------------------------------------------------


@st.composite
def uuid_strings_in_any_case(draw: st.DrawFn) -> str:
    text = str(draw(st.uuids()))
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if flip else c for c, flip in zip(text, flips, strict=True))


@given(uuid_strings_in_any_case())
def test_every_uuid_string_in_any_case_is_sent_exactly_as_given(value: str) -> None:
    assert validate_id(value, "customer_id") == value


@given(st.uuids())
def test_every_uuid_object_is_sent_in_canonical_form(value: uuid.UUID) -> None:
    assert validate_id(value, "customer_id") == str(value)


@given(st.text())
def test_text_that_is_not_a_canonical_uuid_is_never_accepted(value: str) -> None:
    if CANONICAL.fullmatch(value):
        return  # the one shape accepted (hypothesis almost never draws one)
    try:
        validate_id(value, "customer_id")
    except InvalidIdError:
        return
    raise AssertionError(f"{value!r} was accepted")


ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.binary(),
    st.text(),
    st.lists(st.text(), max_size=3),
    st.builds(lambda u: u.bytes, st.uuids()),
    st.builds(lambda u: u.hex, st.uuids()),
    st.builds(lambda u: u.urn, st.uuids()),
    st.builds(lambda u: f"{{{u}}}", st.uuids()),
    st.builds(lambda u, s: f"{u}{s}", st.uuids(), st.text(min_size=1)),
    st.builds(lambda s, u: f"{s}{u}", st.text(min_size=1), st.uuids()),
    # And the valid ids, so that the accepted branch is exercised too (without them no
    # draw ever reached the path's assertions).
    st.uuids(),
    uuid_strings_in_any_case(),
)


def _is_valid_id(value: object) -> bool:
    """The oracle, independent of the library: a UUID, or its canonical text in any case."""
    if isinstance(value, uuid.UUID):
        return True
    return type(value) is str and CANONICAL.fullmatch(value) is not None


@given(ANYTHING, ANYTHING)
def test_a_path_is_built_from_two_valid_ids_and_from_nothing_else(
    customer: Any, source: Any
) -> None:
    valid = _is_valid_id(customer) and _is_valid_id(source)
    event("both ids valid" if valid else "an id invalid")
    if not valid:
        with pytest.raises(InvalidIdError):
            PaymentSources._source_path(customer, source)
        return
    path = PaymentSources._source_path(customer, source)
    assert SAFE_PATH.fullmatch(path)
    assert path == f"/customers/v1/{customer}/payment-sources/{source}"


def test_the_path_property_draws_valid_and_invalid_pairs() -> None:
    # The property above asserts on both branches only if hypothesis reaches both.
    seen: set[bool] = set()

    @settings(max_examples=200, database=None)
    @given(ANYTHING, ANYTHING)
    def record(customer: Any, source: Any) -> None:
        seen.add(_is_valid_id(customer) and _is_valid_id(source))

    record()
    assert seen == {True, False}


# -- decoding ----------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["id", "accounts", "beneficiaries", "iban", "type", "payload", "x"])
            | st.text(max_size=5),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)
JSON_BYTES = JSON.map(lambda value: json.dumps(value).encode())
BODIES = st.one_of(JSON_BYTES, st.binary(max_size=200))


@given(BODIES)
def test_any_body_decodes_to_a_list_or_raises_decode_error(body: bytes) -> None:
    with contextlib.suppress(DecodeError):
        assert isinstance(decode_payment_sources(body), list)


@given(BODIES)
def test_any_body_decodes_to_a_source_or_raises_decode_error(body: bytes) -> None:
    with contextlib.suppress(DecodeError):
        assert isinstance(decode_payment_source(body), PaymentSource)


@given(
    st.one_of(
        BODIES,
        st.builds(
            lambda type_, payload, extra: json.dumps(
                {"type": type_, "event_id": "e", "timestamp": "2026-01-01T00:00:00Z"}
                | {"payload": payload}
                | extra
            ).encode(),
            st.sampled_from(
                [
                    "payment_source.created",
                    "payment_source.updated",
                    "payment_source.beneficiary.created",
                    "payment_source.beneficiary.updated",
                    "something.new",
                ]
            ),
            JSON,
            st.dictionaries(st.sampled_from(["message", "timestamp", "event_id"]), JSON),
        ),
    )
)
def test_any_webhook_body_decodes_to_an_event_or_raises_decode_error(body: bytes) -> None:
    try:
        decoded = decode_event(body)
    except DecodeError:
        event("refused")
        return
    event("decoded")
    assert decoded.type == json.loads(body)["type"]


@given(st.integers(100, 599), BODIES)
def test_any_error_body_gives_the_error_for_its_status(status: int, body: bytes) -> None:
    error = error_from_response(status, {}, body)
    assert error.status_code == status
    assert error.message is None or len(error.message) <= 303


# -- round trip --------------------------------------------------------------------------

IDS = st.uuids().map(str)
TEXT = st.none() | st.text(max_size=20)
WHEN = st.none() | st.datetimes(
    timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=4))])
)
ACCOUNTS = st.builds(
    Account,
    id=IDS,
    account_id=st.none() | IDS,
    account_name=TEXT,
    account_number=st.none() | st.from_regex(r"[0-9]{13}", fullmatch=True),
    iban=TEXT,
    currency=TEXT,
    balance=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    balance_last_updated=WHEN,
    application_id=st.none() | IDS,
)
BENEFICIARIES = st.builds(
    Beneficiary,
    id=IDS,
    payment_destination_id=st.none() | IDS,
    status=TEXT,
    beneficiary_cool_off_expiry=WHEN,
    bank_identifier=TEXT,
)
SOURCES = st.builds(
    PaymentSource,
    id=IDS,
    customer_id=st.none() | IDS,
    app_id=TEXT,
    status=TEXT,
    bank_identifier=TEXT,
    beneficiary_cool_off_expiry=WHEN,
    consent_id=TEXT,
    account_iban_last4=TEXT,
    currency=TEXT,
    created_at=WHEN,
    end_user_ids=st.lists(IDS, max_size=2),
    beneficiaries=st.lists(BENEFICIARIES, max_size=2),
    accounts=st.lists(ACCOUNTS, max_size=2),
)


@given(SOURCES)
def test_a_payment_source_survives_encoding_and_decoding(source: PaymentSource) -> None:
    assert decode_payment_source(msgspec.json.encode(source)) == source


@settings(max_examples=50)
@given(st.lists(SOURCES, max_size=4))
def test_a_list_of_payment_sources_survives_encoding_and_decoding(
    sources: list[PaymentSource],
) -> None:
    assert decode_payment_sources(msgspec.json.encode(sources)) == sources


# -- headers -----------------------------------------------------------------------------


@given(st.none() | st.text(), st.floats(0, 4e9))
def test_any_retry_after_header_gives_none_or_a_finite_wait(header: str | None, now: float) -> None:
    wait = parse_retry_after(header, now)
    assert wait is None or (math.isfinite(wait) and wait >= 0)

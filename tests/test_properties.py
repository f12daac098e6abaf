"""Property-based specifications (hypothesis): ids, decoders, and header parsing hold for
every input, not just the listed cases."""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable
from datetime import timedelta, timezone
from email.utils import formatdate
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


def _branches_drawn(strategy: st.SearchStrategy[Any], branch: Callable[[Any], bool]) -> set[bool]:
    """Which of a property's two branches 200 draws of ``strategy`` reach: a property
    asserts on a branch only if hypothesis draws a case for it."""
    seen: set[bool] = set()

    @settings(max_examples=200, database=None)
    @given(strategy)
    def record(value: Any) -> None:
        seen.add(branch(value))

    record()
    return seen


def test_the_path_property_draws_valid_and_invalid_pairs() -> None:
    pairs = st.tuples(ANYTHING, ANYTHING)
    assert _branches_drawn(pairs, lambda pair: _is_valid_id(pair[0]) and _is_valid_id(pair[1])) == {
        True,
        False,
    }


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


def _decodes(decode: Callable[[bytes], Any], body: bytes) -> bool:
    try:
        decode(body)
    except DecodeError:
        return False
    return True


# Random JSON is practically never a payment source: the valid encodings are drawn too,
# so that the decoded branch's assertions run.
SOURCE_BODIES = st.one_of(BODIES, SOURCES.map(msgspec.json.encode))
SOURCE_LIST_BODIES = st.one_of(BODIES, st.lists(SOURCES, max_size=3).map(msgspec.json.encode))


@given(SOURCE_LIST_BODIES)
def test_any_body_decodes_to_a_list_of_sources_or_raises_decode_error(body: bytes) -> None:
    try:
        sources = decode_payment_sources(body)
    except DecodeError:
        event("refused")
        return
    event("decoded")
    assert all(isinstance(s, PaymentSource) for s in sources)
    assert [s.id for s in sources] == [item["id"] for item in json.loads(body)]


@given(SOURCE_BODIES)
def test_any_body_decodes_to_a_source_or_raises_decode_error(body: bytes) -> None:
    try:
        source = decode_payment_source(body)
    except DecodeError:
        event("refused")
        return
    event("decoded")
    assert isinstance(source, PaymentSource)
    assert source.id == json.loads(body)["id"]


@pytest.mark.parametrize(
    ("bodies", "decode"),
    [(SOURCE_BODIES, decode_payment_source), (SOURCE_LIST_BODIES, decode_payment_sources)],
    ids=["source", "list"],
)
def test_the_decoder_properties_draw_bodies_decoded_and_refused(
    bodies: st.SearchStrategy[bytes], decode: Callable[[bytes], Any]
) -> None:
    assert _branches_drawn(bodies, lambda body: _decodes(decode, body)) == {True, False}


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


# Random text is practically never a usable Retry-After: numbers and HTTP dates are drawn
# too, so that the wait's assertions run.
RETRY_AFTERS = st.one_of(
    st.none(),
    st.text(),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(-10, 10**7).map(str),
    st.floats(0, 4e9).map(lambda when: formatdate(when, usegmt=True)),
)


@given(RETRY_AFTERS, st.floats(0, 4e9))
def test_any_retry_after_header_gives_none_or_a_finite_wait(header: str | None, now: float) -> None:
    wait = parse_retry_after(header, now)
    event("none" if wait is None else "a wait")
    assert wait is None or (math.isfinite(wait) and wait >= 0)


def test_the_retry_after_property_draws_waits_and_nones() -> None:
    assert _branches_drawn(RETRY_AFTERS, lambda h: parse_retry_after(h, 1e9) is None) == {
        True,
        False,
    }

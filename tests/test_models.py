"""PaymentSource, Beneficiary and Account: the union of both seeds' fields, tolerant of
what Lean adds later, strict about what is not JSON."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from _samples import (
    CUSTOMER_ID,
    REFERENCE_LIST,
    REFERENCE_SOURCE,
    REPAIRED_LIST,
    REPAIRED_SOURCE,
    SOURCE_ID,
    UPPER_CASE_ID,
)

from lean_async import (
    AccessToken,
    DecodeError,
    PaymentSource,
    PaymentSourceStatus,
    decode_payment_source,
    decode_payment_sources,
)
from lean_async.models import decode_access_token


def _source(**fields: object) -> bytes:
    return json.dumps({"id": SOURCE_ID, **fields}).encode()


def test_reference_example_as_published_is_a_decode_error_saying_where() -> None:
    with pytest.raises(DecodeError, match=r"byte \d+"):
        decode_payment_source(REFERENCE_SOURCE.encode())


def test_reference_list_example_as_published_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="not valid JSON"):
        decode_payment_sources(REFERENCE_LIST.encode())


def test_reference_example_with_commas_repaired_decodes_fully() -> None:
    source = decode_payment_source(REPAIRED_SOURCE.encode())
    assert source.id == SOURCE_ID
    assert source.customer_id == CUSTOMER_ID
    assert source.app_id == "YOUR_APP_ID"
    assert source.status == PaymentSourceStatus.AWAITING_BENEFICIARY_COOL_OFF
    assert source.bank_identifier == "ENBD_UAE"
    assert source.beneficiary_cool_off_expiry == datetime(
        2021, 2, 13, 13, 20, 57, 674299, tzinfo=timezone.utc
    )
    [beneficiary] = source.beneficiaries
    assert beneficiary.id == UPPER_CASE_ID
    assert beneficiary.payment_destination_id == "f044c18b-3a51-49a2-bd3f-a585679d8885"
    assert beneficiary.status == "AWAITING_BENEFICIARY_COOL_OFF"
    assert not beneficiary.is_active
    first, second = source.accounts
    assert first.id == "9acde98e-9d19-495d-934c-b2ff966262c8"
    assert first.account_id == "aaadbc4e-96a4-420f-ba01-597fa63502ee"
    assert first.account_name == "CURRENT ACCOUNT"
    assert first.account_number == "1015528734001"
    assert first.iban == "AE340260001015528734001"
    assert first.balance == 35681.15
    assert first.currency == "AED"
    assert first.balance_last_updated == datetime(
        2021, 2, 12, 13, 20, 23, 839220, tzinfo=timezone.utc
    )
    assert second.balance == 80871.0
    assert second.currency == "USD"


def test_repaired_list_example_decodes_to_one_source() -> None:
    [source] = decode_payment_sources(REPAIRED_LIST.encode())
    assert source == decode_payment_source(REPAIRED_SOURCE.encode())


def test_empty_list_decodes_to_empty_list() -> None:
    assert decode_payment_sources(b"[]") == []


def test_seed_openapi_fields_decode() -> None:
    source = decode_payment_source(
        _source(
            consent_id="c0a8e3d2-0000-4000-8000-000000000000",
            account_iban_last4="8734",
            currency="AED",
            status="REVOKED",
            created_at="2024-03-01T08:00:00Z",
            end_user_ids=["u1", "u2"],
        )
    )
    assert source.consent_id == "c0a8e3d2-0000-4000-8000-000000000000"
    assert source.account_iban_last4 == "8734"
    assert source.currency == "AED"
    assert source.status == PaymentSourceStatus.REVOKED
    assert source.created_at == datetime(2024, 3, 1, 8, tzinfo=timezone.utc)
    assert source.end_user_ids == ["u1", "u2"]


def test_only_id_is_required() -> None:
    source = decode_payment_source(_source())
    assert source == PaymentSource(id=SOURCE_ID)
    assert source.beneficiaries == [] and source.accounts == [] and source.end_user_ids == []


def test_missing_id_is_a_decode_error_naming_the_field() -> None:
    with pytest.raises(DecodeError, match="id"):
        decode_payment_source(b'{"customer_id": "x"}')


def test_unknown_fields_are_ignored_at_every_level() -> None:
    source = decode_payment_source(
        _source(
            brand_new="x",
            beneficiaries=[{"id": "b", "extra": {"deep": [1, 2]}}],
            accounts=[{"id": "a", "overdraft": 5}],
        )
    )
    assert source.beneficiaries[0].id == "b"
    assert source.accounts[0].id == "a"


@pytest.mark.parametrize("status", ["SUSPENDED", "active", "SOMETHING_LEAN_ADDS_LATER"])
def test_unknown_status_decodes_and_keeps_its_value(status: str) -> None:
    source = decode_payment_source(
        _source(status=status, beneficiaries=[{"id": "b", "status": status}])
    )
    assert source.status == status
    assert source.beneficiaries[0].status == status


def test_beneficiary_is_active_when_active() -> None:
    source = decode_payment_source(_source(beneficiaries=[{"id": "b", "status": "ACTIVE"}]))
    assert source.beneficiaries[0].is_active


def test_nanosecond_timestamp_decodes_timezone_aware() -> None:
    source = decode_payment_source(_source(created_at="2026-05-13T10:50:10.476351058Z"))
    assert source.created_at is not None
    assert source.created_at.tzinfo is not None
    assert source.created_at.utcoffset() == timedelta(0)
    assert source.created_at.replace(tzinfo=None) == datetime(2026, 5, 13, 10, 50, 10, 476351)


def test_timestamp_with_offset_keeps_its_instant() -> None:
    source = decode_payment_source(_source(created_at="2024-03-01T12:00:00+04:00"))
    assert source.created_at == datetime(2024, 3, 1, 8, tzinfo=timezone.utc)


def test_ids_keep_their_case() -> None:
    source = decode_payment_source(
        json.dumps({"id": UPPER_CASE_ID, "customer_id": CUSTOMER_ID.upper()}).encode()
    )
    assert source.id == UPPER_CASE_ID
    assert source.customer_id == CUSTOMER_ID.upper()


def test_integer_balance_decodes_as_float() -> None:
    source = decode_payment_source(_source(accounts=[{"id": "a", "balance": 100}]))
    assert source.accounts[0].balance == 100.0


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"id": 5}', r"\$\.id"),
        (
            b'{"id": "x", "accounts": [{"id": "a", "balance": "lots"}]}',
            r"\$\.accounts\[0\]\.balance",
        ),
        (b'{"id": "x", "created_at": "yesterday"}', r"\$\.created_at"),
    ],
)
def test_wrong_shape_is_a_decode_error_saying_where(body: bytes, where: str) -> None:
    with pytest.raises(DecodeError, match=where):
        decode_payment_source(body)


@pytest.mark.parametrize("body", [b"", b"<html>502</html>", b'{"id": "x"', b"null", b"[1]"])
def test_non_json_or_wrong_json_is_a_decode_error(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_payment_sources(body)


def test_object_where_list_expected_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="expected shape"):
        decode_payment_sources(_source())


def test_deeply_nested_json_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        decode_payment_sources(b"[" * 100_000 + b"]" * 100_000)


def test_account_repr_masks_account_number_and_iban() -> None:
    source = decode_payment_source(REPAIRED_SOURCE.encode())
    text = repr(source)
    assert "1015528734001" not in text
    assert "AE340260001015528734001" not in text
    assert "*********4001" in text  # the last four digits stay, to tell accounts apart


def test_access_token_repr_hides_the_token() -> None:
    token = decode_access_token(
        b'{"access_token": "eyJ-secret", "token_type": "Bearer", "expires_in": 3599}'
    )
    assert token == AccessToken(access_token="eyJ-secret", expires_in=3599)
    assert "eyJ-secret" not in repr(token)
    assert "eyJ-secret" not in str(token)


def test_malformed_token_response_error_does_not_echo_the_body() -> None:
    with pytest.raises(DecodeError) as info:
        decode_access_token(b'{"access_token": "eyJ-secret" "expires_in": 3599}')
    assert "eyJ-secret" not in str(info.value)


def test_the_models_keep_their_old_address() -> None:
    import lean_async.models
    from lean_async.types import payment_sources

    for name in lean_async.models.__all__:
        assert getattr(lean_async.models, name) is getattr(payment_sources, name)
    assert lean_async.models.PaymentSource is lean_async.PaymentSource
    # Anything else the module defines, too.
    assert lean_async.models._mask is payment_sources._mask


BENEFICIARY = {"id": "b-1", "status": "ACTIVE"}
ACCOUNT = {"id": "a-1", "currency": "AED"}
NULLABLE_LISTS = {"end_user_ids": "u-1", "beneficiaries": BENEFICIARY, "accounts": ACCOUNT}


@pytest.mark.parametrize("field", NULLABLE_LISTS)
@pytest.mark.parametrize("shape", ["null list", "null element", "only nulls"])
@pytest.mark.parametrize("one", [True, False], ids=["get", "list"])
def test_a_null_list_is_empty_and_null_elements_are_left_out(
    field: str, shape: str, one: bool
) -> None:
    element = NULLABLE_LISTS[field]
    value = {"null list": None, "null element": [None, element, None], "only nulls": [None]}
    # The other lists as Lean sends them, so that the combination is tested too.
    others = {name: [item] for name, item in NULLABLE_LISTS.items() if name != field}
    source = {"id": SOURCE_ID, "currency": "AED", field: value[shape], **others}
    body = json.dumps(source if one else [source, {"id": "second"}]).encode()
    decoded = decode_payment_source(body) if one else decode_payment_sources(body)[0]
    as_if_clean = {**source, field: [element] if shape == "null element" else []}
    assert decoded == decode_payment_source(json.dumps(as_if_clean).encode())
    assert len(getattr(decoded, field)) == (shape == "null element")


@pytest.mark.parametrize(
    ("body", "where"),
    [
        # with a null list elsewhere, other checks still hold, and name the same place
        (b'{"id": null, "accounts": null}', r"\$\.id"),
        (
            b'{"id": "x", "beneficiaries": null, "accounts": [null, {"id": 5}]}',
            r"\$\.accounts\[1\]\.id",
        ),
        (b'{"id": "x", "end_user_ids": [null, 5]}', r"\$\.end_user_ids\[1\]"),
        (b'{"id": "x", "accounts": {"id": "a"}}', r"\$\.accounts"),
        (
            b'{"id": "x", "currency": null, "created_at": "yesterday", "accounts": null}',
            r"\$\.created_at",
        ),
    ],
)  # fmt: skip
def test_a_null_list_does_not_hide_another_problem(body: bytes, where: str) -> None:
    with pytest.raises(DecodeError, match=where):
        decode_payment_source(body)
    with pytest.raises(DecodeError, match=where.replace(r"\$", r"\$\[0\]")):
        decode_payment_sources(b"[" + body + b"]")


def test_a_null_source_in_the_list_is_still_a_decode_error() -> None:
    with pytest.raises(DecodeError, match=r"\$\[0\]"):
        decode_payment_sources(b"[null]")

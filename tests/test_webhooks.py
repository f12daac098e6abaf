"""lean_async.webhooks without I/O: the lean-signature check and the typed events.

Signatures are computed here with hmac/hashlib/base64 directly, never with the module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timezone
from typing import Any

import pytest

from lean_async import ConfigurationError, DecodeError, LeanError, webhooks

SECRET = "whsec-test-7c1f9a"
PAYMENT_SOURCE_ID = "9B1F4C2E-3C6D-4E8A-9D9B-2B0F5E6A7C11"
CUSTOMER_ID = "2f0b3c1d-7a45-4f2e-8c7b-6d5e4f3a2b10"
DESTINATION_ID = "c2e3f4a5-b6c7-4d8e-9f01-23456789abcd"
BENEFICIARY_ID = "5A0E7C39-1B2D-4C3E-8F4A-6B7C8D9E0F12"


def envelope(event_type: str, payload: Any, **extra: Any) -> bytes:
    return json.dumps(
        {
            "type": event_type,
            "payload": payload,
            "message": "An event happened.",
            "timestamp": "2026-05-13T10:50:10.476351058Z",
            "event_id": "8d3f2b61-0e4c-4a8b-b5d2-7f1e9c6a3b40",
            **extra,
        }
    ).encode()


CREATED_PAYLOAD = {
    "id": PAYMENT_SOURCE_ID,
    "customer_id": CUSTOMER_ID,
    "status": "AWAITING_BENEFICIARY_COOL_OFF",
    "bank_identifier": "ENBD_UAE",
    "bank_name": "Emirates NBD",
    "end_user_id": "end-user-42",
}
BENEFICIARY_PAYLOAD = {
    "id": BENEFICIARY_ID,
    "customer_id": CUSTOMER_ID,
    "payment_source_id": PAYMENT_SOURCE_ID,
    "payment_destination_id": DESTINATION_ID,
    "status": "ACTIVE",
    "payment_source_bank_identifier": "ENBD_UAE",
}
BODY = envelope("payment_source.beneficiary.updated", BENEFICIARY_PAYLOAD)


def hmac_sha512(body: bytes, secret: str = SECRET) -> bytes:
    return hmac.new(secret.encode(), body, hashlib.sha512).digest()


# --- verify_signature: accepted -------------------------------------------------------

ACCEPTED_HEADERS = {
    "hex, lower case": "sha512=" + hmac_sha512(BODY).hex(),
    "hex, upper case": "sha512=" + hmac_sha512(BODY).hex().upper(),
    "base64": "sha512=" + base64.b64encode(hmac_sha512(BODY)).decode(),
    "base64 url-safe without padding": "sha512="
    + base64.urlsafe_b64encode(hmac_sha512(BODY)).decode().rstrip("="),
    "surrounding whitespace": "  sha512=" + hmac_sha512(BODY).hex() + " \t",
    "upper-case algorithm": "SHA512=" + hmac_sha512(BODY).hex(),
    "one of several (key rotation)": "sha512="
    + hmac_sha512(BODY, "old-secret").hex()
    + ", sha512="
    + hmac_sha512(BODY).hex(),
}


@pytest.mark.parametrize("header", ACCEPTED_HEADERS.values(), ids=ACCEPTED_HEADERS.keys())
def test_valid_signature_is_accepted(header: str) -> None:
    webhooks.verify_signature(BODY, header, SECRET)


def test_secret_may_be_bytes() -> None:
    webhooks.verify_signature(BODY, "sha512=" + hmac_sha512(BODY).hex(), SECRET.encode())


def test_sign_produces_a_header_that_verifies() -> None:
    assert webhooks.sign(BODY, SECRET) == "sha512=" + hmac_sha512(BODY).hex()


# --- verify_signature: rejected -------------------------------------------------------

REJECTED_HEADERS: dict[str, str | None] = {
    "missing": None,
    "empty": "",
    "only whitespace": "   ",
    "tampered body": "sha512=" + hmac_sha512(BODY + b" ").hex(),
    "wrong secret": "sha512=" + hmac_sha512(BODY, "another-secret").hex(),
    "sha256": "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest(),
    "sha512 digest under another algorithm": "sha1=" + hmac_sha512(BODY).hex(),
    "no algorithm": hmac_sha512(BODY).hex(),
    "empty digest": "sha512=",
    "garbage digest": "sha512=not-a-digest!",
    "hex digest truncated": "sha512=" + hmac_sha512(BODY).hex()[:-2],
    "hex digest with spaces": "sha512=" + hmac_sha512(BODY).hex()[:-4] + "  ab",
    "base64 of the wrong length": "sha512=" + base64.b64encode(hmac_sha512(BODY)[:32]).decode(),
    "only commas": ",,",
}


@pytest.mark.parametrize("header", REJECTED_HEADERS.values(), ids=REJECTED_HEADERS.keys())
def test_invalid_signature_is_rejected(header: str | None) -> None:
    with pytest.raises(webhooks.WebhookSignatureError):
        webhooks.verify_signature(BODY, header, SECRET)


def test_signature_error_is_a_lean_error() -> None:
    assert issubclass(webhooks.WebhookSignatureError, LeanError)


@pytest.mark.parametrize("header", REJECTED_HEADERS.values(), ids=REJECTED_HEADERS.keys())
def test_signature_error_message_holds_neither_secret_nor_digest(header: str | None) -> None:
    expected = hmac_sha512(BODY)
    with pytest.raises(webhooks.WebhookSignatureError) as caught:
        webhooks.verify_signature(BODY, header, SECRET)
    message = str(caught.value).lower()
    assert SECRET.lower() not in message
    assert expected.hex() not in message
    assert base64.b64encode(expected).decode().lower() not in message
    received_digest = (header or "").partition("=")[2].strip().lower()
    assert len(received_digest) < 8 or received_digest not in message


def test_wrong_algorithm_is_named_in_the_error() -> None:
    with pytest.raises(webhooks.WebhookSignatureError, match="sha256"):
        webhooks.verify_signature(BODY, "sha256=" + "ab" * 32, SECRET)


def test_empty_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        webhooks.verify_signature(BODY, "sha512=" + hmac_sha512(BODY).hex(), "")


# --- parse_event ----------------------------------------------------------------------


def signed(body: bytes) -> str:
    return "sha512=" + hmac_sha512(body).hex()


def test_parse_event_rejects_a_bad_signature_before_decoding() -> None:
    with pytest.raises(webhooks.WebhookSignatureError):
        webhooks.parse_event(b"not json", signed(b"other body"), SECRET)


def test_parse_event_of_signed_invalid_json_raises_decode_error() -> None:
    body = b'{"type": "payment_source.created", '
    with pytest.raises(DecodeError, match="not valid JSON"):
        webhooks.parse_event(body, signed(body), SECRET)


def test_parse_event_decodes_a_signed_body() -> None:
    event = webhooks.parse_event(BODY, signed(BODY), SECRET)
    assert event.type == webhooks.EventType.BENEFICIARY_UPDATED


# --- decode_event: the envelope -------------------------------------------------------


def test_envelope_fields_are_decoded() -> None:
    event = webhooks.decode_event(BODY)
    assert event.type == "payment_source.beneficiary.updated"
    assert event.event_id == "8d3f2b61-0e4c-4a8b-b5d2-7f1e9c6a3b40"
    assert event.message == "An event happened."


def test_nanosecond_timestamp_is_decoded_timezone_aware() -> None:
    event = webhooks.decode_event(BODY)
    assert event.timestamp == datetime(2026, 5, 13, 10, 50, 10, 476351, tzinfo=timezone.utc)


def test_timestamp_without_offset_is_taken_as_utc() -> None:
    body = envelope("payment_source.created", CREATED_PAYLOAD, timestamp="2026-05-13T10:50:10")
    assert webhooks.decode_event(body).timestamp.tzinfo == timezone.utc


def test_message_is_optional() -> None:
    body = json.loads(BODY)
    del body["message"]
    assert webhooks.decode_event(json.dumps(body).encode()).message is None


def test_unknown_envelope_and_payload_fields_are_ignored() -> None:
    payload = {**BENEFICIARY_PAYLOAD, "added_later": {"nested": [1, 2]}}
    event = webhooks.decode_event(
        envelope("payment_source.beneficiary.updated", payload, version=2)
    )
    assert isinstance(event.payload, webhooks.BeneficiaryUpdated)


ENVELOPE_ERRORS = {
    "not an object": (b"[]", "Expected `object`, got `array`"),
    "no event_id": (
        b'{"type": "x", "payload": {}, "timestamp": "2026-05-13T10:50:10Z"}',
        "event_id",
    ),
    "type not a string": (b'{"type": 1}', r"\$\.type"),
    "bad timestamp": (envelope("x", {}, timestamp="yesterday"), r"\$\.timestamp"),
    "payload of a known type lacks an id": (
        envelope("payment_source.created", {"customer_id": CUSTOMER_ID}),
        r"`id` - at `\$\.payload`",
    ),
    "payload of a known type has a number id": (
        envelope("payment_source.created", {**CREATED_PAYLOAD, "id": 7}),
        r"\$\.payload\.id",
    ),
}


@pytest.mark.parametrize(("body", "where"), ENVELOPE_ERRORS.values(), ids=ENVELOPE_ERRORS.keys())
def test_body_of_the_wrong_shape_raises_decode_error_saying_where(body: bytes, where: str) -> None:
    with pytest.raises(DecodeError, match=where):
        webhooks.decode_event(body)


# --- decode_event: typed payloads -----------------------------------------------------


def test_payment_source_created_payload_is_typed() -> None:
    event = webhooks.decode_event(envelope("payment_source.created", CREATED_PAYLOAD))
    assert event.payload == webhooks.PaymentSourceCreated(
        id=PAYMENT_SOURCE_ID,
        customer_id=CUSTOMER_ID,
        status="AWAITING_BENEFICIARY_COOL_OFF",
        bank_identifier="ENBD_UAE",
        bank_name="Emirates NBD",
        end_user_id="end-user-42",
    )


def test_payment_source_created_end_user_id_is_optional() -> None:
    payload = {k: v for k, v in CREATED_PAYLOAD.items() if k != "end_user_id"}
    event = webhooks.decode_event(envelope("payment_source.created", payload))
    assert isinstance(event.payload, webhooks.PaymentSourceCreated)
    assert event.payload.end_user_id is None


@pytest.mark.parametrize(
    ("event_type", "payload_class"),
    [
        ("payment_source.beneficiary.created", webhooks.BeneficiaryCreated),
        ("payment_source.beneficiary.updated", webhooks.BeneficiaryUpdated),
    ],
)
def test_beneficiary_payload_is_typed(event_type: str, payload_class: type[Any]) -> None:
    event = webhooks.decode_event(envelope(event_type, BENEFICIARY_PAYLOAD))
    assert event.payload == payload_class(**BENEFICIARY_PAYLOAD)
    assert type(event.payload) is payload_class


def test_payment_source_updated_payload_is_typed_and_keeps_the_raw_payload() -> None:
    payload = {**CREATED_PAYLOAD, "beneficiaries": [{"id": BENEFICIARY_ID, "status": "ACTIVE"}]}
    event = webhooks.decode_event(envelope("payment_source.updated", payload))
    assert isinstance(event.payload, webhooks.PaymentSourceUpdated)
    assert event.payload.id == PAYMENT_SOURCE_ID
    assert event.payload.bank_identifier == "ENBD_UAE"
    assert event.payload.raw == payload


def test_payment_source_updated_payload_needs_no_field() -> None:
    event = webhooks.decode_event(envelope("payment_source.updated", {}))
    assert event.payload == webhooks.PaymentSourceUpdated()


def test_unknown_event_type_is_kept_with_its_raw_payload() -> None:
    payload = {"id": "X-1", "amount": 12.5, "nested": {"a": [1]}}
    event = webhooks.decode_event(envelope("payment.created", payload))
    assert event.type == "payment.created"
    assert event.payload == payload


@pytest.mark.parametrize("payload", [[1, 2], None, "text", 42, {}])
def test_an_unknown_event_type_keeps_a_payload_of_any_json_kind(payload: object) -> None:
    event = webhooks.decode_event(envelope("payment.settled", payload))
    assert event.type == "payment.settled" and event.payload == payload


def test_ids_keep_their_case() -> None:
    event = webhooks.decode_event(BODY)
    assert isinstance(event.payload, webhooks.BeneficiaryUpdated)
    assert (event.payload.id, event.payload.payment_source_id) == (
        BENEFICIARY_ID,
        PAYMENT_SOURCE_ID,
    )


def test_unknown_status_is_kept_as_sent() -> None:
    payload = {**BENEFICIARY_PAYLOAD, "status": "SUSPENDED_BY_BANK"}
    event = webhooks.decode_event(envelope("payment_source.beneficiary.updated", payload))
    assert isinstance(event.payload, webhooks.BeneficiaryUpdated)
    assert event.payload.status == "SUSPENDED_BY_BANK"


@pytest.mark.parametrize("event_type", list(webhooks.EventType))
def test_event_type_constants_compare_equal_to_their_wire_names(
    event_type: webhooks.EventType,
) -> None:
    assert event_type == event_type.value
    assert str(event_type) == event_type.value


# -- how the digests are compared -------------------------------------------------------


def _compare_digest_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    """Every hmac.compare_digest call the signature check makes, recorded (and answered)."""
    from lean_async import _webhook_signature

    calls: list[tuple[bytes, bytes]] = []
    compare_digest = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr(_webhook_signature.hmac, "compare_digest", recording)
    return calls


@pytest.mark.parametrize("good_at", [0, 1, 2])
def test_every_candidate_digest_is_compared_in_constant_time_even_after_a_match(
    monkeypatch: pytest.MonkeyPatch, good_at: int
) -> None:
    # `==` would leak, through timing, how much of a forged digest is right; stopping at
    # the first match would leak which entry matched. Both show as fewer compare_digest calls.
    secrets = [f"old-secret-{n}" for n in range(3)]
    secrets[good_at] = SECRET
    candidates = [hmac_sha512(BODY, secret) for secret in secrets]
    calls = _compare_digest_calls(monkeypatch)
    webhooks.verify_signature(BODY, ", ".join("sha512=" + c.hex() for c in candidates), SECRET)
    assert calls == [(hmac_sha512(BODY), candidate) for candidate in candidates]


def test_a_forged_digest_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _compare_digest_calls(monkeypatch)
    with pytest.raises(webhooks.WebhookSignatureError):
        webhooks.verify_signature(BODY, "sha512=" + hmac_sha512(BODY, "forger").hex(), SECRET)
    assert calls == [(hmac_sha512(BODY), hmac_sha512(BODY, "forger"))]


@pytest.mark.parametrize("size", [32, 63, 65, 96])
@pytest.mark.parametrize(
    "encode",
    [base64.b64encode, base64.urlsafe_b64encode, lambda raw: bytes.hex(raw).encode()],
    ids=["base64", "url-safe base64", "hex"],
)
def test_a_digest_of_the_wrong_length_is_malformed_not_a_mismatch(size: int, encode: Any) -> None:
    # Refused as the wrong form before any HMAC is computed, whatever its encoding.
    digest = hashlib.sha512(b"x").digest() * 2
    header = "sha512=" + encode(digest[:size]).decode()
    with pytest.raises(webhooks.WebhookSignatureError, match="malformed"):
        webhooks.verify_signature(BODY, header, SECRET)


def _entries(count: int) -> list[str]:
    """``count`` signature entries, only the last one made with SECRET."""
    wrong = ["sha512=" + hmac_sha512(BODY, f"rotated-out-{n}").hex() for n in range(count - 1)]
    return [*wrong, "sha512=" + hmac_sha512(BODY).hex()]


def test_up_to_eight_signatures_are_checked_a_ninth_makes_the_header_refused() -> None:
    webhooks.verify_signature(BODY, ", ".join(_entries(8)), SECRET)
    with pytest.raises(webhooks.WebhookSignatureError, match="too many signatures"):
        webhooks.verify_signature(BODY, ", ".join(_entries(9)), SECRET)


@pytest.mark.parametrize("header", ["", "  ", ",", " , ,, "])
def test_a_header_with_no_entry_is_refused_as_empty(header: str) -> None:
    with pytest.raises(webhooks.WebhookSignatureError, match="header is empty"):
        webhooks.verify_signature(BODY, header, SECRET)


# Four at a time, so that the padding still fits: only the strictness refuses them.
@pytest.mark.parametrize("stray", ["!!!!", "****", "    ", "\t\t\t\t", "....", "!", "=="])
def test_a_base64_digest_with_a_character_outside_the_alphabet_is_refused(stray: str) -> None:
    # Lenient base64 decoding skips such characters: the right digest with a stray
    # character in it would verify, so a header's exact text would not matter.
    text = base64.b64encode(hmac_sha512(BODY)).decode().rstrip("=")
    header = "sha512=" + text[:40] + stray + text[40:]
    with pytest.raises(webhooks.WebhookSignatureError):
        webhooks.verify_signature(BODY, header, SECRET)

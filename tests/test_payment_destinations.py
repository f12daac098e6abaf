"""PaymentDestination: Lean's examples decoded as they are, forward compatible, masked in
repr; client.payment_destinations on the wire."""

from __future__ import annotations

import json
from collections.abc import Callable

import msgspec
import pytest
from _postman import CREATE_DESTINATION, LIST_DESTINATIONS
from _samples import CUSTOMER_ID
from _server import LocalServer, reply

from lean_async import InvalidIdError, LeanClient, PaymentDestination, PaymentDestinationStatus
from lean_async.types import decode_payment_destination, decode_payment_destinations

DESTINATION_ID = "6910fddc-417c-f7fd-6e4b-4d7de3d0bc06"


def test_the_postman_destination_examples_decode_as_they_are() -> None:
    destinations = decode_payment_destinations(LIST_DESTINATIONS)
    assert [d.id for d in destinations] == [DESTINATION_ID, "432150ea-99d1-5bd8-aed3-35d4c7a2b4b4"]
    first = destinations[0]
    assert first == PaymentDestination(
        id=DESTINATION_ID,
        status="CONFIRMED",
        default=False,
        name="Fake Corp.",
        iban="AE27LSWP9X25E4883A13998",
        display_name="Fake Corp. - AED",
        address="1234 Sky Bldg.",
        city="Abu Dhabi",
        country="ARE",
        swift_code="EBILEADXXX",
        account_number="000120203",
        currency="AED",
    )
    created = decode_payment_destination(CREATE_DESTINATION)
    assert created.status == PaymentDestinationStatus.ACTIVE
    assert created.branch_address == "45 Lansing Street, Dubai, United Arab Emirates"
    assert created.currency is None and created.customer_id is None


def test_unknown_fields_and_statuses_never_break_decoding() -> None:
    body = json.dumps(
        {"id": "d", "status": "ON_HOLD", "bank_type": "SME", "ifsc": "HDFC0000001", "new": {}}
    ).encode()
    destination = decode_payment_destination(body)
    assert (destination.status, destination.ifsc) == ("ON_HOLD", "HDFC0000001")


@pytest.mark.parametrize("shown", [repr, str, lambda d: repr(d.__rich_repr__())])
def test_repr_masks_the_iban_and_the_account_number(
    shown: Callable[[PaymentDestination], str],
) -> None:
    destination = decode_payment_destination(CREATE_DESTINATION)
    text = shown(destination)
    assert "AE760260001015000000601" not in text
    assert "1015000000601" not in text
    assert "*******************0601" in text  # the last four stay, to tell accounts apart
    assert "Fulani Al Fulani" in text and "88c71f16-2af3-4b06-979d-92b5354a9174" in text


def test_masked_is_a_copy_with_the_iban_and_account_number_cut_to_their_last_four() -> None:
    destination = decode_payment_destination(CREATE_DESTINATION)
    masked = destination.masked()
    assert masked.iban == "*******************0601"
    assert masked.account_number is not None and destination.account_number is not None
    assert masked.account_number[-4:] == destination.account_number[-4:]
    assert set(masked.account_number[:-4]) == {"*"}
    assert (
        msgspec.structs.replace(
            masked, iban=destination.iban, account_number=destination.account_number
        )
        == destination
    )  # nothing else changed
    assert destination.iban == "AE760260001015000000601"  # the original is untouched


async def test_the_three_calls_go_where_lean_documents(
    server: LocalServer, make_client: Callable[..., LeanClient]
) -> None:
    one = json.loads(LIST_DESTINATIONS)[0]
    server.script("/payments/v1/destinations", reply(body=LIST_DESTINATIONS))
    server.script(f"/payments/v1/destinations/{DESTINATION_ID}", reply(json_body=one))
    server.script(f"/customers/v1/{CUSTOMER_ID}/destinations", reply(json_body=[one]))
    lean = make_client()
    listed = await lean.payment_destinations.list()
    assert len(listed) == 2
    assert await lean.payment_destinations.get(DESTINATION_ID) == listed[0]
    assert await lean.payment_destinations.list_for_customer(CUSTOMER_ID) == listed[:1]
    assert [(r.method, r.path) for r in server.requests] == [
        ("GET", "/payments/v1/destinations"),
        ("GET", f"/payments/v1/destinations/{DESTINATION_ID}"),
        ("GET", f"/customers/v1/{CUSTOMER_ID}/destinations"),
    ]


@pytest.mark.parametrize("bad", ["", "../x", "6910fddc", None, 7])
async def test_a_destination_id_that_is_not_a_uuid_is_refused_before_any_request(
    server: LocalServer, make_client: Callable[..., LeanClient], bad: object
) -> None:
    lean = make_client()
    with pytest.raises(InvalidIdError):
        await lean.payment_destinations.get(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidIdError):
        await lean.payment_destinations.list_for_customer(bad)  # type: ignore[arg-type]
    assert server.requests == []

"""Path ids: UUID strings (any case, sent as given) or uuid.UUID; nothing else, and for a bad
id no request is made."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable

import pytest
from _samples import CUSTOMER_ID, SOURCE_ID, UPPER_CASE_ID
from _server import LocalServer, reply

from lean_async import InvalidIdError, LeanClient, LeanError
from lean_async._ids import validate_customer_id, validate_id
from lean_async.types.customers import Customer

BAD_IDS = [
    "../../admin",
    "",
    " ",
    f"{CUSTOMER_ID}?x=1",
    f"{CUSTOMER_ID}#frag",
    f"{{{CUSTOMER_ID}}}",
    f"urn:uuid:{CUSTOMER_ID}",
    CUSTOMER_ID.replace("-", ""),
    "+" + CUSTOMER_ID[1:],
    CUSTOMER_ID + "\n",
    " " + CUSTOMER_ID,
    CUSTOMER_ID + "/",
    CUSTOMER_ID[:-1] + "g",
    CUSTOMER_ID[:-1] + "%",
    CUSTOMER_ID[:-1] + "٣",  # a non-ASCII digit
    CUSTOMER_ID[:8] + "/" + CUSTOMER_ID[9:],
    CUSTOMER_ID + "0",
    CUSTOMER_ID[:-1],  # 35 characters: one hex digit short at the end
    CUSTOMER_ID[1:],  # 35 characters: one short at the start
    CUSTOMER_ID[:9] + CUSTOMER_ID[10:],  # 35 characters: a group of 3
    CUSTOMER_ID.encode(),
    uuid.UUID(CUSTOMER_ID).int,
    None,
    ["x"],
]


@pytest.mark.parametrize("value", [CUSTOMER_ID, CUSTOMER_ID.upper(), UPPER_CASE_ID])
def test_uuid_string_is_sent_as_given(value: str) -> None:
    assert validate_id(value, "customer_id") == value


def test_uuid_object_is_sent_in_canonical_form() -> None:
    assert validate_id(uuid.UUID(CUSTOMER_ID), "customer_id") == CUSTOMER_ID


@pytest.mark.parametrize("value", BAD_IDS, ids=repr)
def test_bad_id_raises_invalid_id_error(value: object) -> None:
    with pytest.raises(InvalidIdError):
        validate_id(value, "customer_id")


def test_invalid_id_error_is_both_value_error_and_lean_error() -> None:
    assert issubclass(InvalidIdError, ValueError)
    assert issubclass(InvalidIdError, LeanError)


def test_invalid_id_error_names_the_parameter() -> None:
    with pytest.raises(InvalidIdError, match="payment_source_id"):
        validate_id("nope", "payment_source_id")


def test_str_subclass_cannot_smuggle_another_path_through_str() -> None:
    class Sneaky(str):
        def __str__(self) -> str:
            return "../../admin"

    assert validate_id(Sneaky(CUSTOMER_ID), "customer_id") == CUSTOMER_ID


def test_str_enum_member_is_sent_as_its_value() -> None:
    class Known(str, enum.Enum):
        CUSTOMER = CUSTOMER_ID

    assert validate_id(Known.CUSTOMER, "customer_id") == CUSTOMER_ID


@pytest.mark.parametrize("value", BAD_IDS, ids=repr)
async def test_bad_id_makes_no_request(
    value: object, server: LocalServer, make_client: Callable[..., LeanClient]
) -> None:
    client = make_client()
    calls = [
        lambda: client.payment_sources.list(value),  # type: ignore[arg-type]
        lambda: client.payment_sources.get(value, SOURCE_ID),  # type: ignore[arg-type]
        lambda: client.payment_sources.get(CUSTOMER_ID, value),  # type: ignore[arg-type]
        lambda: client.payment_sources.delete(value, SOURCE_ID),  # type: ignore[arg-type]
        lambda: client.payment_sources.delete(CUSTOMER_ID, value),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(InvalidIdError):
            await call()
    assert server.requests == []


async def test_upper_case_ids_reach_the_server_unchanged(
    server: LocalServer, make_client: Callable[..., LeanClient]
) -> None:
    server.default = reply(json_body={"id": UPPER_CASE_ID})
    await make_client().payment_sources.get(CUSTOMER_ID.upper(), UPPER_CASE_ID)
    assert server.requests[0].path == (
        f"/customers/v1/{CUSTOMER_ID.upper()}/payment-sources/{UPPER_CASE_ID}"
    )


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        (Customer(customer_id=CUSTOMER_ID, app_user_id="u-1"), CUSTOMER_ID),
        (Customer(customer_id=UPPER_CASE_ID), UPPER_CASE_ID),
        (CUSTOMER_ID, CUSTOMER_ID),
        (uuid.UUID(CUSTOMER_ID), CUSTOMER_ID),
    ],
    ids=["Customer", "Customer, upper case", "str", "UUID"],
)
def test_a_customer_stands_for_its_customer_id(value: object, sent: str) -> None:
    assert validate_customer_id(value) == sent


@pytest.mark.parametrize("bad", ["../admin", CUSTOMER_ID[:-1], ""])
def test_a_customer_whose_id_is_not_a_uuid_is_refused_like_the_id(bad: str) -> None:
    with pytest.raises(InvalidIdError, match="customer_id"):
        validate_customer_id(Customer(customer_id=bad))

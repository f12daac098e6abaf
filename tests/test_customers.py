"""client.customers: Lean's examples decoded as they are, what goes on the wire, app user ids
of any text, and get_or_create."""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import pytest
from _postman import CREATE_CUSTOMER, CUSTOMER_ALREADY_EXISTS, GET_CUSTOMER, LIST_CUSTOMERS
from _samples import CUSTOMER_ID
from _server import LocalServer, reply
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from lean_async import ConflictError, Customer, InvalidIdError, LeanClient, NotFoundError
from lean_async._ids import path_segment, validate_app_user_id
from lean_async.types import decode_customer, decode_customer_page

# RFC 3986 unreserved characters, and percent escapes.
SEGMENT_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-._~%")

POSTMAN_CUSTOMER = Customer(
    customer_id="a33a50fc-b29c-4c03-9cab-379280d7e500", app_user_id="lean_app_user_id_1"
)

# -- Lean's examples ----------------------------------------------------------------------


def test_the_postman_customer_examples_decode_as_they_are() -> None:
    assert decode_customer(CREATE_CUSTOMER) == POSTMAN_CUSTOMER
    assert decode_customer(GET_CUSTOMER) == POSTMAN_CUSTOMER
    page = decode_customer_page(LIST_CUSTOMERS)
    assert page.items[0] == POSTMAN_CUSTOMER
    assert [c.app_user_id for c in page.items][1:] == [
        "sandbox_user_id_1",
        "sandbox_user_1",
        "maezulauf_2",
        "maezulauf_1",
    ]
    assert (page.page.number, page.page.size, page.page.total_elements) == (0, 5, 33)
    assert (page.page.total_pages, page.page.sort) == (7, None)


def test_a_customer_with_fields_lean_adds_later_still_decodes() -> None:
    body = b'{"customer_id": "c", "app_user_id": "u", "created_at": "2026-01-01", "x": [1]}'
    assert decode_customer(body) == Customer(customer_id="c", app_user_id="u")
    assert decode_customer(b'{"customer_id": "c"}').app_user_id is None


async def test_create_posts_the_app_user_id_and_returns_the_customer(
    server: LocalServer, make_client: Callable[..., LeanClient]
) -> None:
    server.script("/customers/v1/", reply(json_body=json.loads(CREATE_CUSTOMER)))
    customer = await make_client().customers.create("lean_app_user_id_1")
    assert customer == POSTMAN_CUSTOMER
    [seen] = server.requests
    assert (seen.method, seen.path) == ("POST", "/customers/v1/")
    assert json.loads(seen.body) == {"app_user_id": "lean_app_user_id_1"}
    assert seen.headers["Content-Type"] == "application/json"


async def test_a_second_create_is_a_conflict_with_lean_code(
    server: LocalServer, make_client: Callable[..., LeanClient]
) -> None:
    server.script("/customers/v1/", reply(409, body=CUSTOMER_ALREADY_EXISTS))
    with pytest.raises(ConflictError) as caught:
        await make_client().customers.create("lean_app_user_id_1")
    assert caught.value.status_code == 409
    assert caught.value.code == "CUSTOMER_ALREADY_EXISTS"
    assert len(server.requests) == 1  # a 409 is not retried


async def test_get_reads_one_customer_by_lean_id(
    server: LocalServer, make_client: Callable[..., LeanClient]
) -> None:
    server.script(f"/customers/v1/{CUSTOMER_ID}", reply(json_body=json.loads(GET_CUSTOMER)))
    assert await make_client().customers.get(CUSTOMER_ID) == POSTMAN_CUSTOMER
    with pytest.raises(InvalidIdError):
        await make_client().customers.get("../payment-sources")
    assert len(server.requests) == 1


# -- app user ids -------------------------------------------------------------------------

# app_user_id -> the path segment sent
HOSTILE_APP_USER_IDS = [
    ("lean_app_user_id_1", "lean_app_user_id_1"),
    ("a/b", "a%2Fb"),
    ("/", "%2F"),
    ("x?y=1", "x%3Fy%3D1"),
    ("#frag", "%23frag"),
    ("50%", "50%25"),
    ("%2F", "%252F"),
    ("%2E%2E", "%252E%252E"),
    ("john doe", "john%20doe"),
    ("a+b", "a%2Bb"),
    ("john.doe@example.com", "john.doe%40example.com"),
    ("مستخدم", "%D9%85%D8%B3%D8%AA%D8%AE%D8%AF%D9%85"),
    ("ユーザー🙂", "%E3%83%A6%E3%83%BC%E3%82%B6%E3%83%BC%F0%9F%99%82"),
    ("..", "%2E%2E"),
    (".", "%2E"),
    ("...", "%2E%2E%2E"),
    ("../payment-sources", "..%2Fpayment-sources"),
    ("a/../../b", "a%2F..%2F..%2Fb"),
    (";jsessionid=1", "%3Bjsessionid%3D1"),
    ("back\\slash", "back%5Cslash"),
    ("tab\tnew\nline", "tab%09new%0Aline"),
    ("\x00", "%00"),
    ("x" * 255, "x" * 255),
]


@pytest.mark.parametrize(("app_user_id", "segment"), HOSTILE_APP_USER_IDS)
async def test_an_app_user_id_travels_as_exactly_one_path_segment(
    make_client: Callable[..., LeanClient], app_user_id: str, segment: str
) -> None:
    seen: list[tuple[str, str]] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        seen.append((request.raw_path, request.match_info["app_user_id"]))
        return web.json_response({"customer_id": CUSTOMER_ID, "app_user_id": app_user_id})

    # Routed as Lean routes: a path segment is a parameter, and a decoded "/" is no split.
    app = web.Application()
    app.router.add_get("/customers/v1/app-user-id/{app_user_id}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        customer = await make_client(base_url=url).customers.get_by_app_user_id(app_user_id)
    finally:
        await runner.cleanup()
    assert seen == [(f"/customers/v1/app-user-id/{segment}", app_user_id)]
    assert customer.app_user_id == app_user_id


BAD_APP_USER_IDS: list[Any] = ["", "x" * 256, None, 42, b"user", ["user"], "lone \ud800"]


@pytest.mark.parametrize("app_user_id", BAD_APP_USER_IDS)
@pytest.mark.parametrize("method", ["create", "get_by_app_user_id", "get_or_create"])
async def test_an_app_user_id_that_is_not_1_to_255_characters_is_refused_before_any_request(
    server: LocalServer, make_client: Callable[..., LeanClient], method: str, app_user_id: Any
) -> None:
    with pytest.raises(ValueError, match="app_user_id") as caught:
        await getattr(make_client().customers, method)(app_user_id)
    assert isinstance(caught.value, InvalidIdError)
    assert server.requests == []


def test_a_str_subclass_sends_its_text_not_its_own_str() -> None:
    class Sneaky(str):
        def __str__(self) -> str:
            return "../../admin"

    assert type(validate_app_user_id(Sneaky("user-1"))) is str
    assert validate_app_user_id(Sneaky("user-1")) == "user-1"


# -- get_or_create ------------------------------------------------------------------------


async def test_get_or_create_creates_a_new_user_in_one_request(
    server: LocalServer, make_client: Callable[..., LeanClient]
) -> None:
    server.script("/customers/v1/", reply(json_body=json.loads(CREATE_CUSTOMER)))
    assert await make_client().customers.get_or_create("lean_app_user_id_1") == POSTMAN_CUSTOMER
    assert [r.method for r in server.requests] == ["POST"]


async def test_get_or_create_reads_a_known_user_after_the_conflict(
    server: LocalServer, make_client: Callable[..., LeanClient]
) -> None:
    server.script("/customers/v1/", reply(409, body=CUSTOMER_ALREADY_EXISTS))
    server.script(
        "/customers/v1/app-user-id/lean_app_user_id_1", reply(json_body=json.loads(GET_CUSTOMER))
    )
    assert await make_client().customers.get_or_create("lean_app_user_id_1") == POSTMAN_CUSTOMER
    assert [(r.method, r.path) for r in server.requests] == [
        ("POST", "/customers/v1/"),
        ("GET", "/customers/v1/app-user-id/lean_app_user_id_1"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        b'{"status": "SOMETHING_ELSE", "message": "no"}',
        b"<html>409 Conflict</html>",
    ],
)
async def test_get_or_create_lets_any_other_conflict_through(
    server: LocalServer, make_client: Callable[..., LeanClient], body: bytes
) -> None:
    server.script("/customers/v1/", reply(409, body=body))
    with pytest.raises(ConflictError):
        await make_client().customers.get_or_create("user-1")
    assert len(server.requests) == 1


async def test_get_or_create_raises_not_found_if_the_conflicting_customer_vanished(
    server: LocalServer, make_client: Callable[..., LeanClient]
) -> None:
    server.script("/customers/v1/", reply(409, body=CUSTOMER_ALREADY_EXISTS))
    server.script("/customers/v1/app-user-id/user-1", reply(404, json_body={"status": "X"}))
    with pytest.raises(NotFoundError):
        await make_client().customers.get_or_create("user-1")


@given(
    st.text(min_size=1, max_size=255).filter(
        lambda t: not any(0xD800 <= ord(c) < 0xE000 for c in t)
    )
)
def test_every_app_user_id_is_one_segment_that_decodes_back_to_itself(app_user_id: str) -> None:
    segment = path_segment(validate_app_user_id(app_user_id))
    assert unquote(segment) == app_user_id
    assert "/" not in segment and "?" not in segment and "#" not in segment
    assert segment not in (".", "..")
    assert set(segment) <= SEGMENT_CHARACTERS

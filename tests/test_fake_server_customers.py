"""The fake server's Customers and Payment Destinations APIs, and the client's customers and
payment_destinations resources through it: what Lean's examples show, pages with a cap,
customers created while listing, free-text app user ids, and faults."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lean_async import (
    AccessToken,
    AuthenticationError,
    ConflictError,
    Customer,
    InvalidIdError,
    LeanClient,
    LeanError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    ServerError,
)
from lean_async.testing import DataSet, FakeLean, Faults

pytestmark = pytest.mark.timeout(60)

FAST_RETRY = RetryPolicy(max_retries=2, initial_delay=0.001, max_delay=0.01)


@pytest.fixture
async def server() -> AsyncIterator[FakeLean]:
    async with FakeLean(customers=23, seed=5) as server:
        yield server


@pytest.fixture
async def lean(server: FakeLean) -> AsyncIterator[LeanClient]:
    async with server.client(retry=FAST_RETRY) as client:
        yield client


async def _get(server: FakeLean, path: str, **headers: str) -> tuple[int, Any]:
    headers = headers or {"lean-app-token": server.app_token}
    async with aiohttp.ClientSession() as http, http.get(server.url + path, headers=headers) as r:
        return r.status, json.loads(await r.read())


# -- customers ----------------------------------------------------------------------------


def test_generated_customers_have_app_user_ids_user_1_onwards() -> None:
    data = DataSet.generate(5, seed=2)
    assert [c.app_user_id for c in data.customers] == [f"user-{n}" for n in range(1, 6)]
    assert [c.customer_id for c in data.customers] == data.customer_ids


def test_customers_do_not_change_the_seeds_payment_sources() -> None:
    # The seed's random stream is the one the payment sources were always drawn from.
    data = DataSet.generate(3, seed=7)
    assert data.customer_ids[0] == DataSet.generate(1, seed=7).customer_ids[0]


async def test_create_then_conflict_then_get_both_ways(lean: LeanClient) -> None:
    created = await lean.customers.create("new-user")
    assert created.app_user_id == "new-user"
    with pytest.raises(ConflictError) as caught:
        await lean.customers.create("new-user")
    assert caught.value.code == "CUSTOMER_ALREADY_EXISTS"
    assert caught.value.message == (
        "A customer already exists for the app_user_id you have provided."
    )
    assert await lean.customers.get(created.customer_id) == created
    assert await lean.customers.get(created.customer_id.upper()) == created
    assert await lean.customers.get_by_app_user_id("new-user") == created


async def test_unknown_customers_are_404(lean: LeanClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        await lean.customers.get("00000000-0000-4000-8000-000000000000")
    assert caught.value.code == "CUSTOMER_NOT_FOUND"
    with pytest.raises(NotFoundError):
        await lean.customers.get_by_app_user_id("nobody")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"", 400, "MISSING_PARAMETERS"),
        (b"{}", 400, "MISSING_PARAMETERS"),
        (b"[]", 400, "MISSING_PARAMETERS"),
        (b"{", 400, "INVALID_PARAMETERS"),
        (b'{"app_user_id": ""}', 400, "INVALID_PARAMETERS"),
        (b'{"app_user_id": 42}', 400, "INVALID_PARAMETERS"),
        (json.dumps({"app_user_id": "x" * 256}).encode(), 400, "INVALID_PARAMETERS"),
    ],
)
async def test_the_server_refuses_a_create_without_a_valid_app_user_id(
    server: FakeLean, body: bytes, status: int, code: str
) -> None:
    headers = {"lean-app-token": server.app_token, "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(server.url + "/customers/v1/", data=body, headers=headers) as answer,
    ):
        assert (answer.status, (await answer.json())["status"]) == (status, code)


async def test_the_list_is_leans_envelope_with_a_null_sort(server: FakeLean) -> None:
    status, body = await _get(server, "/customers/v1?page_number=1&page_size=5")
    assert status == 200
    assert body["page"] == {
        "number": 1,
        "size": 5,
        "total_elements": 23,
        "total_pages": 5,
        "sort": None,
    }
    expected = [
        {"customer_id": c.customer_id, "app_user_id": c.app_user_id} for c in server.customers
    ]
    assert body["data"] == expected[5:10]
    status, last = await _get(server, "/customers/v1?page_number=4&page_size=5")
    assert last["data"] == expected[20:]
    status, beyond = await _get(server, "/customers/v1?page_number=9&page_size=5")
    assert beyond["data"] == []


@pytest.mark.parametrize(
    "query", ["page_number=-1", "page_size=0", "page_size=x", "page_number=1.5"]
)
async def test_the_list_refuses_bad_page_parameters(server: FakeLean, query: str) -> None:
    status, body = await _get(server, f"/customers/v1?{query}")
    assert (status, body["status"]) == (400, "INVALID_PARAMETERS")


async def test_a_page_cap_is_applied_and_said(server: FakeLean) -> None:
    server.customer_page_cap = 4
    _, body = await _get(server, "/customers/v1?page_number=1&page_size=100")
    assert (body["page"]["size"], body["page"]["total_pages"], len(body["data"])) == (4, 6, 4)
    with pytest.raises(ValueError, match="customer_page_cap"):
        server.customer_page_cap = 0


@pytest.mark.parametrize("cap", [None, 1, 3, 7, 50])
@pytest.mark.parametrize("page_size", [1, 5, 23, 100])
async def test_the_client_lists_every_customer_once_whatever_the_cap(
    server: FakeLean, lean: LeanClient, cap: int | None, page_size: int
) -> None:
    server.customer_page_cap = cap
    listing = lean.customers.list(page_size=page_size)
    customers = [customer async for customer in listing]
    assert customers == server.customers
    assert listing.total_elements == 23


async def test_customers_created_while_listing_come_once_and_nobody_is_skipped(
    server: FakeLean, lean: LeanClient
) -> None:
    server.customer_page_cap = 4
    before = server.customers
    seen: list[Customer] = []
    pages_read = 0
    listing = lean.customers.list(page_size=10)
    async for customer in listing:
        seen.append(customer)
        if listing.pages_read != pages_read:  # a new page came in: more sign-ups
            pages_read = listing.pages_read
            for _ in range(3):
                server.add_customer()
    assert len(seen) == len(set(seen))
    assert set(before) <= set(seen) <= set(server.customers)
    assert len(seen) > len(before)  # the total moved on, and the listing followed it


async def test_listing_asks_for_one_page_at_a_time(server: FakeLean, lean: LeanClient) -> None:
    listing = aiter(lean.customers.list(page_size=5))
    await anext(listing)
    assert server.stats.by_path["/customers/v1"] == 1
    for _ in range(5):
        await anext(listing)
    assert server.stats.by_path["/customers/v1"] == 2


async def test_a_failing_page_is_retried_then_raises(server: FakeLean) -> None:
    async with server.client(retry=FAST_RETRY) as lean:
        listing = aiter(lean.customers.list(page_size=5))
        first = [await anext(listing) for _ in range(5)]
        server.faults = Faults(error_rate=1.0, html_error_share=0.0)
        with pytest.raises(ServerError):
            await anext(listing)
    assert first == server.customers[:5]
    assert server.stats.by_path["/customers/v1"] == 1 + 3


# -- app user ids of any text, through the server's own routing ----------------------------

HOSTILE = [
    "a/b",
    "/",
    "//",
    "x?y=1&z",
    "#top",
    "100%",
    "%2F",
    "%2e%2e",
    "john doe ",
    "a+b",
    "مستخدم",
    "ユーザー🙂",
    "..",
    ".",
    "../payment-sources",
    "../../oauth2/token",
    "a/../../b",
    ";x=1",
    "\\",
    "destinations",
    "payment-sources",
    "x" * 255,
]


@pytest.mark.parametrize("app_user_id", HOSTILE)
async def test_any_app_user_id_survives_the_round_trip(
    server: FakeLean, lean: LeanClient, app_user_id: str
) -> None:
    created = await lean.customers.create(app_user_id)
    assert created.app_user_id == app_user_id
    assert await lean.customers.get_by_app_user_id(app_user_id) == created
    assert await lean.customers.get_or_create(app_user_id) == created
    # Nothing else was reached: a path walked up would have listed or created elsewhere.
    paths = set(server.stats.by_path)
    assert all(p.startswith("/customers/v1/app-user-id/") for p in paths - {"/customers/v1/"})


@pytest.mark.parametrize("app_user_id", ["", "x" * 256])
async def test_an_app_user_id_out_of_bounds_never_reaches_the_server(
    server: FakeLean, lean: LeanClient, app_user_id: str
) -> None:
    with pytest.raises(InvalidIdError):
        await lean.customers.get_or_create(app_user_id)
    assert server.stats.requests == 0


# -- get_or_create under concurrency ------------------------------------------------------


@pytest.mark.parametrize("tasks", [2, 16])
async def test_concurrent_get_or_create_gives_everyone_the_same_new_customer(
    server: FakeLean, tasks: int
) -> None:
    # Separate clients, as separate processes of one backend would be.
    clients = [server.client(retry=FAST_RETRY) for _ in range(tasks)]
    try:
        got = await asyncio.wait_for(
            asyncio.gather(*(c.customers.get_or_create("signing-up") for c in clients)), 10
        )
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    assert len(set(got)) == 1
    assert [c.app_user_id for c in server.customers].count("signing-up") == 1
    assert server.stats.by_status[409] == tasks - 1


async def test_get_or_create_under_latency_and_one_client(server: FakeLean) -> None:
    server.faults = Faults(latency=(0.0, 0.02), seed=3)
    async with server.client(retry=FAST_RETRY) as lean:
        got = await asyncio.wait_for(
            asyncio.gather(*(lean.customers.get_or_create(f"u{i % 3}") for i in range(30))), 10
        )
    assert len(set(got)) == 3
    assert {c.app_user_id for c in got} == {"u0", "u1", "u2"}


# -- credentials and faults ------------------------------------------------------------------


async def test_the_customer_routes_need_credentials(server: FakeLean) -> None:
    async with server.client(app_token="wrong", retry=FAST_RETRY) as lean:
        with pytest.raises(AuthenticationError):
            await lean.customers.get_by_app_user_id("user-1")
        with pytest.raises(AuthenticationError):
            await lean.payment_destinations.list()


async def test_a_customer_token_reaches_its_own_customer_only(server: FakeLean) -> None:
    mine, other = server.customers[:2]
    async with server.client(oauth=True, retry=FAST_RETRY) as backend:
        token = await backend.customer_token(mine.customer_id)
    async with server.client(access_token=token.access_token, retry=FAST_RETRY) as front:
        assert await front.customers.get(mine.customer_id) == mine
        for call in (
            lambda: front.customers.get(other.customer_id),
            lambda: front.customers.create("x"),
            lambda: front.payment_destinations.list(),
            lambda: anext(aiter(front.customers.list())),
        ):
            with pytest.raises(PermissionDeniedError):
                await call()


# Every call that takes a customer id, with the customer's id or with the Customer.
CUSTOMER_CALLS: dict[str, Callable[[LeanClient, Any], Awaitable[Any]]] = {
    "payment_sources.list": lambda lean, c: lean.payment_sources.list(c),
    "payment_sources.get": lambda lean, c: lean.payment_sources.get(c, UNKNOWN_SOURCE),
    "payment_sources.delete": lambda lean, c: lean.payment_sources.delete(c, UNKNOWN_SOURCE),
    "customers.get": lambda lean, c: lean.customers.get(c),
    "payment_destinations.list_for_customer": (
        lambda lean, c: lean.payment_destinations.list_for_customer(c)
    ),
    "customer_token": lambda lean, c: lean.customer_token(c),
}
UNKNOWN_SOURCE = "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize("call", CUSTOMER_CALLS.values(), ids=CUSTOMER_CALLS)
async def test_a_customer_stands_in_for_its_id_in_every_call_that_takes_one(
    server: FakeLean, call: Callable[[LeanClient, Any], Awaitable[Any]]
) -> None:
    customer = server.customers[0]
    answers: list[object] = []
    async with server.client(oauth=True, retry=FAST_RETRY) as lean:
        for argument in (customer.customer_id, customer):
            try:
                answer: object = await call(lean, argument)
            except NotFoundError as exc:  # the unknown payment source: Lean was asked
                answer = exc.code
            answers.append(answer)
    by_id, by_customer = answers
    if isinstance(by_id, AccessToken):  # a new token each time, of one scope
        assert isinstance(by_customer, AccessToken)
        assert by_customer.scope == by_id.scope == f"customer.{customer.customer_id}"
    else:
        assert by_customer == by_id


@pytest.mark.parametrize(
    ("faults", "error"),
    [
        (Faults(error_rate=1.0), ServerError),
        (Faults(rate_limit=0.001, retry_after=False), RateLimitError),
    ],
)
async def test_faults_apply_to_customers_and_destinations(
    server: FakeLean, faults: Faults, error: type[Exception]
) -> None:
    server.faults = faults
    customer = server.customers[0]
    async with server.client(retry=FAST_RETRY) as lean:
        with contextlib.suppress(LeanError):  # the rate limit's bucket lets one through
            await lean.payment_sources.list(customer.customer_id)
        calls: list[Callable[[], Awaitable[Any]]] = [
            lambda: lean.customers.get(customer.customer_id),
            lambda: lean.customers.get_by_app_user_id("user-1"),
            lambda: lean.customers.create("someone"),
            lambda: anext(aiter(lean.customers.list())),
            lambda: lean.payment_destinations.list(),
            lambda: lean.payment_destinations.get(server.data.destinations[0]),
            lambda: lean.payment_destinations.list_for_customer(customer.customer_id),
        ]
        for call in calls:
            with pytest.raises(error):
                await call()


async def test_a_flaky_server_still_lists_every_customer(server: FakeLean) -> None:
    server.faults = Faults(error_rate=0.2, drop_rate=0.1, seed=4)
    server.customer_page_cap = 3
    async with server.client(retry=RetryPolicy(max_retries=8, initial_delay=0.001)) as lean:
        customers = [c async for c in lean.customers.list(page_size=5)]
    assert customers == server.customers


# -- payment destinations -----------------------------------------------------------------


async def test_every_beneficiarys_destination_resolves(server: FakeLean, lean: LeanClient) -> None:
    server.add_payment_source(
        server.customer_ids[0], payment_destination_id="0b5c1c33-8c52-4a43-9a55-1f1b7d8a1c11"
    )
    wanted = {
        beneficiary.payment_destination_id
        for source in server.data.all_payment_sources()
        for beneficiary in source.beneficiaries
    }
    assert "0b5c1c33-8c52-4a43-9a55-1f1b7d8a1c11" in wanted
    listed = {destination.id for destination in await lean.payment_destinations.list()}
    assert wanted <= listed
    for destination_id in wanted:
        assert destination_id is not None
        assert (await lean.payment_destinations.get(destination_id)).id == destination_id


async def test_the_application_has_one_default_destination(lean: LeanClient) -> None:
    destinations = await lean.payment_destinations.list()
    assert [d.default for d in destinations].count(True) == 1
    assert all(d.customer_id is None and d.status == "CONFIRMED" for d in destinations)
    assert all(d.iban and d.iban.startswith("AE") and d.country == "ARE" for d in destinations)


async def test_some_customers_have_destinations_of_their_own(
    server: FakeLean, lean: LeanClient
) -> None:
    owned: dict[str, list[str]] = {}
    for customer in server.customers:
        found = await lean.payment_destinations.list_for_customer(customer.customer_id)
        assert all(d.customer_id == customer.customer_id for d in found)
        owned[customer.customer_id] = [d.id for d in found]
        for destination in found:
            assert await lean.payment_destinations.get(destination.id) == destination
    assert 0 < sum(1 for ids in owned.values() if ids) < len(owned)


async def test_unknown_destinations_and_customers(server: FakeLean, lean: LeanClient) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(NotFoundError) as caught:
        await lean.payment_destinations.get(unknown)
    assert caught.value.code == "UNKNOWN_PAYMENT_DESTINATION"
    assert await lean.payment_destinations.list_for_customer(unknown) == []
    server.unknown_customer_404 = True
    with pytest.raises(NotFoundError):
        await lean.payment_destinations.list_for_customer(unknown)
    with pytest.raises(InvalidIdError):
        await lean.payment_destinations.get("../../customers/v1")


async def test_a_saved_data_set_keeps_app_user_ids_and_destinations(
    server: FakeLean, tmp_path: Path
) -> None:
    server.add_customer("late-comer")
    server.save_data(tmp_path / "data.json")
    loaded = DataSet.load(tmp_path / "data.json")
    assert loaded.customers == server.customers
    assert loaded.destinations == server.data.destinations
    first = server.customer_ids[0]
    assert loaded.customer_destinations_body(first) == server.data.customer_destinations_body(
        first.lower()
    )


def test_a_file_saved_before_app_user_ids_still_loads(tmp_path: Path) -> None:
    data = DataSet.generate(3, seed=1)
    data.save(tmp_path / "new.json")
    old = json.loads((tmp_path / "new.json").read_text())
    del old["app_user_ids"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    loaded = DataSet.load(tmp_path / "old.json")
    assert [c.app_user_id for c in loaded.customers] == [f"user-{i}" for i in data.customer_ids]


# -- a sweep over every customer ----------------------------------------------------------


async def test_a_sweep_takes_the_customer_listing_and_covers_everyone_once(
    server: FakeLean, lean: LeanClient
) -> None:
    server.customer_page_cap = 4
    results = [r async for r in lean.payment_sources.sweep(lean.customers.list(), concurrency=3)]
    assert sorted(r.customer_id.customer_id for r in results) == sorted(server.customer_ids)
    assert all(isinstance(r.customer_id, Customer) and r.ok for r in results)
    for result in results:
        assert result.sources == server.data.payment_sources(result.customer_id.customer_id)


async def test_a_sweep_takes_the_ids_of_the_listing_too(server: FakeLean, lean: LeanClient) -> None:
    async def ids() -> AsyncIterator[str]:
        async for customer in lean.customers.list(page_size=6):
            yield customer.customer_id

    results = await lean.payment_sources.list_many(ids())
    assert set(results) == set(server.customer_ids)


async def test_a_sweep_reads_the_listing_lazily() -> None:
    async with FakeLean(customers=500, seed=1) as big, big.client() as client:
        sweep = client.payment_sources.sweep(client.customers.list(page_size=10), concurrency=4)
        async with contextlib.aclosing(sweep):
            for _ in range(5):
                await anext(sweep)
        # About concurrency customers ahead of what was yielded: a page or two, not 50.
        assert big.stats.by_path["/customers/v1"] <= 2

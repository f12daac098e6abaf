"""The shared pagination: the pure page cursor, query parameters on the wire, and the pager
walking a real local server that caps page sizes, shifts its pages and fails."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from _server import LocalServer, lean_error
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lean_async import LeanClient, ServerError
from lean_async._exceptions import DecodeError
from lean_async._paging import (
    CUSTOMER_PAGES,
    EVENT_PAGES,
    Page,
    PageCursor,
    PageInfo,
    Pager,
    PageStyle,
    check_page_size,
    page_decoder,
    paged_listing,
)

PATH = "/things/v1"


class Thing(msgspec.Struct, frozen=True):
    thing_id: str


_decode_things = page_decoder(msgspec.json.Decoder(Page[Thing]), "the thing page")


# -- the cursor, pure --------------------------------------------------------------------

# (size asked, number asked, page info, items received) -> (done, next number, next size)
CURSOR_CASES = [
    # full pages, then the last by total_pages
    (10, 0, PageInfo(number=0, size=10, total_pages=3), 10, (False, 1, 10)),
    (10, 2, PageInfo(number=2, size=10, total_pages=3), 4, (True, 2, 10)),
    # an empty page ends the listing whatever the totals say
    (10, 1, PageInfo(number=1, size=10, total_pages=9), 0, (True, 1, 10)),
    # the total grew while listing: the latest page's total_pages counts
    (10, 2, PageInfo(number=2, size=10, total_pages=4), 10, (False, 3, 10)),
    # a server that caps the size and says so: offsets by its size
    (100, 0, PageInfo(number=0, size=25, total_pages=4), 25, (False, 1, 25)),
    # a server that caps without saying so: ask with the size it gave, from the first unread
    (100, 0, PageInfo(number=0, size=100, total_pages=3), 30, (False, 1, 30)),
    (100, 1, PageInfo(number=1, size=100, total_pages=3), 30, (False, 4, 30)),
    # ... even when total_pages, counted with the size asked for, calls it the last
    (100, 0, PageInfo(number=0, size=100, total_elements=50, total_pages=1), 7, (False, 1, 7)),
    # a server with a larger page size than asked (a floor, or page_size ignored)
    (5, 0, PageInfo(number=0, size=10, total_pages=3), 10, (False, 1, 10)),
    # a cap that does not divide the offset: the page holding the first unread item
    (30, 3, PageInfo(number=3, size=30, total_pages=9), 20, (False, 5, 20)),
    # no total_pages: total_elements decides; nothing at all: until an empty page
    (10, 0, PageInfo(number=0, size=10, total_elements=10), 10, (True, 0, 10)),
    (10, 0, PageInfo(number=0, size=10, total_elements=11), 10, (False, 1, 10)),
    (10, 0, PageInfo(), 10, (False, 1, 10)),
    (10, 0, PageInfo(), 3, (False, 1, 3)),
    # a reported size of 0 or none: the size asked for
    (10, 0, PageInfo(size=0, total_pages=2), 10, (False, 1, 10)),
    # total_pages 0 with items (created since the count): this page was the last
    (10, 0, PageInfo(number=0, size=10, total_pages=0), 2, (True, 0, 10)),
]


@pytest.mark.parametrize(("size", "number", "info", "count", "expected"), CURSOR_CASES)
def test_cursor_advances_by_the_servers_page(
    size: int, number: int, info: PageInfo, count: int, expected: tuple[bool, int, int]
) -> None:
    cursor = PageCursor(size, number)
    cursor.advance(info, count)
    assert (cursor.done, cursor.number, cursor.size) == expected


def test_cursor_refuses_a_server_answering_another_page() -> None:
    cursor = PageCursor(10, 3)
    with pytest.raises(DecodeError, match="asked for page 3"):
        cursor.advance(PageInfo(number=0, size=10, total_pages=9), 10)


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        (CUSTOMER_PAGES, {"page_number": "2", "page_size": "50"}),
        (EVENT_PAGES, {"page": "2", "size": "50"}),
    ],
)
def test_cursor_names_its_parameters_by_style(style: PageStyle, expected: dict[str, str]) -> None:
    assert PageCursor(50, 2).params(style) == expected


@pytest.mark.parametrize("bad", [0, -1, 1.5, "10", True, None])
def test_page_size_must_be_a_whole_number_of_at_least_one(bad: Any) -> None:
    with pytest.raises(ValueError, match="page_size"):
        check_page_size(bad)


def test_page_envelope_decodes_forward_compatibly() -> None:
    body = (
        b'{"data": [{"thing_id": "a", "new": 1}], "page": {"number": 0, "size": 5, '
        b'"total_elements": 1, "total_pages": 1, "sort": null, "later": true}, "links": []}'
    )
    page = _decode_things(body)
    assert page.items == [Thing("a")]
    assert page.page == PageInfo(number=0, size=5, total_elements=1, total_pages=1)
    assert _decode_things(b'{"data": null}').items == []
    with pytest.raises(DecodeError, match="the thing page"):
        _decode_things(b"[]")


# -- query parameters on the wire ----------------------------------------------------------


async def test_query_parameters_are_percent_encoded_one_by_one(
    server: LocalServer, make_client: Callable[..., LeanClient]
) -> None:
    seen: list[tuple[str, dict[str, str]]] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        seen.append((request.raw_path, dict(request.query)))
        return web.json_response({"data": [], "page": {}})

    server.script(PATH, answer)
    params = {
        "from": "2026-05-13T10:50:10+04:00",
        "type": "a b&c=d#e?f/g%h",
        "name": "مرحبا",
    }
    client = make_client()
    await client._transport.request("GET", PATH, _decode_things, params=params)
    raw_path, query = seen[0]
    assert query == params
    assert raw_path.startswith(PATH + "?from=2026-05-13T10%3A50%3A10%2B04%3A00&")


async def test_query_parameters_keep_the_base_urls_path_prefix(
    server: LocalServer, make_client: Callable[..., LeanClient]
) -> None:
    server.script("/prefix" + PATH, lambda r: _json({"data": [], "page": {}}))
    client = make_client(base_url=server.url + "/prefix")
    await client._transport.request("GET", PATH, _decode_things, params={"page": "0"})
    assert [r.path for r in server.requests] == ["/prefix" + PATH]


async def _json(body: Any) -> web.StreamResponse:
    return web.json_response(body)


# -- the pager against a local server ------------------------------------------------------


@dataclass
class ListingServer:
    """A listing over ``items`` (ids), paged by offset like Spring: page n of size s is
    items[n*s:(n+1)*s]. ``cap`` limits the size (``silent_cap`` answers with the size asked
    for), ``floor`` raises it, and ``between_pages(n)`` runs before page ``n`` is cut, to
    change the items."""

    items: list[str]
    style: PageStyle = CUSTOMER_PAGES
    cap: int | None = None
    silent_cap: bool = False
    floor: int = 1
    between_pages: Callable[[int], None] | None = None
    asked: list[tuple[int, int]] = field(default_factory=list)

    async def answer(self, request: web.Request) -> web.StreamResponse:
        number = int(request.query[self.style.number])
        asked_size = int(request.query[self.style.size])
        self.asked.append((number, asked_size))
        if self.between_pages is not None:
            self.between_pages(len(self.asked) - 1)
        size = max(min(asked_size, self.cap) if self.cap else asked_size, self.floor)
        offset = number * (asked_size if self.silent_cap else size)
        data = [{"thing_id": item} for item in self.items[offset : offset + size]]
        total_pages = -(-len(self.items) // (asked_size if self.silent_cap else size))
        return web.json_response(
            {
                "data": data,
                "page": {
                    "number": number,
                    "size": asked_size if self.silent_cap else size,
                    "total_elements": len(self.items),
                    "total_pages": total_pages,
                    "sort": None,
                },
            }
        )


def _pager(client: LeanClient, listing: ListingServer, page_size: int) -> Pager[Thing]:
    return paged_listing(
        client._transport,
        PATH,
        _decode_things,
        style=listing.style,
        page_size=page_size,
        key=lambda thing: thing.thing_id,
    )


async def _ids(pager: Pager[Thing]) -> list[str]:
    async def walk() -> list[str]:
        return [thing.thing_id async for thing in pager]

    return await asyncio.wait_for(walk(), 10)


def _names(count: int, prefix: str = "c") -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(count)]


@pytest.mark.parametrize("style", [CUSTOMER_PAGES, EVENT_PAGES])
@pytest.mark.parametrize(
    ("count", "page_size", "pages"), [(0, 5, 1), (1, 5, 1), (5, 5, 1), (23, 5, 5), (25, 5, 5)]
)
async def test_pager_reads_every_page_once_and_stops_at_the_last(
    server: LocalServer,
    make_client: Callable[..., LeanClient],
    style: PageStyle,
    count: int,
    page_size: int,
    pages: int,
) -> None:
    listing = ListingServer(_names(count), style=style)
    server.script(PATH, listing.answer)
    pager = _pager(make_client(), listing, page_size)
    assert await _ids(pager) == listing.items
    assert listing.asked == [(n, page_size) for n in range(pages)]
    assert pager.total_elements == count
    assert pager.pages_read == pages
    # Another walk starts again from page 0, with its own count.
    assert await _ids(pager) == listing.items
    assert pager.pages_read == pages
    assert listing.asked == [(n, page_size) for n in range(pages)] * 2


@pytest.mark.parametrize("silent", [False, True], ids=["reported-cap", "silent-cap"])
@pytest.mark.parametrize(("page_size", "cap"), [(100, 7), (10, 3), (9, 4)])
async def test_pager_with_a_capped_page_size_skips_nobody(
    server: LocalServer,
    make_client: Callable[..., LeanClient],
    silent: bool,
    page_size: int,
    cap: int,
) -> None:
    listing = ListingServer(_names(50), cap=cap, silent_cap=silent)
    server.script(PATH, listing.answer)
    assert await _ids(_pager(make_client(), listing, page_size)) == listing.items
    # After the first page, pages are asked for with the size the server gave.
    assert {size for _, size in listing.asked[1:]} <= {cap}


@pytest.mark.parametrize(("page_size", "floor"), [(1, 10), (4, 10), (3, 7)])
async def test_pager_with_a_larger_page_than_asked_skips_nobody(
    server: LocalServer, make_client: Callable[..., LeanClient], page_size: int, floor: int
) -> None:
    listing = ListingServer(_names(50), floor=floor)
    server.script(PATH, listing.answer)
    assert await _ids(_pager(make_client(), listing, page_size)) == listing.items
    assert len(listing.asked) == -(-50 // floor)


async def test_pager_requests_one_page_at_a_time_as_iteration_needs_it(
    server: LocalServer, make_client: Callable[..., LeanClient]
) -> None:
    listing = ListingServer(_names(12))
    server.script(PATH, listing.answer)
    things = aiter(_pager(make_client(), listing, 5))
    assert listing.asked == []
    for _ in range(5):
        await anext(things)
    assert listing.asked == [(0, 5)]
    await anext(things)
    assert listing.asked == [(0, 5), (1, 5)]
    await things.aclose()  # type: ignore[attr-defined]
    assert len(listing.asked) == 2


async def test_pager_follows_a_total_that_grows_while_listing(
    server: LocalServer, make_client: Callable[..., LeanClient]
) -> None:
    listing = ListingServer(_names(10))
    added = _names(7, prefix="new")

    def append(page: int) -> None:
        if page == 1:
            listing.items.extend(added)

    listing.between_pages = append
    server.script(PATH, listing.answer)
    assert await _ids(_pager(make_client(), listing, 5)) == _names(10) + added


async def test_pager_never_yields_twice_when_items_are_created_before_its_position(
    server: LocalServer, make_client: Callable[..., LeanClient]
) -> None:
    listing = ListingServer(_names(20))

    def prepend(page: int) -> None:  # 3 new items at the front before each later page
        if page:
            listing.items[:0] = [f"new{page}-{i}" for i in range(3)]

    listing.between_pages = prepend
    server.script(PATH, listing.answer)
    ids = await _ids(_pager(make_client(), listing, 5))
    assert len(ids) == len(set(ids))
    assert set(_names(20)) <= set(ids)


async def test_an_empty_page_ends_the_listing_whatever_the_total(
    server: LocalServer, make_client: Callable[..., LeanClient]
) -> None:
    pages = iter(
        [
            {"data": [{"thing_id": "a"}], "page": {"number": 0, "size": 1, "total_pages": 9}},
            {"data": [], "page": {"number": 1, "size": 1, "total_pages": 9}},
        ]
    )
    server.script(PATH, lambda request: _json(next(pages)))
    listing = ListingServer([])
    assert await _ids(_pager(make_client(), listing, 1)) == ["a"]
    assert len(server.requests) == 2


async def test_a_failed_page_is_retried_then_the_listing_goes_on(
    server: LocalServer, make_client: Callable[..., LeanClient]
) -> None:
    listing = ListingServer(_names(10))
    failures = [lean_error(500, "INTERNAL_SERVER_ERROR", "boom")]

    async def answer(request: web.Request) -> web.StreamResponse:
        if request.query["page_number"] == "1" and failures:
            return await failures.pop()(request)
        return await listing.answer(request)

    server.script(PATH, answer)
    assert await _ids(_pager(make_client(), listing, 5)) == listing.items
    assert len(server.requests) == 3


async def test_a_page_failing_every_retry_raises_after_the_items_before_it(
    server: LocalServer, make_client: Callable[..., LeanClient]
) -> None:
    listing = ListingServer(_names(10))
    failing = lean_error(500, "INTERNAL_SERVER_ERROR", "boom")

    async def answer(request: web.Request) -> web.StreamResponse:
        if request.query["page_number"] == "1":
            return await failing(request)
        return await listing.answer(request)

    server.script(PATH, answer)
    received: list[str] = []
    with pytest.raises(ServerError):
        async for thing in _pager(make_client(max_retries=2), listing, 5):
            received.append(thing.thing_id)  # noqa: PERF401 (the items before the raise)
    assert received == _names(5)
    assert len(server.requests) == 1 + 3


# -- combinations: caps, sizes and creations while listing ---------------------------------


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    count=st.integers(0, 40),
    page_size=st.integers(1, 12),
    cap=st.none() | st.integers(1, 12),
    silent=st.booleans(),
    floor=st.integers(1, 6),
    created=st.lists(st.integers(0, 4), max_size=8),
    seed=st.integers(0, 2**16),
)
async def test_every_original_item_comes_exactly_once_whatever_the_server_does(
    make_server: Callable[[], Any],
    count: int,
    page_size: int,
    cap: int | None,
    silent: bool,
    floor: int,
    created: list[int],
    seed: int,
) -> None:
    server: LocalServer = await make_server()
    rng = random.Random(seed)
    original = _names(count)
    listing = ListingServer(list(original), cap=cap, silent_cap=silent, floor=floor)

    def create(page: int) -> None:  # items created anywhere before each page after the first
        if 0 < page <= len(created):
            for i in range(created[page - 1]):
                listing.items.insert(rng.randint(0, len(listing.items)), f"new{page}-{i}")

    listing.between_pages = create
    server.script(PATH, listing.answer)
    async with LeanClient(app_token="t", base_url=server.url, environ={}) as client:
        ids = await _ids(_pager(client, listing, page_size))
    assert len(ids) == len(set(ids))
    assert set(original) <= set(ids) <= set(listing.items)

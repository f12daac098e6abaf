"""Lean's page envelopes and the one iterator that walks them, for every listing that pages.

A listing answers ``{"data": [...], "page": {"number", "size", "total_elements",
"total_pages", "sort"}}`` with pages counted from 0; only the names of the two query
parameters differ between APIs (``PageStyle``). ``PageCursor`` is the pure part: which page
to ask for next and whether there is one. ``Pager`` sends the requests, one page at a time,
as the caller iterates.

Offset pages shift when items are created while a listing runs: an item created before
the position already read pushes the rest one place on, so the next page repeats an item
already yielded (dropped: ``Pager`` remembers every key it yielded) and nothing is skipped.
An item deleted mid-listing pulls the rest one place back, and the item that crosses the
page boundary is missed: no offset pagination can see it (a later listing will).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

import msgspec

from ._decode import decode_json
from ._exceptions import DecodeError

if TYPE_CHECKING:
    # Only in annotations: the models of each resource import this module, and the
    # transport imports the models.
    from ._protocol import Decode
    from ._transport import Transport

__all__ = [
    "CUSTOMER_PAGES",
    "EVENT_PAGES",
    "Page",
    "PageCursor",
    "PageInfo",
    "PageStyle",
    "Pager",
    "check_page_size",
    "page_decoder",
    "paged_listing",
]

T = TypeVar("T")


class PageInfo(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """The ``page`` half of the envelope; any field may be missing."""

    number: int | None = None
    size: int | None = None
    total_elements: int | None = None
    total_pages: int | None = None
    sort: Any = None  # null in every example; kept as it came


class Page(msgspec.Struct, Generic[T], kw_only=True, frozen=True, gc=False):
    """One page of a listing: its items and where it stands."""

    data: list[T] | None = None
    page: PageInfo = msgspec.field(default_factory=PageInfo)

    @property
    def items(self) -> list[T]:
        return self.data or []


class PageStyle(NamedTuple):
    """The names of a listing's query parameters for the page number and the page size."""

    number: str
    size: str


CUSTOMER_PAGES = PageStyle("page_number", "page_size")
EVENT_PAGES = PageStyle("page", "size")


def check_page_size(page_size: int) -> int:
    """``page_size`` if it is a whole number >= 1; ValueError otherwise."""
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise ValueError(f"page_size must be a whole number >= 1, got {page_size!r}")
    return page_size


@dataclass(slots=True)
class PageCursor:
    """The page to ask for next (``number`` of ``size`` items), and whether there is one."""

    size: int
    number: int = 0
    done: bool = False

    def params(self, style: PageStyle) -> dict[str, str]:
        return {style.number: str(self.number), style.size: str(self.size)}

    def advance(self, info: PageInfo, count: int) -> None:
        """Take in the answer to the page last asked for: ``info`` and ``count`` items.

        The page's offset is its number times the size the server used (``info.size``:
        a server may cap the size asked for). A page shorter than that size and not the
        last means a server that caps without saying so: the next pages are asked with
        the size it gave, from the first item not yet read, so that nobody is skipped.
        """
        if count == 0:
            self.done = True
            return
        if info.number is not None and info.number != self.number:
            # A server that ignores the page number would hand out its first page forever.
            raise DecodeError(
                f"asked for page {self.number}, the server answered page {info.number}"
            )
        server_size = info.size if info.size is not None and info.size > 0 else self.size
        end = self.number * server_size + count
        # The latest totals count: they grow while items are created during the listing.
        # A last page by total_pages that ends short of total_elements was capped silently.
        told = info.total_pages is not None or info.total_elements is not None
        last_page = info.total_pages is None or self.number >= info.total_pages - 1
        all_read = info.total_elements is None or end >= info.total_elements
        self.done = told and last_page and all_read
        if self.done:
            return
        if count < server_size:
            server_size = count
        self.size = server_size
        # The page holding the first unread item; if the size changed, its start may
        # repeat items already read, which the caller drops.
        self.number = end // server_size


class Pager(Generic[T]):
    """Every item of a paged listing, one page requested at a time as iteration needs it.

    ``async for item in pager`` walks the listing from page 0 (each ``async for`` starts a
    new walk; ``page`` and ``pages_read`` describe the latest). An item whose ``key`` was
    already yielded by this walk is skipped: the walk keeps every key it yielded, about
    130 bytes per item for a 36-character id string (130 MB per million items; 45 of them
    when the caller keeps the items too), freed when the walk ends. A page that fails
    after the client's retries raises from the loop.
    """

    def __init__(
        self,
        fetch_page: Callable[[dict[str, str]], Awaitable[Page[T]]],
        *,
        style: PageStyle,
        page_size: int,
        key: Callable[[T], Hashable],
    ) -> None:
        self._fetch_page = fetch_page
        self._style = style
        self._page_size = check_page_size(page_size)
        self._key = key
        self.page: PageInfo | None = None  # the latest page read, as the server described it
        self.pages_read = 0

    @property
    def total_elements(self) -> int | None:
        """The number of items the latest page read announced (it moves as items come
        and go); None before the first page or if the server does not say."""
        return None if self.page is None else self.page.total_elements

    def __aiter__(self) -> AsyncIterator[T]:
        return self._walk()

    async def _walk(self) -> AsyncIterator[T]:
        cursor = PageCursor(self._page_size)
        key = self._key
        seen: set[Hashable] = set()
        self.page, self.pages_read = None, 0
        while not cursor.done:
            page = await self._fetch_page(cursor.params(self._style))
            self.page = page.page
            self.pages_read += 1
            items = page.items
            cursor.advance(page.page, len(items))
            for item in items:
                item_key = key(item)
                if item_key not in seen:
                    seen.add(item_key)
                    yield item


def page_decoder(decoder: msgspec.json.Decoder[Page[T]], what: str) -> Decode[Page[T]]:
    """A transport decode function for one page, e.g. of ``Decoder(Page[Customer])``."""

    def decode(body: bytes) -> Page[T]:
        return decode_json(decoder, body, what)

    return decode


def paged_listing(
    transport: Transport,
    path: str,
    decode: Decode[Page[T]],
    *,
    style: PageStyle,
    page_size: int,
    key: Callable[[T], Hashable],
    params: Mapping[str, str] | None = None,
) -> Pager[T]:
    """A ``Pager`` over ``GET path``, each page asked with ``params`` and its place."""
    filters = dict(params or {})

    def fetch_page(place: dict[str, str]) -> Awaitable[Page[T]]:
        return transport.request("GET", path, decode, params={**filters, **place})

    return Pager(fetch_page, style=style, page_size=page_size, key=key)

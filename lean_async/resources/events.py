"""``client.events``: the events Lean created and sent by webhook in the past 90 days
(``GET /events/v1``), to replay what a receiver missed."""

from __future__ import annotations

from datetime import datetime, timezone

import msgspec

from .._constants import DEFAULT_EVENTS_PAGE_SIZE
from .._decode import decode_json
from .._paging import EVENT_PAGES, Page, Pager, paged_listing
from .._transport import Transport
from .._webhook_events import WebhookEvent, decode_event

__all__ = ["Events"]

_PATH = "/events/v1"
_RAW_PAGE = msgspec.json.Decoder(Page[msgspec.Raw])


def _decode_page(body: bytes) -> Page[WebhookEvent]:
    """A page of events, each decoded exactly as a webhook delivery of it is."""
    raw = decode_json(_RAW_PAGE, body, "the page of events")
    return Page(data=[decode_event(bytes(item)) for item in raw.items], page=raw.page)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def query_time(moment: datetime) -> str:
    """``moment`` as the query parameters write it: ISO 8601 in UTC (naive taken as UTC)."""
    return _utc(moment).isoformat().replace("+00:00", "Z")


class Events:
    """Lean's Events API."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def list(
        self,
        *,
        since: datetime,
        until: datetime | None = None,
        type: str | None = None,
        page_size: int = DEFAULT_EVENTS_PAGE_SIZE,
    ) -> Pager[WebhookEvent]:
        """Every event from ``since`` (up to ``until``; of one ``type``), one page at a time
        as the loop asks: ``async for event in lean.events.list(since=...)``. Each is a
        ``webhooks.WebhookEvent``, decoded as its webhook delivery is. Lean does not say in
        which order it lists events: sort them if order matters. Naive datetimes are UTC."""
        if not isinstance(since, datetime) or not (until is None or isinstance(until, datetime)):
            raise TypeError("since and until must be datetimes")
        params = {"from": query_time(since)}
        if until is not None:
            if _utc(until) < _utc(since):
                raise ValueError("until is before since")
            params["to"] = query_time(until)
        if type is not None:
            params["type"] = str(type)
        return paged_listing(
            self._transport,
            _PATH,
            _decode_page,
            style=EVENT_PAGES,
            page_size=page_size,
            key=_event_id,
            params=params,
        )


def _event_id(event: WebhookEvent) -> str:
    return event.event_id

"""``GET /events/v1``: every event the fake server created (and sent by webhook, if it
sends any), listed newest first in pages, with Lean's ``from``/``to``/``type`` filters."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from ._responses import lean_error, respond

if TYPE_CHECKING:
    from ._app import LeanApp

__all__ = ["EVENTS_PATH", "EventLog", "add_event_routes"]

EVENTS_PATH = "/events/v1"
MAX_PAGE_SIZE = 100  # larger sizes are capped to this, and the page says so


def event_time(event: dict[str, Any]) -> datetime:
    """The instant of an event's ``timestamp`` (``2026-05-13T10:50:10.476351058Z``: the
    nanoseconds are cut to microseconds)."""
    text = str(event["timestamp"]).rstrip("Z")
    whole, _, fraction = text.partition(".")
    moment = datetime.fromisoformat(whole).replace(tzinfo=timezone.utc)
    return moment.replace(microsecond=int((fraction + "000000")[:6]))


class EventLog:
    """The events the fake server created, oldest first."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self.events)

    def record(self, events: Iterable[dict[str, Any]]) -> None:
        self.events.extend(events)

    def select(
        self, since: datetime | None, until: datetime | None, event_type: str | None
    ) -> list[dict[str, Any]]:
        """The events of ``event_type`` from ``since`` to ``until`` (both included), newest
        first."""
        return [
            event
            for event in reversed(self.events)
            if (event_type is None or event["type"] == event_type)
            and (since is None or event_time(event) >= since)
            and (until is None or event_time(event) <= until)
        ]


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _parse_time(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _Refused(
            400, "INVALID_PARAMETERS", f"'{name}' must be an ISO 8601 date-time"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _parse_int(request: web.Request, name: str, default: int, least: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise _Refused(400, "INVALID_PARAMETERS", f"'{name}' must be a whole number >= {least}")
    return value


def add_event_routes(app: web.Application, lean: LeanApp) -> None:
    """Serve ``GET /events/v1`` on ``app`` from ``lean.events``."""

    async def list_events(request: web.Request) -> web.Response:
        try:
            page = _parse_int(request, "page", 0, 0)
            size = min(_parse_int(request, "size", 20, 1), MAX_PAGE_SIZE)
            since = _parse_time(request, "from")
            until = _parse_time(request, "to")
        except _Refused as refused:
            return lean_error(refused.status, refused.code, refused.message)
        selected = lean.events.select(since, until, request.query.get("type"))
        body = {
            "data": selected[page * size : (page + 1) * size],
            "page": {
                "number": page,
                "size": size,
                "total_elements": len(selected),
                "total_pages": math.ceil(len(selected) / size),
            },
        }
        return respond(200, msgspec.json.encode(body))

    app.router.add_get(EVENTS_PATH, list_events, allow_head=False)

"""The fake server's Payment Sources API: a customer's list, one source, and the delete
with its ``{"reason": ...}`` body."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from aiohttp import web

from ..resources.payment_sources import DeleteReason
from ._responses import lean_error, lean_headers, respond, unknown_customer

if TYPE_CHECKING:
    from ._app import LeanApp

__all__ = ["delete_body_problem", "payment_source_routes"]

_SOURCES_PATH = "/customers/v1/{customer_id}/payment-sources"
_SOURCE_PATH = _SOURCES_PATH + "/{payment_source_id}"
_REASONS = tuple(reason.value for reason in DeleteReason)


def payment_source_routes(app: LeanApp) -> list[web.RouteDef]:
    """The routes, reading ``app``'s data and knobs at each request."""

    async def list_sources(request: web.Request) -> web.Response:
        customer_id = request.match_info["customer_id"]
        body = app.data.list_body(customer_id)
        if body is None:
            if app.unknown_customer_404:
                return unknown_customer()
            body = b"[]"
        return respond(200, body)

    async def get(request: web.Request) -> web.Response:
        customer_id, source_id = _source_ids(request)
        body = app.data.source_body(customer_id, source_id)
        if body is None:
            return _unknown_source()
        return respond(200, body)

    async def delete(request: web.Request) -> web.Response:
        customer_id, source_id = _source_ids(request)
        problem = delete_body_problem(await request.read())
        if problem is not None:
            return lean_error(400, *problem)
        source = app.data.remove(customer_id, source_id)
        if source is None:
            return _unknown_source()
        if app.on_delete is not None:
            app.on_delete(source)
        if app.delete_status == 204:
            return web.Response(status=204, headers=lean_headers(None))
        return respond(200, b"{}")

    return [
        web.get(_SOURCES_PATH, list_sources, allow_head=False),
        web.get(_SOURCE_PATH, get, allow_head=False),
        web.delete(_SOURCE_PATH, delete),
    ]


def delete_body_problem(body: bytes) -> tuple[str, str] | None:
    """(code, message) of what is wrong with a delete's ``{"reason": ...}`` body; None if
    nothing is."""
    if not body.strip():
        return "MISSING_PARAMETERS", "the request body with a 'reason' is required"
    try:
        parsed = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return "INVALID_PARAMETERS", "the request body is not valid JSON"
    if not isinstance(parsed, dict):
        return "INVALID_PARAMETERS", "the request body must be a JSON object"
    reason = parsed.get("reason")
    if reason is None:
        return "MISSING_PARAMETERS", "'reason' is required"
    if reason not in _REASONS:
        return "INVALID_PARAMETERS", f"'reason' must be one of {', '.join(_REASONS)}"
    return None


def _source_ids(request: web.Request) -> tuple[str, str]:
    return request.match_info["customer_id"], request.match_info["payment_source_id"]


def _unknown_source() -> web.Response:
    return lean_error(
        404, "UNKNOWN_PAYMENT_SOURCE", "No payment source with this id for this customer"
    )

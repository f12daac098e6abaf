"""The fake server's Payment Destinations API: the application's destinations (every
beneficiary's ``payment_destination_id`` among them), one by id, and a customer's own."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ._responses import lean_error, respond, unknown_customer

if TYPE_CHECKING:
    from ._app import LeanApp

__all__ = ["UNKNOWN_PAYMENT_DESTINATION", "destination_routes"]

_PATH = "/payments/v1/destinations"
# Lean documents no code for this 404; this server's choice, after UNKNOWN_PAYMENT_SOURCE.
UNKNOWN_PAYMENT_DESTINATION = "UNKNOWN_PAYMENT_DESTINATION"


def destination_routes(app: LeanApp) -> list[web.RouteDef]:
    """The routes, reading ``app``'s data and knobs at each request."""

    async def list_all(request: web.Request) -> web.Response:
        return respond(200, app.data.destination_list_body())

    async def get(request: web.Request) -> web.Response:
        body = app.data.destination_body(request.match_info["payment_destination_id"])
        if body is None:
            message = "No payment destination with this id"
            return lean_error(404, UNKNOWN_PAYMENT_DESTINATION, message)
        return respond(200, body)

    async def list_for_customer(request: web.Request) -> web.Response:
        key = app.data.customer_key(request.match_info["customer_id"])
        if key is None:
            if app.unknown_customer_404:
                return unknown_customer()
            return respond(200, b"[]")
        return respond(200, app.data.customer_destinations_body(key))

    return [
        web.get(_PATH, list_all, allow_head=False),
        web.get(_PATH + "/{payment_destination_id}", get, allow_head=False),
        web.get("/customers/v1/{customer_id}/destinations", list_for_customer, allow_head=False),
    ]

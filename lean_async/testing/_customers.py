"""The fake server's Customers API: create (409 for an app user who has a customer), get by
id or by app user id, and the list in pages of Lean's envelope."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import msgspec
from aiohttp import web
from multidict import MultiMapping

from .._exceptions import InvalidIdError
from .._ids import validate_app_user_id
from ..resources.customers import CUSTOMER_ALREADY_EXISTS
from ._responses import lean_error, respond, unknown_customer

if TYPE_CHECKING:
    from ._app import LeanApp

__all__ = ["DEFAULT_PAGE_SIZE", "customer_routes"]

_PATH = "/customers/v1"
# Lean documents no default page size; 20 is Spring's.
DEFAULT_PAGE_SIZE = 20


def customer_routes(app: LeanApp) -> list[web.RouteDef]:
    """The routes, reading ``app``'s data and knobs at each request."""

    async def create(request: web.Request) -> web.Response:
        app_user_id = _app_user_id_of(await request.read())
        if not isinstance(app_user_id, str):
            return app_user_id
        data = app.data
        if data.customer_key_of_app_user(app_user_id) is not None:
            return lean_error(
                409,
                CUSTOMER_ALREADY_EXISTS,
                "A customer already exists for the app_user_id you have provided.",
            )
        customer = data.add_customer(str(uuid.uuid4()), app_user_id)
        return respond(200, data.customer_body(customer.customer_id.lower()))

    async def get(request: web.Request) -> web.Response:
        key = app.data.customer_key(request.match_info["customer_id"])
        return unknown_customer() if key is None else respond(200, app.data.customer_body(key))

    async def get_by_app_user_id(request: web.Request) -> web.Response:
        key = app.data.customer_key_of_app_user(request.match_info["app_user_id"])
        return unknown_customer() if key is None else respond(200, app.data.customer_body(key))

    async def list_page(request: web.Request) -> web.Response:
        place = _page_of(request.query)
        if isinstance(place, web.Response):
            return place
        number, size = place
        cap = app.customer_page_cap
        if cap is not None:
            size = min(size, cap)  # said in the answer's page.size, as Spring does
        return respond(200, app.data.customer_page_body(number, size))

    return [
        web.post(_PATH, create),
        web.post(_PATH + "/", create),
        web.get(_PATH, list_page, allow_head=False),
        web.get(_PATH + "/", list_page, allow_head=False),
        web.get(_PATH + "/app-user-id/{app_user_id}", get_by_app_user_id, allow_head=False),
        web.get(_PATH + "/{customer_id}", get, allow_head=False),
    ]


def _app_user_id_of(body: bytes) -> str | web.Response:
    """The app user id a create asks for, or the 400 answer to it."""
    try:
        parsed = msgspec.json.decode(body) if body.strip() else None
    except msgspec.DecodeError:
        return lean_error(400, "INVALID_PARAMETERS", "the request body is not valid JSON")
    if not isinstance(parsed, dict) or parsed.get("app_user_id") is None:
        return lean_error(400, "MISSING_PARAMETERS", "'app_user_id' is required")
    try:
        return validate_app_user_id(parsed["app_user_id"])
    except InvalidIdError as exc:
        return lean_error(400, "INVALID_PARAMETERS", str(exc))


def _page_of(query: MultiMapping[str]) -> tuple[int, int] | web.Response:
    """(page_number, page_size) of a list request, or the 400 answer to it."""
    try:
        number = int(query.get("page_number", "0"))
        size = int(query.get("page_size", str(DEFAULT_PAGE_SIZE)))
    except ValueError:
        number = size = -1
    if number < 0 or size < 1:
        return lean_error(
            400,
            "INVALID_PARAMETERS",
            "page_number must be a whole number >= 0 and page_size one >= 1",
        )
    return number, size

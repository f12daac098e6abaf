"""``client.customers``: create, find and list the application's Lean customers."""

from __future__ import annotations

import msgspec

from .._constants import DEFAULT_CUSTOMER_PAGE_SIZE
from .._exceptions import ConflictError
from .._ids import CustomerLike, path_segment, validate_app_user_id, validate_customer_id
from .._paging import CUSTOMER_PAGES, Pager, paged_listing
from .._transport import Transport
from ..types.customers import Customer, decode_customer, decode_customer_page

__all__ = ["CUSTOMER_ALREADY_EXISTS", "Customers"]

# Lean's code for a create whose app_user_id already has a customer (HTTP 409).
CUSTOMER_ALREADY_EXISTS = "CUSTOMER_ALREADY_EXISTS"
_PATH = "/customers/v1"


def _customer_key(customer: Customer) -> str:
    return customer.customer_id


class Customers:
    """The Customers API: one Lean customer per user of the application, named by the
    application's own ``app_user_id`` (free text of 1 to 255 characters; anything else
    raises ``InvalidIdError``, a ``ValueError``, before a request is made)."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def create(self, app_user_id: str) -> Customer:
        """Create the customer of ``app_user_id``. ``ConflictError`` with ``code ==
        "CUSTOMER_ALREADY_EXISTS"`` when it exists already, even when an earlier attempt
        of this very call created it before its answer was lost: use ``get_or_create``
        when that must not matter."""
        body = msgspec.json.encode({"app_user_id": validate_app_user_id(app_user_id)})
        return await self._transport.request("POST", _PATH + "/", decode_customer, json_body=body)

    async def get(self, customer_id: CustomerLike) -> Customer:
        """One customer by Lean's id; ``NotFoundError`` when there is none."""
        path = f"{_PATH}/{validate_customer_id(customer_id)}"
        return await self._transport.request("GET", path, decode_customer)

    async def get_by_app_user_id(self, app_user_id: str) -> Customer:
        """The customer of ``app_user_id``; ``NotFoundError`` when there is none. The id
        travels as one percent-encoded path segment, whatever characters it holds."""
        path = f"{_PATH}/app-user-id/{path_segment(validate_app_user_id(app_user_id))}"
        return await self._transport.request("GET", path, decode_customer)

    async def get_or_create(self, app_user_id: str) -> Customer:
        """The customer of ``app_user_id``, created if there is none yet.

        Safe under concurrency, across tasks and processes: when two ask at once for a
        new user, Lean creates one customer and answers the other 409, which then reads
        the one created. Costs one request for a new user, two for a known one.
        """
        app_user_id = validate_app_user_id(app_user_id)
        try:
            return await self.create(app_user_id)
        except ConflictError as exc:
            if exc.code != CUSTOMER_ALREADY_EXISTS:
                raise
        return await self.get_by_app_user_id(app_user_id)

    def list(self, *, page_size: int = DEFAULT_CUSTOMER_PAGE_SIZE) -> Pager[Customer]:
        """Every customer of the application: ``async for customer in
        client.customers.list(): ...``, one page of ``page_size`` requested at a time.

        Each customer comes once, also when customers are created during the listing
        (they may or may not be in it). ``total_elements`` on the returned object is the
        count the latest page announced. A page that fails after the client's retries
        raises from the loop.
        """
        return paged_listing(
            self._transport,
            _PATH,
            decode_customer_page,
            style=CUSTOMER_PAGES,
            page_size=page_size,
            key=_customer_key,
        )

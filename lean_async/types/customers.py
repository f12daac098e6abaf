"""The Customers API's objects: a customer, and a page of them."""

from __future__ import annotations

import msgspec

from .._decode import decode_json
from .._paging import Page

__all__ = ["Customer", "decode_customer", "decode_customer_page"]


class Customer(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """Lean's customer for one user of the application (one per ``app_user_id``).

    Unknown fields are ignored, so fields Lean adds later never break decoding. Frozen and
    hashable: a set or dict key.
    """

    customer_id: str
    app_user_id: str | None = None


_ONE_DECODER = msgspec.json.Decoder(Customer)
_PAGE_DECODER = msgspec.json.Decoder(Page[Customer])


def decode_customer(data: bytes) -> Customer:
    """Decode one customer; raises DecodeError."""
    return decode_json(_ONE_DECODER, data, "the customer")


def decode_customer_page(data: bytes) -> Page[Customer]:
    """Decode one page of the customer list (``{"data": [...], "page": {...}}``)."""
    return decode_json(_PAGE_DECODER, data, "the customer page")

"""``lean-async customers list|get|create``: the application's Lean customers."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import msgspec

from .._client import LeanClient
from .._constants import DEFAULT_CUSTOMER_PAGE_SIZE
from .._exceptions import LeanError
from ..types.customers import Customer
from .args import client_from_args, positive_int
from .calls import compact_flag, json_command
from .errors import CommandError, UsageError

__all__ = ["add_parser"]

LIST_DESCRIPTION = """\
Print every customer of the application, one JSON object per line, as the pages come
(one page of --page-size customers is requested at a time).
"""


def add_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "customers",
        help="list, get or create the application's Lean customers",
        description="The application's Lean customers: one per user of the application.",
    )
    actions = parser.add_subparsers(metavar="ACTION", required=True)

    listing = actions.add_parser(
        "list", parents=parents, help="every customer, as JSON Lines", description=LIST_DESCRIPTION
    )
    listing.add_argument(
        "--page-size",
        type=positive_int,
        default=DEFAULT_CUSTOMER_PAGE_SIZE,
        metavar="N",
        help="customers per request (default %(default)s)",
    )
    listing.set_defaults(run=_list)

    get = actions.add_parser(
        "get",
        parents=parents,
        help="one customer, by Lean's id or by your app user id",
        description="Print one customer as JSON.",
    )
    get.add_argument("customer_id", nargs="?", metavar="CUSTOMER_ID")
    get.add_argument("--app-user-id", metavar="ID", help="find the customer by your user id")
    compact_flag(get)
    get.set_defaults(run=json_command(_get))

    create = actions.add_parser(
        "create",
        parents=parents,
        help="create the customer of an app user id",
        description="Create the Lean customer of one of your users, and print it as JSON. "
        "Exit status 1 when it exists already, unless --or-get.",
    )
    create.add_argument("app_user_id", metavar="APP_USER_ID", help="your user's id, 1-255 chars")
    create.add_argument(
        "--or-get", action="store_true", help="print the existing customer if there is one"
    )
    compact_flag(create)
    create.set_defaults(run=json_command(_create))


async def _get(client: LeanClient, args: argparse.Namespace) -> Customer:
    if (args.customer_id is None) == (args.app_user_id is None):
        raise UsageError("give a CUSTOMER_ID or --app-user-id, one of them")
    if args.customer_id is not None:
        return await client.customers.get(args.customer_id)
    return await client.customers.get_by_app_user_id(args.app_user_id)


async def _create(client: LeanClient, args: argparse.Namespace) -> Customer:
    if args.or_get:
        return await client.customers.get_or_create(args.app_user_id)
    return await client.customers.create(args.app_user_id)


_ENCODER = msgspec.json.Encoder()


async def _list(args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    async with client_from_args(args) as client:
        listing = client.customers.list(page_size=args.page_size)
        pages = 0
        try:
            async for customer in listing:
                if listing.pages_read != pages:  # a new page: the last one's lines go out
                    pages = listing.pages_read
                    out.flush()
                out.write(_ENCODER.encode(customer) + b"\n")
        except LeanError as exc:
            out.flush()
            raise CommandError(
                f"listing the customers failed at page {listing.pages_read + 1}: "
                f"{type(exc).__name__}: {exc}"
            ) from None
    out.flush()
    return 0

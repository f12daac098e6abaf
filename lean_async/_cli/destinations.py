"""``lean-async destinations list|get``: the accounts that payments are made to."""

from __future__ import annotations

import argparse
from typing import Any

from .._client import LeanClient
from ..types.payment_destinations import PaymentDestination
from .calls import compact_flag, json_command, mask_flag

__all__ = ["add_parser"]


def add_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "destinations",
        help="list or get payment destinations",
        description="Payment destinations: the accounts payments are made to (a "
        "beneficiary's payment_destination_id names one).",
    )
    actions = parser.add_subparsers(metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list",
        parents=parents,
        help="the application's destinations, or a customer's",
        description="Print the application's payment destinations as JSON, or with "
        "--customer those of one customer.",
    )
    listing.add_argument("--customer", metavar="CUSTOMER_ID", help="a customer's destinations")
    mask_flag(listing)
    compact_flag(listing)
    listing.set_defaults(run=json_command(_list))
    get = actions.add_parser(
        "get", parents=parents, help="one destination", description="Print one as JSON."
    )
    get.add_argument("payment_destination_id", metavar="DESTINATION_ID")
    mask_flag(get)
    compact_flag(get)
    get.set_defaults(run=json_command(_get))


async def _list(client: LeanClient, args: argparse.Namespace) -> list[PaymentDestination]:
    if args.customer is not None:
        listed = await client.payment_destinations.list_for_customer(args.customer)
    else:
        listed = await client.payment_destinations.list()
    return [destination.masked() for destination in listed] if args.mask else listed


async def _get(client: LeanClient, args: argparse.Namespace) -> PaymentDestination:
    destination = await client.payment_destinations.get(args.payment_destination_id)
    return destination.masked() if args.mask else destination

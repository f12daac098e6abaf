"""``lean-async list``, ``get`` and ``delete``: one call each, its answer as JSON on stdout."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from .._client import LeanClient
from .._exceptions import ConfigurationError, InvalidIdError, LeanError
from ..resources.payment_sources import DeleteReason
from .args import client_from_args
from .errors import CommandError

__all__ = ["add_parsers", "compact_flag", "json_command", "mask_flag"]

Call = Callable[[LeanClient, argparse.Namespace], Awaitable[Any]]


def add_parsers(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    for name, call, summary, source in (
        ("list", _list, "print a customer's payment sources as JSON", False),
        ("get", _get, "print one payment source as JSON", True),
        ("delete", _delete, "delete a payment source (revokes its consent)", True),
    ):
        parser = commands.add_parser(name, parents=parents, help=summary, description=summary)
        parser.add_argument("customer_id", metavar="CUSTOMER_ID")
        if source:
            parser.add_argument("payment_source_id", metavar="PAYMENT_SOURCE_ID")
        if call is _delete:
            parser.add_argument(
                "--reason",
                choices=[reason.value for reason in DeleteReason],
                default=DeleteReason.USER_REQUESTED.value,
                help="sent to Lean (default %(default)s)",
            )
        else:
            mask_flag(parser)
        compact_flag(parser)
        parser.set_defaults(run=json_command(call))


def mask_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mask",
        action="store_true",
        help="show account numbers and IBANs by their last 4 characters only",
    )


def compact_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--compact", action="store_true", help="one line of JSON instead of indented"
    )


def json_command(call: Call) -> Callable[[argparse.Namespace], Awaitable[int]]:
    """A command that makes one call and prints its answer as JSON on stdout."""

    async def run(args: argparse.Namespace) -> int:
        async with client_from_args(args) as client:
            try:
                answer = await call(client, args)
            except (ConfigurationError, InvalidIdError):
                raise  # usage errors
            except LeanError as exc:
                raise CommandError(f"{type(exc).__name__}: {exc}") from None
        body = msgspec.json.encode(answer)
        if not args.compact:
            body = msgspec.json.format(body, indent=2)
        sys.stdout.buffer.write(body + b"\n")
        sys.stdout.flush()
        return 0

    return run


async def _list(client: LeanClient, args: argparse.Namespace) -> Any:
    sources = await client.payment_sources.list(args.customer_id)
    return [source.masked() for source in sources] if args.mask else sources


async def _get(client: LeanClient, args: argparse.Namespace) -> Any:
    source = await client.payment_sources.get(args.customer_id, args.payment_source_id)
    return source.masked() if args.mask else source


async def _delete(client: LeanClient, args: argparse.Namespace) -> Any:
    await client.payment_sources.delete(
        args.customer_id, args.payment_source_id, reason=args.reason
    )
    return {
        "customer_id": args.customer_id,
        "payment_source_id": args.payment_source_id,
        "deleted": True,
        "reason": args.reason,
    }

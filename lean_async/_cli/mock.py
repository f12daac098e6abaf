"""``lean-async mock``: the fake Lean server, until Ctrl-C."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

import msgspec

from ..testing import FakeLean, serve
from ..testing._mock_flags import add_server_arguments, cannot_serve, describe, server_options
from ..testing._server import EVERY_ADDRESS
from .errors import CommandError, UsageError
from .invocation import command

__all__ = ["add_parser"]

DESCRIPTION = """\
Run a fake Lean API on this machine, with generated customers and payment sources, to try
the other commands on (or to test code against). Prints its URL and credentials; runs
until Ctrl-C.
"""


def add_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "mock",
        parents=parents,
        help="run a fake Lean API server (until Ctrl-C)",
        description=DESCRIPTION,
    )
    add_server_arguments(parser)
    output = parser.add_argument_group("output")
    output.add_argument(
        "--json", action="store_true", help="print one JSON line of URLs and credentials"
    )
    output.add_argument(
        "--write-ids", metavar="PATH", help="write the customers' ids to PATH, one per line"
    )
    # A signal is how this command is meant to end.
    parser.set_defaults(run=run_mock, stops_cleanly=True)


async def run_mock(args: argparse.Namespace) -> int:
    try:
        options = server_options(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    def ready(server: FakeLean) -> None:
        if args.write_ids:
            with open(args.write_ids, "w", encoding="utf-8") as file:
                file.writelines(f"{customer_id}\n" for customer_id in server.customer_ids)
        if args.json:
            sys.stdout.write(msgspec.json.encode(describe(server)).decode() + "\n")
        else:
            sys.stdout.write(announcement(server, args.write_ids))
        sys.stdout.flush()

    try:
        await serve(**options, ready=ready)
    except OSError as exc:
        raise CommandError(cannot_serve(args.host, args.port, exc)) from None
    return 0


def announcement(server: FakeLean, ids_file: str | None) -> str:
    """What the server is and how to call it."""
    first = server.customer_ids[0] if server.customer_ids else "CUSTOMER_ID"
    prog = command()
    env = f"LEAN_APP_TOKEN={server.app_token}"
    oauth = f"LEAN_CLIENT_ID={server.client_id} LEAN_CLIENT_SECRET={server.client_secret}"
    sweep = (
        f"  {env} {prog} sweep {shlex.quote(ids_file)} --base-url {server.url} -o sources.jsonl\n"
        if ids_file
        else f"  {env} {prog} sweep --all-customers --base-url {server.url} -o sources.jsonl\n"
    )
    # On every address the URL names loopback, which a client here can use (and whose
    # plain http it accepts): say where it really listens.
    address = (
        f"  address:       {server.host or '*'} (every address of this machine)\n"
        if server.host in EVERY_ADDRESS
        else ""
    )
    return (
        f"Fake Lean API listening on {server.url}\n"
        f"{address}"
        f"  customers:     {len(server.customer_ids)}\n"
        f"  faults:        {server.faults.describe()}\n"
        f"  token URL:     {server.token_url}\n"
        f"  app token:     {server.app_token}\n"
        f"  client id:     {server.client_id}\n"
        f"  client secret: {server.client_secret}\n"
        "\n"
        "Try, in another shell:\n"
        f"  {env} {prog} list {first} --base-url {server.url}\n"
        f"  {env} {prog} customers list --base-url {server.url}\n"
        f"{sweep}"
        "or with OAuth2 client credentials:\n"
        f"  {oauth} {prog} list {first} --base-url {server.url} --auth-url {server.token_url}\n"
        "Ctrl-C stops the server.\n"
    )

"""``lean-async webhooks``: run a receiver with a durable inbox, look into an inbox, retry
its failed events, backfill it from Lean's Events API, and send signed test events."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, BinaryIO

import msgspec
from aiohttp import web

from .._constants import ENV_WEBHOOK_SECRET
from .._exceptions import LeanError
from .._webhook_events import EventHandler, WebhookEvent, encode_event
from .._webhook_inbox import InboxEntry
from .._webhook_receiver import RECEIVER_KEY, receiver
from .._webhook_sqlite import STATES, SQLiteInbox
from .args import client_from_args, positive_int
from .errors import CommandError, UsageError
from .events import add_time_filters, parse_moment

__all__ = ["add_parser"]

DESCRIPTION = f"""\
Lean's webhooks with a durable inbox: `serve` answers each delivery 200 only once its event
is on disk, and handles it from there, also after a crash. The secret comes from
{ENV_WEBHOOK_SECRET}.
"""
_DEFAULT_INBOX = "lean-events.db"


def add_parser(commands: Any, parents: list[argparse.ArgumentParser], client: Any) -> None:
    """``parents``: the verbosity flags; ``client``: the flags of commands that call Lean."""
    parser = commands.add_parser(
        "webhooks", help="receive Lean's webhooks into a durable inbox", description=DESCRIPTION
    )
    actions = parser.add_subparsers(metavar="ACTION", required=True)
    inbox = argparse.ArgumentParser(add_help=False)
    inbox.add_argument(
        "--inbox", default=_DEFAULT_INBOX, metavar="PATH", help="SQLite file (default %(default)s)"
    )

    serve = actions.add_parser(
        "serve",
        parents=[*parents, inbox],
        help="run a receiver until Ctrl-C",
        description="Run a webhook receiver with a durable inbox until Ctrl-C (or SIGTERM).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="(default %(default)s)")
    serve.add_argument("--port", type=int, default=8080, help="(default %(default)s)")
    serve.add_argument("--path", default="/webhooks/lean", help="(default %(default)s)")
    serve.add_argument(
        "--handler",
        metavar="MODULE:FUNCTION",
        help="an async function called with each event (default: print it as a JSON line)",
    )
    serve.add_argument(
        "--output", metavar="PATH", help="the default handler appends to this file, not stdout"
    )
    serve.add_argument("--concurrency", type=positive_int, default=16, metavar="N")
    serve.add_argument("--max-attempts", type=positive_int, default=10, metavar="N")
    serve.set_defaults(run=_serve, stops_cleanly=True)

    status = actions.add_parser(
        "status", parents=[*parents, inbox], help="count an inbox's events by state"
    )
    status.set_defaults(run=_status)

    failed = actions.add_parser(
        "failed",
        parents=[*parents, inbox],
        help="print the events parked as failed, as JSON Lines",
        description="Print the events whose handler failed its last attempt, with their error.",
    )
    failed.set_defaults(run=_failed)

    retry = actions.add_parser(
        "retry",
        parents=[*parents, inbox],
        help="make failed events pending again",
        description="Make failed events (all, or those named) pending again; a running "
        "receiver handles them within a second, or the next one to start.",
    )
    retry.add_argument("event_ids", nargs="*", metavar="EVENT_ID")
    retry.set_defaults(run=_retry)

    prune = actions.add_parser(
        "prune",
        parents=[*parents, inbox],
        help="forget done events received before a moment",
        description="Forget the done events received before --before (their ids too: a "
        "backfill reaching back past it would add them again).",
    )
    prune.add_argument(
        "--before",
        type=parse_moment,
        required=True,
        metavar="WHEN",
        help="ISO 8601 or a time ago (90d)",
    )
    prune.set_defaults(run=_prune)

    backfill = actions.add_parser(
        "backfill",
        parents=[*parents, client, inbox],
        help="add the events Lean sent that the inbox lacks",
        description="Add to the inbox the events Lean's Events API lists that it lacks (after "
        "the receiver was down); a running receiver handles them.",
    )
    add_time_filters(backfill)
    backfill.set_defaults(run=_backfill)

    send = actions.add_parser(
        "send",
        parents=parents,
        help="send signed test events from a fake Lean server",
        description="Start a fake Lean server that creates payment sources and sends their "
        "events, signed, to URL; it also lists them on /events/v1 for a backfill.",
    )
    send.add_argument("url", metavar="URL")
    send.add_argument(
        "--count", type=positive_int, default=100, help="events, two per payment source (100)"
    )
    send.add_argument("--rate", type=float, default=20.0, help="events per second (default 20)")
    send.add_argument(
        "--retry-delays",
        default="0.5,1,2,4",
        metavar="S,S,...",
        help="waits before redelivering an event not answered 200 (default %(default)s)",
    )
    send.add_argument(
        "--record", metavar="PATH", help="write each delivery's outcome as a JSON line"
    )
    send.add_argument(
        "--serve", action="store_true", help="keep serving the fake API after sending (Ctrl-C)"
    )
    send.set_defaults(run=_send, stops_cleanly=True)


def _secret() -> str:
    secret = os.environ.get(ENV_WEBHOOK_SECRET)
    if not secret:
        raise UsageError(f"set {ENV_WEBHOOK_SECRET} to the webhook secret Lean signs with")
    return secret


def _load_handler(spec: str) -> EventHandler:
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise UsageError(f"--handler must be MODULE:FUNCTION, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r}: {exc}") from None
    handler = getattr(module, function_name, None)
    if not inspect.iscoroutinefunction(handler):
        raise UsageError(f"{spec} is not an async function")
    return handler


def _appending(path: str) -> BinaryIO:
    try:
        return open(path, "ab")
    except OSError as exc:
        raise UsageError(f"cannot write to {path}: {exc.strerror or exc}") from None


def _line_writer(file: BinaryIO) -> EventHandler:
    async def write_line(event: WebhookEvent) -> None:
        file.write(encode_event(event) + b"\n")
        file.flush()

    return write_line


async def _serve(args: argparse.Namespace) -> int:
    secret = _secret()
    output: BinaryIO | None = None
    if args.handler:
        handler = _load_handler(args.handler)
    else:
        output = _appending(args.output) if args.output else sys.stdout.buffer
        handler = _line_writer(output)
    inbox = SQLiteInbox(args.inbox)
    app = receiver(
        secret,
        handler,
        inbox=inbox,
        path=args.path,
        concurrency=args.concurrency,
        max_attempts=args.max_attempts,
    )
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    try:
        counts = await inbox.counts()
        await runner.setup()
        await web.TCPSite(runner, args.host, args.port).start()
        _say(
            f"receiving Lean webhooks on http://{args.host}:{args.port}{args.path} into "
            f"{args.inbox} ({counts['pending'] + counts['running']} pending, "
            f"{counts['failed']} failed); Ctrl-C stops"
        )
        await asyncio.Event().wait()  # until a signal cancels this
    except OSError as exc:
        raise CommandError(f"cannot serve: {exc.strerror or exc}") from None
    finally:
        await runner.cleanup()
        stats = app[RECEIVER_KEY].stats
        _say(f"stopped: {stats.accepted} events accepted, {stats.processed} handled")
        if output is not None and output is not sys.stdout.buffer:
            output.close()
    return 0


def _existing_inbox(path: str) -> SQLiteInbox:
    if not os.path.isfile(path):  # rather than create an empty one
        raise UsageError(f"no inbox at {path}")
    return SQLiteInbox(path)


def _opened(run: Callable[[SQLiteInbox, argparse.Namespace], Awaitable[int]]) -> Any:
    """A command's run on the ``--inbox`` of its arguments, which must exist."""

    async def on_inbox(args: argparse.Namespace) -> int:
        async with _existing_inbox(args.inbox) as inbox:
            return await run(inbox, args)

    return on_inbox


@_opened
async def _status(inbox: SQLiteInbox, args: argparse.Namespace) -> int:
    counts = await inbox.counts()
    sys.stdout.write(msgspec.json.encode({state: counts[state] for state in STATES}).decode())
    sys.stdout.write("\n")
    return 0


def _entry_record(entry: InboxEntry) -> bytes:
    event = msgspec.json.decode(encode_event(entry.event))
    return msgspec.json.encode(
        {
            "event_id": entry.event.event_id,
            "type": entry.event.type,
            "attempts": entry.attempts,
            "last_error": entry.last_error,
            "received_at": entry.received_at,
            "event": event,
        }
    )


@_opened
async def _failed(inbox: SQLiteInbox, args: argparse.Namespace) -> int:
    entries = await inbox.failed()
    sys.stdout.buffer.writelines(_entry_record(entry) + b"\n" for entry in entries)
    sys.stdout.flush()
    _say(f"{len(entries)} failed events")
    return 0


@_opened
async def _retry(inbox: SQLiteInbox, args: argparse.Namespace) -> int:
    count = await inbox.retry_failed(args.event_ids or None)
    _say(f"{count} failed events made pending again")
    return 0 if count or not args.event_ids else 1


@_opened
async def _prune(inbox: SQLiteInbox, args: argparse.Namespace) -> int:
    count = await inbox.prune(args.before)
    _say(f"{count} done events forgotten")
    return 0


async def _backfill(args: argparse.Namespace) -> int:
    async with SQLiteInbox(args.inbox) as inbox, client_from_args(args) as lean:
        try:
            added = await inbox.backfill(lean, since=args.since, until=args.until, type=args.type)
        except LeanError as exc:
            raise CommandError(f"{type(exc).__name__}: {exc}") from None
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    _say(f"{added} new events added to {args.inbox}")
    return 0


async def _send(args: argparse.Namespace) -> int:
    from ..testing import FakeLean  # the fake server only for this command

    secret = _secret()
    try:
        delays = [float(d) for d in args.retry_delays.split(",") if d.strip()]
    except ValueError:
        raise UsageError("--retry-delays must be seconds separated by commas") from None
    if not args.rate > 0:
        raise UsageError("--rate must be > 0")
    server = FakeLean(
        customers=10, webhook_url=args.url, webhook_secret=secret, webhook_retry_delays=delays
    )
    async with server:
        _say(
            f"fake Lean API on {server.url} (app token {server.app_token}); sending "
            f"{args.count} events to {args.url}"
        )
        try:
            await _send_events(server, args.count, args.rate)
        finally:
            _report_deliveries(server, args.record)
        if args.serve:
            _say("sent; serving the fake API until Ctrl-C")
            await asyncio.Event().wait()
    return 0


async def _send_events(server: Any, count: int, rate: float) -> None:
    """Create payment sources (two events each: ``count`` rounded up to even) at ``rate``
    events per second."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    customers = server.customer_ids
    for i in range(0, count, 2):
        server.add_payment_source(customers[i // 2 % len(customers)])
        await asyncio.sleep(max(0.0, started + (i + 2) / rate - loop.time()))
    await server.webhooks_idle()


def _report_deliveries(server: Any, record: str | None) -> None:
    deliveries = server.webhooks.deliveries if server.webhooks is not None else []
    delivered = sum(d.delivered for d in deliveries)
    _say(f"{delivered} of {len(deliveries)} events answered 200")
    if record:
        with open(record, "wb") as file:
            file.writelines(
                msgspec.json.encode(
                    {
                        "event_id": d.event["event_id"],
                        "type": d.event["type"],
                        "attempts": d.attempts,
                        "status": d.status,
                        "delivered": d.delivered,
                    }
                )
                + b"\n"
                for d in deliveries
            )


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()

"""``lean-async events``: the events Lean sent by webhook, as JSON Lines on stdout."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

from .._exceptions import LeanError
from .._webhook_events import encode_event
from .args import client_from_args
from .errors import CommandError, UsageError

__all__ = ["add_parser", "add_time_filters", "parse_moment"]

DESCRIPTION = """\
Print the events Lean created and sent by webhook (its Events API keeps 90 days), one JSON
object per line, as their webhook deliveries carry them. Lean does not say in which order it
lists them.
"""

_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_moment(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 date or date-time (UTC when it has no offset), or a time ago: ``90m``,
    ``2h``, ``7d``."""
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        seconds = float(relative[1]) * _UNIT_SECONDS[relative[2]]
        return (now or datetime.now(timezone.utc)) - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 date-time (2026-05-13T10:00:00Z) or a time ago (90m, 2h, "
            f"7d), got {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def add_time_filters(parser: argparse.ArgumentParser) -> None:
    filters = parser.add_argument_group("which events")
    filters.add_argument(
        "--since",
        type=parse_moment,
        required=True,
        metavar="WHEN",
        help="from this moment: ISO 8601 (UTC unless it says) or a time ago (90m, 2h, 7d)",
    )
    filters.add_argument("--until", type=parse_moment, metavar="WHEN", help="up to this moment")
    filters.add_argument(
        "--type", metavar="TYPE", help="only this event type, e.g. payment_source.created"
    )


def add_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "events",
        parents=parents,
        help="print the events Lean sent by webhook, as JSON Lines",
        description=DESCRIPTION,
    )
    add_time_filters(parser)
    parser.set_defaults(run=run_events)


async def run_events(args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    count = 0
    async with client_from_args(args) as lean:
        try:
            async for event in lean.events.list(since=args.since, until=args.until, type=args.type):
                out.write(encode_event(event) + b"\n")
                count += 1
        except LeanError as exc:
            out.flush()
            raise CommandError(f"{type(exc).__name__}: {exc} (after {count} events)") from None
        except ValueError as exc:  # until before since
            raise UsageError(str(exc)) from None
    out.flush()
    sys.stderr.write(f"{count} events\n")
    return 0

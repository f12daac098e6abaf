"""``lean-async demo``: a sweep of a fake Lean API started in-process, with no setup."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from .._constants import DEFAULT_SWEEP_CONCURRENCY
from ..testing import FakeLean, Faults
from .args import positive_int
from .errors import CommandError
from .formats import FORMATS, Format, format_named
from .invocation import command
from .output import open_output, read_written
from .report import ProgressBar, RetryTally
from .sweep import sweep_into

__all__ = ["add_parser"]

DEFAULT_OUTPUT = "demo-output.jsonl"
# A little of what a real run meets: latency, server errors and dropped connections
# (which the client retries), and a few customers that fail for good.
DEMO_FAULTS = Faults(latency=(0.002, 0.02), error_rate=0.03, drop_rate=0.005)
INVALID_IDS = ("not-a-customer-id", "12345")
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"

DESCRIPTION = """\
Start a fake Lean API in this process, sweep its customers (and a few bad ids, to show
failures) through the real client with OAuth2 client credentials, write the output file,
and print the summary. Needs no configuration or network. Exit status 0 when the run
completed and every customer is accounted for in the output, failures included.
"""


def add_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "demo",
        parents=parents,
        help="sweep a fake Lean API started in-process (no setup needed)",
        description=DESCRIPTION,
    )
    parser.add_argument(
        "-o", "--output", default=DEFAULT_OUTPUT, metavar="PATH", help="default %(default)s"
    )
    parser.add_argument("--format", choices=tuple(FORMATS), help="default: from the extension")
    parser.add_argument("--customers", type=positive_int, default=3000, metavar="N")
    parser.add_argument("--seed", type=int, default=0, help="of the generated data")
    parser.add_argument(
        "--concurrency", type=positive_int, default=DEFAULT_SWEEP_CONCURRENCY, metavar="N"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_demo)


def _check_accounted_for(path: str, fmt: Format, ids: list[str]) -> None:
    """Read the output back: every id once, each with all its lines."""
    with open(path, "rb") as file:
        written = read_written(file, fmt, path)
    if written.records != len(ids) or written.done != set(ids):
        raise CommandError(f"{path} holds {written.records} customers, expected {len(ids)}")


def _describe_faults(faults: Faults) -> str:
    low, high = faults.latency if isinstance(faults.latency, tuple) else (0.0, 0.0)
    return (
        f"{low * 1000:.0f}-{high * 1000:.0f} ms latency, {faults.error_rate:.0%} server errors, "
        f"{faults.drop_rate:.1%} dropped connections"
    )


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def run_demo(args: argparse.Namespace) -> int:
    fmt = format_named(args.format, args.output)
    async with FakeLean(
        customers=args.customers, seed=args.seed, faults=DEMO_FAULTS, unknown_customer_404=True
    ) as server:
        ids = list(server.customer_ids)
        # The bad ids go in among the good ones, as they would in a real file.
        for offset, bad in enumerate((*INVALID_IDS, UNKNOWN_ID)):
            ids.insert(len(ids) * (offset + 1) // 4, bad)
        _say(
            f"A fake Lean API with {len(server.customer_ids):,} customers is listening on "
            f"{server.url}\n({_describe_faults(DEMO_FAULTS)}; data seed {args.seed}).\n"
            f"Sweeping {len(ids):,} customer ids ({len(INVALID_IDS)} malformed and 1 unknown, "
            f"on purpose) {args.concurrency} at a time\nthrough LeanClient with OAuth2 client "
            f"credentials into {args.output} ..."
        )
        output, _ = open_output(args.output, fmt, resume=False, overwrite=True)
        bar = ProgressBar(enabled=not args.no_progress)
        bar.set_total(len(ids))
        retries = RetryTally()
        try:
            progress = await sweep_into(
                server.client(oauth=True, on_retry=retries),
                ids,
                output,
                concurrency=args.concurrency,
                bar=bar,
                retries=retries,
            )
        finally:
            output.close()
    _check_accounted_for(args.output, fmt, ids)
    prog = command()
    _say(
        f"Every one of the {len(ids):,} customers is accounted for in {args.output}:\n"
        f"{progress.ok:,} ok, {progress.failed} failed (their lines say why), "
        # The sweep's own time, as in the summary above: one figure, not two.
        f"{progress.sources:,} payment sources, in {progress.elapsed:.1f} s.\n"
        f"Look at one:  head -n 1 {shlex.quote(args.output)}\n"
        f"Try the CLI:  {prog} mock --write-ids ids.txt   (a fake API; it prints what to run)\n"
        f"Your own:     LEAN_APP_TOKEN=... {prog} sweep customer-ids.txt -o sources.jsonl"
    )
    return 0

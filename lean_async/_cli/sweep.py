"""``lean-async sweep``: the payment sources of many customers, streamed to a file."""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
import sys
from collections import Counter
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Collection,
    Iterable,
    Iterator,
)
from typing import Any

from .._client import LeanClient
from .._constants import DEFAULT_CUSTOMER_PAGE_SIZE, DEFAULT_SWEEP_CONCURRENCY
from .._exceptions import APIConnectionError, AuthenticationError, LeanError
from .._paging import Pager
from .._sweep import SweepProgress, SweepResult, error_kind
from ..types.customers import Customer
from .args import client_from_args, positive_int
from .errors import CommandError, UsageError
from .formats import FORMATS, JSONL, Format, format_named
from .ids import count_ids, read_ids
from .output import Output, Written, open_output
from .report import ProgressBar, RetryTally, summary

__all__ = ["add_parser", "exit_status", "sweep_into"]

DESCRIPTION = """\
List the payment sources of many customers. Reads customer ids one per line (blank lines
and lines starting with # are skipped; a first line naming a customer_id column is a
header, and with other columns, as in sweep's own CSV, the ids come from that one), or with
--all-customers lists every customer of the application from Lean, page by page, and
writes one JSON line per customer, or CSV rows, as results come (in completion order, not
input order). A progress bar and a summary go to stderr. Exit status: 0 when every
customer in the output succeeded, 1 when some failed (their lines say why) or the API
could not be reached, 2 for a usage error, 3 when the output could not be written (a full
disk: it holds every customer before, --resume continues), 130 after Ctrl-C.
"""

EPILOG = """\
examples:
  LEAN_APP_TOKEN=... lean-async sweep customers.txt -o sources.jsonl
  cat customers.txt | lean-async sweep --format csv > sources.csv
  lean-async sweep customers.txt -o sources.jsonl --resume   # after a crash or Ctrl-C
  lean-async sweep --all-customers -o sources.jsonl [--resume]
"""


def add_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "sweep",
        parents=parents,
        help="list the payment sources of many customers, to JSON Lines or CSV",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "input",
        nargs="?",
        metavar="IDS",
        help="file of customer ids, one per line; - for stdin (the default when piped)",
    )
    parser.add_argument(
        "--all-customers",
        action="store_true",
        help="every customer of the application, listed from Lean as the sweep goes",
    )
    parser.add_argument(
        "--page-size",
        type=positive_int,
        default=DEFAULT_CUSTOMER_PAGE_SIZE,
        metavar="N",
        help="customers per page with --all-customers (default %(default)s)",
    )
    parser.add_argument("-o", "--output", metavar="PATH", help="write here (default stdout)")
    parser.add_argument(
        "--format",
        choices=tuple(FORMATS),
        help="default: csv for an output file ending in .csv, else jsonl",
    )
    parser.add_argument(
        "--raw",
        action="store_true",
        help="JSON Lines with each payment source exactly as Lean sent it, fields this "
        "version does not know included (default: the fields it knows)",
    )
    again = parser.add_mutually_exclusive_group()
    again.add_argument(
        "--resume",
        action="store_true",
        help="continue an earlier run's output file: skip the customers it holds, drop a "
        "half-written last record, append the rest (starts afresh if the file is missing)",
    )
    again.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=DEFAULT_SWEEP_CONCURRENCY,
        metavar="N",
        help="requests in flight at most (default %(default)s; lowered on 429)",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (none when stderr is not a terminal)",
    )
    parser.set_defaults(run=run_sweep)


# The customer ids to sweep, given those already in the output and the progress bar.
Input = Callable[[Collection[str], ProgressBar], AsyncIterable[str]]


async def run_sweep(args: argparse.Namespace) -> int:
    fmt = format_named(args.format, args.output)
    if args.all_customers and args.input is not None:
        raise UsageError("give a file of customer ids or --all-customers, not both")
    if args.raw and fmt is not JSONL:
        raise UsageError("--raw writes JSON Lines: drop --format csv (or the .csv output)")
    # Before touching any file: a missing credential must not leave an empty output.
    retries = RetryTally()
    client = client_from_args(args, concurrency=args.concurrency, on_retry=retries)
    if args.all_customers:
        listing = client.customers.list(page_size=args.page_size)
        return await _sweep_to_output(
            client, retries, args, fmt, lambda skip, bar: _every_customer_id(listing, skip, bar)
        )
    with _opened_input(args.input, args.output) as (fd, path):

        def from_file(skip: Collection[str], bar: ProgressBar) -> AsyncIterable[str]:
            if bar.shown and path is not None and _is_regular(path):
                bar.set_total(count_ids(path, skip))
            return read_ids(fd, skip)

        return await _sweep_to_output(client, retries, args, fmt, from_file)


async def _sweep_to_output(
    client: LeanClient,
    retries: RetryTally,
    args: argparse.Namespace,
    fmt: Format,
    customer_ids: Input,
) -> int:
    output, earlier = open_output(args.output, fmt, resume=args.resume, overwrite=args.overwrite)
    try:
        skip = earlier.done if earlier is not None else set()
        if earlier is not None and earlier.records:
            _resuming_note(output.name, earlier)
        bar = ProgressBar(enabled=not args.no_progress)
        progress = await sweep_into(
            client,
            customer_ids(skip, bar),
            output,
            concurrency=args.concurrency,
            bar=bar,
            retries=retries,
            earlier=earlier,
            raw=args.raw,
        )
    finally:
        output.close()
    return exit_status(progress, earlier)


async def _every_customer_id(
    listing: Pager[Customer], skip: Collection[str], bar: ProgressBar
) -> AsyncIterator[str]:
    """The ids of every customer ``listing`` yields, minus those in ``skip``; the bar's
    total follows the count the latest page announced. A page that fails (after the
    client's retries) stops the sweep."""
    pages = 0
    try:
        async for customer in listing:
            if listing.pages_read != pages:
                pages = listing.pages_read
                if listing.total_elements is not None:
                    bar.set_total(max(listing.total_elements - len(skip), 0))
            if customer.customer_id not in skip:
                yield customer.customer_id
    except LeanError as exc:
        if isinstance(exc, AuthenticationError):
            raise CommandError(f"the credentials were refused ({exc}); fix them") from None
        raise CommandError(
            f"listing the customers failed at page {listing.pages_read + 1}: "
            f"{type(exc).__name__}: {exc}"
        ) from None


def exit_status(progress: SweepProgress, earlier: Written | None) -> int:
    """0 when every customer in the output succeeded (this run's and the ones resumed)."""
    return 1 if progress.failed or (earlier is not None and earlier.failed) else 0


async def sweep_into(
    client: LeanClient,
    customer_ids: Iterable[str] | AsyncIterable[str],
    output: Output,
    *,
    concurrency: int,
    bar: ProgressBar,
    retries: RetryTally,
    earlier: Written | None = None,
    raw: bool = False,
) -> SweepProgress:
    """Sweep ``customer_ids`` into ``output``, then print the summary on stderr (also when
    stopped), with the retries that ``retries``, the client's ``on_retry`` hook, counted.
    Refused credentials stop the sweep, and so does an API the sweep finds unreachable:
    every customer would fail alike, and their lines would make ``--resume`` skip them."""
    progress = SweepProgress()
    finished = False
    try:
        async with client:
            resource = client.payment_sources
            sweep = (resource._sweep_raw if raw else resource.sweep)(
                customer_ids, concurrency=concurrency, progress=progress
            )
            try:
                async for result in sweep:
                    try:
                        if isinstance(result.error, AuthenticationError):
                            raise _refused(result.error, output)
                        output.write(result)
                    except CommandError:
                        _not_written(progress, result)
                        raise
                    bar.advance(progress)
            except APIConnectionError as error:  # the sweep found the API unreachable
                raise _unreachable(error, output) from None
            finally:
                await sweep.aclose()
        finished = True
    finally:
        bar.close()
        report = summary(
            progress, retries.causes, output=output.name, earlier=earlier, finished=finished
        )
        sys.stderr.write(report)
        sys.stderr.flush()
    return progress


def _not_written(progress: SweepProgress, result: SweepResult[str]) -> None:
    """Take back the sweep's count of a result that did not reach the output, so that the
    summary accounts for what the output holds."""
    progress.done -= 1
    if result.error is None:
        progress.ok -= 1
        progress.sources -= len(result.sources or ())
    else:
        progress.failed -= 1
        progress.errors -= Counter({error_kind(result.error): 1})


def _refused(error: AuthenticationError, output: Output) -> CommandError:
    again = " with --resume" if output.name != "stdout" else ""
    return CommandError(f"the credentials were refused ({error}); fix them and run again{again}")


def _unreachable(error: APIConnectionError, output: Output) -> CommandError:
    again = " with --resume" if output.name != "stdout" else ""
    return CommandError(
        f"{error}; check --base-url, --auth-url and the network, then run again{again}"
    )


def _resuming_note(name: str, earlier: Written) -> None:
    note = f"resuming {name}: {len(earlier.done)} customers already written"
    if earlier.dropped_bytes:
        note += f"; dropped a half-written last record ({earlier.dropped_bytes} bytes)"
    sys.stderr.write(note + "\n")
    sys.stderr.flush()


def _is_regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


@contextlib.contextmanager
def _opened_input(path: str | None, output: str | None) -> Iterator[tuple[int, str | None]]:
    """The input's file descriptor, and its path unless it is stdin."""
    if path is None or path == "-":
        if path is None and sys.stdin.isatty():
            raise UsageError(
                "no customer ids: give a file of them, or pipe them in (- reads the terminal)"
            )
        yield sys.stdin.fileno(), None
        return
    if output not in (None, "-") and _same_file(path, output):
        raise UsageError(f"the output {output} is the input file")
    try:
        file = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    with file:
        yield file.fileno(), path


def _same_file(a: str, b: str | None) -> bool:
    try:
        return b is not None and os.path.samefile(a, b)
    except OSError:
        return False

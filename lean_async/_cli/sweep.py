"""``lean-async sweep``: the payment sources of many customers, streamed to a file."""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
import sys
from collections.abc import AsyncIterable, Iterable, Iterator
from typing import Any

from .._client import LeanClient
from .._constants import DEFAULT_SWEEP_CONCURRENCY
from .._exceptions import APIConnectionError, AuthenticationError
from .._sweep import SweepProgress
from . import CommandError, UsageError
from .args import client_from_args, positive_int
from .ids import count_ids, read_ids
from .output import Output, Written, open_output
from .records import FORMATS, format_named
from .report import ProgressBar, RetryTally, summary

__all__ = ["add_parser", "exit_status", "sweep_into"]

DESCRIPTION = """\
List the payment sources of many customers. Reads customer ids one per line (blank lines
and lines starting with # are skipped) and writes one JSON line per customer, or CSV rows,
as results come (in completion order, not input order). A progress bar and a summary go
to stderr. Exit status: 0 when every customer in the output succeeded, 1 when some failed
(their lines say why) or the API could not be reached, 2 for a usage error, 130 after Ctrl-C.
"""

EPILOG = """\
examples:
  LEAN_APP_TOKEN=... lean-async sweep customers.txt -o sources.jsonl
  cat customers.txt | lean-async sweep --format csv > sources.csv
  lean-async sweep customers.txt -o sources.jsonl --resume   # after a crash or Ctrl-C
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
    parser.add_argument("-o", "--output", metavar="PATH", help="write here (default stdout)")
    parser.add_argument(
        "--format",
        choices=tuple(FORMATS),
        help="default: csv for an output file ending in .csv, else jsonl",
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


async def run_sweep(args: argparse.Namespace) -> int:
    fmt = format_named(args.format, args.output)
    # Before touching any file: a missing credential must not leave an empty output.
    client = client_from_args(args, concurrency=args.concurrency)
    with _opened_input(args.input, args.output) as (fd, path):
        output, earlier = open_output(
            args.output, fmt, resume=args.resume, overwrite=args.overwrite
        )
        try:
            skip = earlier.done if earlier is not None else set()
            if earlier is not None and earlier.records:
                _resuming_note(output.name, earlier)
            bar = ProgressBar(enabled=not args.no_progress)
            if bar.shown and path is not None and _is_regular(path):
                bar.set_total(count_ids(path, skip))
            progress = await sweep_into(
                client,
                read_ids(fd, skip),
                output,
                concurrency=args.concurrency,
                bar=bar,
                earlier=earlier,
            )
        finally:
            output.close()
    return exit_status(progress, earlier)


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
    earlier: Written | None = None,
) -> SweepProgress:
    """Sweep ``customer_ids`` into ``output``, then print the summary on stderr (also when
    stopped). Refused credentials stop the sweep, and so does an API the sweep finds
    unreachable: every customer would fail alike, and their lines would make ``--resume``
    skip them."""
    progress = SweepProgress()
    finished = False
    with RetryTally() as retries:
        try:
            async with client:
                sweep = client.payment_sources.sweep(
                    customer_ids, concurrency=concurrency, progress=progress
                )
                try:
                    async for result in sweep:
                        if isinstance(result.error, AuthenticationError):
                            raise _refused(result.error, output)
                        output.write(result)
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

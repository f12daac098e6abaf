"""The ``lean-async`` command line: ``sweep``, ``list``, ``get``, ``delete``, ``customers``,
``destinations``, ``events``, ``webhooks``, ``mcp``, ``mock``, ``demo``. ``lean-async COMMAND
--help`` describes each."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ._cli import (
    calls,
    customers,
    demo,
    destinations,
    events,
    mcp,
    mock,
    sweep,
    webhooks,
)
from ._cli.args import client_flags, verbosity_flags
from ._cli.errors import EXIT_BROKEN_PIPE, PROG, CommandError
from ._cli.report import configure_logging
from ._cli.signals import Interrupted, run
from ._exceptions import ConfigurationError, InvalidIdError
from ._version import __version__

__all__ = ["main"]

DESCRIPTION = """\
Lean Technologies' Payment Sources API, and the customers and payment destinations
around it, from the shell. Start with `lean-async demo`:
it needs no setup.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(metavar="COMMAND", required=True)
    verbosity = verbosity_flags()
    calling = [client_flags(), verbosity]
    sweep.add_parser(commands, calling)
    calls.add_parsers(commands, calling)
    customers.add_parser(commands, calling)
    destinations.add_parser(commands, calling)
    mcp.add_parser(commands, calling)
    mock.add_parser(commands, [])
    demo.add_parser(commands, [verbosity])
    events.add_parser(commands, calling)
    webhooks.add_parser(commands, [verbosity], calling[0])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status: 0 success, 1 failure (some customers
    failed, or a call did), 2 usage error, 3 the output could not be written (a full
    disk), 128 + N after signal N, 141 (128 + SIGPIPE) when the reader of stdout went away."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, and usage errors
        return exc.code if isinstance(exc.code, int) else 2
    configure_logging(getattr(args, "verbose", 0))
    try:
        status: int = run(lambda: args.run(args))
    except (ConfigurationError, InvalidIdError) as exc:
        return _fail(str(exc), 2)
    except CommandError as exc:
        return _fail(str(exc), exc.exit_status)
    except Interrupted as exc:
        return 0 if getattr(args, "stops_cleanly", False) else exc.exit_status
    except KeyboardInterrupt:  # where signal handlers cannot be set (Windows)
        return 0 if getattr(args, "stops_cleanly", False) else 130
    except BrokenPipeError:
        # Whoever read stdout is gone (`| head`): stop quietly, and keep Python from
        # complaining when it flushes stdout at exit. The status a shell gives a command
        # killed by SIGPIPE, apart from 1 (some customers failed).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return status


def _fail(message: str, status: int) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.stderr.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())

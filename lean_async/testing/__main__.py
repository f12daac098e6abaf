"""``python -m lean_async.testing``: run a fake Lean server until interrupted.

Prints one JSON line with the URLs and credentials once it listens, e.g. for a benchmark
that starts it as a separate process.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

import msgspec

from .._event_loop import event_loop_runner
from ._mock_flags import add_server_arguments, cannot_serve, describe, server_options
from ._server import FakeLean, serve


def _print_ready(server: FakeLean) -> None:
    sys.stdout.write(msgspec.json.encode(describe(server)).decode() + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m lean_async.testing", description="Run a fake Lean API server."
    )
    add_server_arguments(parser)
    parser.add_argument(
        "--save-data", metavar="PATH", help="write the data set to this JSON file at start"
    )
    args = parser.parse_args(argv)
    try:
        options = server_options(args)
    except ValueError as exc:
        parser.error(str(exc))

    def ready(server: FakeLean) -> None:
        if args.save_data:
            server.save_data(args.save_data)
        _print_ready(server)

    try:
        with contextlib.suppress(KeyboardInterrupt):
            event_loop_runner()(serve(**options, ready=ready))
    except OSError as exc:  # e.g. the port is in use
        parser.exit(1, f"{parser.prog}: error: {cannot_serve(args.host, args.port, exc)}\n")


if __name__ == "__main__":
    main()

"""``python -m benchmarks._server``: the fake Lean server answering for any number of
distinct customers, each getting the answer of one of ``--customers`` generated ones (the
last 8 hex digits of its id pick which), so that 200,000 customers start in seconds."""

from __future__ import annotations

import argparse
import contextlib
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import msgspec

from benchmarks import _common
from lean_async.testing import DataSet, FakeLean, serve
from lean_async.testing.__main__ import describe
from lean_async.testing._mock_flags import add_server_arguments, server_options


class RepeatingDataSet(DataSet):
    """A generated data set whose list answers also serve every id ``customer_ids`` makes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._answers = [DataSet.list_body(self, c) or b"[]" for c in self.customer_ids]

    def list_body(self, customer_id: str) -> bytes | None:
        return self._answers[int(customer_id[-8:], 16) % len(self._answers)]


def customer_ids(count: int, seed: int) -> Iterator[str]:
    """``count`` distinct UUIDs; the i-th ends in i as 8 hex digits."""
    prefix = str(uuid.UUID(int=seed, version=4))[:-8]
    for number in range(count):
        yield f"{prefix}{number:08x}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._server", description=__doc__)
    add_server_arguments(parser)
    args = parser.parse_args(argv)
    options = server_options(args)
    options["data"] = RepeatingDataSet.generate(args.customers, args.seed)

    def ready(server: FakeLean) -> None:
        sys.stdout.write(msgspec.json.encode(describe(server)).decode() + "\n")
        sys.stdout.flush()

    # On uvloop when installed, as ``python -m lean_async.testing`` runs.
    with contextlib.suppress(KeyboardInterrupt):
        _common.run_on(_common.loops()[-1], lambda: serve(**options, ready=ready))


if __name__ == "__main__":
    main()

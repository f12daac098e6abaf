"""What ``import lean_async`` adds on top of importing aiohttp and msgspec, measured with
``python -X importtime`` in fresh processes.

    python -m benchmarks.importtime [--runs 9]
"""

from __future__ import annotations

import argparse
import subprocess

from benchmarks import _common

PRELOADED = ("aiohttp", "msgspec")


def added_ms(module: str = "lean_async") -> float:
    """Milliseconds ``module``'s import takes in a fresh process once PRELOADED are in."""
    code = f"import {', '.join(PRELOADED)}; import {module}"
    done = subprocess.run(
        [_common.PYTHON, "-X", "importtime", "-c", code],
        cwd=_common.ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for line in done.stderr.splitlines():
        # "import time:       self [us] |  cumulative | imported package"
        _, _, fields = line.partition("import time:")
        parts = [part.strip() for part in fields.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1]) / 1000
    raise RuntimeError(f"-X importtime did not report {module}")


def run(*, runs: int) -> list[float]:
    return [added_ms() for _ in range(runs)]


HEADERS = ("import", "added ms (median of fresh processes)", "runs")


def summarize(times: list[float]) -> list[list[str]]:
    return [["lean_async after aiohttp, msgspec", _common.with_spread(times, 1), str(len(times))]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.importtime", description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args(argv)
    print(_common.table(HEADERS, summarize(run(runs=args.runs))))


if __name__ == "__main__":
    main()

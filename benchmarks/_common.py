"""What every benchmark shares: the fake server as a child process, fresh worker processes
that report one JSON line, event loops, statistics of repeats, and Markdown tables."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

PYTHON = sys.executable
ROOT = Path(__file__).resolve().parent.parent
SERVER_START_TIMEOUT = 120.0  # 200,000 customers take a while to encode
WORKER_TIMEOUT = 600.0


# -- processes ---------------------------------------------------------------------


@contextlib.contextmanager
def fake_server(module: str, *args: str) -> Iterator[dict[str, Any]]:
    """Run ``python -m module args`` (a fake Lean server on 127.0.0.1) and yield the JSON
    line it prints once it listens; the process is killed on the way out."""
    process = subprocess.Popen(
        [PYTHON, "-m", module, "--host", "127.0.0.1", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = _read_line(process, SERVER_START_TIMEOUT)
        info: dict[str, Any] = json.loads(line)
        info["pid"] = process.pid
        yield info
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _read_line(process: subprocess.Popen[bytes], timeout: float) -> bytes:
    import selectors

    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise RuntimeError(f"the fake server printed nothing within {timeout:.0f} s")
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"the fake server exited with {process.wait()} before listening")
    return line


def run_worker(module: str, *args: str) -> dict[str, Any]:
    """Run ``python -m module args`` in a fresh process; its last stdout line is JSON."""
    done = subprocess.run(
        [PYTHON, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        timeout=WORKER_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{done.stderr.decode()[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


def report(result: dict[str, Any]) -> None:
    """A worker's answer to run_worker: one JSON line on stdout."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB.

    VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent
    across fork and exec, so a worker would report its launcher's peak.
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_ids(path: Path, ids: Iterator[str] | Sequence[str]) -> None:
    with path.open("w") as file:
        for customer_id in ids:
            file.write(customer_id + "\n")


def read_ids(path: str | Path) -> Iterator[str]:
    """Customer ids from a file, one per line, read lazily."""
    with open(path) as file:
        for line in file:
            yield line.rstrip("\n")


# -- event loops -------------------------------------------------------------------


def loops() -> list[str]:
    """The event loops to compare: asyncio's, and uvloop's when installed."""
    try:
        importlib.import_module("uvloop")
    except ImportError:
        return ["asyncio"]
    return ["asyncio", "uvloop"]


def run_on(loop: str, main: Callable[[], Awaitable[T]]) -> T:
    if loop == "uvloop":
        uvloop = importlib.import_module("uvloop")
        result: T = uvloop.run(main())
        return result
    return asyncio.run(main())  # type: ignore[arg-type]


async def measure(work: Awaitable[T]) -> tuple[T, float, float]:
    """(result, wall seconds, CPU seconds of this process) of awaiting ``work``."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = await work
    return result, time.perf_counter() - wall, time.process_time() - cpu


# -- statistics --------------------------------------------------------------------


def rotated(items: Sequence[T], turn: int) -> list[T]:
    """The order of ``items`` for round ``turn``: a row of a balanced Latin square (Williams
    design), so that over len(items) rounds each item takes every position once and, for an
    even number of items, follows every other item once. A plain rotation would keep each
    item's predecessor the same in every round, and so favour whoever follows the lightest
    run."""
    n = len(items)
    first = [0]  # the first row: 0, 1, n-1, 2, n-2, ...
    low, high = 1, n - 1
    while len(first) < n:
        first.append(low)
        low += 1
        if len(first) < n:
            first.append(high)
            high -= 1
    return [items[(index + turn) % n] for index in first]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> float:
    """Half the range of ``values`` as a fraction of their median (0.05 is ±5%)."""
    middle = statistics.median(values)
    return (max(values) - min(values)) / 2 / middle if middle else 0.0


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """The median of the per-round ratios: robust to a round the machine slowed down."""
    return statistics.median(n / d for n, d in zip(numerators, denominators, strict=True))


# -- reporting ---------------------------------------------------------------------


def times(ratio: float) -> str:
    """A ratio as the tables print it, e.g. ``1.07\N{MULTIPLICATION SIGN}``."""
    return f"{ratio:.2f}\N{MULTIPLICATION SIGN}"


def with_spread(values: Sequence[float], digits: int = 0) -> str:
    """The median of ``values`` and their spread, e.g. ``74 ±3%``."""
    return f"{median(values):,.{digits}f} ±{spread(values):.0%}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def machine() -> str:
    """One Markdown line naming the machine and the versions that matter."""
    versions = ", ".join(
        f"{name} {_version(name)}" for name in ("aiohttp", "msgspec", "uvloop", "httpx", "pydantic")
    )
    return (
        f"{_cpus()} CPUs (nproc), {cpu_model()}, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}; {versions}"
    )


def _cpus() -> int:
    with contextlib.suppress(AttributeError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"

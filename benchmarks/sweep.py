"""Sweep N customers through the fake Lean server (its own process) with the library and
with what a user would write instead, each variant in a fresh client process.

    python -m benchmarks.sweep [--customers 20000] [--concurrency 50] [--rounds 4]

The headline figure is the client's CPU time per customer: the server competes for the
same cores, so wall-clock throughput mostly measures the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from benchmarks import _common

VARIANTS = ("lean-async", "aiohttp+json", "aiohttp+decoder", "httpx+json")
BASELINE = "lean-async"
FLOOR = "aiohttp+decoder"
WARM_UP = 500  # customers fetched by each variant before the clock starts
# httpx is an order of magnitude slower: it sweeps the first of the ids only, so that a
# run takes seconds, not minutes; its figures are per customer like the others'.
HTTPX_CUSTOMERS = 4_000
DEFAULT_CONCURRENCY = 50
# One round per variant: the orders form a balanced Latin square, so each variant takes each
# place once and follows each other variant once (the run after httpx's is a slow place).
DEFAULT_ROUNDS = len(VARIANTS)
SERVER_WARM_UP = 5_000
SETTLE_SECONDS = 1.0
SEED = 7


# -- the contenders ----------------------------------------------------------------

# Each is an async context manager giving sweep(ids) -> (customers, payment sources);
# all share the URL, the app token, the number in flight and the connection limit.
Sweep = Callable[[Iterable[str]], Any]


@asynccontextmanager
async def lean_async_sweep(url: str, token: str, concurrency: int) -> AsyncIterator[Sweep]:
    from lean_async import LeanClient

    async with LeanClient(app_token=token, base_url=url, max_connections=concurrency) as client:

        async def sweep(ids: Iterable[str]) -> tuple[int, int]:
            customers = sources = 0
            async for result in client.payment_sources.sweep(ids, concurrency=concurrency):
                if result.sources is None:
                    raise RuntimeError(f"{result.customer_id}: {result.error!r}")
                customers += 1
                sources += len(result.sources)
            return customers, sources

        yield sweep


def in_workers(
    worker: Callable[[Iterator[str]], Awaitable[tuple[int, int]]], concurrency: int
) -> Sweep:
    """A sweep by ``concurrency`` copies of ``worker`` sharing one iterator of ids."""

    async def sweep(ids: Iterable[str]) -> tuple[int, int]:
        import asyncio

        shared = iter(ids)
        counts = await asyncio.gather(*(worker(shared) for _ in range(concurrency)))
        return sum(c for c, _ in counts), sum(s for _, s in counts)

    return sweep


def raw_aiohttp(decode: Callable[[bytes], list[Any]]) -> Callable[..., Any]:
    """The loop one writes over a bare aiohttp session: ``concurrency`` worker tasks
    sharing one iterator of ids, the app-token header, a status check, ``decode``."""

    @asynccontextmanager
    async def variant(url: str, token: str, concurrency: int) -> AsyncIterator[Sweep]:

        import aiohttp

        headers = {"lean-app-token": token, "Accept": "application/json"}
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker(ids: Iterable[str]) -> tuple[int, int]:
                customers = sources = 0
                for customer_id in ids:
                    path = f"{url}/customers/v1/{customer_id}/payment-sources"
                    async with session.get(path, headers=headers) as response:
                        if response.status != 200:
                            raise RuntimeError(f"{customer_id}: HTTP {response.status}")
                        body = await response.read()
                    customers += 1
                    sources += len(decode(body))
                return customers, sources

            yield in_workers(worker, concurrency)

    return variant


@asynccontextmanager
async def httpx_sweep(url: str, token: str, concurrency: int) -> AsyncIterator[Sweep]:

    import httpx

    headers = {"lean-app-token": token, "Accept": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0) as client:

        async def worker(ids: Iterable[str]) -> tuple[int, int]:
            customers = sources = 0
            for customer_id in ids:
                response = await client.get(
                    f"/customers/v1/{customer_id}/payment-sources", headers=headers
                )
                if response.status_code != 200:
                    raise RuntimeError(f"{customer_id}: HTTP {response.status_code}")
                customers += 1
                sources += len(json.loads(response.content))
            return customers, sources

        yield in_workers(worker, concurrency)


def _library_decoder(body: bytes) -> list[Any]:
    from lean_async.models import decode_payment_sources

    return decode_payment_sources(body)


CONTENDERS: dict[str, Callable[[str, str, int], AbstractAsyncContextManager[Sweep]]] = {
    "lean-async": lean_async_sweep,
    "aiohttp+json": raw_aiohttp(json.loads),
    "aiohttp+decoder": raw_aiohttp(_library_decoder),
    "httpx+json": httpx_sweep,
}


# -- one variant in this process ---------------------------------------------------


def worker_main(args: argparse.Namespace) -> None:
    ids = list(_common.read_ids(args.ids))
    contender = CONTENDERS[args.worker]

    async def main() -> dict[str, Any]:
        async with contender(args.url, args.token, args.concurrency) as sweep:
            await sweep(ids[:WARM_UP])
            (customers, sources), wall, cpu = await _common.measure(sweep(ids[: args.limit]))
        return {"customers": customers, "sources": sources, "wall": wall, "cpu": cpu}

    result = _common.run_on(args.loop, main)
    result["peak_rss_mb"] = _common.peak_rss_mb()
    _common.report(result)


# -- the comparison ----------------------------------------------------------------


def run(
    *,
    customers: int,
    concurrency: int,
    rounds: int,
    loops: Sequence[str],
    variants: Sequence[str] = VARIANTS,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every variant on every loop, ``rounds`` times in rotated order; the raw runs."""
    from lean_async.testing import DataSet

    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ids_file = Path(tmp) / "ids.txt"
        _common.write_ids(ids_file, DataSet.generate(customers, SEED).customer_ids)
        with _common.fake_server(
            "lean_async.testing", "--customers", str(customers), "--seed", str(SEED)
        ) as server:
            for loop in loops:
                by_variant = runs.setdefault(loop, {v: [] for v in variants})
                # A cold server would penalise whichever variant goes first: warm it once,
                # with the plain aiohttp loop, and discard the figures.
                _common.run_worker(
                    "benchmarks.sweep",
                    *("--worker", FLOOR, "--url", server["url"]),
                    *("--token", server["app_token"], "--ids", str(ids_file)),
                    *("--concurrency", str(concurrency), "--loop", loop),
                    *("--limit", str(min(customers, SERVER_WARM_UP))),
                )
                for turn in range(rounds):
                    for variant in _common.rotated(variants, turn):
                        limit = min(
                            customers, HTTPX_CUSTOMERS if variant == "httpx+json" else customers
                        )
                        result = _common.run_worker(
                            "benchmarks.sweep",
                            *("--worker", variant, "--url", server["url"]),
                            *("--token", server["app_token"], "--ids", str(ids_file)),
                            *("--concurrency", str(concurrency), "--loop", loop),
                            *("--limit", str(limit)),
                        )
                        by_variant[variant].append(result)
                        # Let the server finish with the last client's connections first.
                        time.sleep(SETTLE_SECONDS)
                        log(
                            f"sweep {loop} round {turn + 1}/{rounds} {variant}: "
                            f"{limit / result['wall']:.0f}/s, "
                            f"{result['cpu'] / limit * 1e6:.0f} µs CPU/customer"
                        )
    _check_same_answers(runs)
    return {"customers": customers, "concurrency": concurrency, "rounds": rounds, "runs": runs}


def _check_same_answers(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> None:
    """Runs over the same customers must have fetched the same number of sources."""
    seen: dict[int, set[int]] = {}
    for by_variant in runs.values():
        for results in by_variant.values():
            for r in results:
                seen.setdefault(r["customers"], set()).add(r["sources"])
    if any(len(sources) != 1 for sources in seen.values()):
        raise RuntimeError(f"the variants disagree on what they fetched: {seen}")


def figures(results: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per run: customers per second, client CPU µs per customer, peak RSS in MiB."""
    return {
        "rate": [r["customers"] / r["wall"] for r in results],
        "cpu": [r["cpu"] / r["customers"] * 1e6 for r in results],
        "rss": [r["peak_rss_mb"] for r in results],
    }


def ratios(outcome: dict[str, Any], loop: str, variant: str) -> dict[str, float]:
    """The variant's figures over the library's on ``loop``: medians of paired ratios."""
    by_variant = outcome["runs"][loop]
    mine = figures(by_variant[BASELINE])
    return {
        name: _common.paired_ratio(values, mine[name])
        for name, values in figures(by_variant[variant]).items()
    }


def summarize(outcome: dict[str, Any]) -> list[list[str]]:
    """Rows: loop, variant, then each figure with its ratio to the library's (the median
    of the per-round paired ratios)."""
    rows = []
    for loop, by_variant in outcome["runs"].items():
        mine = figures(by_variant[BASELINE])
        for variant, results in by_variant.items():
            row = [loop, variant, f"{results[0]['customers']:,}"]
            for name, values in figures(results).items():
                row.append(_common.with_spread(values))
                row.append(_common.times(_common.paired_ratio(values, mine[name])))
            rows.append(row)
    return rows


HEADERS = (
    "loop",
    "variant",
    "customers",
    "customers/s",
    "vs lib",
    "client CPU µs/customer",
    "vs lib",
    "peak RSS MiB",
    "vs lib",
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sweep", description=__doc__)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), action="append")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--ids", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        args.loop = args.loop[0] if args.loop else "asyncio"
        worker_main(args)
        return
    outcome = run(
        customers=args.customers,
        concurrency=args.concurrency,
        rounds=args.rounds,
        loops=args.loop or _common.loops(),
        log=lambda line: print(line, file=sys.stderr),
    )
    print(_common.table(HEADERS, summarize(outcome)))


if __name__ == "__main__":
    main()

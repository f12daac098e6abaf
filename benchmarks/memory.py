"""Peak RSS of the library's sweep over 10,000 and over 200,000 customers, ids read lazily
from a file and results streamed to a file as JSON lines, each sweep in a fresh process:
the two peaks should be nearly equal, memory not growing with the number of customers.

    python -m benchmarks.memory [--small 10000] [--large 200000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from benchmarks import _common
from benchmarks._server import customer_ids

SEED = 7
SERVED = 2_000  # generated customers whose answers the server repeats
CONCURRENCY = 50


def worker_main(args: argparse.Namespace) -> None:
    import msgspec

    from lean_async import LeanClient

    encode = msgspec.json.Encoder().encode

    async def main(out: BinaryIO) -> dict[str, Any]:
        customers = sources = 0
        async with LeanClient(
            app_token=args.token, base_url=args.url, max_connections=CONCURRENCY
        ) as client:
            sweep = client.payment_sources.sweep(
                _common.read_ids(args.ids), concurrency=CONCURRENCY
            )
            async for result in sweep:
                if result.sources is None:
                    raise RuntimeError(f"{result.customer_id}: {result.error!r}")
                customers += 1
                sources += len(result.sources)
                out.write(encode(result) + b"\n")
        return {"customers": customers, "sources": sources}

    with open(args.out, "wb") as out:
        result, wall, cpu = _common.run_on("asyncio", lambda: _common.measure(main(out)))
    _common.report({**result, "wall": wall, "cpu": cpu, "peak_rss_mb": _common.peak_rss_mb()})


def run(*, sizes: tuple[int, ...], log: Any = print) -> dict[int, dict[str, Any]]:
    results = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        _common.fake_server(
            "benchmarks._server", "--customers", str(SERVED), "--seed", str(SEED)
        ) as server,
    ):
        for size in sizes:
            ids = Path(tmp) / f"ids-{size}.txt"
            _common.write_ids(ids, customer_ids(size, SEED))
            result = _common.run_worker(
                "benchmarks.memory",
                *("--worker", "--url", server["url"], "--token", server["app_token"]),
                *("--ids", str(ids), "--out", str(Path(tmp) / "results.jsonl")),
            )
            if result["customers"] != size:
                raise RuntimeError(f"swept {result['customers']} of {size} customers")
            results[size] = result
            log(f"memory {size:,} customers: peak RSS {result['peak_rss_mb']:.1f} MiB")
    return results


HEADERS = ("customers", "results written", "wall s", "peak RSS MiB", "vs smallest")


def summarize(results: dict[int, dict[str, Any]]) -> list[list[str]]:
    smallest = results[min(results)]["peak_rss_mb"]
    return [
        [
            f"{size:,}",
            f"{r['customers']:,}",
            f"{r['wall']:.1f}",
            f"{r['peak_rss_mb']:.1f}",
            _common.times(r["peak_rss_mb"] / smallest),
        ]
        for size, r in sorted(results.items())
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=200_000)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--url", "--token", "--ids", "--out"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args)
        return
    print(_common.table(HEADERS, summarize(run(sizes=(args.small, args.large)))))


if __name__ == "__main__":
    main()

"""The rate-limit benchmark's sweeps in virtual time: the same limits, the client's real
sweep and rate control, but the server simulated in process and the clock an event loop's
virtual one, so that a 10 s sweep takes a fraction of a second and every run is the same
(no machine noise). A design tool next to ``benchmarks.ratelimit``, whose real sockets
and clock are what the targets are measured on.

    python -m benchmarks.ratesim [--seconds 10] [--seeds 5] [--case NAME ...] [--trace]

``--trace`` prints, per 100 ms of the first case's first run, the requests sent, the 429s
and the controller's pace and window.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import sys
from collections.abc import Sequence
from typing import Any

from multidict import CIMultiDict

from benchmarks import _common
from benchmarks.ratelimit import (
    CASES,
    HEADERS,
    LATENCY,
    Case,
    customer_ids,
    figures,
    sweep_all,
)

REFUSE_LATENCY = 0.001  # a 429 comes back at once (seconds)


async def sweep_once(
    case: Case,
    seconds: float,
    *,
    retry_after: bool,
    told: bool,
    seed: int = 0,
    latency: tuple[float, float] = LATENCY,
    trace: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One sweep of ``case`` against a simulated server, on the running (virtual) loop."""
    import math

    import lean_async
    from lean_async._ratelimit import RateControl

    loop = asyncio.get_running_loop()
    limit, customers, _ = case.make(seconds)
    rng = random.Random(seed)
    counts: collections.Counter[str] = collections.Counter()
    first_request: list[float] = []
    buckets: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)

    async def exchange(session: Any, request: Any, headers: Any) -> Any:
        now = loop.time()
        if not first_request:
            first_request.append(now)
        counts["requests"] += 1
        bucket = buckets[int((now - first_request[0]) * 10)]
        bucket["sent"] += 1
        wait = limit.admit(now)
        if wait is not None:
            counts["429"] += 1
            bucket["429"] += 1
            await asyncio.sleep(REFUSE_LATENCY)
            answer = CIMultiDict(
                {"Retry-After": str(max(1, math.ceil(wait)))} if retry_after else {}
            )
            return 429, answer, b'{"status":"RATE_LIMIT_EXCEEDED"}', "Too Many Requests"
        try:
            await asyncio.sleep(rng.uniform(*latency))
        finally:
            limit.done()
        return 200, CIMultiDict(), b"[]", "OK"

    options: dict[str, Any] = {"rate_limit": case.told(seconds)} if told else {}
    async with lean_async.LeanClient(
        app_token="sim", base_url="http://127.0.0.1:9", **options
    ) as client:
        transport = client._transport
        transport._exchange = exchange  # type: ignore[method-assign]
        transport.rate_control = control = RateControl(
            options.get("rate_limit"), policy=transport.retry, clock=loop.time
        )

        async def sample() -> None:
            while True:
                if first_request:
                    bucket = buckets[int((loop.time() - first_request[0]) * 10)]
                    bucket.setdefault("rate", round(control.rate or 0))
                    bucket.setdefault("window", control.window)
                    bucket.setdefault("in_flight", control.in_flight)
                await asyncio.sleep(0.1)

        sampler = asyncio.ensure_future(sample())
        started = loop.time()
        swept = await sweep_all(client, customer_ids(customers, seed), seconds)
        ended = loop.time()
        sampler.cancel()
    if trace is not None:
        trace.extend(dict(buckets[key], at=key / 10) for key in sorted(buckets))
    elapsed = ended - (first_request[0] if first_request else started)
    return figures(case, seconds, retry_after, told, counts, swept, elapsed)


def run_virtual(case: Case, seconds: float, **options: Any) -> dict[str, Any]:
    """One simulated sweep on a fresh virtual-time loop."""
    from tests._virtual_time import run_in_virtual_time

    return run_in_virtual_time(lambda: sweep_once(case, seconds, **options))


def run(
    *, seconds: float, cases: Sequence[Case] = CASES, seeds: int = 5, untold_only: bool = False
) -> list[dict[str, Any]]:
    runs = []
    for case in cases:
        for retry_after in (False, True):
            for told in (False,) if untold_only else (False, True):
                for seed in range(seeds):
                    result = run_virtual(
                        case, seconds, retry_after=retry_after, told=told, seed=seed
                    )
                    runs.append(result)
                    print(
                        f"ratesim {case.name}, Retry-After {'yes' if retry_after else 'no'}, "
                        f"{'told' if told else 'untold'}, seed {seed}: {result['ratio']:.2f}x "
                        f"ideal, {result['share_429']:.1%} 429s"
                        + (" HUNG" if result["hung"] else ""),
                        file=sys.stderr,
                        flush=True,
                    )
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ratesim", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--case", action="append")
    parser.add_argument("--retry-after", choices=("yes", "no"))
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if not args.case or any(part in c.name for part in args.case)]
    if args.trace:
        import logging

        class _VirtualTime(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                return f"{asyncio.get_event_loop().time():7.3f} {record.getMessage()}"

        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(_VirtualTime())
        handler.addFilter(lambda record: record.getMessage().startswith("rate control"))
        logging.getLogger("lean_async").addHandler(handler)
        logging.getLogger("lean_async").setLevel(logging.DEBUG)
        trace: list[dict[str, Any]] = []
        result = run_virtual(
            cases[0], args.seconds, retry_after=args.retry_after == "yes", told=False, trace=trace
        )
        for row in trace:
            print(
                f"{row['at']:5.1f}s sent {row.get('sent', 0):4d} 429 {row.get('429', 0):4d} "
                f"pace {row.get('rate', '-'):>5} window {row.get('window', '-'):>4} "
                f"in flight {row.get('in_flight', '-'):>4}"
            )
        print(f"{result['ratio']:.3f}x ideal, {result['share_429']:.2%} 429s")
        return
    runs = run(seconds=args.seconds, cases=cases, seeds=args.seeds, untold_only=True)
    print(_common.table((*HEADERS[:5], ""), _summary(runs)))


def _summary(runs: list[dict[str, Any]]) -> list[list[str]]:
    from benchmarks.ratelimit import verdict

    grouped: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for r in runs:
        grouped.setdefault((r["case"], r["retry_after"]), []).append(r)
    rows = []
    for (case, retry_after), results in grouped.items():
        ratios = [r["ratio"] for r in results]
        shares = [r["share_429"] for r in results]
        ok = verdict(results)
        rows.append(
            [
                case,
                "yes" if retry_after else "no",
                f"{results[0]['customers']:,}",
                f"{min(ratios):.2f}-{max(ratios):.2f}",
                f"{min(shares):.1%}-{max(shares):.1%}",
                "met" if ok else "**missed**",
            ]
        )
    return rows


if __name__ == "__main__":
    main()

"""``python -m benchmarks [--quick] [--save]``: every benchmark, one Markdown report with
the targets met or missed; ``--save`` writes it to benchmarks/RESULTS.md."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks import _common, decode, importtime, memory, ratelimit, sweep, webhooks

RESULTS = Path(__file__).with_name("RESULTS.md")


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _target(name: str, ratio: float, goal: float, at_least: bool = False) -> list[str]:
    """A row of the targets table: what, the goal, the measured ratio, met or missed."""
    ok = ratio >= goal if at_least else ratio <= goal
    return [
        name,
        f"{'≥' if at_least else '≤'} {_common.times(goal)}",
        _common.times(ratio),
        _verdict(ok),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks it all runs")
    parser.add_argument("--save", action="store_true", help=f"write the report to {RESULTS}")
    args = parser.parse_args(argv)
    quick = args.quick
    started = time.monotonic()

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:5.0f} s] {line}", file=sys.stderr, flush=True)

    log("decode")
    decoded = decode.run(repeats=2 if quick else 7)
    log("import time")
    imports = importtime.run(runs=3 if quick else 9)
    log("sweep")
    swept = sweep.run(
        customers=300 if quick else 20_000,
        concurrency=sweep.DEFAULT_CONCURRENCY,
        rounds=1 if quick else sweep.DEFAULT_ROUNDS,
        loops=_common.loops(),
        log=log,
    )
    log("rate limits")
    limited = ratelimit.run(seconds=2.0 if quick else 10.0, log=log)
    log("memory")
    sizes = (300, 1_500) if quick else (10_000, 200_000)
    kept = memory.run(sizes=sizes, log=log)

    targets = []
    for loop in swept["runs"]:
        floor = 1 / sweep.ratios(swept, loop, sweep.FLOOR)["cpu"]
        raw = 1 / sweep.ratios(swept, loop, "aiohttp+json")["cpu"]
        httpx = sweep.ratios(swept, loop, "httpx+json")
        targets += [
            _target(f"CPU/customer vs raw aiohttp + library decoder ({loop})", floor, 1.10),
            _target(f"CPU/customer vs raw aiohttp + json.loads ({loop})", raw, 1.0),
            _target(f"throughput over httpx's ({loop})", 1 / httpx["rate"], 10, at_least=True),
            _target(f"httpx's CPU/customer over the library's ({loop})", httpx["cpu"], 10, True),
        ]
    for other, goal in (("pydantic v2", 3.0), ("orjson.loads", 1.3)):
        worst = min(
            _common.paired_ratio(by_name[other], by_name[decode.BASELINE])
            for by_name in decoded.values()
        )
        targets.append(_target(f"decoding faster than {other} (worst size)", worst, goal, True))
    for row in ratelimit.summarize(limited):
        case, retry_after, _, ratio, share, *_, goal, verdict = row
        targets.append(
            [
                f"{case}, Retry-After {retry_after}, untold: time / ideal, 429s",
                goal,
                f"{ratio}, {share}",
                verdict,
            ]
        )
    growth = kept[max(kept)]["peak_rss_mb"] / kept[min(kept)]["peak_rss_mb"]
    targets.append(_target(f"peak RSS at {max(kept):,} over {min(kept):,} customers", growth, 1.15))
    added = _common.median(imports)
    targets.append(
        [
            "import lean_async after aiohttp + msgspec",
            "< 30 ms",
            f"{added:.1f} ms",
            _verdict(added < 30),
        ]
    )

    concurrency = swept["concurrency"]
    report = "\n\n".join(
        [
            "# Benchmark results" + (" (--quick: tiny sizes, not meaningful)" if quick else ""),
            f"Machine: {_common.machine()}.",
            f"Run with `python -m benchmarks{' --quick' if quick else ''}` in "
            f"{time.monotonic() - started:.0f} s.",
            "## Targets",
            _common.table(("target", "goal", "measured", ""), targets),
            f"## Sweep: {swept['customers']:,} customers, {concurrency} in flight, "
            f"{swept['rounds']} rounds",
            "Each run in a fresh client process; the fake server in its own process. "
            "`±` is half the range over the rounds; `vs lib` is the median of the per-round "
            "ratios to the library, the order of the variants rotated each round.",
            _common.table(sweep.HEADERS, sweep.summarize(swept)),
            "## Sweeping into a limit the client is not told",
            ratelimit.DESCRIPTION,
            _common.table(ratelimit.HEADERS, ratelimit.summarize(limited)),
            "## Decoding a list response",
            _common.table(decode.HEADERS, decode.summarize(decoded)),
            "## Memory: a streamed sweep, each size in a fresh process",
            _common.table(memory.HEADERS, memory.summarize(kept)),
            "## Import time",
            _common.table(importtime.HEADERS, importtime.summarize(imports)),
        ]
    )
    print(report)
    if args.save:
        # The webhook receiver's section is saved by its own command: kept as it is.
        RESULTS.write_text(report + "\n" + webhooks.saved_section(RESULTS))
        log(f"saved {RESULTS}")


if __name__ == "__main__":
    main()

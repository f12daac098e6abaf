"""Sweeps against local servers enforcing a limit the client is not told, next to the same
sweep told the true limit (``LeanClient(rate_limit=...)``).

    python -m benchmarks.ratelimit [--seconds 10] [--quick] [--case NAME ...]

Each server answers after 50-70 ms (uniform), or 429 beyond its limit, with
``Retry-After`` (whole seconds, as HTTP has it) or without. Each sweep reads an async
generator of ids, with the default settings and ``concurrency=150``, far above what
the server admits; the number of customers is the admitted rate times ``--seconds``.
Figures: the time from the first request to the last result over the ideal time
(customers / admitted rate), the share of requests answered 429, and whether every
customer ended ok, exactly once, within a time bound (5x the ideal: beyond it, a hang).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import math
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks import _common

DESCRIPTION = (
    "Local servers on 127.0.0.1 answering after 50-70 ms, or 429 beyond their limit, with "
    "`Retry-After` (whole seconds) or without; each sweep reads an async generator of ids "
    "with the default settings and `concurrency=150`, for about 10 s of ideal time "
    "(customers / admitted rate). *told*: the same sweep with `LeanClient(rate_limit=)` set "
    "to the limit (the rate at the start, for the dropping one; 9 / 60 ms for the in-flight "
    "one). Every run: each customer ok, exactly once, no hang."
)
CONCURRENCY = 150
LATENCY = (0.05, 0.07)  # seconds, uniform
HANG_FACTOR = 5.0  # a sweep longer than this many ideal times has hung
DROP_AT = 0.3  # the dropping limit drops after this fraction of the ideal time
TARGETS = {"window": 1.15, "in-flight": 1.30, "dropping": 1.30}
TARGET_429_SHARE = 0.03


# -- the servers' limits: each says how long to wait (429), or None (admitted) ---------


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` of them saved up."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._tokens = burst
        self._updated: float | None = None  # full at the first request

    def admit(self, now: float) -> float | None:
        if self._updated is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        return (1 - self._tokens) / self.rate

    def done(self) -> None:
        pass


class FixedWindow:
    """At most ``limit`` requests in each one-second window (counted from the first)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._origin: float | None = None
        self._window = -1
        self._count = 0

    def admit(self, now: float) -> float | None:
        if self._origin is None:
            self._origin = now
        window = int(now - self._origin)
        if window != self._window:
            self._window, self._count = window, 0
        if self._count < self.limit:
            self._count += 1
            return None
        return self._origin + window + 1 - now

    def done(self) -> None:
        pass


class SlidingWindow:
    """At most ``limit`` requests in any one second."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._admitted: collections.deque[float] = collections.deque()

    def admit(self, now: float) -> float | None:
        admitted = self._admitted
        while admitted and admitted[0] <= now - 1.0:
            admitted.popleft()
        if len(admitted) < self.limit:
            admitted.append(now)
            return None
        return admitted[0] + 1.0 - now

    def done(self) -> None:
        pass


class InFlight:
    """At most ``limit`` requests in progress at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_progress = 0

    def admit(self, now: float) -> float | None:
        if self.in_progress >= self.limit:
            return 1.0
        self.in_progress += 1
        return None

    def done(self) -> None:
        self.in_progress -= 1


class Dropping:
    """A token bucket whose rate drops from ``before`` to ``after`` at ``at`` seconds
    after the first request."""

    def __init__(self, before: float, after: float, at: float, burst: float) -> None:
        self.bucket = TokenBucket(before, burst)
        self.after, self.at = after, at
        self._origin: float | None = None

    def admit(self, now: float) -> float | None:
        if self._origin is None:
            self._origin = now
        if now - self._origin >= self.at:
            self.bucket.rate = self.after
        return self.bucket.admit(now)

    def done(self) -> None:
        pass


Limit = TokenBucket | FixedWindow | SlidingWindow | InFlight | Dropping


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # which target applies: window, in-flight, dropping
    make: Callable[[float], tuple[Limit, int, float]]  # seconds -> (limit, customers, rate)

    def told(self, seconds: float) -> float:
        """The true limit, as ``rate_limit=`` would state it (the rate at the start)."""
        return self.make(seconds)[2]


def _bucket(seconds: float) -> tuple[Limit, int, float]:
    return TokenBucket(150, burst=5), round(150 * seconds), 150.0


def _fixed(seconds: float) -> tuple[Limit, int, float]:
    return FixedWindow(150), round(150 * seconds), 150.0


def _sliding(seconds: float) -> tuple[Limit, int, float]:
    return SlidingWindow(150), round(150 * seconds), 150.0


def _in_flight(seconds: float) -> tuple[Limit, int, float]:
    # 9 in progress at 60 ms on average: 150 requests per second.
    rate = 9 / (sum(LATENCY) / 2)
    return InFlight(9), round(rate * seconds), rate


def _dropping(seconds: float) -> tuple[Limit, int, float]:
    at = DROP_AT * seconds
    customers = round(250 * at + 90 * (seconds - at))
    return Dropping(250, 90, at, burst=5), customers, 250.0


CASES = [
    Case("token bucket 150/s, burst 5", "window", _bucket),
    Case("fixed 1 s windows of 150", "window", _fixed),
    Case("sliding 1 s window of 150", "window", _sliding),
    Case("9 requests in progress (150/s)", "in-flight", _in_flight),
    Case("token bucket dropping 250/s -> 90/s", "dropping", _dropping),
]


# -- one sweep ---------------------------------------------------------------------


async def sweep_once(
    case: Case, seconds: float, *, retry_after: bool, told: bool, seed: int = 0
) -> dict[str, Any]:
    """One sweep of ``case``'s customers against its server; the figures."""
    from aiohttp import web

    import lean_async

    limit, customers, _ = case.make(seconds)
    rng = random.Random(seed)
    counts: collections.Counter[str] = collections.Counter()
    first_request: list[float] = []

    async def handle(request: web.Request) -> web.Response:
        now = time.monotonic()
        if not first_request:
            first_request.append(now)
        counts["requests"] += 1
        wait = limit.admit(now)
        if wait is not None:
            counts["429"] += 1
            headers = {"Retry-After": str(max(1, math.ceil(wait)))} if retry_after else {}
            return web.Response(
                status=429,
                body=b'{"status":"RATE_LIMIT_EXCEEDED","message":"Too many requests"}',
                content_type="application/json",
                headers=headers,
            )
        try:
            await asyncio.sleep(rng.uniform(*LATENCY))
        finally:
            limit.done()
        return web.Response(body=b"[]", content_type="application/json")

    app = web.Application()
    app.router.add_get("/customers/v1/{customer_id}/payment-sources", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    options: dict[str, Any] = {"rate_limit": case.told(seconds)} if told else {}
    try:
        async with lean_async.LeanClient(app_token="bench", base_url=url, **options) as client:
            started = time.monotonic()
            swept = await sweep_all(client, customer_ids(customers, seed), seconds)
            ended = time.monotonic()
    finally:
        await runner.cleanup()
    elapsed = ended - (first_request[0] if first_request else started)
    return figures(case, seconds, retry_after, told, counts, swept, elapsed)


def customer_ids(customers: int, seed: int) -> list[str]:
    prefix = str(uuid.UUID(int=seed, version=4))[:-8]
    return [f"{prefix}{n:08x}" for n in range(customers)]


@dataclass
class Swept:
    seen: collections.Counter[str]  # results by customer id
    failed: int
    hung: bool


async def sweep_all(client: Any, ids: list[str], seconds: float) -> Swept:
    """Sweeps ``ids`` (an async generator of them, ``concurrency=CONCURRENCY``), bounded
    by HANG_FACTOR ideal times (``seconds``): beyond it, a hang."""
    swept = Swept(collections.Counter(), 0, False)

    async def id_source() -> AsyncIterator[str]:
        for customer_id in ids:
            yield customer_id

    async def sweep() -> None:
        async for result in client.payment_sources.sweep(id_source(), concurrency=CONCURRENCY):
            swept.seen[result.customer_id] += 1
            swept.failed += not result.ok

    try:
        await asyncio.wait_for(sweep(), timeout=seconds * HANG_FACTOR)
    except asyncio.TimeoutError:
        swept.hung = True
    return swept


def figures(
    case: Case,
    seconds: float,
    retry_after: bool,
    told: bool,
    counts: collections.Counter[str],
    swept: Swept,
    elapsed: float,
) -> dict[str, Any]:
    """One sweep's figures; the ideal time is ``seconds`` (customers / admitted rate, by
    construction of each case)."""
    customers = case.make(seconds)[1]
    return {
        "case": case.name,
        "kind": case.kind,
        "retry_after": retry_after,
        "told": told,
        "customers": customers,
        "ideal": seconds,
        "elapsed": elapsed,
        "ratio": elapsed / seconds,
        "requests": counts["requests"],
        "rate_limited": counts["429"],
        "share_429": counts["429"] / max(counts["requests"], 1),
        "exactly_once": len(swept.seen) == customers and set(swept.seen.values()) == {1},
        "all_ok": swept.failed == 0 and len(swept.seen) == customers,
        "hung": swept.hung,
    }


# -- the comparison ----------------------------------------------------------------


def run(
    *,
    seconds: float,
    cases: Sequence[Case] = CASES,
    repeats: int = 1,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Every case, with and without Retry-After, untold and told, ``repeats`` times."""
    runs = []
    for repeat in range(repeats):
        for case in cases:
            for retry_after in (False, True):
                for told in (False, True):
                    result = _common.run_on(
                        "asyncio",
                        lambda c=case, r=retry_after, t=told, s=repeat: sweep_once(
                            c, seconds, retry_after=r, told=t, seed=s
                        ),
                    )
                    runs.append(result)
                    log(
                        f"ratelimit {case.name}, Retry-After {'yes' if retry_after else 'no'}, "
                        f"{'told' if told else 'untold'}: {result['ratio']:.2f}x ideal, "
                        f"{result['share_429']:.1%} 429s" + (" HUNG" if result["hung"] else "")
                    )
    return runs


def _group(runs: list[dict[str, Any]]) -> dict[tuple[str, bool, bool], list[dict[str, Any]]]:
    grouped: dict[tuple[str, bool, bool], list[dict[str, Any]]] = {}
    for r in runs:
        grouped.setdefault((r["case"], r["retry_after"], r["told"]), []).append(r)
    return grouped


def _ratio(results: list[dict[str, Any]]) -> str:
    values = [r["ratio"] for r in results]
    text = _common.times(_common.median(values))
    if len(values) > 1:
        text += f" ({min(values):.2f}-{max(values):.2f})"
    return text


def _share(results: list[dict[str, Any]]) -> str:
    return f"{_common.median([r['share_429'] for r in results]):.1%}"


def verdict(results: list[dict[str, Any]]) -> bool:
    """Every run of a case met its targets."""
    goal = TARGETS[results[0]["kind"]]
    return all(
        r["ratio"] <= goal
        and r["share_429"] <= TARGET_429_SHARE
        and r["exactly_once"]
        and r["all_ok"]
        and not r["hung"]
        for r in results
    )


def summarize(runs: list[dict[str, Any]]) -> list[list[str]]:
    """Rows: case, Retry-After, untold time/ideal and 429 share, told ones, the target,
    met or missed (the untold sweep's targets)."""
    grouped = _group(runs)
    rows = []
    for case in dict.fromkeys(r["case"] for r in runs):
        for retry_after in (False, True):
            untold = grouped.get((case, retry_after, False))
            told = grouped.get((case, retry_after, True))
            if not untold or not told:
                continue
            goal = TARGETS[untold[0]["kind"]]
            rows.append(
                [
                    case,
                    "yes" if retry_after else "no",
                    f"{untold[0]['customers']:,}",
                    _ratio(untold),
                    _share(untold),
                    _ratio(told),
                    _share(told),
                    f"≤ {_common.times(goal)}, ≤ {TARGET_429_SHARE:.0%}",
                    "met" if verdict(untold) else "**missed**",
                ]
            )
    return rows


HEADERS = (
    "server's limit",
    "Retry-After",
    "customers",
    "time / ideal",
    "429s",
    "told: time / ideal",
    "told: 429s",
    "target (untold)",
    "",
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ratelimit", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="ideal seconds per sweep")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="2 s sweeps: checks it all runs")
    parser.add_argument("--case", action="append", help="only the cases whose name has this")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if not args.case or any(part in c.name for part in args.case)]
    runs = run(
        seconds=2.0 if args.quick else args.seconds,
        cases=cases,
        repeats=args.repeats,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(_common.table(HEADERS, summarize(runs)))


if __name__ == "__main__":
    main()

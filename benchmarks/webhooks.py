"""Webhook receiver benchmarks: durable throughput, and valid deliveries under abuse.

The receiver runs as an operator runs it, ``lean-async webhooks serve`` with a SQLite inbox,
in its own process; the load comes from this one, over raw keep-alive HTTP/1.1 connections
on 127.0.0.1 with bodies signed in advance, so that the client costs as little CPU as it
can on the shared two cores.

- **Throughput**: ``--events`` signed deliveries through ``--concurrency`` connections, each
  sending its next one when the last is answered (so that many are in flight all the time);
  figures: acknowledged events per second, and the time from sending a delivery to its 200
  (p50, p99, max). Every acknowledged event must be in the inbox afterwards.
- **Abuse**: ``--abusers`` unauthenticated clients at once for ``--abuse-seconds``: half
  trickle a body a byte a second, half send a body just under the 1 MiB limit and hold it
  unfinished; each comes back ``--comeback`` seconds after the receiver closes it. Meanwhile
  valid deliveries arrive at ``--valid-rate`` per second; figures: their time to 200
  (every one must get it within 2 s), and the receiver's RSS before, at its peak, and a
  few seconds after the abusers left (must be within 50 MiB of before).

``python -m benchmarks.webhooks [--quick] [--save]``; ``--save`` replaces this benchmark's
section of RESULTS.md, leaving the rest of the file as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import _common
from lean_async import webhooks

SECRET = "whsec-benchmark"
PATH = "/webhooks/lean"
RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION_START = "<!-- webhooks benchmark: python -m benchmarks.webhooks --save -->"
SECTION_END = "<!-- end of webhooks benchmark -->"
THROUGHPUT_GOAL = 500.0  # acknowledged events per second
P99_GOAL = 0.100  # seconds to 200 at 200 concurrent deliveries
ABUSE_DEADLINE = 2.0  # seconds to 200 for a valid delivery under abuse
RSS_RETURN_GOAL = 50.0  # MiB above the start, after the abusers leave
OVERSIZED = 1024 * 1024 - 1024


async def ignore(event: webhooks.WebhookEvent) -> None:
    """The benchmark receiver's handler: the figures are the receiver's, not a handler's."""


# -- the receiver process --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def serve_in_memory(port: int) -> None:
    """The receiver without an inbox, on uvloop as the CLI runs: the baseline."""
    from aiohttp import web

    from lean_async._event_loop import event_loop_runner

    async def serve() -> None:
        runner = web.AppRunner(webhooks.receiver(SECRET, ignore, path=PATH), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    event_loop_runner()(serve())


@contextlib.contextmanager
def receiver(inbox: Path | None, port: int) -> Any:
    """``lean-async webhooks serve`` on ``port`` (with ``inbox`` None: the receiver without
    one), until the block ends; yields its pid."""
    env = {**os.environ, "LEAN_WEBHOOK_SECRET": SECRET}
    if inbox is None:
        command = ["-m", "benchmarks.webhooks", "--serve-in-memory", str(port)]
    else:
        command = ["-m", "lean_async", "webhooks", "serve", "--inbox", str(inbox)]
        command += ["--port", str(port), "--handler", "benchmarks.webhooks:ignore"]
    process = subprocess.Popen(
        [PYTHON, *command],
        cwd=_common.ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the receiver exited with {process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the receiver never listened")
            time.sleep(0.05)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


PYTHON = _common.PYTHON


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def signed_request(event_id: str) -> bytes:
    body = json.dumps(
        {
            "type": "payment_source.beneficiary.updated",
            "event_id": event_id,
            "timestamp": "2026-05-13T10:50:10.476351058Z",
            "message": "benchmark",
            "payload": {
                "id": "5a0e7c39-1b2d-4c3e-8f4a-6b7c8d9e0f12",
                "customer_id": "2f0b3c1d-7a45-4f2e-8c7b-6d5e4f3a2b10",
                "payment_source_id": "9b1f4c2e-3c6d-4e8a-9d9b-2b0f5e6a7c11",
                "payment_destination_id": "c2e3f4a5-b6c7-4d8e-9f01-23456789abcd",
                "status": "ACTIVE",
                "payment_source_bank_identifier": "ENBD_UAE",
            },
        }
    ).encode()
    return head(len(body), webhooks.sign(body, SECRET)) + body


def head(length: int, signature: str) -> bytes:
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{webhooks.SIGNATURE_HEADER}: {signature}\r\n\r\n"
    ).encode()


async def read_status(reader: asyncio.StreamReader) -> int:
    """The status of one answer, whose headers and body are read off the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        raise ConnectionError("closed") from None
    at = head.lower().find(b"content-length:")
    if at >= 0:
        await reader.readexactly(int(head[at + 15 : head.index(b"\r\n", at)]))
    return int(head[9:12])


def run_load(main: Any) -> Any:
    """Run the load generator's coroutine on uvloop when installed: a cheaper client."""
    return _common.run_on(_common.loops()[-1], lambda: main)


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def inbox_count(inbox: Path) -> int:
    with contextlib.closing(sqlite3.connect(inbox)) as db:
        return int(db.execute("SELECT COUNT(*) FROM lean_webhook_events").fetchone()[0])


# -- throughput ------------------------------------------------------------------------------


async def _deliver_all(port: int, requests: list[bytes], concurrency: int) -> dict[str, Any]:
    queue = iter(requests)
    latencies: list[float] = []
    acknowledged = 0

    async def connection() -> None:
        nonlocal acknowledged
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in queue:
                sent = time.perf_counter()
                writer.write(request)
                if await read_status(reader) == 200:
                    latencies.append(time.perf_counter() - sent)
                    acknowledged += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "acknowledged": acknowledged,
        "seconds": elapsed,
        "rate": acknowledged / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies) * 1000,
    }


async def _deliver_at_rate(
    port: int, requests: list[bytes], connections: int, rate: float
) -> dict[str, Any]:
    """Each request sent at its moment (``rate`` a second) on a free connection of the pool;
    its time to 200 counts from that moment, waiting for a connection included."""
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []

    async def deliver(request: bytes, due: float) -> None:
        reader, writer = await pool.get()
        writer.write(request)
        if await read_status(reader) == 200:
            latencies.append(time.perf_counter() - due)
        pool.put_nowait((reader, writer))

    started = time.perf_counter()
    tasks = []
    for i, request in enumerate(requests):
        due = started + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.ensure_future(deliver(request, due)))
    await asyncio.gather(*tasks)
    while not pool.empty():
        pool.get_nowait()[1].close()
    return {
        "acknowledged": len(latencies),
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies) * 1000,
    }


def throughput(
    events: int, concurrency: int, rounds: int, offered_rate: float
) -> list[dict[str, Any]]:
    """Each round: the receiver with its SQLite inbox, then without an inbox (the baseline:
    what aiohttp, the signature and the decoding cost on this machine at this moment)."""
    results = []
    for turn in range(rounds):
        results.extend(
            _throughput_run(turn, durable, events, concurrency, offered_rate)
            for durable in (True, False)
        )
    return results


def _throughput_run(
    turn: int, durable: bool, events: int, concurrency: int, offered_rate: float
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        inbox = Path(tmp) / "inbox.db" if durable else None
        port = free_port()
        warm_up = [signed_request(f"warm-{turn}-{i}") for i in range(500)]
        requests = [signed_request(f"evt-{turn}-{i}") for i in range(events)]
        paced = [signed_request(f"paced-{turn}-{i}") for i in range(int(offered_rate * 5))]
        with receiver(inbox, port):
            warm = run_load(_deliver_all(port, warm_up, concurrency))
            result = run_load(_deliver_all(port, requests, concurrency))
            at_rate = run_load(_deliver_at_rate(port, paced, concurrency, offered_rate))
        # Acknowledged means kept: every 200 is a row, read after the receiver stopped.
        acknowledged = warm["acknowledged"] + result["acknowledged"] + at_rate["acknowledged"]
        missing = None if inbox is None else acknowledged - inbox_count(inbox)
        result.update(round=turn + 1, durable=durable, missing=missing, offered_rate=offered_rate)
        result.update({f"paced_{k}": v for k, v in at_rate.items()})
    return result


# -- abuse -----------------------------------------------------------------------------------


async def _slow_client(port: int, stop: asyncio.Event, comeback: float, counts: dict[str, int]):
    """Declares a body, then sends it a byte a second; back after being closed."""
    data = b'{"type": "payment_source.created"' + b" " * 200
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            counts["connect_failed"] += 1
            await asyncio.sleep(comeback)
            continue
        counts["slow_connections"] += 1
        try:
            writer.write(head(len(data), "sha512=" + "ab" * 64))
            for byte in data:
                if stop.is_set() or reader.at_eof():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                if reader.at_eof() or reader._buffer:  # answered (408): closed on us
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
        await asyncio.sleep(comeback)


async def _oversized_client(
    port: int, stop: asyncio.Event, comeback: float, counts: dict[str, int]
) -> None:
    """Declares a body just under the size limit, sends all but its last byte, holds."""
    chunk = b"x" * 65536
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            counts["connect_failed"] += 1
            await asyncio.sleep(comeback)
            continue
        counts["oversized_connections"] += 1
        try:
            writer.write(head(OVERSIZED, "sha512=" + "ab" * 64))
            remaining = OVERSIZED - 1
            while remaining > 0 and not reader.at_eof():
                writer.write(chunk[: min(remaining, len(chunk))])
                remaining -= min(remaining, len(chunk))
                await asyncio.wait_for(writer.drain(), 10)
            stopped = asyncio.ensure_future(stop.wait())
            answered = asyncio.ensure_future(reader.read(1))
            await asyncio.wait({stopped, answered}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            answered.cancel()
        except (ConnectionError, OSError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()
        await asyncio.sleep(comeback)


async def _valid_deliveries(
    port: int, rate: float, stop: asyncio.Event, latencies: list[float], failures: list[str]
) -> None:
    count = 0
    loop = asyncio.get_running_loop()
    started = loop.time()
    tasks = set()

    async def deliver(request: bytes) -> None:
        sent = time.perf_counter()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
            try:
                writer.write(request)
                status = await asyncio.wait_for(read_status(reader), 10)
            finally:
                writer.close()
        except (OSError, asyncio.TimeoutError, ConnectionError) as exc:
            failures.append(type(exc).__name__)
            return
        if status == 200:
            latencies.append(time.perf_counter() - sent)
        else:
            failures.append(f"HTTP {status}")

    while not stop.is_set():
        count += 1
        task = asyncio.ensure_future(deliver(signed_request(f"valid-{count}")))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, started + count / rate - loop.time()))
    if tasks:
        await asyncio.wait(tasks)


async def _abuse(
    port: int, pid: int, abusers: int, seconds: float, valid_rate: float, comeback: float
) -> dict[str, Any]:
    counts = {"slow_connections": 0, "oversized_connections": 0, "connect_failed": 0}
    await asyncio.sleep(1)
    before = rss_mb(pid)
    stop_abuse, stop_valid = asyncio.Event(), asyncio.Event()
    clients = [
        asyncio.ensure_future(
            (_slow_client if i % 2 else _oversized_client)(port, stop_abuse, comeback, counts)
        )
        for i in range(abusers)
    ]
    latencies: list[float] = []
    failures: list[str] = []
    valid = asyncio.ensure_future(
        _valid_deliveries(port, valid_rate, stop_valid, latencies, failures)
    )
    peak = before
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.sleep(0.25)
        peak = max(peak, rss_mb(pid))
    stop_valid.set()
    await valid
    stop_abuse.set()
    await asyncio.wait(clients, timeout=30)
    for client in clients:
        client.cancel()
    await asyncio.sleep(3)  # the receiver notices the closed connections
    after = rss_mb(pid)
    return {
        "abusers": abusers,
        "seconds": seconds,
        **counts,
        "valid": len(latencies) + len(failures),
        "valid_200": len(latencies),
        "valid_failures": failures[:10],
        "valid_p50_ms": percentile(latencies, 0.5) * 1000 if latencies else None,
        "valid_max_ms": max(latencies) * 1000 if latencies else None,
        "rss_before_mb": before,
        "rss_peak_mb": peak,
        "rss_after_mb": after,
    }


def abuse(abusers: int, seconds: float, valid_rate: float, comeback: float) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * abusers + 200
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        with receiver(Path(tmp) / "inbox.db", port) as pid:
            run_load(_deliver_all(port, [signed_request(f"w{i}") for i in range(300)], 20))
            result = run_load(_abuse(port, pid, abusers, seconds, valid_rate, comeback))
    result["open_file_limit"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return result


# -- report ----------------------------------------------------------------------------------


def report(
    results: list[dict[str, Any]], concurrency: int, abused: dict[str, Any], quick: bool
) -> str:
    runs = [r for r in results if r["durable"]]
    rate = min(r["rate"] for r in runs)
    p99 = max(r["p99_ms"] for r in runs)
    paced_p99 = max(r["paced_p99_ms"] for r in runs)
    offered = runs[0]["offered_rate"]
    lost = sum(r["missing"] for r in runs)
    valid_ok = (
        abused["valid_200"] == abused["valid"]
        and (abused["valid_max_ms"] or 1e9) < ABUSE_DEADLINE * 1000
    )
    returned = abused["rss_after_mb"] - abused["rss_before_mb"]
    targets = [
        [
            "acknowledged events/s, SQLite inbox (worst run)",
            f"≥ {THROUGHPUT_GOAL:.0f}",
            f"{rate:,.0f}",
            _verdict(rate >= THROUGHPUT_GOAL),
        ],
        [
            f"p99 time to 200 at {concurrency} concurrent (worst run)",
            f"< {P99_GOAL * 1000:.0f} ms",
            f"{p99:.1f} ms",
            _verdict(p99 < P99_GOAL * 1000),
        ],
        [
            f"p99 time to 200 at {offered:.0f}/s offered, {concurrency} connections (worst run)",
            f"< {P99_GOAL * 1000:.0f} ms",
            f"{paced_p99:.1f} ms",
            _verdict(paced_p99 < P99_GOAL * 1000),
        ],
        ["acknowledged events missing from the inbox", "0", str(lost), _verdict(lost == 0)],
        [
            f"valid deliveries answered 200 under {abused['abusers']:,} abusers",
            f"all, each < {ABUSE_DEADLINE:.0f} s",
            f"{abused['valid_200']}/{abused['valid']}, max {abused['valid_max_ms'] or 0:,.0f} ms",
            _verdict(valid_ok),
        ],
        [
            "receiver RSS after the abusers left, over before",
            f"< {RSS_RETURN_GOAL:.0f} MiB",
            f"{returned:+.1f} MiB",
            _verdict(returned < RSS_RETURN_GOAL),
        ],
    ]
    rows = [
        [
            r["round"],
            "SQLite inbox" if r["durable"] else "in memory",
            f"{r['acknowledged']:,}",
            f"{r['rate']:,.0f}",
            f"{r['p50_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
            f"{r['max_ms']:.1f}",
            f"{r['paced_p50_ms']:.1f}",
            f"{r['paced_p99_ms']:.1f}",
            f"{r['paced_max_ms']:.1f}",
            "" if r["missing"] is None else f"{r['missing']:,}",
        ]
        for r in results
    ]
    abuse_row = [
        f"{abused['abusers']:,} ({abused['seconds']:.0f} s)",
        f"{abused['slow_connections']:,} / {abused['oversized_connections']:,}",
        f"{abused['valid_200']}/{abused['valid']}",
        f"{abused['valid_p50_ms'] or 0:,.0f} / {abused['valid_max_ms'] or 0:,.0f}",
        f"{abused['rss_before_mb']:.0f} / {abused['rss_peak_mb']:.0f} / "
        f"{abused['rss_after_mb']:.0f}",
    ]
    return "\n\n".join(
        [
            SECTION_START,
            "## Webhook receiver" + (" (--quick: tiny sizes, not meaningful)" if quick else ""),
            f"Machine: {_common.machine()}; open-file limit {abused['open_file_limit']:,}. "
            "The receiver is `lean-async webhooks serve` with a SQLite inbox (WAL, "
            "synchronous=FULL) in its own process; the load comes from another process on "
            "the same two cores, over keep-alive connections, bodies signed in advance. "
            "See the docstring of `benchmarks/webhooks.py`.",
            _common.table(("target", "goal", "measured", ""), targets),
            "Throughput, each round with the SQLite inbox and then without an inbox (the "
            "baseline: what aiohttp, the signature check and decoding cost on this machine at "
            f"that moment): {runs[0]['acknowledged']:,} signed deliveries through "
            f"{concurrency} connections each sending its next when the last is answered "
            f"(200 always in flight: the time to 200 is mostly the queue, 200 / rate); then "
            f"{offered:.0f} deliveries a second for 5 s through a pool of {concurrency} "
            "connections, as Lean sends them when events happen (`paced`, timed from each "
            "one's due moment).",
            _common.table(
                (
                    "round",
                    "receiver",
                    "acknowledged",
                    "events/s",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                    "paced p50 ms",
                    "paced p99 ms",
                    "paced max ms",
                    "200s missing from the inbox",
                ),
                rows,
            ),
            "Abuse: half the clients trickle a body a byte a second, half send a body just "
            "under 1 MiB and hold it unfinished, each back a moment after being closed; "
            "valid deliveries meanwhile on fresh connections.",
            _common.table(
                (
                    "abusers",
                    "slow / oversized connections",
                    "valid 200",
                    "valid p50 / max ms",
                    "RSS MiB before / peak / after",
                ),
                [abuse_row],
            ),
            SECTION_END,
        ]
    )


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def save_section(text: str, path: Path = RESULTS) -> None:
    """Put ``text`` in place of this benchmark's section of ``path`` (or at its end)."""
    current = path.read_text() if path.exists() else ""
    path.write_text(without_section(current).rstrip("\n") + "\n\n" + text + "\n")


def without_section(text: str) -> str:
    start, end = text.find(SECTION_START), text.find(SECTION_END)
    if start < 0 or end < 0:
        return text
    return text[:start].rstrip("\n") + "\n" + text[end + len(SECTION_END) :].lstrip("\n")


def saved_section(path: Path = RESULTS) -> str:
    """This benchmark's section of ``path`` as saved, or nothing: for a report rewriting
    the file to keep it."""
    text = path.read_text() if path.exists() else ""
    start, end = text.find(SECTION_START), text.find(SECTION_END)
    return "" if start < 0 or end < 0 else "\n" + text[start : end + len(SECTION_END)] + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.webhooks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks it all runs")
    parser.add_argument("--save", action="store_true", help=f"write the section to {RESULTS}")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--offered-rate", type=float, default=500.0)
    parser.add_argument("--abusers", type=int, default=1000)
    parser.add_argument("--abuse-seconds", type=float, default=20.0)
    parser.add_argument("--valid-rate", type=float, default=20.0)
    parser.add_argument("--comeback", type=float, default=0.5)
    parser.add_argument("--serve-in-memory", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_in_memory:
        serve_in_memory(args.serve_in_memory)
        return
    if args.quick:
        args.events, args.rounds, args.abusers, args.abuse_seconds = 300, 1, 20, 2.0
        args.offered_rate = 50.0
    runs = throughput(args.events, args.concurrency, args.rounds, args.offered_rate)
    abused = abuse(args.abusers, args.abuse_seconds, args.valid_rate, args.comeback)
    text = report(runs, args.concurrency, abused, args.quick)
    print(text)
    if args.save:
        save_section(text)
        print(f"saved {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""What a tool call through the MCP server costs on top of the client call it makes:
``get_payment_source`` against the fake server, called directly, through the server in
memory (the SDK's client, on the initialize handshake and on the 2026 protocol), and
through ``lean-async mcp`` over stdio, as an MCP client runs it. Needs the ``mcp`` extra.

    python -m benchmarks.mcp [--calls 300 --rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from mcp import Client, StdioServerParameters

from benchmarks import _common
from lean_async.mcp import create_server
from lean_async.testing import FakeLean

PATHS = ("direct client", "MCP in memory (handshake)", "MCP in memory (2026)", "MCP over stdio")
Call = Callable[[], Awaitable[object]]


async def _per_call_ms(call: Call, calls: int) -> float:
    """The median milliseconds of ``calls`` calls made one after the other."""
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return _common.median(times) * 1000


async def _measure(calls: int, rounds: int) -> dict[str, list[float]]:
    async with FakeLean(customers=5, seed=1) as fake, fake.client() as lean:
        customer_id = next(c for c in fake.customer_ids if fake.data.payment_sources(c))
        source_id = fake.data.payment_sources(customer_id)[0].id
        arguments = {"customer_id": customer_id, "payment_source_id": source_id}
        stdio = StdioServerParameters(
            command=sys.executable,
            args=["-m", "lean_async.cli", "mcp", "--base-url", fake.url],
            env={"LEAN_APP_TOKEN": fake.app_token},
        )
        async with AsyncExitStack() as stack:
            clients = {
                PATHS[1]: Client(create_server(lean), mode="legacy"),
                PATHS[2]: Client(create_server(lean), mode="auto"),
                PATHS[3]: Client(stdio, mode="legacy"),
            }
            calls_by_path: dict[str, Call] = {
                PATHS[0]: lambda: lean.payment_sources.get(customer_id, source_id)
            }
            for path, client in clients.items():
                session = await stack.enter_async_context(client)
                await session.list_tools()  # the SDK checks results against the schemas
                calls_by_path[path] = _tool_call(session, arguments)
            for call in calls_by_path.values():
                await call()  # warm-up: connections, tokens
            results: dict[str, list[float]] = {path: [] for path in PATHS}
            for turn in range(rounds):
                for path in _common.rotated(PATHS, turn):
                    results[path].append(await _per_call_ms(calls_by_path[path], calls))
    return results


def _tool_call(session: Client, arguments: dict[str, str]) -> Call:
    async def call() -> object:
        result = await session.call_tool("get_payment_source", arguments)
        assert not result.is_error
        return result

    return call


def run(*, calls: int, rounds: int) -> dict[str, list[float]]:
    """Per round, each path's median ms per call."""
    return asyncio.run(_measure(calls, rounds))


HEADERS = ("path", "ms per call (median of rounds)", "vs direct")


def summarize(results: dict[str, list[float]]) -> list[list[str]]:
    direct = results[PATHS[0]]
    return [
        [path, _common.with_spread(ms, 2), _common.times(_common.paired_ratio(ms, direct))]
        for path, ms in results.items()
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mcp", description=__doc__)
    parser.add_argument("--calls", type=int, default=300, help="per path and round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    print(_common.table(HEADERS, summarize(run(calls=args.calls, rounds=args.rounds))))


if __name__ == "__main__":
    main()

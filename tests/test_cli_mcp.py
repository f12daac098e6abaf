"""``lean-async mcp`` as MCP clients run it: a subprocess spoken to in JSON-RPC over its
stdin and stdout, or over streamable HTTP with --http."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from _cli import app_token_env, clean_env, run_cli, start_cli, stop
from mcp import Client

from lean_async.testing import FakeLean

TIMEOUT = 30.0
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
PROTOCOL_VERSION = "2025-06-18"
READ_ONLY_TOOLS = {"find_customer", "list_payment_sources", "get_payment_source"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeLean]:
    async with FakeLean(customers=4, seed=11) as server:
        yield server


def customer_with_accounts(fake: FakeLean) -> tuple[str, str, str]:
    """A customer id, one of their payment sources' id, and that source's first full
    account number."""
    for customer_id in fake.customer_ids:
        for source in fake.data.payment_sources(customer_id):
            for account in source.accounts:
                if account.account_number and len(account.account_number) > 4:
                    return customer_id, source.id, account.account_number
    raise AssertionError("the fake data has no account with a number")


class StdioPeer:
    """The client side of a JSON-RPC conversation over a subprocess's stdin and stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []  # everything the server wrote on stdout
        self._next_id = 0

    async def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        await self.process.stdin.drain()

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        await self.send({"jsonrpc": "2.0", "method": method, **_params(params)})

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The response's ``result``; fails on an ``error`` response."""
        self._next_id += 1
        request_id = self._next_id
        await self.send({"jsonrpc": "2.0", "id": request_id, "method": method, **_params(params)})
        while True:
            message = await asyncio.wait_for(self._read(), TIMEOUT)
            if message.get("id") == request_id:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result

    async def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        assert line, "the server closed stdout"
        self.lines.append(line.decode())
        message: dict[str, Any] = json.loads(line)
        return message

    async def close(self) -> tuple[int, str]:
        """Close stdin, as a client does to stop the server: its exit status and stderr."""
        assert self.process.stdin is not None and self.process.stderr is not None
        self.process.stdin.close()
        status = await asyncio.wait_for(self.process.wait(), TIMEOUT)
        return status, (await self.process.stderr.read()).decode()


def _params(params: dict[str, Any] | None) -> dict[str, Any]:
    return {} if params is None else {"params": params}


@contextlib.asynccontextmanager
async def stdio_server(*args: str, env: dict[str, str]) -> AsyncIterator[StdioPeer]:
    process = await start_cli("mcp", *args, env=env, stdin=asyncio.subprocess.PIPE)
    try:
        yield StdioPeer(process)
    finally:
        await stop(process)


async def initialize(peer: StdioPeer) -> dict[str, Any]:
    result = await peer.request(
        "initialize",
        {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "test-client", "version": "0"},
        },
    )
    await peer.notify("notifications/initialized")
    return result


def oauth_env(fake: FakeLean) -> dict[str, str]:
    return clean_env(LEAN_CLIENT_ID=fake.client_id, LEAN_CLIENT_SECRET=fake.client_secret)


@pytest.mark.parametrize("credentials", ["app token", "client credentials"])
async def test_stdio_serves_the_tools_to_a_client_speaking_json_rpc(
    fake: FakeLean, credentials: str
) -> None:
    env = app_token_env(fake) if credentials == "app token" else oauth_env(fake)
    customer_id, source_id, account_number = customer_with_accounts(fake)
    target = ("--base-url", fake.url, "--auth-url", fake.token_url)
    async with stdio_server(*target, env=env) as peer:
        hello = await initialize(peer)
        listed = await peer.request("tools/list")
        app_user_id = next(c.app_user_id for c in fake.customers if c.customer_id == customer_id)
        found = await peer.request(
            "tools/call", {"name": "find_customer", "arguments": {"app_user_id": app_user_id}}
        )
        listing = await peer.request("tools/call", _call("list_payment_sources", customer_id))
        one = await peer.request("tools/call", _call("get_payment_source", customer_id, source_id))
        invalid = await peer.request("tools/call", _call("get_payment_source", "bad", source_id))
        status, stderr = await peer.close()

    assert hello["protocolVersion"] == PROTOCOL_VERSION
    assert hello["serverInfo"]["name"] == "lean-async"
    assert "tools" in hello["capabilities"]
    assert {tool["name"] for tool in listed["tools"]} == READ_ONLY_TOOLS
    assert found["structuredContent"] == {"customer_id": customer_id, "app_user_id": app_user_id}
    assert listing["isError"] is False
    assert listing["structuredContent"]["customer_id"] == customer_id
    assert source_id in {s["id"] for s in listing["structuredContent"]["payment_sources"]}
    assert one["isError"] is False
    assert one["structuredContent"]["id"] == source_id
    assert json.loads(one["content"][0]["text"]) == one["structuredContent"]
    assert invalid["isError"] is True
    assert invalid["content"][0]["text"].startswith("customer_id must be a UUID")
    everything = "".join(peer.lines) + stderr
    assert account_number not in everything
    assert account_number[-4:] in everything
    for secret in (fake.app_token, fake.client_secret):
        assert secret not in everything
    # Closing stdin ends the server cleanly, the client's session closed with it.
    assert status == 0, stderr
    assert "Unclosed" not in stderr
    assert "Traceback" not in stderr


async def test_stdio_allow_delete_and_reveal_account_numbers(fake: FakeLean) -> None:
    customer_id, source_id, account_number = customer_with_accounts(fake)
    flags = ("--base-url", fake.url, "--allow-delete", "--reveal-account-numbers")
    async with stdio_server(*flags, env=app_token_env(fake)) as peer:
        await initialize(peer)
        listed = await peer.request("tools/list")
        shown = await peer.request(
            "tools/call", _call("get_payment_source", customer_id, source_id)
        )
        deleted = await peer.request(
            "tools/call", _call("delete_payment_source", customer_id, source_id)
        )
        again = await peer.request(
            "tools/call", _call("delete_payment_source", customer_id, source_id)
        )
        status, stderr = await peer.close()

    tools = {tool["name"]: tool for tool in listed["tools"]}
    assert tools["delete_payment_source"]["annotations"]["destructiveHint"] is True
    assert tools["delete_payment_source"]["annotations"]["idempotentHint"] is True
    assert tools["get_payment_source"]["annotations"]["readOnlyHint"] is True
    assert account_number in json.dumps(shown["structuredContent"])
    assert deleted["isError"] is False
    assert deleted["structuredContent"]["deleted"] is True
    assert fake.data.find(customer_id, source_id) is None
    assert again["isError"] is True
    assert re.search(r"HTTP 404 \w+: .*\(request id [0-9a-f-]{36}\)", again["content"][0]["text"])
    assert status == 0, stderr


def _call(tool: str, customer_id: str, payment_source_id: str | None = None) -> dict[str, Any]:
    arguments = {"customer_id": customer_id}
    if payment_source_id is not None:
        arguments["payment_source_id"] = payment_source_id
    return {"name": tool, "arguments": arguments}


async def test_without_credentials_it_fails_before_serving(fake: FakeLean) -> None:
    ran = await run_cli("mcp", "--base-url", fake.url, env=clean_env())
    assert ran.status == 2
    assert "LEAN_APP_TOKEN" in ran.stderr
    assert ran.stdout == ""


@pytest.mark.parametrize("port", ["-1", "65536", "http"])
async def test_an_invalid_http_port_is_a_usage_error(port: str) -> None:
    ran = await run_cli("mcp", "--http", port, env=clean_env(LEAN_APP_TOKEN="x"))
    assert ran.status == 2
    assert "--http" in ran.stderr


async def test_http_on_a_port_in_use_fails_with_one_line(fake: FakeLean) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        ran = await run_cli("mcp", "--http", port, "--base-url", fake.url, env=app_token_env(fake))
    assert ran.status == 1
    assert f"cannot serve on 127.0.0.1:{port}" in ran.stderr
    assert "Traceback" not in ran.stderr


@pytest.mark.parametrize(
    ("mode", "stop_signal", "connected_at_stop"),
    [
        # The handshake client keeps an event stream open: the server must not wait on it.
        ("legacy", signal.SIGINT, True),
        ("legacy", signal.SIGTERM, False),
        ("auto", signal.SIGTERM, True),
        ("auto", signal.SIGINT, False),
    ],
)
async def test_http_serves_the_sdk_client_until_a_signal(
    fake: FakeLean, mode: str, stop_signal: signal.Signals, connected_at_stop: bool
) -> None:
    customer_id, source_id, _ = customer_with_accounts(fake)
    process = await start_cli("mcp", "--http", "0", "--base-url", fake.url, env=app_token_env(fake))
    try:
        assert process.stderr is not None
        announced = (await asyncio.wait_for(process.stderr.readline(), TIMEOUT)).decode()
        url = re.search(r"http://127\.0\.0\.1:\d+/mcp", announced)
        assert url, announced
        async with Client(url.group(), mode=mode, read_timeout_seconds=TIMEOUT) as client:
            tools = await client.list_tools()
            result = await client.call_tool(
                "get_payment_source", {"customer_id": customer_id, "payment_source_id": source_id}
            )
            if connected_at_stop:
                process.send_signal(stop_signal)
                status = await asyncio.wait_for(process.wait(), TIMEOUT)
        if not connected_at_stop:
            process.send_signal(stop_signal)
            status = await asyncio.wait_for(process.wait(), TIMEOUT)
        stderr = (await process.stderr.read()).decode()
    finally:
        await stop(process)
    assert {tool.name for tool in tools.tools} == READ_ONLY_TOOLS
    assert not result.is_error
    assert isinstance(result.structured_content, dict)
    assert result.structured_content["id"] == source_id
    assert status == 0, stderr
    assert "Unclosed" not in stderr
    assert "Traceback" not in stderr


async def test_without_the_mcp_extra_it_says_how_to_install_it() -> None:
    # The SDK made unimportable, as in an environment without the extra.
    code = (
        "import sys; sys.modules['mcp'] = None\n"
        "from lean_async.cli import main\n"
        "sys.exit(main(['mcp']))\n"
    )
    ran = await run_cli("-c", code, env=clean_env(LEAN_APP_TOKEN="x"), command=(sys.executable,))
    assert ran.status == 2
    assert "pip install 'lean-async[mcp]'" in ran.stderr
    assert "Traceback" not in ran.stderr


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Host": "lean.attacker.example"}, 421),  # DNS rebinding: a name resolved to here
        ({"Origin": "http://attacker.example"}, 403),  # a web page's request
    ],
)
async def test_http_refuses_requests_that_a_web_page_could_make(
    fake: FakeLean, headers: dict[str, str], status: int
) -> None:
    process = await start_cli("mcp", "--http", "0", "--base-url", fake.url, env=app_token_env(fake))
    try:
        assert process.stderr is not None
        announced = (await asyncio.wait_for(process.stderr.readline(), TIMEOUT)).decode()
        url = re.search(r"http://127\.0\.0\.1:\d+/mcp", announced)
        assert url, announced
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "page", "version": "0"},
            },
        }
        accept = {"Accept": "application/json, text/event-stream"}
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            async with http.post(url.group(), json=initialize, headers=accept) as plain:
                assert plain.status == 200
            async with http.post(
                url.group(), json=initialize, headers={**accept, **headers}
            ) as refused:
                assert refused.status == status
    finally:
        await stop(process)

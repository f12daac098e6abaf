"""The README's complete programs run as a user would run them: in a fresh interpreter,
pointed at a fake Lean server through the LEAN_* environment variables."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from lean_async import webhooks
from lean_async.testing import FakeLean

README = Path(__file__).resolve().parent.parent / "README.md"
QUICK_START_CUSTOMER = "6db94cb7-3a02-4a57-a03a-e2a92ce86406"


def programs() -> list[str]:
    """The README's Python blocks that are whole programs."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    return [block for block in blocks if "asyncio.run(" in block or "web.run_app(" in block]


def program(containing: str) -> str:
    matches = [code for code in programs() if containing in code]
    assert len(matches) == 1, f"expected one README program with {containing!r}"
    return matches[0]


@pytest.fixture
async def lean_env() -> AsyncIterator[tuple[FakeLean, dict[str, str]]]:
    async with FakeLean(customers=20, seed=3) as server:
        server.add_payment_source(QUICK_START_CUSTOMER, cool_off=False)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEAN_")}
        env.update(
            LEAN_BASE_URL=server.url,
            LEAN_AUTH_URL=server.token_url,
            LEAN_APP_TOKEN=server.app_token,
        )
        yield server, env


@contextlib.asynccontextmanager
async def started(
    code: str, env: dict[str, str], *args: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``code`` running in a fresh interpreter, killed on the way out if still running."""
    pipe = asyncio.subprocess.PIPE
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, *args, env=env, stdout=pipe, stderr=pipe
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def run(code: str, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    async with started(code, env, *args) as process:
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def test_the_readme_has_the_programs_these_tests_run() -> None:
    assert len(programs()) == 7


async def test_quick_start_lists_a_customers_sources(
    lean_env: tuple[FakeLean, dict[str, str]],
) -> None:
    _, env = lean_env
    code, out, err = await run(program("async def main() -> None:\n    # With no"), env)
    assert code == 0, err
    assert "1 active beneficiaries" in out


async def test_reconciliation_job_writes_a_line_per_customer(
    lean_env: tuple[FakeLean, dict[str, str]], tmp_path: Path
) -> None:
    server, env = lean_env
    ids = [*server.customer_ids, "not-a-uuid"]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(ids) + "\n")
    out_file = tmp_path / "out.jsonl"
    code, _, err = await run(program("async def reconcile("), env, str(ids_file), str(out_file))
    lines = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert sorted(line["customer_id"] for line in lines) == sorted(ids)
    assert code == 1  # the invalid id failed
    assert f"{len(ids)} customers ({len(ids) - 1} ok, 1 failed)" in err


async def test_onboarding_example_finds_or_creates_the_customer_and_its_destinations(
    lean_env: tuple[FakeLean, dict[str, str]],
) -> None:
    server, env = lean_env
    onboard = program("async def onboard(")
    [known] = [c for c in server.customers if c.customer_id == QUICK_START_CUSTOMER]
    assert known.app_user_id is not None
    code, out, err = await run(onboard, env, known.app_user_id)
    assert code == 0, err
    assert f"customer {QUICK_START_CUSTOMER} for {known.app_user_id}" in out
    assert "pays Fake Corp. - AED (AED): ACTIVE" in out
    code, out, err = await run(onboard, env, "a new user/ü")
    assert code == 0, err
    assert out.endswith(" for a new user/ü\n")
    assert [c.app_user_id for c in server.customers].count("a new user/ü") == 1


async def test_every_customer_reconciliation_writes_each_customer_once(
    lean_env: tuple[FakeLean, dict[str, str]], tmp_path: Path
) -> None:
    server, env = lean_env
    server.customer_page_cap = 7
    out_file = tmp_path / "out.jsonl"
    code, _, err = await run(program("async def reconcile_everyone("), env, str(out_file))
    assert code == 0, err
    lines = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert sorted(line["customer_id"] for line in lines) == sorted(server.customer_ids)
    assert {line["app_user"] for line in lines} == {c.app_user_id for c in server.customers}
    assert f"{len(server.customer_ids)} customers ({len(server.customer_ids)} ok" in err


async def test_fake_server_example_runs(lean_env: tuple[FakeLean, dict[str, str]]) -> None:
    _, env = lean_env
    code, out, err = await run(program("from lean_async.testing import FakeLean"), env)
    assert code == 0, err
    assert "requests served" in out


async def test_webhook_receiver_example_handles_a_signed_delivery(
    lean_env: tuple[FakeLean, dict[str, str]],
) -> None:
    _, env = lean_env
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = program("web.run_app(").replace("port=8080", f"host='127.0.0.1', port={port}")
    env = {**env, "LEAN_WEBHOOK_SECRET": "whsec-readme"}
    body = json.dumps(
        {
            "type": "payment_source.created",
            "event_id": "evt-1",
            "timestamp": "2026-05-13T10:50:10.476351058Z",
            "message": "created",
            "payload": {
                "id": "d8d7a9b3-c401-49f6-81a4-386d8398aa2c",
                "customer_id": QUICK_START_CUSTOMER,
                "status": "ACTIVE",
                "bank_identifier": "ENBD_UAE",
                "bank_name": "Emirates NBD",
            },
        }
    ).encode()
    signed = {webhooks.SIGNATURE_HEADER: webhooks.sign(body, "whsec-readme")}
    url = f"http://127.0.0.1:{port}/webhooks/lean"
    async with started(code, env) as process, aiohttp.ClientSession() as session:
        for _ in range(100):  # wait for the server to listen
            try:
                async with session.post(url, data=body, headers=signed) as response:
                    assert response.status == 200
                    break
            except aiohttp.ClientConnectorError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the receiver never listened")
        async with session.post(url, data=body, headers={"lean-signature": "sha512=00"}) as bad:
            assert bad.status == 401
        await asyncio.sleep(0.2)
        process.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert "linked an account at Emirates NBD" in out.decode()


async def test_mcp_embedding_example_lists_tools_and_masked_sources(
    lean_env: tuple[FakeLean, dict[str, str]],
) -> None:
    server, env = lean_env
    code, out, err = await run(program("from lean_async.mcp import create_server"), env)
    assert code == 0, err
    assert "['find_customer', 'list_payment_sources', 'get_payment_source']" in out
    ibans = [a.iban for s in server.data.payment_sources(QUICK_START_CUSTOMER) for a in s.accounts]
    assert ibans
    for iban in filter(None, ibans):
        assert iban not in out
        assert iban[-4:] in out


@pytest.mark.parametrize("mode", ["legacy", "auto"])  # the initialize handshake, or 2026's
async def test_claude_desktop_configuration_starts_a_working_server(
    lean_env: tuple[FakeLean, dict[str, str]], mode: str
) -> None:
    """What an MCP client does with the README's configuration: start the command with its
    arguments and environment, and speak MCP to it over stdio."""
    from mcp import Client, StdioServerParameters

    server, env = lean_env
    blocks = re.findall(r"```json\n(.*?)```", README.read_text(), flags=re.DOTALL)
    (config,) = [json.loads(block) for block in blocks if "mcpServers" in block]
    (entry,) = config["mcpServers"].values()
    assert set(entry["env"]) == {"LEAN_CLIENT_ID", "LEAN_CLIENT_SECRET"}
    params = StdioServerParameters(
        command=str(Path(sys.executable).parent / "lean-async"),
        args=entry["args"],
        env={
            "LEAN_CLIENT_ID": server.client_id,
            "LEAN_CLIENT_SECRET": server.client_secret,
            "LEAN_BASE_URL": env["LEAN_BASE_URL"],
            "LEAN_AUTH_URL": env["LEAN_AUTH_URL"],
        },
    )
    async with Client(params, mode=mode, read_timeout_seconds=30) as client:
        result = await client.call_tool(
            "list_payment_sources", {"customer_id": QUICK_START_CUSTOMER}
        )
    assert not result.is_error
    assert isinstance(result.structured_content, dict)
    assert len(result.structured_content["payment_sources"]) == 1

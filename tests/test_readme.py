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
import msgspec
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
    code: str, env: dict[str, str], *args: str, cwd: Path | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``code`` running in a fresh interpreter, killed on the way out if still running."""
    pipe = asyncio.subprocess.PIPE
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, *args, env=env, stdout=pipe, stderr=pipe, cwd=cwd
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def run(
    code: str, env: dict[str, str], *args: str, cwd: Path | None = None
) -> tuple[int, str, str]:
    async with started(code, env, *args, cwd=cwd) as process:
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def test_the_readme_has_the_programs_these_tests_run() -> None:
    assert len(programs()) == 5


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


async def test_fake_server_example_runs(lean_env: tuple[FakeLean, dict[str, str]]) -> None:
    _, env = lean_env
    code, out, err = await run(program("from lean_async.testing import FakeLean"), env)
    assert code == 0, err
    assert "requests served" in out


async def test_webhook_receiver_example_handles_a_signed_delivery(
    lean_env: tuple[FakeLean, dict[str, str]], tmp_path: Path
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
    async with started(code, env, cwd=tmp_path) as process, aiohttp.ClientSession() as session:
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
    assert (tmp_path / "lean-events.db").is_file()  # where the inbox kept it


async def test_backfill_example_replays_what_the_receiver_missed(
    lean_env: tuple[FakeLean, dict[str, str]], tmp_path: Path
) -> None:
    server, env = lean_env
    source = server.add_payment_source(server.customer_ids[1])
    server.activate_beneficiary(server.customer_ids[1], source.id)
    async with webhooks.SQLiteInbox(tmp_path / "lean-events.db") as inbox:
        # One event the receiver did get before its outage.
        assert await inbox.add(webhooks.decode_event(msgspec.json.encode(server.events[0])))
    code, out, err = await run(program("inbox.backfill("), env, cwd=tmp_path)
    assert code == 0, err
    created = [e for e in server.events if e["type"] == "payment_source.created"]
    assert len(out.splitlines()) == len(created) + 1
    assert f"{len(server.events) - 1} events the receiver had missed" in out

"""The README's complete programs run as a user would run them: in a fresh interpreter,
pointed at a fake Lean server through the LEAN_* environment variables."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import csv
import hashlib
import hmac
import io
import json
import os
import re
import shlex
import signal
import socket
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from _cli import CLI, clean_env, read_until, start_cli, stop

from lean_async import webhooks
from lean_async.testing import FakeLean, Faults

README = Path(__file__).resolve().parent.parent / "README.md"
QUICK_START_CUSTOMER = "6db94cb7-3a02-4a57-a03a-e2a92ce86406"
FRAGMENT = "# A fragment:"
FILE_NAME = re.compile(r"# ([\w-]+\.py)\n")


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def fragments() -> list[str]:
    """Blocks that say they are fragments: run inside an ``async def`` by these tests."""
    return [block for block in python_blocks() if block.startswith(FRAGMENT)]


def files() -> dict[str, str]:
    """Blocks that are files to save (``# conftest.py`` on their first line), by name."""
    named = (FILE_NAME.match(block) for block in python_blocks())
    return {match[1]: match.string for match in named if match is not None}


def programs() -> list[str]:
    """Every other block: a program that runs as written."""
    return [
        block
        for block in python_blocks()
        if not block.startswith(FRAGMENT) and not FILE_NAME.match(block)
    ]


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


# Each program is run by one test below, found by what only it contains.
PROGRAMS = (
    "async def main(customer_id: str)",
    "# Legacy app token",
    "async def reconcile(",
    "async def onboard(",
    "async def reconcile_everyone(",
    "from lean_async.testing import FakeLean",
    "web.run_app(",
    "inbox.backfill(",
    "from lean_async.mcp import create_server",
    "AioHttpClientInstrumentor().instrument()",
    "ClientConfig.build(environment=",
    "def on_retry(event: lean_async.RetryEvent)",
)


def test_every_python_block_is_run_by_these_tests() -> None:
    # (And the shell commands of the Command line section: see the last test.)
    assert sorted(program(marker) for marker in PROGRAMS) == sorted(programs())
    assert sorted(files()) == ["conftest.py", "test_payment_sources.py"]
    assert len(fragments()) == 4
    assert len(python_blocks()) == len(PROGRAMS) + 2 + 4


async def test_quick_start_prints_a_customers_sources(
    lean_env: tuple[FakeLean, dict[str, str]],
) -> None:
    _, env = lean_env
    code, out, err = await run(program(PROGRAMS[0]), env, QUICK_START_CUSTOMER)
    assert code == 0, err
    assert f"customer {QUICK_START_CUSTOMER}: 1 payment sources" in out
    assert "1 active beneficiaries" in out


async def test_quick_start_tried_against_lean_async_mock_as_the_readme_says(
    tmp_path: Path,
) -> None:
    # `lean-async mock --port ... --write-ids ids.txt`, then LEAN_BASE_URL and the app
    # token it printed, and the first id of ids.txt.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mock = await start_cli(
        "mock", "--port", str(port), "--write-ids", "ids.txt", env=clean_env(), cwd=tmp_path
    )
    try:
        printed = await read_until(mock, "Ctrl-C")
        [token] = [line.split(":")[1].strip() for line in printed if "app token:" in line]
        env = clean_env(LEAN_BASE_URL=f"http://127.0.0.1:{port}", LEAN_APP_TOKEN=token)
        first_id = (tmp_path / "ids.txt").read_text().splitlines()[0]
        code, out, err = await run(program(PROGRAMS[0]), env, first_id)
    finally:
        await stop(mock)
    assert code == 0, err
    assert re.match(rf"customer {first_id}: \d+ payment sources", out)


async def test_authentication_examples_construct_their_clients() -> None:
    code, _, err = await run(program(PROGRAMS[1]), clean_env())
    assert code == 0, err


@pytest.mark.parametrize("fragment", fragments())
async def test_fragments_run_inside_an_async_def(
    fragment: str, lean_env: tuple[FakeLean, dict[str, str]]
) -> None:
    server, _ = lean_env
    [source] = server.data.payment_sources(QUICK_START_CUSTOMER)
    code = (
        "import asyncio, os, lean_async\n\n"
        "async def fragment(lean, customer_id, source_id):\n"
        + textwrap.indent(fragment, "    ")
        + "\nasync def main():\n"
        "    async with lean_async.LeanClient() as lean:\n"
        "        await fragment(lean, os.environ['CUSTOMER_ID'], os.environ['SOURCE_ID'])\n\n"
        "asyncio.run(main())\n"
    )
    env = clean_env(
        LEAN_BASE_URL=server.url, LEAN_AUTH_URL=server.token_url,
        LEAN_CLIENT_ID=server.client_id, LEAN_CLIENT_SECRET=server.client_secret,
        CUSTOMER_ID=QUICK_START_CUSTOMER, SOURCE_ID=source.id,
    )  # fmt: skip
    returncode, _, err = await run(code, env)
    assert returncode == 0, err


async def test_the_pytest_plugin_example_passes_as_written(tmp_path: Path) -> None:
    for name, text in files().items():
        (tmp_path / name).write_text(text)
    # No pytest configuration: pytest-asyncio in its default (strict) mode.
    env = clean_env()
    env.pop("PYTEST_ADDOPTS", None)
    pipe = asyncio.subprocess.PIPE
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
        str(tmp_path), cwd=tmp_path, env=env, stdout=pipe, stderr=pipe,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, out.decode() + err.decode()
    assert "1 passed" in out.decode()


def test_the_ports_the_readme_suggests_do_not_clash() -> None:
    text = README.read_text()
    # The fake Lean server's ports (the webhook receiver's own commands share its port).
    servers = set(re.findall(r"(?:lean-async mock|lean_async\.testing)[^\n`]*--port (\d+)", text))
    receiver = set(re.findall(r"port=(\d+)", program("web.run_app(")))
    assert servers and receiver
    assert not servers & receiver


def test_a_signature_made_from_the_readmes_description_is_accepted() -> None:
    [header_format] = re.findall(r"`lean-signature: (\w+)=<hex digest>`", README.read_text())
    body, secret = b'{"type": "payment_source.created"}', "whsec-readme"
    digest = hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()
    webhooks.verify_signature(body, f"{header_format}={digest}", secret)


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


async def test_observability_example_counts_attempts_retries_and_latency(
    lean_env: tuple[FakeLean, dict[str, str]],
) -> None:
    server, env = lean_env
    server.faults = Faults(error_rate=0.3, error_statuses=(503,), seed=5)
    ids = list(server.customer_ids)
    code, out, err = await run(program(PROGRAMS[-1]), env, *ids)
    assert code == 0, err
    counts = dict(re.findall(r"^([a-z ]+): (.*)$", out, flags=re.MULTILINE))
    statuses = ast.literal_eval(counts["attempts by status"])
    retries = ast.literal_eval(counts["retries by cause"])
    latency = ast.literal_eval(counts["latency"])
    assert set(statuses) == {200, 503}
    assert statuses == dict(server.stats.by_status)
    # Every attempt of a customer but its first follows a retry.
    assert retries == {"HTTP 503": server.stats.requests - len(ids)}
    assert sum(latency.values()) == server.stats.requests
    assert f"{len(ids)} customers, " in out


async def test_fake_server_example_runs(lean_env: tuple[FakeLean, dict[str, str]]) -> None:
    _, env = lean_env
    code, out, err = await run(program("from lean_async.testing import FakeLean"), env)
    assert code == 0, err
    assert "requests served" in out


async def test_config_example_prints_the_resolved_configuration_without_a_secret(
    lean_env: tuple[FakeLean, dict[str, str]],
) -> None:
    server, env = lean_env
    code, out, err = await run(program("ClientConfig.build(environment="), env)
    assert code == 0, err
    assert out.startswith(f"calling {server.url} with app_token RetryPolicy(max_retries=4,")
    assert out.endswith("[30.0, 120]\n")
    assert server.app_token not in out


async def test_config_example_fails_at_start_up_on_a_wrong_configuration(
    lean_env: tuple[FakeLean, dict[str, str]],
) -> None:
    _, env = lean_env
    env = {**env, "LEAN_BASE_URL": "http://lean.example"}
    code, out, err = await run(program("ClientConfig.build(environment="), env)
    assert code == 1 and out == ""
    assert "ConfigurationError: base_url 'http://lean.example' is plain http" in err


def _console_spans(text: str) -> list[dict[str, Any]]:
    """The spans ConsoleSpanExporter printed: JSON objects one after another."""
    decoder, spans, at = json.JSONDecoder(), [], 0
    while text[at:].strip():
        span, at = decoder.raw_decode(text, len(text) - len(text[at:].lstrip()))
        spans.append(span)
    return spans


@pytest.mark.parametrize("oauth", [False, True], ids=["app token", "oauth"])
@pytest.mark.parametrize("capture", [None, ".*"], ids=["default", "every request header"])
async def test_tracing_example_exports_a_span_per_request_and_no_credential(
    lean_env: tuple[FakeLean, dict[str, str]], oauth: bool, capture: str | None
) -> None:
    server, env = lean_env
    env = {name: value for name, value in env.items() if not name.startswith("OTEL_")}
    if oauth:
        del env["LEAN_APP_TOKEN"]
        env.update(LEAN_CLIENT_ID=server.client_id, LEAN_CLIENT_SECRET=server.client_secret)
    if capture:
        env["OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST"] = capture
    code, out, err = await run(program("AioHttpClientInstrumentor().instrument()"), env)
    assert code == 0, err
    spans = _console_spans(out)
    http = [span for span in spans if span["kind"] == "SpanKind.CLIENT"]
    [parent] = [span for span in spans if span["name"] == "reconcile first customers"]
    # One page of customers, two customers' sources (and the token first, with OAuth2).
    assert [span["name"] for span in http] == ["POST"] * oauth + ["GET"] * 3
    assert {span["parent_id"] for span in http} == {parent["context"]["span_id"]}
    assert server.stats.requests == len(http)
    for secret in (server.app_token, server.client_secret, "Bearer ", "eyJ"):
        assert secret not in out
    credential_header = "authorization" if oauth else "lean_app_token"
    recorded = {
        str(span["attributes"].get(f"http.request.header.{credential_header}"))
        for span in http
        if span["name"] == "GET"
    }
    assert recorded == ({"['[REDACTED]']"} if capture else {"None"})


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


def _command_line_examples() -> list[str]:
    """The commands of the README's "Against Lean" block, without their comments."""
    text = README.read_text()
    block = re.search(r"Against Lean.*?```sh\n(.*?)```", text, flags=re.DOTALL)
    assert block is not None
    return [line.split("  #")[0].strip() for line in block[1].splitlines()]


async def test_the_command_line_examples_run_as_printed_against_the_mock_they_suggest(
    tmp_path: Path,
) -> None:
    commands = _command_line_examples()
    [mock_line] = [line for line in commands if line.startswith("lean-async mock")]
    [export] = [line for line in commands if line.startswith("export ")]
    assert export.startswith("export LEAN_APP_TOKEN=")
    cli = shlex.join(CLI)
    mock = await start_cli(*shlex.split(mock_line)[1:], env=clean_env(), cwd=tmp_path)
    try:
        printed = await read_until(mock, "Ctrl-C")
        [url] = [line.rsplit(" ", 1)[1] for line in printed if "listening on" in line]
        [token] = [line.split(":")[1].strip() for line in printed if "app token:" in line]
        server_ids = (tmp_path / "ids.txt").read_text().splitlines()
        # A customer with a payment source, for list, get and delete.
        env = clean_env(LEAN_APP_TOKEN=token, LEAN_BASE_URL=url)
        listed = await run(
            "import sys; from lean_async.cli import main; sys.exit(main())",
            env, "sweep", str(tmp_path / "ids.txt"), "--format", "csv",
        )  # fmt: skip
        row = next(r for r in csv.DictReader(io.StringIO(listed[1])) if r["payment_source_id"])
        destinations = await run(
            "import sys; from lean_async.cli import main; sys.exit(main())",
            env, "destinations", "list",
        )  # fmt: skip
        destination_id = json.loads(destinations[1])[0]["id"]
        for number, line in enumerate(commands):
            if line.startswith(("export ", "lean-async mock")):
                continue
            where = tmp_path / f"run-{number}"
            where.mkdir()
            (where / "ids.txt").write_text("\n".join(server_ids[:50]) + "\n")
            (where / "customer-ids.txt").write_text(
                "# from the mock\n" + "\n".join(server_ids[:50])
            )
            (where / "export.csv").write_text(
                "name,customer_id\n" + "".join(f"n{i},{c}\n" for i, c in enumerate(server_ids[:50]))
            )
            command = (
                line.replace("lean-async", cli)
                .replace("PAYMENT_SOURCE_ID", row["payment_source_id"])
                .replace("CUSTOMER_ID", row["customer_id"])
                .replace("DESTINATION_ID", destination_id)
            )
            shell = await asyncio.create_subprocess_shell(
                command, cwd=where, env=env, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            _, err = await asyncio.wait_for(shell.communicate(), 60)
            assert shell.returncode == 0, (line, err.decode())
    finally:
        await stop(mock)

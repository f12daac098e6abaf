"""``lean-async mock``: a fake Lean server from the shell, until a signal stops it."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import sys
from pathlib import Path

import pytest
from _cli import CLI, clean_env, read_until, run_cli, start_cli, stop

from lean_async import LeanClient
from lean_async.cli import build_parser
from lean_async.testing._mock_flags import add_server_arguments

pytestmark = pytest.mark.timeout(30)


def _field(lines: list[str], name: str) -> str:
    return next(line.split(": ", 1)[1].strip() for line in lines if line.strip().startswith(name))


async def _stop_with(proc: asyncio.subprocess.Process, signum: int) -> tuple[int, str]:
    proc.send_signal(signum)
    _, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_mock_prints_working_url_and_credentials_and_exits_0_on_sigint() -> None:
    proc = await start_cli("mock", "--customers", "3", "--seed", "4", env=clean_env())
    try:
        lines = await read_until(proc, "Ctrl-C stops the server")
        url = lines[0].rsplit(" ", 1)[1]
        assert lines[0] == f"Fake Lean API listening on {url}"
        assert any(
            line.strip().startswith("LEAN_APP_TOKEN=") and " -m lean_async list " in line
            for line in lines
        )
        async with LeanClient(
            base_url=url,
            auth_url=_field(lines, "token URL"),
            client_id=_field(lines, "client id"),
            client_secret=_field(lines, "client secret"),
            environ={},
        ) as client:
            listing = next(line for line in lines if " list " in line)
            customer = listing.split(" list ")[1].split()[0]
            assert isinstance(await client.payment_sources.list(customer), list)
        status, err = await _stop_with(proc, signal.SIGINT)
    finally:
        await stop(proc)
    assert status == 0
    assert "Traceback" not in err


async def test_mock_on_every_address_prints_commands_that_work_as_printed() -> None:
    proc = await start_cli("mock", "--host", "0.0.0.0", "--customers", "3", env=clean_env())
    try:
        lines = await read_until(proc, "Ctrl-C stops the server")
        url = lines[0].rsplit(" ", 1)[1]
        assert url.startswith("http://127.0.0.1:"), lines[0]
        assert _field(lines, "address") == "0.0.0.0 (every address of this machine)"
        hints = [line.strip() for line in lines if line.strip().startswith("LEAN_")]
        assert len(hints) == 4
        for hint in hints[:2]:  # list, customers list: each as printed, in a shell
            shell = await asyncio.create_subprocess_shell(
                hint,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=clean_env(),
            )
            out, err = await asyncio.wait_for(shell.communicate(), 20)
            assert shell.returncode == 0, (hint, err.decode())
            assert out.strip(), hint
    finally:
        await stop(proc)


async def test_mock_json_gives_one_line_writes_the_ids_and_exits_0_on_sigterm(
    tmp_path: Path,
) -> None:
    ids = tmp_path / "ids.txt"
    proc = await start_cli(
        "mock", "--customers", "4", "--json", "--write-ids", str(ids), env=clean_env()
    )
    try:
        assert proc.stdout is not None
        info = json.loads(await asyncio.wait_for(proc.stdout.readline(), 10))
        assert info["url"].startswith("http://127.0.0.1:")
        assert {"token_url", "app_token", "client_id", "client_secret"} <= info.keys()
        assert len(ids.read_text().split()) == 4
        async with LeanClient(
            base_url=info["url"], app_token=info["app_token"], environ={}
        ) as client:
            sources = await client.payment_sources.list(ids.read_text().split()[0])
            assert isinstance(sources, list)
        status, err = await _stop_with(proc, signal.SIGTERM)
    finally:
        await stop(proc)
    assert status == 0
    assert err == ""


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--webhook-url", "http://127.0.0.1:9/hooks"], "--webhook-secret"),
        (["--data", "/nonexistent/lean-data.json"], "cannot read --data"),
        (["--customers", "-5"], "whole number >= 0"),
        (["--rate-limit", "0"], "--rate-limit must be > 0"),
        (["--error-rate", "0.8", "--drop-rate", "0.5"], "--error-rate, --drop-rate"),
        (["--slow-body-chunk", "0"], "--slow-body-chunk must be >= 1"),
        (["--html-error-share", "2"], "--html-error-share must be"),
    ],
    ids=[
        "webhook url without secret",
        "missing data file",
        "negative customers",
        "no rate",
        "shares over 1",
        "empty chunks",
        "share over 1",
    ],
)
async def test_mock_refuses_bad_flags_in_one_sentence_naming_flags(
    flags: list[str], says: str
) -> None:
    ran = await run_cli("mock", *flags, env=clean_env(), timeout=20)
    assert ran.status == 2
    [error] = [line for line in ran.stderr.splitlines() if "error: " in line]
    assert says in error
    assert "Traceback" not in ran.stderr
    assert "_rate" not in ran.stderr and "rate_limit" not in ran.stderr


async def test_mock_refuses_a_data_file_that_is_not_a_data_set(tmp_path: Path) -> None:
    data = tmp_path / "data.json"
    data.write_text('{"customers": 5}')
    ran = await run_cli("mock", "--data", str(data), env=clean_env(), timeout=20)
    assert ran.status == 2
    assert "is not a saved data set" in ran.stderr
    assert "Traceback" not in ran.stderr


def _options_without_help(parser: argparse.ArgumentParser) -> list[str]:
    return [
        action.option_strings[0]
        for action in parser._actions
        if action.option_strings and not action.help and action.dest != "help"
    ]


def test_every_option_of_mock_and_of_the_testing_module_has_help() -> None:
    mock = argparse.ArgumentParser()
    add_server_arguments(mock)
    assert _options_without_help(mock) == []
    [commands] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert _options_without_help(commands.choices["mock"]) == []


@pytest.mark.parametrize("command", [(*CLI, "mock"), (sys.executable, "-m", "lean_async.testing")])
async def test_a_busy_port_is_one_line_and_exit_1(command: tuple[str, ...]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ran = await run_cli("--port", str(port), env=clean_env(), command=command)
    assert ran.status == 1
    assert ran.stderr.count("\n") == 1, ran.stderr
    assert f"error: cannot serve on 127.0.0.1:{port}: " in ran.stderr
    assert "Traceback" not in ran.stderr

"""``lean-async demo``: the README's first command works with no setup at all."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from _cli import clean_env, read_lines, read_until, run_cli, stop

pytestmark = pytest.mark.timeout(60)


async def test_demo_sweeps_a_fake_server_and_accounts_for_every_customer(tmp_path: Path) -> None:
    ran = await run_cli("demo", env=clean_env(), cwd=tmp_path, timeout=50)
    assert ran.status == 0, ran.stderr
    lines = read_lines((tmp_path / "demo-output.jsonl").read_bytes())
    assert len(lines) == 3003
    failed = {line.customer_id: line.error for line in lines if not line.ok}
    assert {"not-a-customer-id", "12345"} <= failed.keys()
    assert "Every one of the 3,003 customers is accounted for in demo-output.jsonl" in ran.stdout
    assert "3003 customers (" in ran.stderr
    # The planted failures; with 3% server errors a customer may also, rarely, fail on its
    # third 5xx in a row, which the summary then shows too.
    [failures] = [line for line in ran.stderr.splitlines() if line.startswith("failed: ")]
    assert "2 InvalidIdError" in failures and "1 CUSTOMER_NOT_FOUND" in failures
    assert "retried: " in ran.stderr


async def test_demo_writes_csv_to_the_output_asked_for(tmp_path: Path) -> None:
    out = tmp_path / "demo.csv"
    ran = await run_cli("demo", "--customers", "50", "-o", str(out), env=clean_env())
    assert ran.status == 0, ran.stderr
    assert out.read_text().startswith("customer_id,ok,source_count,")


def _hint(text: str, label: str) -> str:
    [line] = [line for line in text.splitlines() if line.startswith(label)]
    return line.removeprefix(label).split("   (")[0].strip()


async def _shell(command: str, cwd: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    pipe = asyncio.subprocess.PIPE
    return await asyncio.create_subprocess_shell(
        command, cwd=cwd, env=env, stdout=pipe, stderr=pipe, stdin=asyncio.subprocess.DEVNULL
    )


async def test_the_demos_hints_run_as_printed_where_lean_async_is_not_on_path(
    tmp_path: Path,
) -> None:
    # A console script outside PATH, as .venv/bin/lean-async is after `make demo`.
    script = tmp_path / "bin" / "lean-async"
    script.parent.mkdir()
    shutil.copy(Path(sys.executable).parent / "lean-async", script)
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != venv_bin
    )
    env = clean_env(PATH=path)
    ran = await run_cli("demo", "--customers", "20", env=env, cwd=tmp_path, command=[str(script)])
    assert ran.status == 0, ran.stderr
    assert "LEAN_APP_TOKEN=... bin/lean-async sweep" in ran.stdout
    # exec: the server replaces the shell, so that stopping it stops the server.
    mock = await _shell("exec " + _hint(ran.stdout, "Try the CLI:"), tmp_path, env)
    try:
        announced = await read_until(mock, "Ctrl-C")
        tries = [line.strip() for line in announced if " list " in line or " sweep " in line]
        assert len(tries) == 4  # list, customers list, sweep, list with OAuth
        for printed in tries:
            assert "bin/lean-async" in printed
            tried = await _shell(printed, tmp_path, env)
            _, err = await asyncio.wait_for(tried.communicate(), 20)
            assert tried.returncode == 0, (printed, err.decode())
    finally:
        await stop(mock)
    assert (tmp_path / "sources.jsonl").stat().st_size > 0


async def test_the_demo_prints_one_elapsed_time(tmp_path: Path) -> None:
    ran = await run_cli("demo", "--customers", "200", env=clean_env(), cwd=tmp_path)
    assert ran.status == 0, ran.stderr
    times = set(re.findall(r"in (\d+\.\d) s", ran.stdout + ran.stderr))
    assert len(times) == 1, ran.stdout + ran.stderr

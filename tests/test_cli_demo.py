"""``lean-async demo``: the README's first command works with no setup at all."""

from __future__ import annotations

from pathlib import Path

import pytest
from _cli import clean_env, read_lines, run_cli

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

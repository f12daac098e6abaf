"""``lean-async sweep ... | head``: the reader of stdout going away is a status of its own."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from _cli import CLI, app_token_env, write_ids

from lean_async.testing import FakeLean

pytestmark = pytest.mark.timeout(60)


async def test_a_reader_gone_from_stdout_exits_141_not_the_failure_status_1(
    tmp_path: Path,
) -> None:
    async with FakeLean(customers=400, seed=3) as server:
        ids = write_ids(tmp_path / "ids.txt", server.customer_ids)
        read_end, write_end = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                *CLI, "sweep", str(ids), "--base-url", server.url,
                stdout=write_end, stderr=asyncio.subprocess.PIPE, env=app_token_env(server),
            )  # fmt: skip
        finally:
            os.close(write_end)
        # Like `| head -c 100`: read a little, then go away while the sweep still writes
        # (400 customers' lines are far more than a pipe holds).
        first = await asyncio.to_thread(os.read, read_end, 100)
        os.close(read_end)
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert first
    assert proc.returncode == 141, stderr
    assert b"Traceback" not in stderr
    assert b"BrokenPipeError" not in stderr

"""``lean-async sweep --resume``: a run that was killed continues without losing or
duplicating a customer."""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import os
import resource
import signal
from collections import Counter
from pathlib import Path

import pytest
from _cli import (
    CLI,
    app_token_env,
    clean_env,
    kill_after_lines,
    read_lines,
    run_cli,
    start_cli,
    stop,
    wait_for_lines,
    write_ids,
)

from lean_async.testing import FakeLean, Faults

pytestmark = pytest.mark.timeout(60)


def _counts(out: Path) -> Counter[str]:
    return Counter(line.customer_id for line in read_lines(out.read_bytes()))


async def test_a_sweep_killed_partway_resumes_with_every_customer_exactly_once(
    tmp_path: Path,
) -> None:
    async with FakeLean(customers=3000, seed=11, faults=Faults(latency=(0.005, 0.02))) as server:
        ids = write_ids(tmp_path / "ids.txt", server.customer_ids)
        out = tmp_path / "out.jsonl"
        args = ("sweep", str(ids), "-o", str(out), "--concurrency", "8", "--base-url", server.url)
        written_before = await kill_after_lines(
            *args, env=app_token_env(server), output=out, lines=300
        )
        assert 300 <= written_before < 3000, "the kill came too late to test anything"

        server.faults = Faults()  # the rest may go fast
        ran = await run_cli(*args, "--resume", env=app_token_env(server))

    assert ran.status == 0, ran.stderr
    assert "resuming" in ran.stderr
    counts = _counts(out)  # fails on a corrupt line
    assert set(counts) == set(server.customer_ids)
    assert set(counts.values()) == {1}


@pytest.mark.parametrize("second", [(), ("--resume",), ("--overwrite",)], ids=str)
async def test_a_second_sweep_into_the_file_a_running_sweep_writes_is_refused(
    tmp_path: Path, second: tuple[str, ...]
) -> None:
    """Two runs appending to one file (a --resume while the first still runs, in another
    terminal or an overlapping cron job) would interleave lines and sweep customers twice."""
    async with FakeLean(customers=600, seed=12, faults=Faults(latency=0.02)) as server:
        ids = write_ids(tmp_path / "ids.txt", server.customer_ids)
        out = tmp_path / "out.jsonl"
        args = ("sweep", str(ids), "-o", str(out), "--concurrency", "4", "--base-url", server.url)
        first = await start_cli(*args, env=app_token_env(server))
        try:
            await wait_for_lines(out, 20)
            refused = await run_cli(*args, *second, env=app_token_env(server))
            _, first_err = await asyncio.wait_for(first.communicate(), 50)
        finally:
            await stop(first)

    assert refused.status == 2, refused.stderr
    assert "another" in refused.stderr and "Traceback" not in refused.stderr
    assert first.returncode == 0, first_err.decode()
    counts = _counts(out)  # fails on an interleaved line
    assert set(counts) == set(server.customer_ids)
    assert set(counts.values()) == {1}


async def test_resume_drops_a_half_written_last_line_and_redoes_that_customer(
    tmp_path: Path,
) -> None:
    async with FakeLean(customers=30, seed=3) as server:
        ids = write_ids(tmp_path / "ids.txt", server.customer_ids)
        out = tmp_path / "out.jsonl"
        args = ("sweep", str(ids), "-o", str(out), "--base-url", server.url)
        first = await run_cli(*args, env=app_token_env(server))
        assert first.status == 0, first.stderr
        lines = out.read_bytes().splitlines(keepends=True)
        out.write_bytes(b"".join(lines[:10]) + lines[10][: len(lines[10]) // 2])

        ran = await run_cli(*args, "--resume", env=app_token_env(server))

    assert ran.status == 0, ran.stderr
    assert "resuming" in ran.stderr and "half-written" in ran.stderr
    counts = _counts(out)
    assert set(counts) == set(server.customer_ids)
    assert set(counts.values()) == {1}
    assert out.read_bytes().startswith(b"".join(lines[:10]))


async def test_resume_rewrites_a_customer_whose_csv_rows_were_cut_short(tmp_path: Path) -> None:
    async with FakeLean(customers=30, seed=3) as server:
        ids = write_ids(tmp_path / "ids.txt", server.customer_ids)
        out = tmp_path / "out.csv"
        args = ("sweep", str(ids), "-o", str(out), "--base-url", server.url)
        first = await run_cli(*args, env=app_token_env(server))
        assert first.status == 0, first.stderr
        lines = out.read_bytes().splitlines(keepends=True)
        # Cut the file after the first row of a customer with several: complete lines,
        # but not all of that customer's rows.
        cut = next(
            n for n, line in enumerate(lines[1:], start=1) if int(line.split(b",")[2] or 0) > 1
        )
        cut_customer = lines[cut].split(b",")[0].decode()
        out.write_bytes(b"".join(lines[: cut + 1]))

        ran = await run_cli(*args, "--resume", env=app_token_env(server))

    assert ran.status == 0, ran.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    per_customer = Counter(row["customer_id"] for row in rows)
    assert set(per_customer) == set(server.customer_ids)
    for customer, count in per_customer.items():
        assert count == max(1, len(server.data.payment_sources(customer)))
    assert per_customer[cut_customer] == len(server.data.payment_sources(cut_customer))


async def test_resume_of_a_missing_file_starts_afresh(tmp_path: Path) -> None:
    async with FakeLean(customers=5, seed=3) as server:
        ids = write_ids(tmp_path / "ids.txt", server.customer_ids)
        out = tmp_path / "out.jsonl"
        ran = await run_cli(
            "sweep", str(ids), "-o", str(out), "--resume", "--base-url", server.url,
            env=app_token_env(server),
        )  # fmt: skip
    assert ran.status == 0, ran.stderr
    assert set(_counts(out)) == set(server.customer_ids)


async def test_resume_of_a_finished_run_with_failures_adds_nothing_and_exits_1(
    tmp_path: Path,
) -> None:
    async with FakeLean(customers=5, seed=3) as server:
        ids = write_ids(tmp_path / "ids.txt", [*server.customer_ids, "not-a-uuid"])
        out = tmp_path / "out.jsonl"
        args = ("sweep", str(ids), "-o", str(out), "--base-url", server.url)
        first = await run_cli(*args, env=app_token_env(server))
        before = out.read_bytes()
        again = await run_cli(*args, "--resume", env=app_token_env(server))
    assert (first.status, again.status) == (1, 1)
    assert out.read_bytes() == before
    assert "skipped: 6 customers already in" in again.stderr
    assert "(1 of them failed)" in again.stderr


async def test_resume_refuses_a_file_that_is_not_sweep_output(tmp_path: Path) -> None:
    async with FakeLean(customers=5, seed=3) as server:
        ids = write_ids(tmp_path / "ids.txt", server.customer_ids)
        out = tmp_path / "notes.jsonl"
        out.write_text("shopping list\nmilk\n")
        ran = await run_cli(
            "sweep", str(ids), "-o", str(out), "--resume", "--base-url", server.url,
            env=app_token_env(server),
        )  # fmt: skip
    assert ran.status == 2
    assert "line 1: not a jsonl record of sweep" in ran.stderr
    assert out.read_text() == "shopping list\nmilk\n"


async def test_resume_needs_an_output_file(tmp_path: Path) -> None:
    ids = write_ids(tmp_path / "ids.txt", [])
    ran = await run_cli(
        "sweep", str(ids), "--resume", "--base-url", "http://127.0.0.1:9",
        env=clean_env(LEAN_APP_TOKEN="unused"),
    )  # fmt: skip
    assert ran.status == 2
    assert "--resume needs an output file" in ran.stderr


async def test_csv_piped_to_stdout_has_the_header_and_resumes(tmp_path: Path) -> None:
    async with FakeLean(customers=6, seed=4) as server:
        ids = server.customer_ids
        first = await run_cli(
            "sweep", "--format", "csv", "--base-url", server.url,
            env=app_token_env(server), stdin="".join(f"{i}\n" for i in ids[:3]).encode(),
        )  # fmt: skip
        assert first.status == 0, first.stderr
        assert first.stdout.splitlines()[0].startswith("customer_id,ok,source_count,")
        out = tmp_path / "s.csv"
        out.write_text(first.stdout)  # what `> s.csv` leaves
        ids_file = write_ids(tmp_path / "ids.txt", ids)
        ran = await run_cli(
            "sweep", str(ids_file), "-o", str(out), "--resume", "--base-url", server.url,
            env=app_token_env(server),
        )  # fmt: skip
    assert ran.status == 0, ran.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {row["customer_id"] for row in rows} == set(ids)


def _file_size_limit(limit: int) -> None:
    """In the child: writes past ``limit`` bytes fail (EFBIG), as on a disk that is full."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


async def test_a_full_disk_is_one_line_exit_3_a_summary_that_matches_the_file_and_resumes(
    tmp_path: Path,
) -> None:
    async with FakeLean(customers=60, seed=8) as server:
        ids = write_ids(tmp_path / "ids.txt", server.customer_ids)
        out = tmp_path / "out.jsonl"
        args = ("sweep", str(ids), "-o", str(out), "--base-url", server.url)
        proc = await asyncio.create_subprocess_exec(
            *CLI, *args, env=app_token_env(server), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            preexec_fn=functools.partial(_file_size_limit, 20_000),
        )  # fmt: skip
        try:
            _, err = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            await stop(proc)
        stderr = err.decode()
        assert proc.returncode == 3, stderr
        assert "Traceback" not in stderr
        data = out.read_bytes()
        assert data.endswith(b"\n"), "a partial record was left"
        held = len(read_lines(data))
        assert 0 < held < 60
        [error] = [line for line in stderr.splitlines() if "error" in line]
        assert error.startswith(f"lean-async: error: cannot write {out}: File too large;")
        assert f"holds the {held} customers" in error and "--resume" in error
        assert f"{held} customers (" in stderr.splitlines()[0]

        ran = await run_cli(*args, "--resume", env=app_token_env(server))
    assert ran.status == 0, ran.stderr
    counts = _counts(out)
    assert set(counts) == set(server.customer_ids)
    assert set(counts.values()) == {1}


async def test_a_full_disk_on_stdout_is_one_line_and_exit_3(tmp_path: Path) -> None:
    async with FakeLean(customers=5, seed=8) as server:
        ids = write_ids(tmp_path / "ids.txt", server.customer_ids)
        full = os.open("/dev/full", os.O_WRONLY)
        try:
            proc = await asyncio.create_subprocess_exec(
                *CLI, "sweep", str(ids), "--base-url", server.url, env=app_token_env(server),
                stdin=asyncio.subprocess.DEVNULL, stdout=full, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
        finally:
            os.close(full)
        try:
            _, err = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            await stop(proc)
    stderr = err.decode()
    assert proc.returncode == 3, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert stderr.splitlines()[0].startswith("0 customers (")
    assert "lean-async: error: cannot write to stdout: No space left on device" in stderr


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("blank", ["\n", "\r\n", "  \n\n"])
async def test_blank_lines_in_an_output_file_are_no_records_and_resume_continues(
    tmp_path: Path, fmt: str, blank: str
) -> None:
    async with FakeLean(customers=6, seed=4) as server:
        ids = server.customer_ids
        out = tmp_path / f"out.{fmt}"
        first = await run_cli(
            "sweep", str(write_ids(tmp_path / "first.txt", ids[:3])), "-o", str(out),
            "--base-url", server.url, env=app_token_env(server),
        )  # fmt: skip
        assert first.status == 0, first.stderr
        out.write_bytes(out.read_bytes() + blank.encode())
        ran = await run_cli(
            "sweep", str(write_ids(tmp_path / "ids.txt", ids)), "-o", str(out), "--resume",
            "--base-url", server.url, env=app_token_env(server),
        )  # fmt: skip
    assert ran.status == 0, ran.stderr
    assert "resuming" in ran.stderr and "dropped" not in ran.stderr
    assert "3 customers (3 ok" in ran.stderr
    text = "".join(line for line in out.read_text().splitlines(True) if line.strip())
    if fmt == "jsonl":
        assert Counter(line.customer_id for line in read_lines(text)) == Counter(ids)
    else:
        assert {row["customer_id"] for row in csv.DictReader(io.StringIO(text))} == set(ids)

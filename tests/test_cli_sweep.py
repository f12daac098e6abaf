"""``lean-async sweep`` run as a user runs it: a subprocess against a fake Lean server."""

from __future__ import annotations

import asyncio
import csv
import fcntl
import io
import json
import logging
import os
import pty
import re
import select
import signal
import socket
import struct
import sys
import termios
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _cli import (
    CLI,
    app_token_env,
    clean_env,
    read_lines,
    run_cli,
    run_cli_on_terminal,
    screen,
    start_cli,
    stop,
    wait_for_lines,
    write_ids,
)

from lean_async import RetryEvent, RetryPolicy, ServerError, SweepProgress, decode_payment_sources
from lean_async._cli.formats import JSONL
from lean_async._cli.output import open_output
from lean_async._cli.report import ProgressBar, RetryTally, postfix
from lean_async._cli.sweep import sweep_into
from lean_async.testing import FakeLean, Faults

pytestmark = pytest.mark.timeout(60)

CSV_HEADER = (
    "customer_id,ok,source_count,payment_source_id,bank_identifier,status,currency,"
    "account_iban_last4,account_count,beneficiary_count,active_beneficiary_count,created_at,"
    "error_type,error_status_code,error_code,error_message,error_request_id,error_trace_id"
)
BAR = "customers/s"  # in tqdm's bar, never in the summary
NO_TQDM = (
    sys.executable,
    "-c",
    "import sys; sys.modules['tqdm'] = None; from lean_async.cli import main; sys.exit(main())",
)


def unused_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def server() -> AsyncIterator[FakeLean]:
    async with FakeLean(customers=30, seed=7, unknown_customer_404=True) as fake:
        yield fake


@pytest.fixture
def ids_file(server: FakeLean, tmp_path: Path) -> Path:
    return write_ids(tmp_path / "ids.txt", server.customer_ids)


async def test_jsonl_output_has_one_line_per_customer_with_the_servers_sources(
    server: FakeLean, ids_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    ran = await run_cli(
        "sweep", str(ids_file), "-o", str(out), "--base-url", server.url, env=app_token_env(server)
    )
    assert ran.status == 0, ran.stderr
    lines = read_lines(out.read_bytes())
    assert sorted(line.customer_id for line in lines) == sorted(server.customer_ids)
    for line in lines:
        assert line.ok and line.error is None
        assert line.sources == server.data.payment_sources(line.customer_id)
    assert ran.stdout == ""


async def test_csv_output_has_a_row_per_payment_source_and_one_per_customer_without(
    server: FakeLean, ids_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"  # the extension chooses the format
    ran = await run_cli(
        "sweep", str(ids_file), "-o", str(out), "--base-url", server.url, env=app_token_env(server)
    )
    assert ran.status == 0, ran.stderr
    text = out.read_text()
    assert text.splitlines()[0] == CSV_HEADER
    rows: dict[str, list[dict[str, str]]] = {}
    previous = None
    for row in csv.DictReader(io.StringIO(text)):
        customer = row["customer_id"]
        assert customer == previous or customer not in rows, "a customer's rows are apart"
        rows.setdefault(customer, []).append(row)
        previous = customer
    assert sorted(rows) == sorted(server.customer_ids)
    for customer, customer_rows in rows.items():
        sources = server.data.payment_sources(customer)
        assert all(row["ok"] == "true" for row in customer_rows)
        assert all(row["source_count"] == str(len(sources)) for row in customer_rows)
        if not sources:
            assert [row["payment_source_id"] for row in customer_rows] == [""]
            continue
        assert len(customer_rows) == len(sources)
        for row, source in zip(customer_rows, sources, strict=True):
            assert row["payment_source_id"] == source.id
            assert row["bank_identifier"] == source.bank_identifier
            assert row["status"] == source.status
            assert row["currency"] == source.currency
            assert row["account_iban_last4"] == source.account_iban_last4
            assert row["account_count"] == str(len(source.accounts))
            assert row["beneficiary_count"] == str(len(source.beneficiaries))
            active = [b for b in source.beneficiaries if b.status == "ACTIVE"]
            assert row["active_beneficiary_count"] == str(len(active))
            assert source.created_at is not None
            assert row["created_at"] == source.created_at.isoformat().replace("+00:00", "Z")
            assert row["error_type"] == ""


async def test_csv_output_carries_no_full_account_number_or_iban(
    server: FakeLean, ids_file: Path
) -> None:
    ran = await run_cli(
        "sweep", str(ids_file), "--format", "csv", "--base-url", server.url,
        env=app_token_env(server),
    )  # fmt: skip
    assert ran.status == 0, ran.stderr
    for source in server.data.all_payment_sources():
        for account in source.accounts:
            assert account.iban and account.iban not in ran.stdout
            assert account.account_number and account.account_number not in ran.stdout


async def test_ids_come_from_stdin_with_blank_lines_comments_and_whitespace_skipped(
    server: FakeLean,
) -> None:
    first, second = server.customer_ids[:2]
    stdin = f"# customers to check\n\n  {first}  \r\n\t{second}\n   \n# done\n".encode()
    ran = await run_cli("sweep", "--base-url", server.url, env=app_token_env(server), stdin=stdin)
    assert ran.status == 0, ran.stderr
    assert sorted(line.customer_id for line in read_lines(ran.stdout)) == sorted([first, second])


async def test_a_malformed_id_becomes_a_failed_line_and_exit_status_1(
    server: FakeLean, tmp_path: Path
) -> None:
    ids = write_ids(tmp_path / "ids.txt", [server.customer_ids[0], "not-a-uuid"])
    ran = await run_cli("sweep", str(ids), "--base-url", server.url, env=app_token_env(server))
    assert ran.status == 1
    failed = {line.customer_id: line for line in read_lines(ran.stdout) if not line.ok}
    assert list(failed) == ["not-a-uuid"]
    error = failed["not-a-uuid"].error
    assert error is not None
    assert error["type"] == "InvalidIdError"
    assert error["status_code"] is None
    assert "must be a UUID" in str(error["message"])
    assert "Traceback" not in ran.stderr


async def test_a_failed_api_call_line_carries_the_status_code_and_request_id(
    server: FakeLean, tmp_path: Path
) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    ids = write_ids(tmp_path / "ids.txt", [unknown])
    ran = await run_cli("sweep", str(ids), "--base-url", server.url, env=app_token_env(server))
    assert ran.status == 1
    [line] = read_lines(ran.stdout)
    assert line.error is not None
    assert line.error["type"] == "NotFoundError"
    assert line.error["status_code"] == 404
    assert line.error["code"] == "CUSTOMER_NOT_FOUND"
    assert line.error["message"] == "No customer with this id"
    assert isinstance(line.error["request_id"], str) and line.error["request_id"]


async def test_the_summary_counts_customers_sources_and_failures_by_error(
    server: FakeLean, tmp_path: Path
) -> None:
    good = server.customer_ids[:5]
    ids = write_ids(tmp_path / "ids.txt", [*good, "bad-1", "bad-2"])
    ran = await run_cli("sweep", str(ids), "--base-url", server.url, env=app_token_env(server))
    sources = sum(len(server.data.payment_sources(c)) for c in good)
    assert f"7 customers (5 ok, 2 failed), {sources} payment sources in " in ran.stderr
    assert "failed: 2 InvalidIdError" in ran.stderr


async def test_every_customer_succeeding_exits_0_and_usage_errors_exit_2(
    server: FakeLean, ids_file: Path
) -> None:
    ok = await run_cli("sweep", str(ids_file), "--base-url", server.url, env=app_token_env(server))
    unknown_flag = await run_cli("sweep", "--no-such-flag", env=app_token_env(server))
    bad_concurrency = await run_cli(
        "sweep", str(ids_file), "--concurrency", "0", env=app_token_env(server)
    )
    assert (ok.status, unknown_flag.status, bad_concurrency.status) == (0, 2, 2)


async def test_missing_credentials_are_one_sentence_and_exit_2_before_any_file_is_written(
    server: FakeLean, ids_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    ran = await run_cli(
        "sweep", str(ids_file), "-o", str(out), "--base-url", server.url, env=clean_env()
    )
    assert ran.status == 2
    assert ran.stderr.count("\n") == 1
    assert ran.stderr.startswith("lean-async: error: no credentials")
    for named in ("--app-token", "--access-token", "--client-id", "--client-secret"):
        assert named in ran.stderr
    for named in ("LEAN_APP_TOKEN", "LEAN_ACCESS_TOKEN", "LEAN_CLIENT_ID", "LEAN_CLIENT_SECRET"):
        assert named in ran.stderr
    assert "=" not in ran.stderr  # no Python keyword argument
    assert not out.exists()


async def test_a_client_id_without_a_secret_is_named_as_flags(
    server: FakeLean, ids_file: Path
) -> None:
    ran = await run_cli(
        "sweep", str(ids_file), "--client-id", "x", "--base-url", server.url, env=clean_env()
    )
    assert ran.status == 2
    assert "--client-secret is missing" in ran.stderr
    assert "client_secret=" not in ran.stderr


async def test_oauth_with_the_api_host_overridden_and_no_token_url_is_a_usage_error_at_once(
    server: FakeLean, ids_file: Path, tmp_path: Path
) -> None:
    oauth = clean_env(LEAN_CLIENT_ID=server.client_id, LEAN_CLIENT_SECRET=server.client_secret)
    out = tmp_path / "out.jsonl"
    by_flag = await run_cli(
        "sweep", str(ids_file), "-o", str(out), "--base-url", server.url, env=oauth, timeout=10
    )
    by_env = await run_cli(
        "sweep", str(ids_file), "-o", str(out), env={**oauth, "LEAN_BASE_URL": server.url},
        timeout=10,
    )  # fmt: skip
    for ran in (by_flag, by_env):
        assert ran.status == 2
        assert ran.stderr.count("\n") == 1
        assert "--auth-url" in ran.stderr and "LEAN_AUTH_URL" in ran.stderr
        assert "auth_url=" not in ran.stderr
    assert not out.exists()
    assert server.stats.requests == 0


async def test_refused_credentials_stop_the_sweep_without_writing_failed_lines(
    server: FakeLean, ids_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    ran = await run_cli(
        "sweep", str(ids_file), "-o", str(out), "--base-url", server.url,
        env=clean_env(LEAN_APP_TOKEN="not-the-token"),
    )  # fmt: skip
    assert ran.status == 1
    assert "the credentials were refused (HTTP 401" in ran.stderr
    assert "--resume" in ran.stderr
    assert out.read_bytes() == b""
    assert "Traceback" not in ran.stderr


@pytest.mark.parametrize(
    ("where", "flags"),
    [
        ("connection refused", ("--base-url", "http://127.0.0.1:{closed}")),
        (
            "token endpoint down",
            ("--base-url", "{url}", "--auth-url", "http://127.0.0.1:{closed}/oauth2/token"),
        ),
    ],
)
async def test_an_unreachable_api_stops_the_sweep_early_with_one_error_and_exit_1(
    server: FakeLean, tmp_path: Path, where: str, flags: tuple[str, ...]
) -> None:
    ids = write_ids(tmp_path / "ids.txt", [str(uuid.UUID(int=n, version=4)) for n in range(500)])
    out = tmp_path / "out.jsonl"
    closed = unused_port()
    env = app_token_env(server)
    if "token" in where:
        env = clean_env(LEAN_CLIENT_ID="id", LEAN_CLIENT_SECRET="secret")
    args = [flag.format(closed=closed, url=server.url) for flag in flags]
    started = time.monotonic()
    ran = await run_cli("sweep", str(ids), "-o", str(out), "--max-retries", "1", *args, env=env)
    assert time.monotonic() - started < 30  # not one failure line per customer
    assert ran.status == 1
    assert "the API is unreachable" in ran.stderr and "--resume" in ran.stderr
    assert out.read_bytes() == b""  # --resume will try every customer again
    assert "Traceback" not in ran.stderr


def test_the_progress_bar_shows_the_paced_rate_and_the_requests_allowed_in_flight() -> None:
    progress = SweepProgress(failed=2, sources=40, concurrency=9, paced_rate=142.4)
    assert postfix(progress) == "2 failed, 40 sources, paced 142/s, 9 in flight max"
    progress.paced_rate = None
    assert "unpaced" in postfix(progress)


async def test_a_client_id_flag_takes_its_secret_from_the_environment(
    server: FakeLean, ids_file: Path
) -> None:
    ran = await run_cli(
        "sweep", str(ids_file), "--base-url", server.url, "--auth-url", server.token_url,
        "--client-id", server.client_id,
        env=clean_env(LEAN_CLIENT_SECRET=server.client_secret),
    )  # fmt: skip
    assert ran.status == 0, ran.stderr
    assert len(read_lines(ran.stdout)) == len(server.customer_ids)
    assert server.stats.token_requests == 1


async def test_an_existing_output_file_is_kept_without_resume_or_overwrite(
    server: FakeLean, ids_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("precious\n")
    kept = await run_cli(
        "sweep", str(ids_file), "-o", str(out), "--base-url", server.url, env=app_token_env(server)
    )
    assert kept.status == 2
    assert "--resume" in kept.stderr and "--overwrite" in kept.stderr
    assert out.read_text() == "precious\n"
    replaced = await run_cli(
        "sweep", str(ids_file), "-o", str(out), "--overwrite", "--base-url", server.url,
        env=app_token_env(server),
    )  # fmt: skip
    assert replaced.status == 0
    assert len(read_lines(out.read_bytes())) == len(server.customer_ids)


async def test_no_secret_or_account_data_reaches_stderr_even_when_verbose(
    server: FakeLean, ids_file: Path
) -> None:
    ran = await run_cli(
        "sweep", str(ids_file), "-vv", "--base-url", server.url, "--auth-url", server.token_url,
        env=clean_env(LEAN_CLIENT_ID=server.client_id, LEAN_CLIENT_SECRET=server.client_secret),
    )  # fmt: skip
    assert ran.status == 0, ran.stderr
    assert "payment-sources -> 200" in ran.stderr  # -vv logs every request
    assert server.client_secret not in ran.stderr
    for source in server.data.all_payment_sources():
        for account in source.accounts:
            assert account.iban and account.iban in ran.stdout
            assert account.iban not in ran.stderr
            assert account.account_number and account.account_number not in ran.stderr


async def test_no_progress_bar_when_stderr_is_not_a_terminal(
    server: FakeLean, ids_file: Path
) -> None:
    ran = await run_cli("sweep", str(ids_file), "--base-url", server.url, env=app_token_env(server))
    assert ran.status == 0
    assert BAR not in ran.stderr and "\r" not in ran.stderr
    assert "30 customers (30 ok, 0 failed)" in ran.stderr


async def test_a_progress_bar_with_the_inputs_total_when_stderr_is_a_terminal(
    server: FakeLean, ids_file: Path
) -> None:
    ran = await run_cli_on_terminal(
        "sweep", str(ids_file), "--base-url", server.url, env=app_token_env(server)
    )
    assert ran.status == 0, ran.stderr
    assert BAR in ran.stderr
    assert "/30 [" in ran.stderr  # the total is known


async def test_no_progress_bar_on_a_terminal_with_no_progress(
    server: FakeLean, ids_file: Path
) -> None:
    ran = await run_cli_on_terminal(
        "sweep", str(ids_file), "--no-progress", "--base-url", server.url,
        env=app_token_env(server),
    )  # fmt: skip
    assert ran.status == 0, ran.stderr
    assert BAR not in ran.stderr
    assert "30 customers (30 ok, 0 failed)" in ran.stderr


async def test_without_tqdm_a_terminal_shows_a_plain_status_line_instead_of_the_bar(
    server: FakeLean, ids_file: Path
) -> None:
    ran = await run_cli_on_terminal(
        "sweep", str(ids_file), "--base-url", server.url,
        env=app_token_env(server), command=NO_TQDM,
    )  # fmt: skip
    assert ran.status == 0, ran.stderr
    assert BAR not in ran.stderr
    assert len(read_lines(ran.stdout)) == 30
    # A plain status line instead, cleared at the end.
    assert re.search(
        r"\r\d+/30 customers, 0 failed, \d+ sources, (un)?paced[ \d/s]*, \d+ in flight max, \d+/s",
        ran.stderr,
    )
    assert screen(ran.stderr)[0].startswith("30 customers (30 ok, 0 failed)")


@pytest.mark.parametrize("tqdm", [True, False])
async def test_the_final_screen_holds_one_account_of_the_run_the_summarys(
    tmp_path: Path, tqdm: bool
) -> None:
    async with FakeLean(customers=400, seed=5, faults=Faults(latency=0.002)) as server:
        ids = write_ids(tmp_path / "ids.txt", server.customer_ids)
        command = CLI if tqdm else NO_TQDM
        ran = await run_cli_on_terminal(
            "sweep", str(ids), "-o", str(tmp_path / "out.jsonl"), "--base-url", server.url,
            env=app_token_env(server), command=command,
        )  # fmt: skip
        sources = sum(1 for _ in server.data.all_payment_sources())
    assert ran.status == 0, ran.stderr
    shown = screen(ran.stderr)
    assert shown[0].startswith(f"400 customers (400 ok, 0 failed), {sources} payment sources in ")
    assert len(shown) == 1, shown  # no bar left behind with its own counts and time


async def test_python_dash_m_lean_async_runs_the_cli(server: FakeLean, ids_file: Path) -> None:
    ran = await run_cli(
        "sweep", str(ids_file), "--base-url", server.url,
        env=app_token_env(server), command=(sys.executable, "-m", "lean_async"),
    )  # fmt: skip
    assert ran.status == 0, ran.stderr
    assert len(read_lines(ran.stdout)) == 30


async def test_results_are_written_while_the_input_is_still_being_read(server: FakeLean) -> None:
    proc = await start_cli(
        "sweep", "--concurrency", "2", "--base-url", server.url,
        env=app_token_env(server), stdin=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdin is not None and proc.stdout is not None
        ids = server.customer_ids[:5]
        proc.stdin.write("".join(f"{customer_id}\n" for customer_id in ids).encode())
        await proc.stdin.drain()
        # The sweep reads about --concurrency ids ahead of what it has written: lines come
        # out while stdin is still open.
        early = [await asyncio.wait_for(proc.stdout.readline(), 10) for _ in range(3)]
        proc.stdin.close()
        rest, _ = await asyncio.wait_for(proc.communicate(), 10)
    finally:
        await stop(proc)
    assert proc.returncode == 0
    written = [line.customer_id for line in read_lines(b"".join(early) + rest)]
    assert sorted(written) == sorted(ids)


async def test_sigint_stops_the_sweep_with_a_summary_and_exit_130(tmp_path: Path) -> None:
    async with FakeLean(customers=2000, seed=2, faults=Faults(latency=0.02)) as server:
        ids = write_ids(tmp_path / "ids.txt", server.customer_ids)
        out = tmp_path / "out.jsonl"
        proc = await start_cli(
            "sweep", str(ids), "-o", str(out), "--concurrency", "4", "--base-url", server.url,
            env=app_token_env(server),
        )  # fmt: skip
        try:
            await wait_for_lines(out, 20)
            proc.send_signal(signal.SIGINT)
            _, err = await asyncio.wait_for(proc.communicate(), 10)
        finally:
            await stop(proc)
    assert proc.returncode == 130
    stderr = err.decode()
    assert "stopped before the end of the input; run the same command with --resume" in stderr
    assert "Traceback" not in stderr
    written = read_lines(out.read_bytes())
    assert 20 <= len(written) < 2000
    assert f"{len(written)} customers (" in stderr


async def test_sweeps_own_csv_output_is_an_input_its_header_skipped(
    server: FakeLean, ids_file: Path, tmp_path: Path
) -> None:
    sources_csv = tmp_path / "sources.csv"
    env = app_token_env(server)
    first = await run_cli(
        "sweep", str(ids_file), "-o", str(sources_csv), "--base-url", server.url, env=env
    )
    assert first.status == 0, first.stderr
    again = await run_cli("sweep", str(sources_csv), "--base-url", server.url, env=env)
    assert again.status == 0, again.stderr
    assert sorted(line.customer_id for line in read_lines(again.stdout)) == sorted(
        server.customer_ids
    )


LATER_FIELDS = (
    b'[{"id": "b7ac1d5e-0d6a-4d7a-9a70-1d4c2e1f0a11", "bank_identifier": "ENBD_UAE",'
    b' "risk_score": 0.50, "mandate": {"limits": [1, 2.0]}, "beneficiaries": null,'
    b' "accounts": [null, {"id": "a-1", "currency": "AED", "nickname": "Main"}]}]'
)


async def test_raw_keeps_every_field_as_lean_sent_it_and_the_default_keeps_the_known_ones(
    server: FakeLean, tmp_path: Path
) -> None:
    customer = server.customer_ids[0]
    server.data._list_bodies[customer.lower()] = LATER_FIELDS
    ids = write_ids(tmp_path / "ids.txt", server.customer_ids[:3])
    env = app_token_env(server)
    raw = await run_cli("sweep", str(ids), "--raw", "--base-url", server.url, env=env)
    known = await run_cli("sweep", str(ids), "--base-url", server.url, env=env)
    assert raw.status == known.status == 0, raw.stderr + known.stderr
    [raw_line] = [line for line in raw.stdout.splitlines() if customer in line]
    assert json.loads(raw_line)["sources"] == json.loads(LATER_FIELDS)
    assert LATER_FIELDS[1:-1] in raw_line.encode()  # byte for byte, 0.50 included
    [known_line] = [line for line in known.stdout.splitlines() if customer in line]
    [source] = json.loads(known_line)["sources"]
    assert "risk_score" not in source and source["beneficiaries"] == []
    # The other customers: the same sources either way.
    for line in map(json.loads, raw.stdout.splitlines()):
        assert line["ok"]
        if line["customer_id"] != customer:
            sources = decode_payment_sources(json.dumps(line["sources"]).encode())
            assert sources == server.data.payment_sources(line["customer_id"])


async def test_raw_output_resumes_and_raw_csv_is_a_usage_error(
    server: FakeLean, ids_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "raw.jsonl"
    env = app_token_env(server)
    out.write_bytes(b"")
    first = await run_cli(
        "sweep", str(write_ids(tmp_path / "few.txt", server.customer_ids[:4])), "-o", str(out),
        "--raw", "--overwrite", "--base-url", server.url, env=env,
    )  # fmt: skip
    resumed = await run_cli(
        "sweep", str(ids_file), "-o", str(out), "--raw", "--resume", "--base-url", server.url,
        env=env,
    )  # fmt: skip
    assert first.status == resumed.status == 0, first.stderr + resumed.stderr
    assert sorted(line.customer_id for line in read_lines(out.read_bytes())) == sorted(
        server.customer_ids
    )
    csv_raw = await run_cli(
        "sweep", str(ids_file), "--raw", "--format", "csv", "--base-url", server.url, env=env
    )
    assert csv_raw.status == 2
    assert "--raw writes JSON Lines" in csv_raw.stderr


def test_the_plain_status_line_fits_one_row_of_a_narrow_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # no cli extra
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 30, 0, 0))
    try:
        with open(slave, "w", closefd=False) as terminal:
            bar = ProgressBar(enabled=True, stream=terminal)
            bar.set_total(123_456)
            progress = SweepProgress(done=99_999, ok=99_000, failed=999, sources=150_000)
            bar.advance(progress)
            bar.close()
        # One read may return the status before the clearing write reaches the pty.
        chunks = []
        while select.select([master], [], [], 0.5)[0]:
            chunks.append(os.read(master, 4096))
        drawn = b"".join(chunks).decode()
    finally:
        os.close(master)
        os.close(slave)
    drawings = [part for part in re.split(r"\r|\x1b\[K", drawn) if part]
    assert drawings == ["99,999/123,456 customers, 999"]  # 29 columns of 30
    assert screen(drawn) == []  # cleared at the end


def test_the_retry_tally_counts_each_retry_event_by_cause() -> None:
    tally = RetryTally()
    for cause in ("HTTP 503", "APIConnectionError", "HTTP 503"):
        tally(RetryEvent("GET", "/x", 1, 0.5, cause, None, ServerError(503)))
    assert tally.causes == {"HTTP 503": 2, "APIConnectionError": 1}


async def test_the_summary_counts_retries_from_the_clients_hook_and_leaves_the_logger_alone(
    server: FakeLean, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.faults = Faults(error_rate=0.3, error_statuses=(503,), seed=3)
    retries = RetryTally()
    quick = RetryPolicy(max_retries=8, initial_delay=0.001, max_delay=0.005)
    client = server.client(on_retry=retries, retry=quick)
    library = logging.getLogger("lean_async")
    level, handlers = library.level, list(library.handlers)
    output, _ = open_output(str(tmp_path / "out.jsonl"), JSONL, resume=False, overwrite=False)
    try:
        progress = await asyncio.wait_for(
            sweep_into(
                client,
                server.customer_ids,
                output,
                concurrency=4,
                bar=ProgressBar(enabled=False),
                retries=retries,
            ),
            timeout=60,
        )
    finally:
        output.close()
    assert progress.ok == len(server.customer_ids)
    assert set(retries.causes) == {"HTTP 503"}
    assert f"retried: {retries.causes['HTTP 503']} requests (" in capsys.readouterr().err
    assert (library.level, library.handlers) == (level, handlers)

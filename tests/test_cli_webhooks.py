"""``lean-async events`` and ``lean-async webhooks``: run as a user runs them, against the
fake Lean server and a real inbox file."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from _apps import free_port
from _cli import app_token_env, clean_env, run_cli, start_cli, stop, wait_for_lines

from lean_async import webhooks
from lean_async._cli.events import parse_moment
from lean_async.testing import FakeLean
from tests.test_webhooks_receiver import delivery

pytestmark = pytest.mark.timeout(60)

SECRET = "whsec-cli"
NOW = datetime(2026, 5, 13, 12, 0, tzinfo=timezone.utc)


# --- lean-async events ------------------------------------------------------------------------


async def test_events_prints_each_event_as_a_json_line_as_lean_sends_it() -> None:
    async with FakeLean(customers=3, seed=21) as server:
        for customer in server.customer_ids:
            server.add_payment_source(customer)
        ran = await run_cli(
            "events", "--since", "1h", "--base-url", server.url, env=app_token_env(server)
        )
        by_type = await run_cli(
            "events",
            "--since",
            "2020-01-01",
            "--type",
            "payment_source.created",
            "--base-url",
            server.url,
            env=app_token_env(server),
        )
    assert ran.status == 0, ran.stderr
    lines = [json.loads(line) for line in ran.stdout.splitlines()]
    assert sorted(line["event_id"] for line in lines) == sorted(
        e["event_id"] for e in server.events
    )
    assert {tuple(sorted(line)) for line in lines} == {
        ("event_id", "message", "payload", "timestamp", "type")
    }
    assert ran.stderr.strip() == "6 events"
    assert by_type.status == 0, by_type.stderr
    assert {json.loads(line)["type"] for line in by_type.stdout.splitlines()} == {
        "payment_source.created"
    }
    assert len(by_type.stdout.splitlines()) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "expected an ISO 8601 date-time"),
        (["--since", "2026-05-02", "--until", "2026-05-01"], "until is before since"),
        ([], "--since"),
    ],
)
async def test_events_usage_errors_are_one_line(args: list[str], message: str) -> None:
    ran = await run_cli(
        "events", *args, "--base-url", "http://127.0.0.1:1", env=clean_env(LEAN_APP_TOKEN="t")
    )
    assert ran.status == 2
    assert message in ran.stderr
    assert "Traceback" not in ran.stderr


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("90m", NOW - timedelta(minutes=90)),
        ("2h", NOW - timedelta(hours=2)),
        ("7d", NOW - timedelta(days=7)),
        ("2026-05-01", datetime(2026, 5, 1, tzinfo=timezone.utc)),
        ("2026-05-01T10:00:00Z", datetime(2026, 5, 1, 10, tzinfo=timezone.utc)),
        ("2026-05-01T14:00:00+04:00", datetime(2026, 5, 1, 10, tzinfo=timezone.utc)),
    ],
)
def test_moments_are_iso_8601_or_a_time_ago(text: str, moment: datetime) -> None:
    assert parse_moment(text, NOW) == moment


# --- lean-async webhooks: an inbox's failed events ----------------------------------------------


async def parked_inbox(path: Path) -> None:
    """An inbox holding one done, one pending and two failed events."""
    async with webhooks.SQLiteInbox(path) as inbox:
        for event_id in ("done", "failed-1", "failed-2", "pending"):
            await inbox.add(webhooks.decode_event(delivery(event_id)))
        await inbox.claim(3)
        await inbox.complete(["done"])
        await inbox.fail("failed-1", "RuntimeError: one", None)
        await inbox.fail("failed-2", "RuntimeError: two", None)


async def test_status_failed_and_retry_on_an_inbox(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    await parked_inbox(path)
    env = clean_env()
    status = await run_cli("webhooks", "status", "--inbox", str(path), env=env)
    assert json.loads(status.stdout) == {"pending": 1, "running": 0, "done": 1, "failed": 2}

    failed = await run_cli("webhooks", "failed", "--inbox", str(path), env=env)
    assert failed.status == 0, failed.stderr
    records = [json.loads(line) for line in failed.stdout.splitlines()]
    assert [(r["event_id"], r["last_error"], r["attempts"]) for r in records] == [
        ("failed-1", "RuntimeError: one", 1),
        ("failed-2", "RuntimeError: two", 1),
    ]
    assert records[0]["event"]["payload"]["status"] == "ACTIVE"

    one = await run_cli("webhooks", "retry", "--inbox", str(path), "failed-2", env=env)
    assert (one.status, one.stderr.strip()) == (0, "1 failed events made pending again")
    unknown = await run_cli("webhooks", "retry", "--inbox", str(path), "nope", env=env)
    assert unknown.status == 1
    rest = await run_cli("webhooks", "retry", "--inbox", str(path), env=env)
    assert rest.stderr.strip() == "1 failed events made pending again"
    status = await run_cli("webhooks", "status", "--inbox", str(path), env=env)
    assert json.loads(status.stdout)["pending"] == 3

    pruned = await run_cli("webhooks", "prune", "--inbox", str(path), "--before", "0d", env=env)
    assert (pruned.status, pruned.stderr.strip()) == (0, "1 done events forgotten")
    status = await run_cli("webhooks", "status", "--inbox", str(path), env=env)
    assert json.loads(status.stdout) == {"pending": 3, "running": 0, "done": 0, "failed": 0}


async def test_an_inbox_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    ran = await run_cli("webhooks", "failed", "--inbox", str(tmp_path / "no.db"), env=clean_env())
    assert ran.status == 2
    assert "no inbox at" in ran.stderr
    assert not (tmp_path / "no.db").exists()


# --- lean-async webhooks serve, send and backfill ---------------------------------------------


async def test_serve_receives_what_send_sends_then_backfill_adds_what_it_missed(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/lean"
    inbox, handled, record = tmp_path / "inbox.db", tmp_path / "handled.jsonl", tmp_path / "s.jsonl"
    env = clean_env(LEAN_WEBHOOK_SECRET=SECRET)
    serve_args = ("webhooks", "serve", "--inbox", str(inbox), "--port", str(port))
    receiver = await start_cli(*serve_args, "--output", str(handled), env=env)
    try:
        sent = await run_cli(
            "webhooks",
            "send",
            url,
            "--count",
            "20",
            "--rate",
            "200",
            "--record",
            str(record),
            env=env,
        )
        assert sent.status == 0, sent.stderr
        assert "20 of 20 events answered 200" in sent.stderr
        await wait_for_lines(handled, 20)
        receiver.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(receiver.communicate(), 30)
        assert receiver.returncode == 0, err.decode()
        assert "20 events accepted, 20 handled" in err.decode()
    finally:
        await stop(receiver)
    delivered = {json.loads(line)["event_id"] for line in record.read_text().splitlines()}
    assert {json.loads(line)["event_id"] for line in handled.read_text().splitlines()} == delivered

    # With the receiver down, events are missed; a backfill adds them to the inbox.
    async with FakeLean(customers=2, seed=22) as server:
        server.add_payment_source(server.customer_ids[0])
        backfill = await run_cli(
            "webhooks",
            "backfill",
            "--inbox",
            str(inbox),
            "--since",
            "1h",
            "--base-url",
            server.url,
            env=app_token_env(server),
        )
    assert backfill.status == 0, backfill.stderr
    assert backfill.stderr.strip() == f"2 new events added to {inbox}"
    status = await run_cli("webhooks", "status", "--inbox", str(inbox), env=env)
    assert json.loads(status.stdout) == {"pending": 2, "running": 0, "done": 20, "failed": 0}


async def test_serve_without_a_secret_is_a_usage_error(tmp_path: Path) -> None:
    ran = await run_cli("webhooks", "serve", "--inbox", str(tmp_path / "i.db"), env=clean_env())
    assert ran.status == 2
    assert "LEAN_WEBHOOK_SECRET" in ran.stderr


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        ("no_colon", "MODULE:FUNCTION"),
        ("no_such_module_13:handle", "cannot import"),
        ("json:dumps", "not an async function"),
    ],
)
async def test_serve_with_a_bad_handler_is_a_usage_error(
    tmp_path: Path, handler: str, message: str
) -> None:
    ran = await run_cli(
        "webhooks",
        "serve",
        "--inbox",
        str(tmp_path / "i.db"),
        "--handler",
        handler,
        env=clean_env(LEAN_WEBHOOK_SECRET=SECRET),
    )
    assert ran.status == 2
    assert message in ran.stderr

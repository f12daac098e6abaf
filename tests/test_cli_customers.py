"""``lean-async customers``, ``destinations`` and ``sweep --all-customers``, run as a user
runs them, against the fake server."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from _cli import (
    app_token_env,
    clean_env,
    kill_after_lines,
    read_lines,
    run_cli,
    run_cli_on_terminal,
)

from lean_async import PaymentDestination
from lean_async.testing import FakeLean, Faults

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def server() -> AsyncIterator[FakeLean]:
    async with FakeLean(customers=40, seed=8, customer_page_cap=15) as server:
        yield server


def _at(server: FakeLean) -> tuple[str, str]:
    return ("--base-url", server.url)


# -- customers -----------------------------------------------------------------------------


async def test_customers_list_prints_every_customer_as_json_lines(server: FakeLean) -> None:
    ran = await run_cli(
        "customers", "list", "--page-size", "100", *_at(server), env=app_token_env(server)
    )
    assert ran.status == 0, ran.stderr
    printed = [json.loads(line) for line in ran.stdout.splitlines()]
    assert printed == [
        {"customer_id": c.customer_id, "app_user_id": c.app_user_id} for c in server.customers
    ]
    assert server.stats.by_path["/customers/v1"] == 3  # capped at 15 a page


async def test_customers_get_by_id_or_app_user_id(server: FakeLean) -> None:
    customer = server.customers[3]
    by_id = await run_cli(
        "customers", "get", customer.customer_id, *_at(server), env=app_token_env(server)
    )
    by_user = await run_cli(
        "customers", "get", "--app-user-id", "user-4", "--compact", *_at(server),
        env=app_token_env(server),
    )  # fmt: skip
    assert by_id.status == by_user.status == 0, by_id.stderr + by_user.stderr
    assert (
        json.loads(by_id.stdout)
        == json.loads(by_user.stdout)
        == {
            "customer_id": customer.customer_id,
            "app_user_id": "user-4",
        }
    )
    assert len(by_user.stdout.splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [
        ("customers", "get"),
        ("customers", "get", "6db94cb7-3a02-4a57-a03a-e2a92ce86406", "--app-user-id", "u"),
        ("customers", "get", "not-a-uuid"),
        ("customers", "create", ""),
        ("customers", "create", "x" * 256),
        ("customers",),
        ("destinations", "get", "../x"),
        ("sweep", "ids.txt", "--all-customers"),
    ],
)
async def test_usage_errors_exit_2_without_a_request(
    server: FakeLean, args: tuple[str, ...]
) -> None:
    ran = await run_cli(*args, *_at(server), env=app_token_env(server))
    assert ran.status == 2, ran.stderr
    assert "Traceback" not in ran.stderr
    assert server.stats.requests == 0


async def test_customers_create_then_conflict_then_or_get(server: FakeLean) -> None:
    env = app_token_env(server)
    app_user_id = "new user/ü?#%"
    created = await run_cli("customers", "create", app_user_id, *_at(server), env=env)
    again = await run_cli("customers", "create", app_user_id, *_at(server), env=env)
    or_get = await run_cli("customers", "create", app_user_id, "--or-get", *_at(server), env=env)
    assert created.status == 0, created.stderr
    assert json.loads(created.stdout)["app_user_id"] == app_user_id
    assert again.status == 1
    assert "ConflictError" in again.stderr and "CUSTOMER_ALREADY_EXISTS" in again.stderr
    assert or_get.status == 0, or_get.stderr
    assert json.loads(or_get.stdout) == json.loads(created.stdout)


async def test_destinations_list_and_get(server: FakeLean) -> None:
    env = app_token_env(server)
    listed = await run_cli("destinations", "list", *_at(server), env=env)
    assert listed.status == 0, listed.stderr
    destinations = json.loads(listed.stdout)
    assert [d["id"] for d in destinations] == server.data.destinations
    one = await run_cli("destinations", "get", destinations[1]["id"], *_at(server), env=env)
    assert json.loads(one.stdout) == destinations[1]
    owner = server.customer_ids[0]
    own = await run_cli("destinations", "list", "--customer", owner, *_at(server), env=env)
    assert [d["customer_id"] for d in json.loads(own.stdout)] == [owner]


@pytest.mark.parametrize(
    "args",
    [("list",), ("list", "--customer", "OWNER"), ("get", "DESTINATION")],
    ids=["list", "list --customer", "get"],
)
async def test_destinations_mask_shows_account_numbers_and_ibans_by_their_last_four_only(
    server: FakeLean, args: tuple[str, ...]
) -> None:
    owner, destination = server.customer_ids[0], server.data.destinations[0]
    argv = [{"OWNER": owner, "DESTINATION": destination}.get(arg, arg) for arg in args]
    env = app_token_env(server)
    full = await run_cli("destinations", *argv, "--compact", *_at(server), env=env)
    masked = await run_cli("destinations", *argv, "--compact", "--mask", *_at(server), env=env)
    assert full.status == masked.status == 0, full.stderr + masked.stderr
    type_ = PaymentDestination if args[0] == "get" else list[PaymentDestination]
    shown = msgspec.json.decode(full.stdout, type=type_)
    shown = [shown] if isinstance(shown, PaymentDestination) else shown
    expected = [d.masked() for d in shown]
    decoded = msgspec.json.decode(masked.stdout, type=type_)
    assert (decoded if isinstance(decoded, list) else [decoded]) == expected
    numbers = [n for d in shown for n in (d.iban, d.account_number) if n]
    assert numbers
    for number in numbers:
        assert number not in masked.stdout
        assert number[-4:] in masked.stdout


# -- sweep --all-customers -----------------------------------------------------------------


def _counts(out: Path) -> Counter[str]:
    return Counter(line.customer_id for line in read_lines(out.read_bytes()))


async def test_sweep_all_customers_sweeps_each_customer_once(
    server: FakeLean, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    ran = await run_cli(
        "sweep", "--all-customers", "--page-size", "100", "-o", str(out), *_at(server),
        env=app_token_env(server),
    )  # fmt: skip
    assert ran.status == 0, ran.stderr
    assert _counts(out) == Counter(server.customer_ids)
    assert "40 customers (40 ok, 0 failed)" in ran.stderr


async def test_sweep_all_customers_shows_the_total_on_the_progress_bar(server: FakeLean) -> None:
    ran = await run_cli_on_terminal(
        "sweep", "--all-customers", "--base-url", server.url, env=app_token_env(server)
    )
    assert ran.status == 0, ran.stderr
    assert "/40 " in ran.stderr  # the total Lean announced (the bar is cleared at the end)


async def test_sweep_all_customers_with_refused_credentials_stops_at_once(
    server: FakeLean, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    ran = await run_cli(
        "sweep", "--all-customers", "-o", str(out), *_at(server),
        env=clean_env(LEAN_APP_TOKEN="wrong"),
    )  # fmt: skip
    assert ran.status == 1
    assert "credentials were refused" in ran.stderr and "Traceback" not in ran.stderr
    assert out.read_bytes() == b""


async def test_sweep_all_customers_says_which_page_failed_and_how_to_go_on(
    server: FakeLean, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    server.faults = Faults(error_rate=1.0)
    ran = await run_cli(
        "sweep", "--all-customers", "--max-retries", "0", "-o", str(out), *_at(server),
        env=app_token_env(server),
    )  # fmt: skip
    assert ran.status == 1
    assert "listing the customers failed at page 1: ServerError" in ran.stderr
    assert "--resume" in ran.stderr and "Traceback" not in ran.stderr


async def test_sweep_all_customers_killed_resumes_with_every_customer_exactly_once(
    tmp_path: Path,
) -> None:
    async with FakeLean(
        customers=2000, seed=12, customer_page_cap=50, faults=Faults(latency=(0.005, 0.02))
    ) as server:
        out = tmp_path / "out.jsonl"
        args = (
            "sweep", "--all-customers", "-o", str(out), "--concurrency", "8",
            "--base-url", server.url,
        )  # fmt: skip
        written_before = await kill_after_lines(
            *args, env=app_token_env(server), output=out, lines=300
        )
        assert 300 <= written_before < 2000, "the kill came too late to test anything"
        # Sign-ups while the job was down: the resumed listing meets them too.
        late = [server.add_customer().customer_id for _ in range(25)]

        server.faults = Faults()
        ran = await run_cli(*args, "--resume", env=app_token_env(server))

    assert ran.status == 0, ran.stderr
    assert "resuming" in ran.stderr
    counts = _counts(out)  # fails on a corrupt line
    assert set(counts) == set(server.customer_ids)
    assert set(late) <= set(counts)
    assert set(counts.values()) == {1}

"""``lean-async list``, ``get`` and ``delete``: one call each, JSON on stdout."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import msgspec
import pytest
from _cli import app_token_env, clean_env, run_cli

from lean_async import PaymentSource
from lean_async._cli.report import RetryNotices
from lean_async.testing import FakeLean, Faults

pytestmark = pytest.mark.timeout(30)

UNKNOWN_SOURCE = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
async def server() -> AsyncIterator[FakeLean]:
    async with FakeLean(customers=20, seed=5) as fake:
        yield fake


def _customer_with_sources(server: FakeLean) -> tuple[str, list[PaymentSource]]:
    return next(
        (c, server.data.payment_sources(c))
        for c in server.customer_ids
        if server.data.payment_sources(c)
    )


async def test_list_prints_the_customers_payment_sources_as_indented_json(
    server: FakeLean,
) -> None:
    customer, sources = _customer_with_sources(server)
    ran = await run_cli("list", customer, "--base-url", server.url, env=app_token_env(server))
    assert ran.status == 0, ran.stderr
    assert ran.stdout.startswith("[\n  {\n")
    assert msgspec.json.decode(ran.stdout, type=list[PaymentSource]) == sources


async def test_get_prints_one_payment_source_and_compact_is_one_line(server: FakeLean) -> None:
    customer, sources = _customer_with_sources(server)
    ran = await run_cli(
        "get", customer, sources[0].id, "--compact", "--base-url", server.url,
        env=app_token_env(server),
    )  # fmt: skip
    assert ran.status == 0, ran.stderr
    assert ran.stdout.count("\n") == 1
    assert msgspec.json.decode(ran.stdout, type=PaymentSource) == sources[0]


@pytest.mark.parametrize("command", ["list", "get"])
async def test_mask_shows_account_numbers_and_ibans_by_their_last_four_only(
    server: FakeLean, command: str
) -> None:
    customer, sources = next(
        (c, server.data.payment_sources(c))
        for c in server.customer_ids
        if any(s.accounts for s in server.data.payment_sources(c)[:1])
    )
    ids = [customer] if command == "list" else [customer, sources[0].id]
    ran = await run_cli(
        command, *ids, "--mask", "--base-url", server.url, env=app_token_env(server)
    )
    assert ran.status == 0, ran.stderr
    shown = sources if command == "list" else sources[:1]
    expected = [source.masked() for source in shown]
    type_ = list[PaymentSource] if command == "list" else PaymentSource
    decoded = msgspec.json.decode(ran.stdout, type=type_)
    assert decoded == (expected if command == "list" else expected[0])
    numbers = [a.account_number for s in shown for a in s.accounts] + [
        a.iban for s in shown for a in s.accounts
    ]
    for number in filter(None, numbers):
        assert number not in ran.stdout
        assert number[-4:] in ran.stdout


async def test_delete_removes_the_payment_source_and_says_so(server: FakeLean) -> None:
    customer, sources = _customer_with_sources(server)
    ran = await run_cli(
        "delete", customer, sources[0].id, "--reason", "TPP_REQUESTED",
        "--base-url", server.url, env=app_token_env(server),
    )  # fmt: skip
    assert ran.status == 0, ran.stderr
    assert json.loads(ran.stdout) == {
        "customer_id": customer,
        "payment_source_id": sources[0].id,
        "deleted": True,
        "reason": "TPP_REQUESTED",
    }
    assert server.data.find(customer, sources[0].id) is None


async def test_an_api_error_is_one_line_on_stderr_and_exit_1(server: FakeLean) -> None:
    customer = server.customer_ids[0]
    ran = await run_cli(
        "get", customer, UNKNOWN_SOURCE, "--base-url", server.url, env=app_token_env(server)
    )
    assert ran.status == 1
    assert ran.stdout == ""
    assert ran.stderr.startswith(
        "lean-async: error: NotFoundError: HTTP 404 UNKNOWN_PAYMENT_SOURCE: "
    )
    assert ran.stderr.count("\n") == 1


async def test_a_malformed_id_is_a_usage_error(server: FakeLean) -> None:
    ran = await run_cli("list", "nope", "--base-url", server.url, env=app_token_env(server))
    assert ran.status == 2
    assert ran.stderr == (
        "lean-async: error: customer_id must be a UUID such as "
        "6db94cb7-3a02-4a57-a03a-e2a92ce86406, got 'nope'\n"
    )
    assert server.stats.requests == 0


async def test_each_retry_is_a_line_on_stderr_without_verbose() -> None:
    # A server that accepts the connection and does not answer in time.
    async with FakeLean(customers=1, faults=Faults(latency=5.0)) as slow:
        ran = await run_cli(
            "list", slow.customer_ids[0], "--base-url", slow.url, "--timeout", "0.2",
            env=clean_env(LEAN_APP_TOKEN=slow.app_token), timeout=20,
        )  # fmt: skip
    assert ran.status == 1
    lines = ran.stderr.splitlines()
    assert len(lines) == 3, lines
    for number, line in enumerate(lines[:2], 1):
        assert line.startswith("lean-async: retrying GET /customers/v1/")
        # The request is named once, not again in the reason.
        assert "after APITimeoutError: timed out after " in line
        assert line.count(slow.customer_ids[0]) == 1
        assert line.endswith(f"(retry {number})")
    assert lines[2].startswith("lean-async: error: APITimeoutError")


async def test_help_states_the_worst_case_time_of_a_call() -> None:
    ran = await run_cli("list", "--help", env=clean_env())
    assert ran.status == 0
    assert "at most about 92 s with the defaults" in " ".join(ran.stdout.split())


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--timeout", "-1"], "argument --timeout: expected a number of seconds > 0, got '-1'"),
        (["--timeout", "nan"], "argument --timeout: expected a number of seconds > 0"),
        (["--max-retries", "-1"], "argument --max-retries: expected a whole number >= 0"),
        (["--rate-limit", "0"], "--rate-limit"),
    ],
)
async def test_bad_request_flags_are_usage_errors_in_the_clis_terms(
    flags: list[str], says: str
) -> None:
    customer = "6db94cb7-3a02-4a57-a03a-e2a92ce86406"
    ran = await run_cli("list", customer, *flags, env=clean_env(LEAN_APP_TOKEN="t"))
    assert ran.status == 2
    assert says in ran.stderr
    assert "aiohttp" not in ran.stderr and "rate_limit" not in ran.stderr


def test_retry_lines_stop_after_ten_with_a_note_and_warnings_always_show(
    capsys: pytest.CaptureFixture[str],
) -> None:
    notices = RetryNotices()

    def record(level: int, message: str, **extra: str) -> logging.LogRecord:
        made = logging.LogRecord("lean_async", level, __file__, 1, message, None, None)
        made.__dict__.update(extra)
        return made

    for number in range(1, 15):
        notices.handle(record(logging.INFO, f"retrying {number}", retry_cause="HTTP 503"))
    notices.handle(record(logging.INFO, "refreshing the access token"))
    notices.handle(record(logging.WARNING, "TLS certificate verification is disabled"))
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        *(f"lean-async: retrying {number}" for number in range(1, 11)),
        "lean-async: more retries follow; the summary counts them (-v shows each)",
        "lean-async: TLS certificate verification is disabled",
    ]

"""The Agent Skill (skills/lean-payment-sources/SKILL.md): its metadata follows the Agent
Skills format, and its commands run as written and keep its own safety rules."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _cli import app_token_env, run_cli

from lean_async.cli import build_parser
from lean_async.testing import FakeLean

ROOT = Path(__file__).resolve().parent.parent
SKILL_DIR = ROOT / "skills" / "lean-payment-sources"
SKILL = (SKILL_DIR / "SKILL.md").read_text()
SECRET_FLAGS = ("--app-token", "--access-token", "--client-secret")


def frontmatter() -> dict[str, str]:
    match = re.match(r"---\n(.*?)\n---\n", SKILL, flags=re.DOTALL)
    assert match, "SKILL.md starts with YAML frontmatter between --- lines"
    fields = {}
    for line in match.group(1).splitlines():
        key, _, value = line.partition(": ")
        fields[key] = value
    return fields


def commands() -> list[list[str]]:
    """Every ``lean-async`` command in the skill's shell blocks, comments dropped."""
    blocks = re.findall(r"```sh\n(.*?)```", SKILL, flags=re.DOTALL)
    lines = [line for block in blocks for line in block.splitlines()]
    return [
        shlex.split(line, comments=True)[1:] for line in lines if line.startswith("lean-async ")
    ]


def with_ids(
    argv: list[str], customer_id: str, payment_source_id: str, app_user_id: str = "user-1"
) -> list[str]:
    ids = {
        "CUSTOMER_ID": customer_id,
        "PAYMENT_SOURCE_ID": payment_source_id,
        "APP_USER_ID": app_user_id,
    }
    return [ids.get(arg, arg) for arg in argv]


def test_the_metadata_follows_the_agent_skills_format() -> None:
    fields = frontmatter()
    assert set(fields) <= {"name", "description", "compatibility", "license", "metadata"}
    assert fields["name"] == SKILL_DIR.name
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", fields["name"])
    assert len(fields["name"]) <= 64
    assert 0 < len(fields["description"]) <= 1024
    assert len(fields["compatibility"]) <= 500


def test_the_readme_names_the_skill_folder() -> None:
    assert "skills/lean-payment-sources/SKILL.md" in (ROOT / "README.md").read_text()


def test_every_command_parses_and_follows_the_skills_safety_rules() -> None:
    argvs = commands()
    assert {argv[0] for argv in argvs} >= {"customers", "list", "get", "delete", "sweep"}
    parser = build_parser()
    for argv in argvs:
        args = parser.parse_args(with_ids(argv, "6db94cb7-3a02-4a57-a03a-e2a92ce86406", "x"))
        assert not set(argv) & set(SECRET_FLAGS), argv
        if argv[0] in ("list", "get"):
            assert args.mask, argv


@pytest.fixture
async def fake() -> AsyncIterator[FakeLean]:
    async with FakeLean(customers=10, seed=4) as server:
        yield server


async def test_the_read_commands_run_as_written_and_show_no_full_account_number(
    fake: FakeLean,
) -> None:
    customer_id, source = next(
        (c, s) for c in fake.customer_ids for s in fake.data.payment_sources(c) if s.accounts
    )
    numbers = [n for a in source.accounts for n in (a.account_number, a.iban) if n]
    app_user_id = next(c.app_user_id for c in fake.customers if c.customer_id == customer_id)
    assert app_user_id is not None
    reads = [
        argv
        for argv in commands()
        if argv[0] in ("customers", "list", "get") and "--environment" not in argv
    ]
    assert len(reads) == 3
    for argv in reads:
        ran = await run_cli(
            *with_ids(argv, customer_id, source.id, app_user_id),
            "--base-url",
            fake.url,
            env=app_token_env(fake),
        )
        assert ran.status == 0, ran.stderr
        if argv[0] == "customers":
            assert json.loads(ran.stdout) == {
                "customer_id": customer_id,
                "app_user_id": app_user_id,
            }
            continue
        assert source.id in ran.stdout
        for number in numbers:
            assert number not in ran.stdout
            assert number[-4:] in ran.stdout

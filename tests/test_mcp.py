"""The MCP server (lean_async.mcp) through the SDK's own client, in memory, against the
embedded fake Lean server."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import msgspec
import pytest
from _samples import APP_TOKEN, CLIENT_SECRET, FAST_RETRY
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent

from lean_async import LeanClient, PaymentSource
from lean_async.mcp import create_server
from lean_async.testing import FakeLean

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
REQUEST_ID = re.compile(r"\(request id [0-9a-f-]{36}\)")
READ_ONLY = {"find_customer", "list_payment_sources", "get_payment_source"}
# The in-memory JSON-RPC streams after the initialize handshake, and the SDK's direct
# in-process dispatch of the 2026 protocol: a server must behave the same on both.
MODES = ("legacy", "auto")

Connect = Callable[..., AbstractAsyncContextManager[Client]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeLean]:
    async with FakeLean(
        customers=4, seed=7, app_token=APP_TOKEN, client_secret=CLIENT_SECRET
    ) as server:
        yield server


@pytest.fixture
async def lean(fake: FakeLean) -> AsyncIterator[LeanClient]:
    async with fake.client(oauth=True, retry=FAST_RETRY) as client:
        yield client


@pytest.fixture(params=MODES)
def connect(request: pytest.FixtureRequest, lean: LeanClient) -> Connect:
    """``async with connect(**create_server_options) as client:`` an MCP client session."""

    @asynccontextmanager
    async def connected(client: LeanClient | None = None, **options: bool) -> AsyncIterator[Client]:
        server = create_server(client or lean, **options)
        async with Client(server, mode=request.param, read_timeout_seconds=10) as session:
            yield session

    return connected


def text_of(result: CallToolResult) -> str:
    (block,) = result.content
    assert isinstance(block, TextContent)
    return block.text


def source_with_accounts(fake: FakeLean) -> tuple[str, PaymentSource]:
    """A customer and one of their payment sources that has accounts."""
    for customer_id in fake.customer_ids:
        for source in fake.data.payment_sources(customer_id):
            if source.accounts:
                return customer_id, source
    raise AssertionError("the fake data has no payment source with accounts")


def builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)


# -- the tool list ---------------------------------------------------------------------


@pytest.mark.parametrize("allow_delete", [False, True])
async def test_the_tool_list_is_read_only_unless_delete_is_allowed(
    connect: Connect, allow_delete: bool
) -> None:
    async with connect(allow_delete=allow_delete) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    expected = READ_ONLY | ({"delete_payment_source"} if allow_delete else set())
    assert set(tools) == expected
    for name in READ_ONLY:
        hints = tools[name].annotations
        assert hints is not None
        assert (hints.read_only_hint, hints.destructive_hint) == (True, False)
        assert (hints.idempotent_hint, hints.open_world_hint) == (True, False)
    if allow_delete:
        hints = tools["delete_payment_source"].annotations
        assert hints is not None
        assert (hints.read_only_hint, hints.destructive_hint) == (False, True)
        assert hints.idempotent_hint is True


@pytest.mark.parametrize(
    ("name", "required", "optional"),
    [
        ("find_customer", [], ["app_user_id", "customer_id"]),
        ("list_payment_sources", ["customer_id"], []),
        ("get_payment_source", ["customer_id", "payment_source_id"], []),
        ("delete_payment_source", ["customer_id", "payment_source_id"], ["reason"]),
    ],
)
async def test_each_tool_has_a_closed_input_schema_and_an_object_output_schema(
    connect: Connect, name: str, required: list[str], optional: list[str]
) -> None:
    async with connect(allow_delete=True) as client:
        (tool,) = [tool for tool in (await client.list_tools()).tools if tool.name == name]
    schema = tool.input_schema
    assert schema["type"] == "object"
    assert schema["required"] == required
    assert set(schema["properties"]) == {*required, *optional}
    assert schema["additionalProperties"] is False
    for id_name in {*required, *optional} & {"customer_id", "payment_source_id"}:
        assert '"format": "uuid"' in json.dumps(schema["properties"][id_name])
    assert "$ref" not in json.dumps(schema)
    assert tool.output_schema is not None
    assert tool.output_schema["type"] == "object"
    assert "$ref" not in json.dumps(tool.output_schema)
    assert tool.description


async def test_the_delete_reason_is_lean_s_enum_with_user_requested_by_default(
    connect: Connect,
) -> None:
    async with connect(allow_delete=True) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    reason = tools["delete_payment_source"].input_schema["properties"]["reason"]
    assert sorted(reason["enum"]) == ["TPP_REQUESTED", "USER_REQUESTED"]
    assert reason["default"] == "USER_REQUESTED"


# -- the tools' results ------------------------------------------------------------------


async def test_list_payment_sources_returns_the_customers_sources_masked(
    connect: Connect, fake: FakeLean, lean: LeanClient
) -> None:
    customer_id, _ = source_with_accounts(fake)
    expected = await lean.payment_sources.list(customer_id)
    async with connect() as client:
        result = await client.call_tool("list_payment_sources", {"customer_id": customer_id})
    assert not result.is_error
    assert result.structured_content == {
        "customer_id": customer_id,
        "payment_sources": builtins([source.masked() for source in expected]),
    }
    assert json.loads(text_of(result)) == result.structured_content


async def test_list_payment_sources_of_a_customer_without_any_is_an_empty_list(
    connect: Connect,
) -> None:
    async with connect() as client:
        result = await client.call_tool("list_payment_sources", {"customer_id": UNKNOWN_ID})
    assert not result.is_error
    assert result.structured_content == {"customer_id": UNKNOWN_ID, "payment_sources": []}


async def test_get_payment_source_returns_the_source_masked(
    connect: Connect, fake: FakeLean
) -> None:
    customer_id, source = source_with_accounts(fake)
    async with connect() as client:
        result = await client.call_tool(
            "get_payment_source", {"customer_id": customer_id, "payment_source_id": source.id}
        )
    assert not result.is_error
    assert result.structured_content == builtins(source.masked())
    assert json.loads(text_of(result)) == result.structured_content


@pytest.mark.parametrize("reason", [None, "USER_REQUESTED", "TPP_REQUESTED"])
async def test_delete_payment_source_deletes_it_with_the_reason_given(
    connect: Connect, fake: FakeLean, lean: LeanClient, reason: str | None
) -> None:
    customer_id, source = source_with_accounts(fake)
    arguments = {"customer_id": customer_id, "payment_source_id": source.id}
    if reason is not None:
        arguments["reason"] = reason
    async with connect(allow_delete=True) as client:
        result = await client.call_tool("delete_payment_source", arguments)
    assert not result.is_error, text_of(result)
    assert result.structured_content == {
        **arguments,
        "deleted": True,
        "reason": reason or "USER_REQUESTED",
    }
    remaining = await lean.payment_sources.list(customer_id)
    assert source.id not in {other.id for other in remaining}


@pytest.mark.parametrize("by", ["customer_id", "app_user_id"])
async def test_find_customer_by_either_id_returns_both(
    connect: Connect, fake: FakeLean, by: str
) -> None:
    # An app user id is free text: this one must travel as one path segment.
    customer = fake.add_customer("user/42 of the ünïcode app")
    async with connect() as client:
        result = await client.call_tool("find_customer", {by: getattr(customer, by)})
    assert not result.is_error, text_of(result)
    assert result.structured_content == {
        "customer_id": customer.customer_id,
        "app_user_id": "user/42 of the ünïcode app",
    }
    assert json.loads(text_of(result)) == result.structured_content


@pytest.mark.parametrize("by", ["customer_id", "app_user_id"])
async def test_find_customer_of_nobody_is_a_tool_error_naming_404_and_the_request_id(
    connect: Connect, by: str
) -> None:
    unknown = {"customer_id": UNKNOWN_ID, "app_user_id": "nobody"}
    async with connect() as client:
        result = await client.call_tool("find_customer", {by: unknown[by]})
    assert result.is_error
    text = text_of(result)
    assert "NotFoundError: HTTP 404 CUSTOMER_NOT_FOUND: " in text
    assert REQUEST_ID.search(text), text


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        ({}, "invalid arguments: give exactly one of app_user_id and customer_id"),
        (
            {"app_user_id": "u", "customer_id": UNKNOWN_ID},
            "invalid arguments: give exactly one of app_user_id and customer_id",
        ),
        ({"customer_id": "u-42"}, "customer_id must be a UUID"),
        ({"app_user_id": ""}, "app_user_id must be a string of 1 to 255 characters"),
        ({"app_user_id": "x" * 256}, "app_user_id must be a string of 1 to 255 characters"),
        ({"app_user_id": 42}, "invalid arguments: Expected `str | null`, got `int`"),
    ],
)
async def test_find_customer_with_arguments_lean_cannot_take_is_a_tool_error_before_a_request(
    connect: Connect, fake: FakeLean, arguments: dict[str, Any], complaint: str
) -> None:
    async with connect() as client:
        fake.stats.reset()
        result = await client.call_tool("find_customer", arguments)
    assert result.is_error
    assert text_of(result).startswith(complaint), text_of(result)
    assert fake.stats.requests == 0


# -- masking -------------------------------------------------------------------------------


@pytest.mark.parametrize("reveal", [False, True])
@pytest.mark.parametrize("tool", ["list_payment_sources", "get_payment_source"])
async def test_account_numbers_and_ibans_are_shown_in_full_only_when_revealed(
    connect: Connect, fake: FakeLean, tool: str, reveal: bool
) -> None:
    customer_id, source = source_with_accounts(fake)
    arguments = {"customer_id": customer_id, "payment_source_id": source.id}
    if tool == "list_payment_sources":
        del arguments["payment_source_id"]
    async with connect(reveal_account_numbers=reveal) as client:
        result = await client.call_tool(tool, arguments)
    assert not result.is_error
    everything = result.model_dump_json()
    numbers = [
        number
        for account in source.accounts
        for number in (account.account_number, account.iban)
        if number is not None and len(number) > 4
    ]
    assert numbers
    for number in numbers:
        assert (number in everything) is reveal
        assert number[-4:] in everything


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "code"),
    [
        ("get_payment_source", "UNKNOWN_PAYMENT_SOURCE"),
        ("list_payment_sources", "CUSTOMER_NOT_FOUND"),
    ],
)
async def test_a_lean_404_is_a_tool_error_naming_status_code_message_and_request_id(
    connect: Connect, fake: FakeLean, tool: str, code: str
) -> None:
    fake.unknown_customer_404 = True
    arguments = {"customer_id": fake.customer_ids[0], "payment_source_id": UNKNOWN_ID}
    if tool == "list_payment_sources":
        arguments = {"customer_id": UNKNOWN_ID}
    async with connect() as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error
    text = text_of(result)
    assert "NotFoundError" in text
    assert f"HTTP 404 {code}: " in text
    assert REQUEST_ID.search(text), text


async def test_refused_credentials_are_a_tool_error_naming_401_and_the_request_id(
    connect: Connect, fake: FakeLean
) -> None:
    wrong = "wrong-app-token-SECRET-91b2"
    async with (
        fake.client(app_token=wrong, retry=FAST_RETRY) as refused,
        connect(refused) as client,
    ):
        result = await client.call_tool(
            "list_payment_sources", {"customer_id": fake.customer_ids[0]}
        )
    assert result.is_error
    text = text_of(result)
    assert "AuthenticationError: HTTP 401 UNAUTHORIZED: " in text
    assert REQUEST_ID.search(text), text
    assert wrong not in text


INVALID_IDS = [
    ("list_payment_sources", {"customer_id": "not-a-uuid"}, "customer_id"),
    (
        "get_payment_source",
        {"customer_id": "12345", "payment_source_id": UNKNOWN_ID},
        "customer_id",
    ),
    (
        "get_payment_source",
        {"customer_id": UNKNOWN_ID, "payment_source_id": "../../oauth2/token"},
        "payment_source_id",
    ),
    (
        "delete_payment_source",
        {"customer_id": UNKNOWN_ID, "payment_source_id": "{" + UNKNOWN_ID + "}"},
        "payment_source_id",
    ),
]


@pytest.mark.parametrize(("tool", "arguments", "field"), INVALID_IDS)
async def test_an_invalid_id_is_a_tool_error_and_nothing_is_sent(
    connect: Connect, fake: FakeLean, tool: str, arguments: dict[str, str], field: str
) -> None:
    async with connect(allow_delete=True) as client:
        fake.stats.reset()
        result = await client.call_tool(tool, arguments)
    assert result.is_error
    assert text_of(result).startswith(f"{field} must be a UUID")
    assert fake.stats.requests == 0
    assert fake.stats.token_requests == 0


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        ({}, "missing required field `customer_id`"),
        ({"customer_id": 7}, "Expected `str`, got `int` - at `$.customer_id`"),
        ({"customer_id": UNKNOWN_ID, "limit": 3}, "unknown field `limit`"),
    ],
)
async def test_arguments_not_of_the_schema_are_a_tool_error(
    connect: Connect, arguments: dict[str, Any], complaint: str
) -> None:
    async with connect() as client:
        result = await client.call_tool("list_payment_sources", arguments)
    assert result.is_error
    assert text_of(result).startswith("invalid arguments: ")
    assert complaint in text_of(result)


async def test_a_delete_reason_outside_lean_s_enum_is_a_tool_error(connect: Connect) -> None:
    async with connect(allow_delete=True) as client:
        result = await client.call_tool(
            "delete_payment_source",
            {"customer_id": UNKNOWN_ID, "payment_source_id": UNKNOWN_ID, "reason": "BORED"},
        )
    assert result.is_error
    assert "invalid arguments: " in text_of(result)


async def test_delete_is_refused_unless_allowed_and_says_how_to_allow_it(
    connect: Connect, fake: FakeLean
) -> None:
    customer_id, source = source_with_accounts(fake)
    async with connect() as client:
        with pytest.raises(MCPError, match="--allow-delete"):
            await client.call_tool(
                "delete_payment_source",
                {"customer_id": customer_id, "payment_source_id": source.id},
            )
        with pytest.raises(MCPError, match="no tool named 'transfer_money'"):
            await client.call_tool("transfer_money", {})
    assert source.id in {s.id for s in fake.data.payment_sources(customer_id)}


async def test_an_unexpected_failure_is_a_tool_error_and_the_server_goes_on(
    connect: Connect,
    fake: FakeLean,
    lean: LeanClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(customer_id: str) -> list[PaymentSource]:
        raise RuntimeError("a bug")

    async with connect() as client:
        with monkeypatch.context() as patch:
            patch.setattr(lean.payment_sources, "list", broken)
            failed = await client.call_tool("list_payment_sources", {"customer_id": UNKNOWN_ID})
        after = await client.call_tool("list_payment_sources", {"customer_id": UNKNOWN_ID})
    assert failed.is_error
    assert text_of(failed) == "internal error (RuntimeError); see the server's log"
    assert "list_payment_sources failed unexpectedly" in caplog.text
    assert not after.is_error


async def test_no_secret_reaches_a_result_an_error_or_the_log(
    connect: Connect, fake: FakeLean, caplog: pytest.LogCaptureFixture
) -> None:
    customer_id, source = source_with_accounts(fake)
    ids = {"customer_id": customer_id, "payment_source_id": source.id}
    calls = [
        ("find_customer", {"customer_id": customer_id}),
        ("find_customer", {"app_user_id": "someone"}),
        ("list_payment_sources", {"customer_id": customer_id}),
        ("get_payment_source", ids),
        ("get_payment_source", {"customer_id": customer_id, "payment_source_id": UNKNOWN_ID}),
        ("get_payment_source", {"customer_id": "bad", "payment_source_id": source.id}),
        ("delete_payment_source", ids),
        ("delete_payment_source", ids),  # now a 404
    ]
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    async with (
        fake.client(app_token="wrong-SECRET-app-token", retry=FAST_RETRY) as refused,
        connect(allow_delete=True) as client,
        connect(refused) as refused_client,
    ):
        seen.append((await client.list_tools()).model_dump_json())
        for name, arguments in calls:
            seen.append((await client.call_tool(name, arguments)).model_dump_json())
        refused_result = await refused_client.call_tool("list_payment_sources", calls[2][1])
        seen.append(refused_result.model_dump_json())
    seen.append(caplog.text)
    everything = "\n".join(seen)
    assert "lean_async" in caplog.text  # the client's own log was captured
    for secret in (APP_TOKEN, CLIENT_SECRET, "wrong-SECRET-app-token", "eyJ"):
        assert secret not in everything


async def test_the_server_leaves_the_callers_client_open(
    connect: Connect, lean: LeanClient
) -> None:
    async with connect() as client:
        await client.call_tool("list_payment_sources", {"customer_id": UNKNOWN_ID})
    assert not lean.closed
    assert await lean.payment_sources.list(UNKNOWN_ID) == []


def test_importing_lean_async_does_not_import_the_mcp_sdk() -> None:
    code = (
        "import sys, lean_async, lean_async.cli, lean_async.testing\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('mcp', 'uvicorn'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)

"""An MCP server: Lean's Payment Sources as tools for AI agents (the ``mcp`` extra).

``create_server(client)`` builds the server around a LeanClient the caller owns;
``lean-async mcp`` runs one over stdio or streamable HTTP. Safe by default: the delete
tool exists only with ``allow_delete=True``, and account numbers and IBANs are masked
in every result unless ``reveal_account_numbers=True``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

try:
    from mcp import types
    from mcp.server import Server, ServerRequestContext
    from mcp.shared.exceptions import MCPError
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("lean_async.mcp needs the MCP SDK: pip install 'lean-async[mcp]'") from exc

from ._client import LeanClient
from ._constants import LOGGER_NAME
from ._exceptions import APIError, InvalidIdError, LeanError
from ._version import __version__
from .models import PaymentSource
from .resources.payment_sources import DeleteReason
from .types import Customer

__all__ = ["SERVER_NAME", "create_server"]

SERVER_NAME = "lean-async"

logger = logging.getLogger(f"{LOGGER_NAME}.mcp")

_INSTRUCTIONS = """\
Tools for Lean Technologies' Payment Sources API: the bank accounts a customer linked
for payments. Customer and payment source ids are UUIDs; find_customer turns the
application's own user id into Lean's customer id. Account numbers and IBANs
come masked to their last four characters unless the server was started to reveal them.
A tool error names Lean's HTTP status, error code, message and request id: quote the
request id when reporting a problem to Lean. Deleting a payment source revokes the
customer's consent and cannot be undone: do it only when the user asked for it."""

_UUID_FORMAT = {"format": "uuid"}

_CustomerId = Annotated[
    str,
    msgspec.Meta(description="The customer's id in Lean, a UUID.", extra_json_schema=_UUID_FORMAT),
]
_PaymentSourceId = Annotated[
    str,
    msgspec.Meta(description="The payment source's id, a UUID.", extra_json_schema=_UUID_FORMAT),
]


class _CustomerArguments(msgspec.Struct, forbid_unknown_fields=True):
    customer_id: _CustomerId


class _SourceArguments(msgspec.Struct, forbid_unknown_fields=True):
    customer_id: _CustomerId
    payment_source_id: _PaymentSourceId


class _DeleteArguments(msgspec.Struct, forbid_unknown_fields=True):
    customer_id: _CustomerId
    payment_source_id: _PaymentSourceId
    reason: Annotated[
        DeleteReason,
        msgspec.Meta(description="Sent to Lean: USER_REQUESTED when the customer asked."),
    ] = DeleteReason.USER_REQUESTED


class _FindCustomerArguments(msgspec.Struct, forbid_unknown_fields=True):
    app_user_id: Annotated[
        str | None,
        msgspec.Meta(
            description="The application's own id for the user, given to Lean when the "
            "customer was created (text of 1 to 255 characters)."
        ),
    ] = None
    customer_id: _CustomerId | None = None

    def __post_init__(self) -> None:
        # msgspec turns this into a ValidationError: the arguments do not fit.
        if (self.app_user_id is None) == (self.customer_id is None):
            raise ValueError("give exactly one of app_user_id and customer_id")


class _PaymentSourceList(msgspec.Struct, kw_only=True):
    """A customer's payment sources."""

    customer_id: str
    payment_sources: list[PaymentSource]


class _Deletion(msgspec.Struct, kw_only=True):
    """A payment source that was deleted (its consent revoked)."""

    customer_id: str
    payment_source_id: str
    deleted: bool
    reason: str


@dataclass(frozen=True)
class _Lean:
    """What a tool works with: the client, and how a payment source may be shown."""

    client: LeanClient
    shown: Callable[[PaymentSource], PaymentSource]


async def _find_customer(lean: _Lean, args: _FindCustomerArguments) -> Customer:
    if args.customer_id is not None:
        return await lean.client.customers.get(args.customer_id)
    assert args.app_user_id is not None  # one of the two, as __post_init__ checked
    return await lean.client.customers.get_by_app_user_id(args.app_user_id)


async def _list_payment_sources(lean: _Lean, args: _CustomerArguments) -> _PaymentSourceList:
    sources = await lean.client.payment_sources.list(args.customer_id)
    return _PaymentSourceList(
        customer_id=args.customer_id, payment_sources=[lean.shown(s) for s in sources]
    )


async def _get_payment_source(lean: _Lean, args: _SourceArguments) -> PaymentSource:
    source = await lean.client.payment_sources.get(args.customer_id, args.payment_source_id)
    return lean.shown(source)


async def _delete_payment_source(lean: _Lean, args: _DeleteArguments) -> _Deletion:
    await lean.client.payment_sources.delete(
        args.customer_id, args.payment_source_id, reason=args.reason
    )
    return _Deletion(
        customer_id=args.customer_id,
        payment_source_id=args.payment_source_id,
        deleted=True,
        reason=args.reason.value,
    )


@dataclass(frozen=True)
class _Tool:
    name: str
    title: str
    description: str
    arguments: type[msgspec.Struct]
    result: type[msgspec.Struct]
    call: Callable[[_Lean, Any], Awaitable[msgspec.Struct]]
    read_only: bool = True

    def listing(self) -> types.Tool:
        return types.Tool(
            name=self.name,
            title=self.title,
            description=self.description,
            input_schema=_schema(self.arguments),
            output_schema=_schema(self.result),
            annotations=types.ToolAnnotations(
                title=self.title,
                read_only_hint=self.read_only,
                destructive_hint=not self.read_only,
                # Deleting what is already gone changes nothing more.
                idempotent_hint=True,
                # One Lean application's customers, not the open web.
                open_world_hint=False,
            ),
        )


_TOOLS = (
    _Tool(
        name="find_customer",
        title="Find a customer",
        description="A Lean customer, by the application's own user id (app_user_id) or by "
        "Lean's customer_id: give exactly one. Answers both ids; the customer_id is what "
        "the payment source tools take.",
        arguments=_FindCustomerArguments,
        result=Customer,
        call=_find_customer,
    ),
    _Tool(
        name="list_payment_sources",
        title="List a customer's payment sources",
        description="All payment sources (linked bank accounts) of one customer, with their "
        "beneficiaries and accounts; an empty list when the customer has none.",
        arguments=_CustomerArguments,
        result=_PaymentSourceList,
        call=_list_payment_sources,
    ),
    _Tool(
        name="get_payment_source",
        title="Get a payment source",
        description="One payment source of a customer, with its beneficiaries (and their "
        "cool-off status) and accounts.",
        arguments=_SourceArguments,
        result=PaymentSource,
        call=_get_payment_source,
    ),
    _Tool(
        name="delete_payment_source",
        title="Delete a payment source",
        description="Delete a customer's payment source, revoking the consent behind it. "
        "Cannot be undone: call it only when the user asked for this deletion.",
        arguments=_DeleteArguments,
        result=_Deletion,
        call=_delete_payment_source,
        read_only=False,
    ),
)


def create_server(
    client: LeanClient, *, allow_delete: bool = False, reveal_account_numbers: bool = False
) -> Server[Any]:
    """An MCP server (the SDK's low-level ``Server``) whose tools call Lean through
    ``client``. The caller owns the client: close it when the server stops serving.

    Read-only tools, unless ``allow_delete`` adds ``delete_payment_source``. Account
    numbers and IBANs are masked in every result unless ``reveal_account_numbers``.
    A failed call is a tool error (``isError``) naming what went wrong; no tool call
    raises into the server.
    """
    tools = {tool.name: tool for tool in _TOOLS if allow_delete or tool.read_only}
    listing = {name: tool.listing() for name, tool in tools.items()}
    lean = _Lean(client, (lambda s: s) if reveal_account_numbers else PaymentSource.masked)

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=list(listing.values()))

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        tool = tools.get(params.name)
        if tool is None:
            raise MCPError(types.INVALID_PARAMS, _unknown_tool(params.name))
        return await _call(tool, lean, params.arguments or {})

    def input_schema(name: str) -> Mapping[str, Any] | None:
        tool = listing.get(name)
        return None if tool is None else tool.input_schema

    return Server(
        SERVER_NAME,
        version=__version__,
        title="Lean Payment Sources",
        instructions=_INSTRUCTIONS,
        get_tool_input_schema=input_schema,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def _call(tool: _Tool, lean: _Lean, arguments: Mapping[str, Any]) -> types.CallToolResult:
    """Run one tool call; every failure becomes a tool error the agent can read."""
    try:
        args = msgspec.convert(arguments, tool.arguments)
    except msgspec.ValidationError as exc:
        return _tool_error(tool, f"invalid arguments: {exc}")
    try:
        result = await tool.call(lean, args)
    except InvalidIdError as exc:
        return _tool_error(tool, f"{exc} (nothing was sent to Lean)")
    except APIError as exc:
        # The status, Lean's code, its message and the request id: what the agent needs
        # to explain the failure, and what Lean's support asks for.
        return _tool_error(tool, f"Lean answered with an error: {type(exc).__name__}: {exc}")
    except LeanError as exc:
        return _tool_error(tool, f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        logger.exception("tool %s failed unexpectedly", tool.name)
        return _tool_error(tool, f"internal error ({type(exc).__name__}); see the server's log")
    structured = msgspec.to_builtins(result)
    return types.CallToolResult(
        content=[types.TextContent(text=msgspec.json.encode(structured).decode())],
        structured_content=structured,
    )


def _tool_error(tool: _Tool, text: str) -> types.CallToolResult:
    logger.info("tool %s failed: %s", tool.name, text)
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


def _unknown_tool(name: str) -> str:
    known = {tool.name: tool for tool in _TOOLS}.get(name)
    if known is not None and not known.read_only:
        return f"{name} is not enabled: start the server with --allow-delete (allow_delete=True)"
    return f"no tool named {name!r}"


def _schema(struct: type[msgspec.Struct]) -> dict[str, Any]:
    """The JSON Schema of ``struct`` with every reference inlined: a tool's schemas must
    be objects at the root, and not every client resolves ``$ref``."""
    (root,), definitions = msgspec.json.schema_components([struct])

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref is not None:
                rest = {key: value for key, value in node.items() if key != "$ref"}
                return {**inline(definitions[ref.rsplit("/", 1)[-1]]), **rest}
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    schema: dict[str, Any] = inline(root)
    schema.pop("title", None)  # the struct's name, of no use to an agent
    return schema

"""``lean-async mcp``: the MCP server (``lean_async.mcp``) over stdio or streamable HTTP.

The SDK is an optional extra: it is imported when the command runs, not when the
command line starts."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .args import client_from_args
from .errors import CommandError, UsageError

if TYPE_CHECKING:
    from mcp.server import Server

__all__ = ["HTTP_PATH", "add_parser"]

HTTP_HOST = "127.0.0.1"
HTTP_PATH = "/mcp"
# Open streams (an agent's event stream) must not hold up Ctrl-C for long.
_HTTP_SHUTDOWN_SECONDS = 2

DESCRIPTION = """\
Serve Lean's Payment Sources to AI agents as MCP tools: find_customer,
list_payment_sources and get_payment_source (read-only), and delete_payment_source with
--allow-delete. Account numbers and IBANs are masked in every result unless
--reveal-account-numbers. Speaks MCP over stdin and stdout (how Claude Desktop, Cursor
and other MCP clients start a server), or with --http PORT serves streamable HTTP on
127.0.0.1:PORT/mcp until Ctrl-C. Logs go to stderr.
"""

EPILOG = """\
examples:
  LEAN_APP_TOKEN=... lean-async mcp
  LEAN_CLIENT_ID=... LEAN_CLIENT_SECRET=... lean-async mcp --http 8765
"""


def add_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "mcp",
        parents=parents,
        help="serve the payment sources to AI agents as MCP tools (stdio or HTTP)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--http",
        type=_port,
        metavar="PORT",
        help=f"serve streamable HTTP on {HTTP_HOST}:PORT{HTTP_PATH} instead of stdio "
        "(0: a free port, printed on stderr)",
    )
    parser.add_argument(
        "--allow-delete",
        action="store_true",
        help="add the delete_payment_source tool (it revokes the customer's consent)",
    )
    parser.add_argument(
        "--reveal-account-numbers",
        action="store_true",
        help="show account numbers and IBANs in full (masked to the last 4 by default)",
    )
    # A signal is how the HTTP server is meant to end.
    parser.set_defaults(run=run_mcp, stops_cleanly=True)


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return int(text)


async def run_mcp(args: argparse.Namespace) -> int:
    try:
        from ..mcp import create_server
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    # One pooled client for the server's lifetime, closed however serving ends.
    async with client_from_args(args) as client:
        server = create_server(
            client,
            allow_delete=args.allow_delete,
            reveal_account_numbers=args.reveal_account_numbers,
        )
        if args.http is None:
            await _serve_stdio(server)
        else:
            await _serve_http(server, args.http)
    return 0


async def _serve_stdio(server: Server[Any]) -> None:
    """Until the client closes stdin."""
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


async def _serve_http(server: Server[Any], port: int) -> None:
    """Until cancelled (Ctrl-C), then a graceful shutdown of a few seconds at most."""
    import uvicorn

    class _SignalFreeServer(uvicorn.Server):
        """Without uvicorn's signal handlers: the command line's own stop it, through
        the cancellation turned into a graceful shutdown below."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    app = server.streamable_http_app(streamable_http_path=HTTP_PATH, host=HTTP_HOST)
    config = uvicorn.Config(
        app,
        log_config=None,  # the process's logging stays as the command line set it
        access_log=False,
        timeout_graceful_shutdown=_HTTP_SHUTDOWN_SECONDS,
    )
    with _listening(port) as sock:
        host, bound = sock.getsockname()[:2]
        sys.stderr.write(f"MCP server (streamable HTTP) on http://{host}:{bound}{HTTP_PATH}\n")
        sys.stderr.flush()
        uvicorn_server = _SignalFreeServer(config)
        serving = asyncio.ensure_future(uvicorn_server.serve(sockets=[sock]))
        try:
            await asyncio.shield(serving)
        except asyncio.CancelledError:
            uvicorn_server.should_exit = True
            # An agent's event stream still open when the grace period ends is cut, which
            # uvicorn reports as an application error with a traceback: it is not one.
            logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
            await serving
            raise


@contextlib.contextmanager
def _listening(port: int) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HTTP_HOST, port))
        # Listening before the address is announced: early connections wait in the backlog.
        sock.listen()
    except OSError as exc:
        sock.close()
        raise CommandError(f"cannot serve on {HTTP_HOST}:{port}: {exc.strerror or exc}") from None
    with sock:
        yield sock

"""Command-line flags for a fake server process, shared by ``python -m lean_async.testing``
and any other command that runs one."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import msgspec

from .._cli.args import in_flag_terms, whole_number
from ._data import DataSet
from ._faults import Faults, Latency
from ._server import DEFAULT_TOKEN_TTL, FakeLean

__all__ = ["add_server_arguments", "cannot_serve", "describe", "server_options"]


def _latency(text: str) -> Latency:
    """``0.05`` (fixed) or ``0.01-0.2`` (uniform range), in seconds."""
    low, dash, high = text.partition("-")
    try:
        return (float(low), float(high)) if dash else float(low)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected seconds (0.05) or a range (0.01-0.2), got {text!r}"
        ) from None


def _positive(text: str) -> int:
    """A whole number >= 1."""
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _load(path: str) -> DataSet:
    try:
        return DataSet.load(path)
    except OSError as exc:
        raise ValueError(f"cannot read --data {path}: {exc.strerror or exc}") from None
    except msgspec.MsgspecError as exc:
        raise ValueError(f"--data {path} is not a saved data set: {exc}") from None


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the fake server's flags (address, data, faults, webhooks) to ``parser``."""
    where = parser.add_argument_group("server")
    where.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    where.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    data = parser.add_argument_group("data")
    data.add_argument(
        "--customers", type=whole_number, default=100, metavar="N",
        help="customers to generate (default %(default)s)",
    )  # fmt: skip
    data.add_argument("--seed", type=int, default=0, help="of the generated data (default 0)")
    data.add_argument(
        "--data", metavar="PATH", help="load the data set from this JSON file instead"
    )
    data.add_argument(
        "--token-ttl", type=float, default=DEFAULT_TOKEN_TTL, metavar="SECONDS",
        help="lifetime of the OAuth2 tokens it issues (default %(default)s, as Lean)",
    )  # fmt: skip
    data.add_argument(
        "--delete-status", type=int, choices=(200, 204), default=200,
        help="status of a successful delete (default %(default)s)",
    )  # fmt: skip
    data.add_argument(
        "--unknown-customer-404", action="store_true",
        help="answer 404 CUSTOMER_NOT_FOUND for a customer it does not have (default: an "
        "empty list)",
    )  # fmt: skip
    data.add_argument(
        "--customer-page-cap",
        type=_positive,
        default=None,
        metavar="N",
        help="serve at most N customers per page, whatever page_size asks for",
    )
    faults = parser.add_argument_group(
        "faults",
        "Shares of all requests, from 0 to 1. A request meets at most one of the error, drop, "
        "truncate, malformed and slow-body faults: their rates add up to at most 1.",
    )
    faults.add_argument(
        "--latency", type=_latency, default=0.0, metavar="S|LOW-HIGH",
        help="delay before each answer: seconds, or a uniform range (default none)",
    )  # fmt: skip
    faults.add_argument(
        "--error-rate", type=float, default=0.0, metavar="SHARE",
        help="answered 500, 502 or 503 before being handled",
    )  # fmt: skip
    faults.add_argument(
        "--html-error-share", type=float, default=0.5, metavar="SHARE",
        help="of those errors, an HTML page as a proxy sends (default %(default)s)",
    )  # fmt: skip
    faults.add_argument(
        "--rate-limit", type=float, default=None, metavar="REQ_PER_S",
        help="answer 429 above this many requests per second (default no limit)",
    )  # fmt: skip
    faults.add_argument(
        "--no-retry-after", action="store_true", help="send 429s without Retry-After"
    )
    faults.add_argument(
        "--drop-rate", type=float, default=0.0, metavar="SHARE",
        help="connection closed without an answer",
    )  # fmt: skip
    faults.add_argument(
        "--truncate-rate", type=float, default=0.0, metavar="SHARE",
        help="body cut short of its Content-Length",
    )  # fmt: skip
    faults.add_argument(
        "--malformed-rate", type=float, default=0.0, metavar="SHARE",
        help="200 with a body that is not valid JSON (or an HTML page)",
    )  # fmt: skip
    faults.add_argument(
        "--slow-body-rate", type=float, default=0.0, metavar="SHARE",
        help="body trickled out in chunks",
    )  # fmt: skip
    faults.add_argument(
        "--slow-body-chunk", type=int, default=64, metavar="BYTES",
        help="size of those chunks (default %(default)s)",
    )  # fmt: skip
    faults.add_argument(
        "--slow-body-delay", type=float, default=0.05, metavar="SECONDS",
        help="pause before each chunk (default %(default)s)",
    )  # fmt: skip
    faults.add_argument("--fault-seed", type=int, default=0, help="of the fault draws (default 0)")
    hooks = parser.add_argument_group("webhooks", "Signed payment_source.* events on changes.")
    hooks.add_argument("--webhook-url", metavar="URL", help="where to POST webhooks")
    hooks.add_argument(
        "--webhook-secret", metavar="SECRET", help="key of their lean-signature (needs the URL)"
    )


def cannot_serve(host: str, port: int, exc: OSError) -> str:
    """One sentence for a server that could not start listening (a port in use...)."""
    return f"cannot serve on {host}:{port}: {exc.strerror or exc}"


def server_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``serve`` from parsed ``add_server_arguments`` flags;
    ValueError, in one sentence, for flags that do not fit together or a bad data file."""
    if (args.webhook_url is None) != (args.webhook_secret is None):
        raise ValueError("give both --webhook-url and --webhook-secret, or neither")
    return {
        "host": args.host,
        "port": args.port,
        "customers": args.customers,
        "seed": args.seed,
        "data": None if args.data is None else _load(args.data),
        "token_ttl": args.token_ttl,
        "delete_status": args.delete_status,
        "unknown_customer_404": args.unknown_customer_404,
        "customer_page_cap": args.customer_page_cap,
        "webhook_url": args.webhook_url,
        "webhook_secret": args.webhook_secret,
        "faults": _faults(args),
    }


# The fields of Faults that are flags of the same name (seed is --fault-seed).
_FAULT_FLAGS = tuple(
    field.name for field in dataclasses.fields(Faults) if field.name not in ("seed", "retry_after")
)


def _faults(args: argparse.Namespace) -> Faults:
    try:
        return Faults(
            latency=args.latency,
            error_rate=args.error_rate,
            html_error_share=args.html_error_share,
            rate_limit=args.rate_limit,
            retry_after=not args.no_retry_after,
            drop_rate=args.drop_rate,
            truncate_rate=args.truncate_rate,
            malformed_rate=args.malformed_rate,
            slow_body_rate=args.slow_body_rate,
            slow_body_chunk=args.slow_body_chunk,
            slow_body_delay=args.slow_body_delay,
            seed=args.fault_seed,
        )
    except ValueError as exc:
        raise ValueError(in_flag_terms(str(exc), _FAULT_FLAGS)) from None


def describe(server: FakeLean) -> dict[str, Any]:
    """What a caller needs to reach ``server``."""
    return {
        "url": server.url,
        "token_url": server.token_url,
        "app_token": server.app_token,
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "customers": len(server.customer_ids),
        "faults": server.faults.describe(),
    }

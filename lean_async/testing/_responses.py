"""The fake server's answers as Lean shapes them: its headers, its JSON error body, and the
HTML page of a proxy in front of it."""

from __future__ import annotations

import http
import os
import uuid
from datetime import datetime, timezone

import msgspec
from aiohttp import hdrs, web

from .._constants import REQUEST_ID_HEADER, TRACE_ID_HEADER

__all__ = [
    "CUSTOMER_NOT_FOUND",
    "JSON",
    "error_body",
    "lean_error",
    "lean_headers",
    "proxy_error_page",
    "respond",
    "unknown_customer",
]

JSON = "application/json"
# Lean documents no code for a customer that does not exist: this server's choice.
CUSTOMER_NOT_FOUND = "CUSTOMER_NOT_FOUND"


def lean_headers(content_type: str | None = JSON) -> dict[str, str]:
    """Every answer's headers: fresh correlation and trace ids, as Lean sends."""
    headers = {REQUEST_ID_HEADER: str(uuid.uuid4()), TRACE_ID_HEADER: os.urandom(16).hex()}
    if content_type is not None:
        headers[hdrs.CONTENT_TYPE] = content_type
    return headers


def respond(status: int, body: bytes, content_type: str = JSON) -> web.Response:
    return web.Response(status=status, body=body, headers=lean_headers(content_type))


def error_body(code: str, message: str) -> bytes:
    return msgspec.json.encode(
        {
            "timestamp": datetime.now(timezone.utc),
            "status": code,
            "message": message,
            "metadata": None,
        }
    )


def lean_error(status: int, code: str, message: str) -> web.Response:
    return respond(status, error_body(code, message))


def proxy_error_page(status: int) -> bytes:
    """The HTML a proxy in front of Lean answers with instead of Lean's JSON."""
    title = f"{status} {http.HTTPStatus(status).phrase}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


def unknown_customer() -> web.Response:
    return lean_error(404, CUSTOMER_NOT_FOUND, "No customer with this id")

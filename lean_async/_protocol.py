"""The HTTP protocol as pure functions of plain values, with no I/O: building a request
(URL, headers, body) and deciding what an answer or a transport failure means. The
transport sends what these build and acts on what they decide."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
from yarl import URL

from ._constants import REQUEST_ID_HEADER
from ._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    LeanError,
    error_from_response,
    is_server_error,
)
from ._retry import parse_retry_after
from ._version import __version__

__all__ = [
    "BASE_HEADERS",
    "FORM",
    "JSON",
    "Decode",
    "Done",
    "Headers",
    "RefreshAndRetry",
    "TransportFailure",
    "build_url",
    "describe",
    "encode_form",
    "failure_cause",
    "interpret_answer",
    "may_have_been_delivered",
    "request_headers",
    "request_id",
    "retry_after_of",
    "status_of",
    "transport_failure",
]

T = TypeVar("T")
Headers = Mapping[str, str]
# body -> result; raises DecodeError for a body of the wrong shape.
Decode = Callable[[bytes], T]

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
UNAUTHORIZED = 401
NOT_FOUND = 404


# -- building a request -------------------------------------------------------------------

# Every request's headers before the credential's.
BASE_HEADERS: Headers = {"User-Agent": f"lean-async/{__version__}", "Accept": JSON}


def build_url(
    base: URL, base_path: str, path: str, params: Mapping[str, str] | None
) -> tuple[URL, str]:
    """The URL of ``path`` (already percent-encoded) under ``base`` (whose path is
    ``base_path``, without a trailing slash), and the path with its query as logs and
    events show it. Every query name and value is percent-encoded (a ``+`` stays a ``+``)."""
    if not params:
        # Only the path is swapped in: yarl parses a whole URL string three times slower.
        return base.with_path(base_path + path, encoded=True), path
    query = urlencode(params, quote_via=quote, safe="")
    url = URL.build(
        scheme=base.scheme,
        authority=base.raw_authority,
        path=base_path + path,
        query_string=query,
        encoded=True,
    )
    return url, f"{path}?{query}"


def encode_form(form: Mapping[str, str]) -> bytes:
    """A form as an ``application/x-www-form-urlencoded`` body."""
    return urlencode(form).encode()


def request_headers(credential_headers: Headers, content_type: str | None) -> Headers:
    """The headers of one attempt: the credential's (which include the base headers),
    and the body's Content-Type when there is a body."""
    if content_type is None:
        return credential_headers
    return {**credential_headers, "Content-Type": content_type}


# -- what an answer means -----------------------------------------------------------------


@dataclass(slots=True)
class Done(Generic[T]):
    """The call succeeded with ``result``."""

    result: T


@dataclass(slots=True)
class RefreshAndRetry:
    """The credential was refused (``error``): refresh it and send once more."""

    error: APIError


def retry_after_of(headers: Headers, now: float) -> float | None:
    """The seconds an answer's Retry-After asks for (``now``: the Unix time), if any."""
    return parse_retry_after(headers.get("Retry-After"), now)


def request_id(headers: Headers) -> str | None:
    return headers.get(REQUEST_ID_HEADER)


def interpret_answer(
    status: int,
    headers: Headers,
    body: bytes,
    reason: str | None,
    decode: Decode[T],
    *,
    now: float,
    missing_ok: bool,
    maybe_delivered: bool,
    refreshable: bool,
) -> Done[T] | RefreshAndRetry | APIError:
    """What an HTTP answer means for the call: its result, a refresh of the credential
    and one more attempt, or the typed error (returned, for the caller's retry rules).

    ``missing_ok``: a 404 is a success once an earlier attempt ``maybe_delivered`` the
    request (a delete whose first answer was lost). ``refreshable``: a 401 may be cured
    by a new token (OAuth2, not yet refreshed in this call). ``decode`` raises
    DecodeError for a success body of the wrong shape.
    """
    if 200 <= status < 300:
        return Done(decode(body))
    if status == NOT_FOUND and missing_ok and maybe_delivered:
        return Done(decode(b""))
    error = error_from_response(
        status, headers, body, reason=reason, retry_after=retry_after_of(headers, now)
    )
    if status == UNAUTHORIZED and refreshable:
        return RefreshAndRetry(error)
    return error


def may_have_been_delivered(status: int) -> bool:
    """Whether an answer with ``status`` leaves open that the request took effect: a 5xx
    may come from a proxy after the server acted on it."""
    return is_server_error(status)


# -- what a transport failure means -------------------------------------------------------


@dataclass(slots=True)
class TransportFailure:
    """A request that got no HTTP answer: the library's ``error``, and whether the
    request may have reached the server (anything after the connection was made)."""

    error: LeanError
    maybe_delivered: bool


def transport_failure(exc: BaseException, where: str, elapsed_ms: float) -> TransportFailure:
    """The library's error for an exchange that failed with ``exc`` (an aiohttp, OS or
    timeout error) after ``elapsed_ms``; ``where`` names the request (method and path)."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # never connected: nothing sent
        return TransportFailure(
            APITimeoutError(f"{where}: connecting timed out after {elapsed_ms:.0f} ms"), False
        )
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        # The server's certificate failed verification: no retry can change that.
        error: LeanError = APIConnectionError(
            f"{where}: TLS certificate verification failed: {exc}", retryable=False
        )
        return TransportFailure(error, False)
    if isinstance(exc, aiohttp.ClientConnectorError):  # never connected: nothing sent
        return TransportFailure(APIConnectionError(f"{where}: cannot connect: {exc}"), False)
    if isinstance(exc, asyncio.TimeoutError):
        return TransportFailure(
            APITimeoutError(f"{where} timed out after {elapsed_ms:.0f} ms"), True
        )
    return TransportFailure(
        APIConnectionError(f"{where}: connection failed: {describe(exc)}"), True
    )


def describe(exc: BaseException) -> str:
    """An exception as its type and, when it has one, its message."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def failure_cause(error: BaseException) -> str:
    """Why an attempt failed, as a short label to count by: ``"HTTP 503"``, or the error's
    class name (``"APIConnectionError"``, ``"APITimeoutError"``...)."""
    if isinstance(error, APIError):
        return f"HTTP {error.status_code}"
    return type(error).__name__


def status_of(error: BaseException) -> int | None:
    """The HTTP status an error came with, or None for one without an answer."""
    return error.status_code if isinstance(error, APIError) else None

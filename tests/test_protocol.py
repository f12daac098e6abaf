"""The protocol layer with plain values and no server: building a request, what an
answer means, what a transport failure means."""

from __future__ import annotations

import asyncio
from email.utils import formatdate
from typing import Any

import aiohttp
import msgspec
import pytest
from yarl import URL

from lean_async import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    DecodeError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    __version__,
)
from lean_async._exceptions import LeanError, ResponseTooLargeError
from lean_async._protocol import (
    BASE_HEADERS,
    Done,
    RefreshAndRetry,
    build_url,
    describe,
    encode_form,
    failure_cause,
    interpret_answer,
    may_have_been_delivered,
    request_headers,
    request_id,
    retry_after_of,
    status_of,
    transport_failure,
)

NOW = 1_700_000_000.0
BASE = URL("https://api.example/prefix")
CREDENTIAL = {"User-Agent": "lean-async/test", "lean-app-token": "secret"}
# The state of a call's first attempt, with a static credential.
FIRST_ATTEMPT: dict[str, Any] = {
    "now": NOW,
    "missing_ok": False,
    "maybe_delivered": False,
    "refreshable": False,
}


def _json(body: bytes) -> Any:
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise DecodeError("not JSON") from None


# -- building a request ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "path", "params", "url", "shown"),
    [
        (
            "https://api.example",
            "/customers/v1",
            None,
            "https://api.example/customers/v1",
            "/customers/v1",
        ),
        (
            "https://api.example/prefix",
            "/customers/v1",
            None,
            "https://api.example/prefix/customers/v1",
            "/customers/v1",
        ),
        ("https://api.example/prefix/", "/a", {}, "https://api.example/prefix/a", "/a"),
        ("http://127.0.0.1:8080", "/a%2Fb", None, "http://127.0.0.1:8080/a%2Fb", "/a%2Fb"),
        (
            "https://api.example",
            "/events/v1",
            {"from": "2024-01-01T00:00:00+04:00", "type": "a b&c=d"},
            "https://api.example/events/v1?from=2024-01-01T00%3A00%3A00%2B04%3A00&type=a%20b%26c%3Dd",
            "/events/v1?from=2024-01-01T00%3A00%3A00%2B04%3A00&type=a%20b%26c%3Dd",
        ),
        (
            "https://api.example/p",
            "/c",
            {"page": "0", "size": "50"},
            "https://api.example/p/c?page=0&size=50",
            "/c?page=0&size=50",
        ),
    ],
)
def test_build_url_follows_the_table(
    base: str, path: str, params: dict[str, str] | None, url: str, shown: str
) -> None:
    parsed = URL(base)
    built, shown_path = build_url(parsed, parsed.raw_path.rstrip("/"), path, params)
    assert str(built) == url
    assert shown_path == shown


def test_a_plus_in_a_query_value_is_sent_encoded_not_as_a_space() -> None:
    built, _ = build_url(BASE, "/prefix", "/e", {"from": "a+b"})
    assert built.raw_query_string == "from=a%2Bb"
    assert built.query["from"] == "a+b"


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (None, CREDENTIAL),
        ("application/json", {**CREDENTIAL, "Content-Type": "application/json"}),
        (
            "application/x-www-form-urlencoded",
            {**CREDENTIAL, "Content-Type": "application/x-www-form-urlencoded"},
        ),
    ],
)
def test_request_headers_add_the_content_type_of_a_body(
    content_type: str | None, expected: dict[str, str]
) -> None:
    headers = request_headers(CREDENTIAL, content_type)
    assert dict(headers) == expected
    assert "Content-Type" not in CREDENTIAL  # the credential's own headers are not changed


def test_every_request_says_who_sends_it_and_that_it_takes_json() -> None:
    assert dict(BASE_HEADERS) == {
        "User-Agent": f"lean-async/{__version__}",
        "Accept": "application/json",
    }


@pytest.mark.parametrize(
    ("form", "body"),
    [
        ({}, b""),
        ({"grant_type": "client_credentials"}, b"grant_type=client_credentials"),
        ({"a": "x y", "b": "1+2&3=4"}, b"a=x+y&b=1%2B2%263%3D4"),
        ({"scope": "customer.6db94cb7"}, b"scope=customer.6db94cb7"),
    ],
)
def test_encode_form_follows_the_table(form: dict[str, str], body: bytes) -> None:
    assert encode_form(form) == body


def test_request_headers_without_a_body_are_the_credential_headers_themselves() -> None:
    # The object itself: a 401 names the token it refused by identity.
    assert request_headers(CREDENTIAL, None) is CREDENTIAL


# -- what an answer means ----------------------------------------------------------------

# (status, headers, body, missing_ok, maybe_delivered, refreshable) -> verdict:
# ("done", result), ("refresh", error class), or ("error", error class, retry_after)
ANSWERS = [
    (200, {}, b'{"a": 1}', False, False, False, ("done", {"a": 1})),
    (201, {}, b"[]", False, False, True, ("done", [])),
    (204, {}, b"null", False, False, False, ("done", None)),
    (299, {}, b"1", False, False, False, ("done", 1)),
    (300, {}, b"", False, False, False, ("error", APIError, None)),
    (199, {}, b"", False, False, False, ("error", APIError, None)),
    (400, {}, b'{"status": "INVALID"}', False, False, False, ("error", BadRequestError, None)),
    (401, {}, b"", False, False, True, ("refresh", AuthenticationError)),
    (401, {}, b"", False, False, False, ("error", AuthenticationError, None)),
    (401, {}, b"", True, True, False, ("error", AuthenticationError, None)),
    (403, {}, b"", False, False, True, ("error", PermissionDeniedError, None)),
    (404, {}, b"", False, False, False, ("error", NotFoundError, None)),
    (404, {}, b"", True, False, False, ("error", NotFoundError, None)),  # never reached
    (404, {}, b"", False, True, False, ("error", NotFoundError, None)),  # not a delete
    (404, {}, b'{"gone": true}', True, True, False, ("done", "empty")),  # a delete's retry
    (410, {}, b"", True, True, False, ("error", APIError, None)),
    (429, {"Retry-After": "3"}, b"", False, False, False, ("error", RateLimitError, 3.0)),
    (429, {}, b"", False, False, False, ("error", RateLimitError, None)),
    (503, {"Retry-After": "soon"}, b"", False, False, False, ("error", ServerError, None)),
    (
        503,
        {"Retry-After": formatdate(NOW + 20, usegmt=True)},
        b"",
        False,
        False,
        False,
        ("error", ServerError, 20.0),
    ),
    (500, {}, b"<html>", True, True, True, ("error", ServerError, None)),
    (599, {}, b"", False, False, False, ("error", ServerError, None)),
]


def _decode_or_empty(body: bytes) -> Any:
    return "empty" if body == b"" else _json(body)


@pytest.mark.parametrize(
    ("status", "headers", "body", "missing_ok", "maybe_delivered", "refreshable", "expected"),
    ANSWERS,
)
def test_interpret_answer_follows_the_table(
    status: int,
    headers: dict[str, str],
    body: bytes,
    missing_ok: bool,
    maybe_delivered: bool,
    refreshable: bool,
    expected: tuple[Any, ...],
) -> None:
    verdict = interpret_answer(
        status,
        headers,
        body,
        "Reason",
        _decode_or_empty,
        now=NOW,
        missing_ok=missing_ok,
        maybe_delivered=maybe_delivered,
        refreshable=refreshable,
    )
    kind = expected[0]
    if kind == "done":
        assert isinstance(verdict, Done)
        assert verdict.result == expected[1]
    elif kind == "refresh":
        assert isinstance(verdict, RefreshAndRetry)
        assert type(verdict.error) is expected[1]
        assert verdict.error.status_code == status
    else:
        assert type(verdict) is expected[1]
        assert isinstance(verdict, APIError)
        assert verdict.status_code == status
        assert verdict.retry_after == expected[2]
        assert verdict.body == body


def test_an_error_answer_carries_lean_code_message_and_request_id() -> None:
    verdict = interpret_answer(
        409,
        {"lean-correlation-id": "req-7"},
        b'{"status": "CUSTOMER_ALREADY_EXISTS", "message": "exists"}',
        "Conflict",
        _json,
        **FIRST_ATTEMPT,
    )
    assert isinstance(verdict, APIError)
    assert (verdict.code, verdict.message, verdict.request_id) == (
        "CUSTOMER_ALREADY_EXISTS",
        "exists",
        "req-7",
    )


def test_an_error_answer_without_a_message_takes_the_reason_phrase() -> None:
    verdict = interpret_answer(502, {}, b"", "Bad Gateway", _json, **FIRST_ATTEMPT)
    assert isinstance(verdict, ServerError)
    assert verdict.message == "Bad Gateway"


def test_a_success_body_of_the_wrong_shape_raises_the_decoders_error() -> None:
    with pytest.raises(DecodeError):
        interpret_answer(200, {}, b"{not json", None, _json, **FIRST_ATTEMPT)


def test_an_error_body_is_never_decoded_as_a_result() -> None:
    def decode(body: bytes) -> Any:
        raise AssertionError("decoded an error body")

    assert isinstance(interpret_answer(500, {}, b"{}", None, decode, **FIRST_ATTEMPT), ServerError)


@pytest.mark.parametrize(
    ("status", "delivered"),
    [
        (200, False),
        (400, False),
        (404, False),
        (429, False),
        (499, False),
        (500, True),
        (503, True),
    ],
)
def test_a_5xx_may_have_been_delivered(status: int, delivered: bool) -> None:
    assert may_have_been_delivered(status) is delivered


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({}, None), ({"Retry-After": "2"}, 2.0), ({"Retry-After": "-1"}, None)],
)
def test_retry_after_of_reads_the_header(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after_of(headers, NOW) == seconds


def test_request_id_is_leans_correlation_id() -> None:
    assert request_id({"lean-correlation-id": "abc"}) == "abc"
    assert request_id({}) is None


# -- what a transport failure means ------------------------------------------------------


class _ConnectionKey:
    host, port, ssl, is_ssl = "api.example", 443, True, True


def _connector_error() -> aiohttp.ClientConnectorError:
    return aiohttp.ClientConnectorError(_ConnectionKey(), OSError(111, "refused"))  # type: ignore[arg-type]


def _certificate_error() -> aiohttp.ClientConnectorCertificateError:
    return aiohttp.ClientConnectorCertificateError(_ConnectionKey(), ValueError("bad cert"))  # type: ignore[arg-type]


# exception -> (error class, retryable, maybe delivered, words in the message)
FAILURES = [
    (
        aiohttp.ConnectionTimeoutError(),
        APITimeoutError,
        True,
        False,
        "connecting timed out after 12 ms",
    ),
    (_certificate_error(), APIConnectionError, False, False, "TLS certificate verification failed"),
    (_connector_error(), APIConnectionError, True, False, "cannot connect"),
    (aiohttp.ServerTimeoutError(), APITimeoutError, True, True, "timed out after 12 ms"),
    (asyncio.TimeoutError(), APITimeoutError, True, True, "timed out after 12 ms"),
    (
        aiohttp.ServerDisconnectedError(),
        APIConnectionError,
        True,
        True,
        "connection failed: ServerDisconnectedError",
    ),
    (
        aiohttp.ClientPayloadError("cut"),
        APIConnectionError,
        True,
        True,
        "connection failed: ClientPayloadError: cut",
    ),
    (ConnectionResetError(104, "reset"), APIConnectionError, True, True, "ConnectionResetError"),
    (OSError("down"), APIConnectionError, True, True, "connection failed: OSError: down"),
]


@pytest.mark.parametrize(("exc", "error_class", "retryable", "delivered", "words"), FAILURES)
def test_transport_failure_follows_the_table(
    exc: BaseException, error_class: type[LeanError], retryable: bool, delivered: bool, words: str
) -> None:
    failure = transport_failure(exc, "GET /x", 12.3)
    assert type(failure.error) is error_class
    assert isinstance(failure.error, APIConnectionError)
    assert failure.error.retryable is retryable
    assert failure.maybe_delivered is delivered
    assert str(failure.error).startswith("GET /x")
    assert words in str(failure.error)


def test_a_transport_failure_keeps_no_link_to_the_aiohttp_exception() -> None:
    failure = transport_failure(aiohttp.ServerDisconnectedError(), "GET /x", 1.0)
    assert failure.error.__cause__ is None and failure.error.__context__ is None


# -- labels for logs and hooks -----------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "cause", "status"),
    [
        (ServerError(503), "HTTP 503", 503),
        (RateLimitError(429), "HTTP 429", 429),
        (APIConnectionError("x"), "APIConnectionError", None),
        (APITimeoutError("x"), "APITimeoutError", None),
        (ResponseTooLargeError("x"), "ResponseTooLargeError", None),
    ],
)
def test_failure_cause_and_status_follow_the_table(
    error: LeanError, cause: str, status: int | None
) -> None:
    assert failure_cause(error) == cause
    assert status_of(error) == status


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (OSError("down"), "OSError: down"),
        (aiohttp.ServerDisconnectedError(""), "ServerDisconnectedError"),
    ],
)
def test_describe_names_the_type_and_any_message(exc: BaseException, text: str) -> None:
    assert describe(exc) == text

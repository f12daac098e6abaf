"""The error family, and the one mapping from an HTTP answer to its typed error."""

from __future__ import annotations

import json
import pickle

import pytest
from _samples import HTML_502

from lean_async import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    DecodeError,
    LeanError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from lean_async._exceptions import error_from_response


def _lean_body(code: str, message: str) -> bytes:
    body = {"timestamp": "2024-01-01T00:00:00Z", "status": code, "message": message}
    return json.dumps({**body, "metadata": None}).encode()


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (599, ServerError),
        (302, APIError),
        (405, APIError),
        (408, APIError),
        (418, APIError),
        (422, APIError),
    ],
)
def test_status_maps_to_its_error_class(status: int, cls: type[APIError]) -> None:
    error = error_from_response(status, {}, b"")
    assert type(error) is cls
    assert error.status_code == status


@pytest.mark.parametrize(
    "cls",
    [
        BadRequestError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        ConflictError,
        RateLimitError,
        ServerError,
    ],
)
def test_every_status_error_is_an_api_error(cls: type[APIError]) -> None:
    assert issubclass(cls, APIError)
    assert issubclass(cls, LeanError)


def test_timeout_is_a_connection_error_and_decode_error_a_lean_error() -> None:
    assert issubclass(APITimeoutError, APIConnectionError)
    assert issubclass(APIConnectionError, LeanError)
    assert issubclass(DecodeError, LeanError)
    assert not issubclass(APIConnectionError, APIError)


def test_lean_error_body_gives_code_message_and_request_ids() -> None:
    headers = {"lean-correlation-id": "corr-123", "lean-trace-id": "trace-456"}
    body = _lean_body("UNKNOWN_PAYMENT_SOURCE", "Payment source not found")
    error = error_from_response(404, headers, body, reason="Not Found")
    assert isinstance(error, NotFoundError)
    assert error.code == "UNKNOWN_PAYMENT_SOURCE"
    assert error.message == "Payment source not found"
    assert error.request_id == "corr-123"
    assert error.trace_id == "trace-456"
    assert error.body == body
    assert error.headers["lean-trace-id"] == "trace-456"


def test_str_names_status_code_message_and_request_id() -> None:
    body = _lean_body("UNKNOWN_PAYMENT_SOURCE", "Payment source not found")
    text = str(error_from_response(404, {"lean-correlation-id": "corr-123"}, body))
    for part in ("404", "UNKNOWN_PAYMENT_SOURCE", "Payment source not found", "corr-123"):
        assert part in text


def test_html_page_from_a_proxy_still_gives_the_typed_error() -> None:
    error = error_from_response(502, {"Content-Type": "text/html"}, HTML_502, reason="Bad Gateway")
    assert isinstance(error, ServerError)
    assert error.code is None
    assert error.message == "Bad Gateway"
    assert error.body == HTML_502


def test_oauth_error_body_gives_code_and_description() -> None:
    body = b'{"error": "invalid_client", "error_description": "Client authentication failed"}'
    error = error_from_response(401, {}, body)
    assert error.code == "invalid_client"
    assert error.message == "Client authentication failed"


def test_error_body_with_a_numeric_status_keeps_its_message() -> None:
    # The shape of a gateway's (Spring Boot's) default error body.
    body = b'{"timestamp": "x", "status": 404, "error": "Not Found", "message": "No route"}'
    error = error_from_response(404, {}, body, reason="Not Found")
    assert error.code == "Not Found"
    assert error.message == "No route"


@pytest.mark.parametrize("body", [b"", b"null", b"[]", b'"text"', b"{", b"\xff\xfe", b"[" * 5000])
def test_malformed_error_body_never_raises(body: bytes) -> None:
    error = error_from_response(500, {}, body, reason="Internal Server Error")
    assert isinstance(error, ServerError)
    assert error.message == "Internal Server Error"


def test_long_message_is_shortened_in_the_error_text() -> None:
    error = error_from_response(400, {}, _lean_body("INVALID_PARAMETERS", "x" * 10_000))
    assert len(str(error)) < 400


def test_retry_after_is_carried() -> None:
    assert error_from_response(429, {}, b"", retry_after=120.0).retry_after == 120.0


def test_api_error_survives_pickling() -> None:
    error = error_from_response(
        404, {"lean-correlation-id": "c"}, _lean_body("UNKNOWN_PAYMENT_SOURCE", "gone")
    )
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is NotFoundError
    assert (copy.status_code, copy.code, copy.request_id, str(copy)) == (
        404,
        "UNKNOWN_PAYMENT_SOURCE",
        "c",
        str(error),
    )


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        # RFC 9457 problem details from a gateway
        (
            b'{"type": "about:blank", "title": "Service Unavailable", "status": 503,'
            b' "detail": "upstream connect error"}',
            None,
            "Service Unavailable: upstream connect error",
        ),
        (b'{"title": "Bad Gateway", "status": 502}', None, "Bad Gateway"),
        (b'{"detail": "Not authenticated"}', None, "Not authenticated"),
        (b'{"detail": [{"loc": ["x"]}], "title": "Invalid"}', None, "Invalid"),
        # JSON from a proxy or load balancer
        (b'{"message": "Internal server error"}', None, "Internal server error"),
        (b'{"error": "upstream request timeout"}', None, "upstream request timeout"),
        (
            b'{"error": {"code": 503, "status": "UNAVAILABLE", "message": "try later"}}',
            "UNAVAILABLE",
            "try later",
        ),
        (b'{"error": {"code": "QUOTA", "message": "over quota"}}', "QUOTA", "over quota"),
        # OAuth2 and Lean stay as they were
        (b'{"error": "invalid_client"}', "invalid_client", "Service Unavailable"),
        (b'{"status": "SERVER_ERROR", "message": "boom"}', "SERVER_ERROR", "boom"),
        # text that is not a text
        (b'{"message": 5, "title": ["x"], "error": null}', None, "Service Unavailable"),
        (b'{"message": "  "}', None, "Service Unavailable"),
    ],
)  # fmt: skip
def test_a_non_lean_error_body_gives_what_it_says(
    body: bytes, code: str | None, message: str
) -> None:
    error = error_from_response(503, {}, body, reason="Service Unavailable")
    assert isinstance(error, ServerError)
    assert (error.code, error.message) == (code, message)
    assert message in str(error)


def test_invalid_utf8_in_an_error_body_keeps_leans_code_and_the_rest_of_the_message() -> None:
    body = _lean_body("UNKNOWN_PAYMENT_SOURCE", "gone").replace(b"gone", b"g\xffone")
    error = error_from_response(404, {}, body, reason="Not Found")
    assert error.code == "UNKNOWN_PAYMENT_SOURCE"
    assert error.message == "g\ufffdone"


@pytest.mark.parametrize(
    "error",
    [APIConnectionError("GET /x: cannot connect: refused"), APITimeoutError("GET /x: timed out")],
    ids=["connection", "timeout"],
)
def test_a_connection_error_says_what_happened(error: APIConnectionError) -> None:
    assert str(error) == error.args[0] != ""


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (499, APIError),
        (500, ServerError),
        (599, ServerError),
        (418, APIError),
        (400, BadRequestError),
    ],
)
def test_the_error_class_follows_the_status_5xx_from_500_on(
    status: int, error_class: type[APIError]
) -> None:
    assert type(error_from_response(status, {}, b"")) is error_class


@pytest.mark.parametrize(
    ("length", "kept"),
    [(299, 299), (300, 300), (301, 300)],
)
def test_a_message_is_kept_whole_up_to_300_characters_then_cut_with_an_ellipsis(
    length: int, kept: int
) -> None:
    text = "m" * length
    error = error_from_response(400, {}, _lean_body("BAD", text))
    assert error.message == text[:kept] + ("..." if kept < length else "")


def test_a_code_that_lost_bytes_is_dropped_and_the_message_kept() -> None:
    body = b'{"status": "BAD_\xffCODE", "message": "the amount is invalid"}'
    error = error_from_response(400, {}, body)
    assert error.code is None
    assert error.message == "the amount is invalid"

"""The library's exceptions, and the one mapping from an HTTP answer to its class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from ._constants import REQUEST_ID_HEADER, TRACE_ID_HEADER

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "DecodeError",
    "InvalidIdError",
    "LeanError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseTooLargeError",
    "ServerError",
    "WebhookSignatureError",
    "error_from_response",
]


class LeanError(Exception):
    """Base class of every error this library raises."""


class ConfigurationError(LeanError, ValueError):
    """The client was configured wrongly (raised at construction, before any I/O)."""


class ClientClosedError(LeanError, RuntimeError):
    """The client was closed; a closed client makes no more requests."""


class InvalidIdError(LeanError, ValueError):
    """An id that goes into a URL path is malformed (a customer, payment source or
    destination id that is not a UUID, an app_user_id not of 1-255 characters); nothing
    was sent."""


class APIConnectionError(LeanError):
    """The request did not get an HTTP answer: refused, reset, DNS, TLS...

    ``retryable`` is False where another attempt cannot help (a certificate that fails
    verification)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class APITimeoutError(APIConnectionError):
    """An attempt did not complete within its timeout."""


class DecodeError(LeanError):
    """A response or webhook body was not valid JSON, or not of the expected shape."""


class ResponseTooLargeError(DecodeError):
    """A response body was larger than the client's max_response_bytes."""


class WebhookSignatureError(LeanError):
    """The ``lean-signature`` header is missing, malformed, or does not match the body."""


class APIError(LeanError):
    """Lean answered with an HTTP status that is not a success."""

    def __init__(
        self,
        status_code: int,
        *,
        code: str | None = None,
        message: str | None = None,
        request_id: str | None = None,
        trace_id: str | None = None,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.message = message
        self.request_id = request_id
        self.trace_id = trace_id
        self.body = body
        self.headers: Mapping[str, str] = headers if headers is not None else {}
        self.retry_after = retry_after
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = f"HTTP {self.status_code}"
        if self.code:
            text += f" {self.code}"
        if self.message:
            text += f": {self.message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments do not survive the default pickling of exceptions.
        return (_rebuild_api_error, (type(self), self.status_code, self._state()))

    def _state(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "request_id": self.request_id,
            "trace_id": self.trace_id,
            "body": self.body,
            "headers": dict(self.headers),
            "retry_after": self.retry_after,
        }


def _rebuild_api_error(cls: type[APIError], status_code: int, state: dict[str, Any]) -> APIError:
    return cls(status_code, **state)


class BadRequestError(APIError):
    """400: invalid or missing parameters."""


class AuthenticationError(APIError):
    """401: missing, invalid or expired credentials."""


class PermissionDeniedError(APIError):
    """403: the credentials may not do this (e.g. a sandbox app calling production)."""


class NotFoundError(APIError):
    """404: no such customer or payment source (or not this customer's)."""


class ConflictError(APIError):
    """409: the request conflicts with the resource's state."""


class RateLimitError(APIError):
    """429: too many requests; ``retry_after`` holds the server's wait, if it sent one."""


class ServerError(APIError):
    """5xx: Lean (or a proxy in front of it) failed."""


_STATUS_TO_ERROR: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


class _ErrorBody(msgspec.Struct):
    """An error body's fields that say what went wrong, each taken only when it is text:
    Lean's ``status``/``message``; OAuth2's ``error``/``error_description``; what gateways
    and proxies send instead: RFC 9457 problem details (``title``, ``detail``),
    ``{"message": ...}``, ``{"error": "..."}`` or ``{"error": {"code", "message"}}``."""

    status: Any = None  # Lean's code; a number in Spring's and problem details' bodies
    message: Any = None
    error: Any = None
    error_description: Any = None
    title: Any = None
    detail: Any = None


_ERROR_BODY_DECODER = msgspec.json.Decoder(_ErrorBody)
# Long enough for a sentence, short enough that an HTML page does not flood a log line.
_MAX_MESSAGE_CHARS = 300


def is_server_error(status_code: int) -> bool:
    """5xx: Lean, or a proxy in front of it, failed."""
    return status_code >= 500


def error_class_for_status(status_code: int) -> type[APIError]:
    if is_server_error(status_code):
        return ServerError
    return _STATUS_TO_ERROR.get(status_code, APIError)


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _parse_error_body(body: bytes) -> tuple[str | None, str | None]:
    """The (code, message) an error body gives; (None, None) when it gives neither."""
    try:
        parsed = _ERROR_BODY_DECODER.decode(body)
    except (msgspec.MsgspecError, RecursionError, UnicodeDecodeError):
        # A stray byte in a message must not cost Lean's code: read the rest.
        repaired = body.decode("utf-8", errors="replace").encode()
        return (None, None) if repaired == body else _parse_error_body(repaired)
    nested = parsed.error if isinstance(parsed.error, dict) else {}
    error = _text(parsed.error)
    problem = ": ".join(filter(None, (_text(parsed.title), _text(parsed.detail)))) or None
    message = (
        _text(parsed.message)
        or _text(parsed.error_description)
        or _text(nested.get("message"))
        or problem
    )
    # OAuth2's error is a code ("invalid_client"); a gateway's may be a sentence.
    error_is_code = error is not None and (message is not None or not any(map(str.isspace, error)))
    code = (
        _text(parsed.status)
        or _text(nested.get("code"))
        or _text(nested.get("status"))
        or (error if error_is_code else None)
    )
    if message is None and not error_is_code:
        message = error
    if code is not None and "\ufffd" in code:
        code = None  # a code that lost bytes names nothing
    if message is not None and len(message) > _MAX_MESSAGE_CHARS:
        message = message[:_MAX_MESSAGE_CHARS] + "..."
    return code, message


def error_from_response(
    status_code: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    reason: str | None = None,
    retry_after: float | None = None,
) -> APIError:
    """The typed error for a non-success answer; never raises for a malformed body."""
    code, message = _parse_error_body(body)
    if message is None and reason:
        message = reason
    return error_class_for_status(status_code)(
        status_code,
        code=code,
        message=message,
        request_id=headers.get(REQUEST_ID_HEADER),
        trace_id=headers.get(TRACE_ID_HEADER),
        body=body,
        headers=headers,
        retry_after=retry_after,
    )

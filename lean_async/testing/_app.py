"""The aiohttp.web application that answers as Lean's Payment Sources API and its OAuth2
token endpoint do, with faults injected in one middleware."""

from __future__ import annotations

import asyncio
import http
import math
import os
import random
import uuid
from collections.abc import Callable
from datetime import datetime, timezone

import msgspec
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from .._constants import APP_TOKEN_HEADER, REQUEST_ID_HEADER, TRACE_ID_HEADER
from ..models import PaymentSource
from ..resources.payment_sources import DeleteReason
from ._data import DataSet, is_uuid
from ._events import EventLog, add_event_routes
from ._faults import NO_FAULT, Fault, Faults, Plan, RateLimiter, plan
from ._stats import Stats
from ._tokens import API_SCOPE, TokenIssuer, TokenRefusal, scope_allows

__all__ = ["LeanApp", "TOKEN_PATH", "delete_body_problem"]

TOKEN_PATH = "/oauth2/token"
_SOURCES_PATH = "/customers/v1/{customer_id}/payment-sources"
_SOURCE_PATH = _SOURCES_PATH + "/{payment_source_id}"
_JSON = "application/json"
_FORM = "application/x-www-form-urlencoded"
_REASONS = tuple(reason.value for reason in DeleteReason)
# Lean documents no code for bad credentials (CERTIFICATE_TOKEN_MISMATCH is about mTLS),
# nor one for a customer that does not exist; these two are this server's choice.
UNAUTHORIZED = "UNAUTHORIZED"
CUSTOMER_NOT_FOUND = "CUSTOMER_NOT_FOUND"
BOTH_CREDENTIALS_MESSAGE = (
    "Do not supply a 'lean-app-token' header when providing an 'Authorization' header"
)
_CODE_OF_STATUS = {
    400: "INVALID_PARAMETERS",
    401: UNAUTHORIZED,
    404: "INVALID_URL",
    405: "INVALID_HTTP_METHOD",
    429: "RATE_LIMIT_EXCEEDED",
    500: "INTERNAL_SERVER_ERROR",
}


def _headers(content_type: str | None = _JSON) -> dict[str, str]:
    """Every answer's headers: fresh correlation and trace ids, as Lean sends."""
    headers = {REQUEST_ID_HEADER: str(uuid.uuid4()), TRACE_ID_HEADER: os.urandom(16).hex()}
    if content_type is not None:
        headers[hdrs.CONTENT_TYPE] = content_type
    return headers


def respond(status: int, body: bytes, content_type: str = _JSON) -> web.Response:
    return web.Response(status=status, body=body, headers=_headers(content_type))


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


def delete_body_problem(body: bytes) -> tuple[str, str] | None:
    """(code, message) of what is wrong with a delete's ``{"reason": ...}`` body; None if
    nothing is."""
    if not body.strip():
        return "MISSING_PARAMETERS", "the request body with a 'reason' is required"
    try:
        parsed = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return "INVALID_PARAMETERS", "the request body is not valid JSON"
    if not isinstance(parsed, dict):
        return "INVALID_PARAMETERS", "the request body must be a JSON object"
    reason = parsed.get("reason")
    if reason is None:
        return "MISSING_PARAMETERS", "'reason' is required"
    if reason not in _REASONS:
        return "INVALID_PARAMETERS", f"'reason' must be one of {', '.join(_REASONS)}"
    return None


class LeanApp:
    """The routes, authentication and fault middleware over one data set."""

    def __init__(
        self,
        *,
        data: DataSet,
        tokens: TokenIssuer,
        app_token: str,
        faults: Faults,
        delete_status: int = 200,
        unknown_customer_404: bool = False,
        on_delete: Callable[[PaymentSource], None] | None = None,
    ) -> None:
        self.data = data
        self.tokens = tokens
        self.app_token = app_token
        self.stats = Stats()
        self.delete_status = delete_status
        self.unknown_customer_404 = unknown_customer_404
        self.on_delete = on_delete
        self.faults = faults
        self.events = EventLog()

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._faults = faults
        self._rng = random.Random(faults.seed)
        self._limiter = None if faults.rate_limit is None else RateLimiter(faults.rate_limit)
        self._plans = bool(faults.latency) or faults.any_share

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get(_SOURCES_PATH, self._list, allow_head=False)
        app.router.add_get(_SOURCE_PATH, self._get, allow_head=False)
        app.router.add_delete(_SOURCE_PATH, self._delete)
        app.router.add_post(TOKEN_PATH, self._token)
        add_event_routes(app, self)
        return app

    # -- middleware: stats, faults, router errors ----------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        stats = self.stats
        stats.requests += 1
        stats.by_path[request.path] += 1
        stats.in_flight += 1
        if stats.in_flight > stats.peak_in_flight:
            stats.peak_in_flight = stats.in_flight
        try:
            response = await self._answer(request, handler)
        finally:
            stats.in_flight -= 1
        if response is None:
            stats.dropped += 1
            # The transport is closed: aiohttp's attempt to send this goes nowhere.
            return web.Response(status=499)
        stats.by_status[response.status] += 1
        return response

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse | None:
        limiter = self._limiter
        if limiter is not None:
            wait = limiter.take()
            if wait:
                self.stats.rate_limited += 1
                return self._rate_limited(wait)
        fate = plan(self._faults, self._rng) if self._plans else NO_FAULT
        if fate.latency:
            await asyncio.sleep(fate.latency)
        if fate.fault is Fault.ERROR:
            return self._server_error(fate)
        try:
            response = self._refuse(request) or await handler(request)
        except web.HTTPException as exc:
            response = self._router_error(exc)
        if fate.fault is Fault.NONE:
            return response
        return await self._spoil(request, response, fate)

    def _rate_limited(self, wait: float) -> web.Response:
        response = lean_error(429, "RATE_LIMIT_EXCEEDED", "Too many requests, slow down")
        if self._faults.retry_after:
            response.headers[hdrs.RETRY_AFTER] = str(max(1, math.ceil(wait)))
        return response

    @staticmethod
    def _server_error(fate: Plan) -> web.Response:
        if fate.html:
            return respond(fate.status, proxy_error_page(fate.status), "text/html")
        code = _CODE_OF_STATUS.get(fate.status, "INTERNAL_SERVER_ERROR")
        return lean_error(fate.status, code, "Something went wrong on Lean's side")

    @staticmethod
    def _router_error(exc: web.HTTPException) -> web.Response:
        code = _CODE_OF_STATUS.get(exc.status, "INVALID_PARAMETERS")
        if exc.status == 404:
            return lean_error(404, code, "The URL specified for this request is invalid")
        if exc.status == 405:
            return lean_error(405, code, "The HTTP method used for this URL is incorrect")
        return lean_error(exc.status, code, exc.reason)

    async def _spoil(
        self, request: web.Request, response: web.StreamResponse, fate: Plan
    ) -> web.StreamResponse | None:
        """The handled answer, as a fault mangles it."""
        body = getattr(response, "body", None)
        if not isinstance(body, bytes):
            body = b""
        transport = request.transport
        if fate.fault is Fault.DROP:
            if transport is not None:
                transport.close()
            return None
        if fate.fault is Fault.MALFORMED:
            if fate.html:
                return respond(200, proxy_error_page(500), "text/html")
            return respond(200, body[: len(body) // 2] or b'{"id": ')
        stream = web.StreamResponse(status=response.status, headers=response.headers)
        if fate.fault is Fault.TRUNCATE:
            stream.content_length = len(body) + 16
            await stream.prepare(request)
            await stream.write(body[: len(body) // 2])
            if transport is not None:
                transport.close()
            return None
        # Fault.SLOW_BODY
        stream.content_length = len(body)
        await stream.prepare(request)
        chunk = self._faults.slow_body_chunk
        for start in range(0, len(body), chunk):
            await asyncio.sleep(self._faults.slow_body_delay)
            await stream.write(body[start : start + chunk])
        await stream.write_eof()
        return stream

    # -- authentication ------------------------------------------------------------

    def _refuse(self, request: web.Request) -> web.Response | None:
        """The error answer for a customer route's request that may not proceed; None
        when it may (or the route is not a customer's)."""
        ids = request.match_info
        customer_id = ids.get("customer_id")
        if customer_id is None:
            return None
        headers = request.headers
        app_token = headers.get(APP_TOKEN_HEADER)
        authorization = headers.get(hdrs.AUTHORIZATION)
        scope = API_SCOPE
        if app_token is not None:
            if authorization is not None:
                return lean_error(400, "INVALID_PARAMETERS", BOTH_CREDENTIALS_MESSAGE)
            if app_token != self.app_token:
                return lean_error(401, UNAUTHORIZED, "The app token is not valid")
        elif authorization is None:
            return lean_error(
                401, UNAUTHORIZED, "Provide a 'lean-app-token' or an 'Authorization' header"
            )
        else:
            scheme, _, token = authorization.partition(" ")
            granted = self.tokens.scope_of(token.strip()) if scheme.lower() == "bearer" else None
            if granted is None:
                return lean_error(401, UNAUTHORIZED, "The access token is invalid or expired")
            scope = granted
        for value in ids.values():
            if not is_uuid(value):
                return lean_error(400, "INVALID_PARAMETERS", f"{value!r:.80} is not a UUID")
        if not scope_allows(scope, customer_id):
            return lean_error(
                403, "INCORRECT_ACCESS_LEVEL", "This token may not access this customer"
            )
        return None

    # -- routes --------------------------------------------------------------------

    async def _list(self, request: web.Request) -> web.Response:
        customer_id = request.match_info["customer_id"]
        body = self.data.list_body(customer_id)
        if body is None:
            if self.unknown_customer_404:
                return lean_error(404, CUSTOMER_NOT_FOUND, "No customer with this id")
            body = b"[]"
        return respond(200, body)

    async def _get(self, request: web.Request) -> web.Response:
        customer_id, source_id = _source_ids(request)
        body = self.data.source_body(customer_id, source_id)
        if body is None:
            return _unknown_source()
        return respond(200, body)

    async def _delete(self, request: web.Request) -> web.Response:
        customer_id, source_id = _source_ids(request)
        problem = delete_body_problem(await request.read())
        if problem is not None:
            return lean_error(400, *problem)
        source = self.data.remove(customer_id, source_id)
        if source is None:
            return _unknown_source()
        if self.on_delete is not None:
            self.on_delete(source)
        if self.delete_status == 204:
            return web.Response(status=204, headers=_headers(None))
        return respond(200, b"{}")

    async def _token(self, request: web.Request) -> web.Response:
        self.stats.token_requests += 1
        try:
            if request.content_type != _FORM:
                raise TokenRefusal(400, "invalid_request", f"the body must be {_FORM}")
            form = await request.post()
            body = self.tokens.issue({k: v for k, v in form.items() if isinstance(v, str)})
        except TokenRefusal as refusal:
            return respond(refusal.status, refusal.body())
        response = respond(200, body)
        response.headers[hdrs.CACHE_CONTROL] = "no-store"
        return response


def _source_ids(request: web.Request) -> tuple[str, str]:
    return request.match_info["customer_id"], request.match_info["payment_source_id"]


def _unknown_source() -> web.Response:
    return lean_error(
        404, "UNKNOWN_PAYMENT_SOURCE", "No payment source with this id for this customer"
    )

"""The aiohttp.web application that answers as Lean's API and its OAuth2 token endpoint do:
authentication, scopes and injected faults in one middleware, the routes of each API in a
module of their own."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from .._constants import APP_TOKEN_HEADER
from ..types.payment_sources import PaymentSource
from ._customers import customer_routes
from ._data import DataSet, is_uuid
from ._destinations import destination_routes
from ._events import EventLog, add_event_routes
from ._faults import NO_FAULT, Fault, Faults, Plan, RateLimiter, plan
from ._payment_sources import payment_source_routes
from ._responses import lean_error, proxy_error_page, respond
from ._stats import Stats
from ._tokens import API_SCOPE, TokenIssuer, TokenRefusal, scope_allows

__all__ = ["LeanApp", "TOKEN_PATH"]

TOKEN_PATH = "/oauth2/token"
_FORM = "application/x-www-form-urlencoded"
# Lean documents no code for bad credentials (CERTIFICATE_TOKEN_MISMATCH is about mTLS):
# this server's choice.
UNAUTHORIZED = "UNAUTHORIZED"
# Route parameters that are free text; every other one is a UUID.
_FREE_TEXT_PARAMETERS = frozenset({"app_user_id"})
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
        customer_page_cap: int | None = None,
        on_delete: Callable[[PaymentSource], None] | None = None,
    ) -> None:
        self.data = data
        self.tokens = tokens
        self.app_token = app_token
        self.stats = Stats()
        self.delete_status = delete_status
        self.unknown_customer_404 = unknown_customer_404
        # The largest page of customers served, whatever page_size asks for.
        self.customer_page_cap = customer_page_cap
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
        app.router.add_routes(customer_routes(self))
        app.router.add_routes(destination_routes(self))
        app.router.add_routes(payment_source_routes(self))
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
            response = lean_error(405, code, "The HTTP method used for this URL is incorrect")
            # HTTP requires a 405 to say which methods the URL takes.
            response.headers[hdrs.ALLOW] = exc.headers.get(hdrs.ALLOW, "")
            return response
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
        """The error answer for an API request that may not proceed; None when it may (or
        it is for the token endpoint, or for no route at all)."""
        ids = request.match_info
        if ids.http_exception is not None or request.path == TOKEN_PATH:
            return None
        customer_id = ids.get("customer_id")
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
        for name, value in ids.items():
            if name not in _FREE_TEXT_PARAMETERS and not is_uuid(value):
                return lean_error(400, "INVALID_PARAMETERS", f"{value!r:.80} is not a UUID")
        # A customer's token reaches that customer's paths only.
        allowed = scope == API_SCOPE if customer_id is None else scope_allows(scope, customer_id)
        if not allowed:
            return lean_error(
                403, "INCORRECT_ACCESS_LEVEL", "This token may not access this customer"
            )
        return None

    # -- the token endpoint --------------------------------------------------------

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

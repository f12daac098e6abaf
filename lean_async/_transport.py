"""The only module that talks to aiohttp: one pooled session, and one call's attempts in
one loop. What to send and what an answer means come from ``_protocol``; whether and when
to try again from ``_retry``."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine, Generator, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
from aiohttp import hdrs
from yarl import URL

from ._auth import make_auth
from ._config import ClientConfig
from ._constants import DNS_CACHE_TTL, LOGGER_NAME
from ._exceptions import ClientClosedError, LeanError, ResponseTooLargeError
from ._observe import RequestEvent, RetryEvent
from ._protocol import (
    BASE_HEADERS,
    FORM,
    JSON,
    Decode,
    Done,
    Headers,
    RefreshAndRetry,
    TransportFailure,
    build_url,
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
from ._ratelimit import RateControl
from ._retry import RATE_LIMITED, give_up, retry_waits

logger = logging.getLogger(LOGGER_NAME)

T = TypeVar("T")

_Answer = tuple[int, Mapping[str, str], bytes, "str | None"]


class Transport:
    def __init__(self, config: ClientConfig, *, rate_control: RateControl) -> None:
        self._config = config
        # Parsed once: each call only swaps the path in, keeping any path prefix.
        self._base = URL(config.base_url)
        self._base_path = self._base.raw_path.rstrip("/")
        self.retry = config.retry
        self._max_response_bytes = config.max_response_bytes
        self._session = config.session
        self._owns_session = config.session is None
        self._on_request = config.on_request
        self._on_retry = config.on_retry
        self.rate_control = rate_control
        self._closed = False
        self._failed_hooks: set[str] = set()
        # The token a call needs is fetched within that call's attempt, in one attempt:
        # the call's own retries then bound it, instead of retrying a retrying fetch.
        self._auth = make_auth(config.credentials, BASE_HEADERS, self.post_form, config.auth_url)
        # Extra keyword arguments for every session.request, computed once.
        # raise_for_status is set per request so that a caller's session cannot change it.
        self._request_options: dict[str, Any] = {
            "allow_redirects": False,
            "raise_for_status": False,
            "timeout": config.timeout,
        }
        if config.ssl_option is not None:
            self._request_options["ssl"] = config.ssl_option
        self._give_up = give_up(config.retry, retry_rate_limited=True)
        self._give_up_on_429 = give_up(config.retry, retry_rate_limited=False)
        # The token request within a call's attempt: the call's retries bound it.
        self._give_up_at_once = give_up(dataclasses.replace(config.retry, max_retries=0))

    # -- lifecycle -----------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        """The pooled session, created on first use inside the running event loop."""
        session = self._session
        if session is None:
            if self._closed:
                raise ClientClosedError("this LeanClient is closed")
            config = self._config
            connector = aiohttp.TCPConnector(
                limit=config.max_connections,
                limit_per_host=0,
                ttl_dns_cache=DNS_CACHE_TTL,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=config.timeout,
                headers=None,
                raise_for_status=False,
                trust_env=False,
            )
            # aiohttp silently resends a GET or DELETE once when the connection drops; our
            # retries must see that loss, or a delivered delete's resend reads as a plain 404.
            if hasattr(session, "_retry_connection"):
                session._retry_connection = False
            self._session = session
        elif self._closed:
            raise ClientClosedError("this LeanClient is closed")
        return session

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        aclose = getattr(self._auth, "aclose", None)
        if aclose is not None:
            await aclose()
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    # -- requests ------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        decode: Decode[T],
        *,
        params: Mapping[str, str] | None = None,
        json_body: bytes | None = None,
        missing_ok_after_retry: bool = False,
        retry_rate_limited: bool = True,
        background: bool = False,
    ) -> Coroutine[Any, Any, T]:
        """Send ``method path`` with retries; ``decode(body)`` makes the result.

        ``path`` is already percent-encoded; ``params`` become the query string, every
        name and value percent-encoded (a ``+`` in a timestamp stays a ``+``).
        ``missing_ok_after_retry``: a 404 after an attempt that may have been delivered
        is a success, ``decode(b"")`` (a delete). Without ``retry_rate_limited`` a 429 is
        final. A ``background`` call (a sweep's) lets the application's own calls start
        first. A plain function returning the call's coroutine: one frame less per call.
        """
        url, shown_path = build_url(self._base, self._base_path, path, params)
        return self._call(
            _Request(
                method,
                url,
                shown_path,
                json_body,
                JSON if json_body is not None else None,
                authenticated=True,
                missing_ok=missing_ok_after_retry,
                background=background,
            ),
            decode,
            self._give_up if retry_rate_limited else self._give_up_on_429,
        )

    async def post_form(self, url: str, form: Mapping[str, str], *, retries: bool = False) -> bytes:
        """POST ``form`` to ``url`` and return the answer's body: the token request, with
        no credential header and outside the rate control; one attempt unless ``retries``."""
        request = _Request(
            "POST",
            URL(url),
            urlsplit(url).path or "/",
            encode_form(form),
            FORM,
            authenticated=False,
            missing_ok=False,
            background=False,
        )
        return await self._call(request, bytes, self._give_up if retries else self._give_up_at_once)

    async def _call(
        self,
        request: _Request,
        decode: Decode[T],
        give_up: Callable[[Exception, int], bool],
    ) -> T:
        """Attempts of one request until one succeeds or the retry rules give up. A token
        refresh after a 401 is one more attempt, not counted as a retry."""
        auth = self._auth
        attempt = retries = 0
        maybe_delivered = refreshed = False
        waits: Generator[float, BaseException | None, None] | None = None
        while True:
            attempt += 1
            started = time.perf_counter()
            headers, outcome = await self._attempt(request)
            if isinstance(outcome, TransportFailure):
                error = outcome.error
                maybe_delivered = maybe_delivered or outcome.maybe_delivered
                status: int | None = None
                answered: Headers | None = None
                logger.debug("%s (attempt %d)", error, attempt)
            else:
                status, answered, body, reason = outcome
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "%s %s -> %d in %.1f ms (attempt %d, request id %s)",
                        request.method,
                        request.path,
                        status,
                        _elapsed_ms(started),
                        attempt,
                        request_id(answered),
                    )
                verdict: Done[T] | RefreshAndRetry | LeanError
                try:
                    verdict = interpret_answer(
                        status,
                        answered,
                        body,
                        reason,
                        decode,
                        now=time.time(),
                        missing_ok=request.missing_ok,
                        maybe_delivered=maybe_delivered,
                        refreshable=auth.refreshable and request.authenticated and not refreshed,
                    )
                except LeanError as undecodable:  # a success body of the wrong shape
                    verdict = undecodable
                if isinstance(verdict, Done):
                    if self._on_request is not None:
                        self._request_event(request, attempt, status, started, answered, None)
                    return verdict.result
                if isinstance(verdict, RefreshAndRetry):
                    if self._on_request is not None:
                        self._request_event(
                            request, attempt, status, started, answered, verdict.error
                        )
                    # An OAuth token can be revoked or expire early: refresh once, try again.
                    refreshed = True
                    auth.invalidate(headers)
                    logger.info(
                        "%s %s got 401; refreshing the access token", request.method, request.path
                    )
                    continue
                error = verdict
                maybe_delivered = maybe_delivered or may_have_been_delivered(status)
            if self._on_request is not None:
                self._request_event(request, attempt, status, started, answered, error)
            if give_up(error, retries):
                logger.debug(
                    "%s %s failed after %d attempt(s): %s",
                    request.method,
                    request.path,
                    retries + 1,
                    error,
                )
                raise error
            if waits is None:
                waits = retry_waits(self.retry)
                waits.send(None)
            wait = waits.send(error)
            retries += 1
            self._retrying(request, attempt, retries, wait, error)
            await asyncio.sleep(wait)

    async def _attempt(self, request: _Request) -> tuple[Headers, _Answer | TransportFailure]:
        """One attempt: the credential's headers and the answer, or the failure that
        took the answer's place (a token that could not be fetched, a lost connection)."""
        session = self.session
        if not request.authenticated:  # the token request, made within a call's attempt
            return BASE_HEADERS, await self._exchange(session, request, BASE_HEADERS)
        # Every request to the API starts when the client's rate control allows, and
        # tells it how the server answered.
        control = self.rate_control
        ticket = control.try_start(request.background) or await control.acquire(request.background)
        try:
            headers = await self._auth.headers()
        except LeanError as failed:  # the token request failed: nothing was sent
            control.no_answer(ticket)
            return BASE_HEADERS, TransportFailure(failed, False)
        except BaseException:
            control.no_answer(ticket)
            raise
        try:
            outcome = await self._exchange(session, request, headers)
        except BaseException:
            control.no_answer(ticket)
            raise
        if isinstance(outcome, TransportFailure):
            control.no_answer(ticket)
        elif outcome[0] == RATE_LIMITED:
            control.rate_limited(ticket, retry_after_of(outcome[1], time.time()))
        else:
            control.answered(ticket)
        return headers, outcome

    async def _exchange(
        self, session: aiohttp.ClientSession, request: _Request, headers: Headers
    ) -> _Answer | TransportFailure:
        """One HTTP exchange: the answer, or the failure (mapped by the protocol) when none
        came whole."""
        started = time.perf_counter()
        try:
            async with session.request(
                request.method,
                request.url,
                headers=request_headers(headers, request.content_type),
                data=request.body,
                **self._request_options,
            ) as response:
                body = await self._read_body(response)
                return response.status, response.headers, body, response.reason
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            # Only the exception's type and text go on: the aiohttp exception, whose
            # request info holds the credential headers, is not kept as a __context__.
            return transport_failure(exc, f"{request.method} {request.path}", _elapsed_ms(started))
        except ResponseTooLargeError as too_large:
            return TransportFailure(too_large, True)

    async def _read_body(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self._max_response_bytes
        length = response.content_length
        if length is not None:
            if length > limit:
                raise ResponseTooLargeError(
                    f"response body of {length} bytes exceeds max_response_bytes={limit}"
                )
            # Content-Length counts the bytes on the wire: a compressed body can inflate
            # far past it, so only an uncompressed one is read whole.
            if hdrs.CONTENT_ENCODING not in response.headers:
                return await response.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise ResponseTooLargeError(f"response body exceeds max_response_bytes={limit}")
            chunks.append(chunk)
        return b"".join(chunks)

    # -- hooks -------------------------------------------------------------------

    def _request_event(
        self,
        request: _Request,
        attempt: int,
        status: int | None,
        started: float,
        answered: Headers | None,
        error: LeanError | None,
    ) -> None:
        assert self._on_request is not None
        event = RequestEvent(
            method=request.method,
            path=request.path,
            attempt=attempt,
            status=status,
            elapsed=time.perf_counter() - started,
            request_id=request_id(answered) if answered is not None else None,
            error=error,
        )
        self._call_hook("on_request", self._on_request, event)

    def _retrying(
        self, request: _Request, attempt: int, retries: int, wait: float, error: LeanError
    ) -> None:
        cause = failure_cause(error)
        logger.info(
            "retrying %s %s in %.2f s after %s (retry %d)",
            request.method,
            request.path,
            wait,
            cause if status_of(error) is not None else _failure_without_request(error, request),
            retries,
            # For counting retries by cause without parsing the message.
            extra={"retry_cause": cause},
        )
        if self._on_retry is not None:
            event = RetryEvent(
                method=request.method,
                path=request.path,
                attempt=attempt,
                wait=wait,
                cause=cause,
                status=status_of(error),
                error=error,
            )
            self._call_hook("on_retry", self._on_retry, event)

    def _call_hook(self, name: str, hook: Callable[[Any], None], event: object) -> None:
        """Run a user's hook; one that raises is logged (once per hook) and the call goes on."""
        try:
            hook(event)
        except Exception:
            if name not in self._failed_hooks:
                self._failed_hooks.add(name)
                logger.warning(
                    "the %s hook %r raised; the call goes on (logged once; the traceback "
                    "is logged at DEBUG)",
                    name,
                    hook,
                )
            logger.debug("the %s hook raised", name, exc_info=True)

    def __repr__(self) -> str:
        return f"Transport(base_url={self._config.base_url!r}, auth={self._auth!r})"


class _Request:
    """What one call sends at each attempt."""

    __slots__ = (
        "authenticated",
        "background",
        "body",
        "content_type",
        "method",
        "missing_ok",
        "path",
        "url",
    )

    def __init__(
        self,
        method: str,
        url: URL,
        path: str,
        body: bytes | None,
        content_type: str | None,
        *,
        authenticated: bool,
        missing_ok: bool,
        background: bool,
    ) -> None:
        self.method = method
        self.url = url
        # With its query, percent-encoded, for logs and events.
        self.path = path
        self.body = body
        self.content_type = content_type
        # False for the token request, which carries the client credentials in its form.
        self.authenticated = authenticated
        # A 404 counts as success once an earlier attempt may have reached the server.
        self.missing_ok = missing_ok
        # A sweep's request: it waits behind the application's own calls for a start.
        self.background = background


def _failure_without_request(error: LeanError, request: _Request) -> str:
    """A transport failure for a line that already names its request: the error's class
    and its message without the method and path it starts with."""
    text = str(error)
    where = f"{request.method} {request.path}"
    if text.startswith(where):
        text = text[len(where) :].lstrip(": ")
    return f"{failure_cause(error)}: {text}" if text else failure_cause(error)


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000

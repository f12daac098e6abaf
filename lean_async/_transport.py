"""The only module that talks to aiohttp: one pooled session, one request with its
retries, and the mapping of transport failures to the library's exceptions."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import backoff
from aiohttp import hdrs
from yarl import URL

from ._auth import Headers, make_auth
from ._config import ClientConfig
from ._constants import (
    DNS_CACHE_TTL,
    LOGGER_NAME,
    REQUEST_ID_HEADER,
)
from ._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ClientClosedError,
    LeanError,
    ResponseTooLargeError,
    error_from_response,
)
from ._ratelimit import RateControl
from ._retry import RATE_LIMITED, give_up, parse_retry_after, retry_waits
from ._version import __version__
from .types.payment_sources import AccessToken, decode_access_token

logger = logging.getLogger(LOGGER_NAME)

T = TypeVar("T")
# (status, body) -> result; raises DecodeError for a body of the wrong shape.
Decode = Callable[[int, bytes], T]

USER_AGENT = f"lean-async/{__version__}"


class _Call:
    """One call's state across its attempts."""

    __slots__ = (
        "attempts",
        "authenticated",
        "background",
        "body",
        "content_type",
        "decode",
        "failed_first",
        "maybe_delivered",
        "method",
        "missing_ok",
        "path",
        "refreshed",
        "url",
    )

    def __init__(
        self,
        method: str,
        url: URL,
        path: str,
        decode: Decode[Any],
        body: bytes | None,
        content_type: str | None,
        missing_ok: bool,
        authenticated: bool = True,
        background: bool = False,
    ) -> None:
        self.method = method
        self.url = url
        self.path = path
        self.decode = decode
        self.body = body
        self.content_type = content_type
        # A 404 counts as success once an earlier attempt may have reached the server.
        self.missing_ok = missing_ok
        # False for the token request itself, which carries the client credentials instead.
        self.authenticated = authenticated
        # A sweep's request: it waits behind the application's own calls for a start.
        self.background = background
        self.maybe_delivered = False
        self.refreshed = False
        self.attempts = 0
        # The first attempt's failure, for the retrying wrapper to see as its first try.
        self.failed_first: LeanError | None = None


class Transport:
    def __init__(self, config: ClientConfig, *, rate_control: RateControl) -> None:
        self.base_url = config.base_url
        # Parsed once: each call only swaps the path in (yarl parses a whole URL string
        # three times slower), keeping any path prefix of the base URL.
        self._base = URL(config.base_url)
        self._base_path = self._base.raw_path.rstrip("/")
        self.auth_url = config.auth_url
        self.retry = config.retry
        self._credentials = config.credentials
        self._timeout = config.timeout
        self._max_connections = config.max_connections
        self._max_response_bytes = config.max_response_bytes
        self._session = config.session
        self._owns_session = config.session is None
        self._on_request = config.on_request
        self._on_retry = config.on_retry
        self.rate_control = rate_control
        self._closed = False
        self._base_headers: Headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        # The token a call needs is fetched within that call's attempt, once: the call's own
        # retries then bound it, instead of retrying a retrying fetch.
        self._auth = make_auth(
            config.credentials,
            self._base_headers,
            functools.partial(self.fetch_token, retry=False),
        )
        # Extra keyword arguments for every session.request, computed once.
        # raise_for_status is set per request so that a caller's session cannot change it.
        self._request_options: dict[str, Any] = {
            "allow_redirects": False,
            "raise_for_status": False,
            "timeout": config.timeout,
        }
        if config.ssl_option is not None:
            self._request_options["ssl"] = config.ssl_option
        self._send = self._with_retries(retry_rate_limited=True)
        self._send_no_429_retry = self._with_retries(retry_rate_limited=False)

    def _with_retries(self, *, retry_rate_limited: bool) -> Callable[[_Call], Any]:
        policy = self.retry
        return backoff.on_exception(
            lambda: retry_waits(policy),
            LeanError,
            max_tries=policy.max_retries + 1,
            jitter=None,
            giveup=give_up(policy, retry_rate_limited=retry_rate_limited),
            on_backoff=_log_retry,
            on_giveup=_log_give_up,
            raise_on_giveup=True,
            logger=None,
        )(self._attempt)

    # -- lifecycle -----------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        """The pooled session, created on first use inside the running event loop."""
        session = self._session
        if session is None:
            if self._closed:
                raise ClientClosedError("this LeanClient is closed")
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                ttl_dns_cache=DNS_CACHE_TTL,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
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

    async def request(
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
    ) -> T:
        """Send ``method path`` with retries; ``decode(status, body)`` makes the result.

        ``path`` is already percent-encoded; ``params`` become the query string, every
        name and value percent-encoded (a ``+`` in a timestamp stays a ``+``).
        A ``background`` call (a sweep's) lets the application's own calls start first.
        """
        if params:
            query = urlencode(params, quote_via=quote, safe="")
            url = URL.build(
                scheme=self._base.scheme,
                authority=self._base.raw_authority,
                path=self._base_path + path,
                query_string=query,
                encoded=True,
            )
            path = f"{path}?{query}"
        else:
            url = self._base.with_path(self._base_path + path, encoded=True)
        call = _Call(
            method,
            url,
            path,
            decode,
            json_body,
            "application/json" if json_body is not None else None,
            missing_ok_after_retry,
            background=background,
        )
        # The first attempt runs outside backoff, whose bookkeeping costs more per call than
        # the rest of this method: most calls succeed at once. A failure is handed over to
        # backoff as its first try, so retries, waits and logs are as if it had run it.
        try:
            result: T = await self._attempt(call)
            return result
        except LeanError as error:
            call.failed_first = error
        send = self._send if retry_rate_limited else self._send_no_429_retry
        result = await send(call)
        return result

    async def _attempt(self, call: _Call) -> Any:
        failed, call.failed_first = call.failed_first, None
        if failed is not None:
            raise failed
        call.attempts += 1
        session = self.session
        if not call.authenticated:  # the token request, made within a call's start
            status, response_headers, body, reason = await self._exchange(
                session, call, self._with_content_type(call, self._base_headers)
            )
        else:
            # Every request to the API starts when the client's rate control allows, and
            # tells it how the server answered.
            control = self.rate_control
            ticket = control.try_start(call.background) or await control.acquire(call.background)
            try:
                headers = await self._auth.headers()
                status, response_headers, body, reason = await self._exchange(
                    session, call, self._with_content_type(call, headers)
                )
            except BaseException:
                control.no_answer(ticket)
                raise
            if status == RATE_LIMITED:
                control.rate_limited(ticket, _retry_after(response_headers))
            else:
                control.answered(ticket)
        if 200 <= status < 300:
            return call.decode(status, body)
        if status == 401 and call.authenticated and self._auth.refreshable and not call.refreshed:
            # An OAuth token can be revoked or expire early: refresh once, try once more.
            call.refreshed = True
            self._auth.invalidate(headers)
            logger.info("%s %s got 401; refreshing the access token", call.method, call.path)
            call.attempts -= 1
            return await self._attempt(call)
        if status == 404 and call.missing_ok and call.maybe_delivered:
            return call.decode(status, b"")
        if status >= 500:
            call.maybe_delivered = True
        raise error_from_response(
            status,
            response_headers,
            body,
            reason=reason,
            retry_after=_retry_after(response_headers),
        )

    @staticmethod
    def _with_content_type(call: _Call, headers: Headers) -> Headers:
        if call.content_type is None:
            return headers
        return {**headers, "Content-Type": call.content_type}

    async def _exchange(
        self, session: aiohttp.ClientSession, call: _Call, headers: Headers
    ) -> tuple[int, Mapping[str, str], bytes, str | None]:
        """One HTTP exchange; transport failures become APIConnectionError/APITimeoutError."""
        started = time.perf_counter()
        try:
            async with session.request(
                call.method, call.url, headers=headers, data=call.body, **self._request_options
            ) as response:
                status = response.status
                body = await self._read_body(response)
                response_headers = response.headers
                reason = response.reason
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            failure = self._transport_failure(call, exc, started)
        else:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "%s %s -> %d in %.1f ms (attempt %d, request id %s)",
                    call.method,
                    call.path,
                    status,
                    _elapsed_ms(started),
                    call.attempts,
                    response_headers.get(REQUEST_ID_HEADER),
                )
            return status, response_headers, body, reason
        logger.debug("%s (attempt %d)", failure, call.attempts)
        # Raised outside the except block, so that the aiohttp exception, whose request
        # info holds the credential headers, is not kept as this error's __context__.
        raise failure

    @staticmethod
    def _transport_failure(call: _Call, exc: BaseException, started: float) -> LeanError:
        """The library's error for a failed exchange; marks a request that may have been
        delivered (anything after the connection was made)."""
        where = f"{call.method} {call.path}"
        if isinstance(exc, aiohttp.ConnectionTimeoutError):  # never connected: nothing sent
            return APITimeoutError(
                f"{where}: connecting timed out after {_elapsed_ms(started):.0f} ms"
            )
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            # The server's certificate failed verification: no retry can change that.
            return APIConnectionError(
                f"{where}: TLS certificate verification failed: {exc}", retryable=False
            )
        if isinstance(exc, aiohttp.ClientConnectorError):  # never connected: nothing sent
            return APIConnectionError(f"{where}: cannot connect: {exc}")
        call.maybe_delivered = True
        if isinstance(exc, asyncio.TimeoutError):
            return APITimeoutError(f"{where} timed out after {_elapsed_ms(started):.0f} ms")
        return APIConnectionError(f"{where}: connection failed: {_describe(exc)}")

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

    # -- OAuth2 --------------------------------------------------------------------

    async def fetch_token(self, scope: str, *, retry: bool = True) -> AccessToken:
        """Client-credentials token for ``scope``; with the client's retries, or one attempt."""
        creds = self._credentials
        # Only client credentials reach here: customer_token() and make_auth() see to it.
        assert creds.client_id is not None and creds.client_secret is not None
        body = urlencode(
            {
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
                "grant_type": "client_credentials",
                "scope": scope,
            }
        ).encode()
        call = _Call(
            "POST",
            URL(self.auth_url),
            urlsplit(self.auth_url).path or "/",
            _decode_token,
            body,
            "application/x-www-form-urlencoded",
            missing_ok=False,
            authenticated=False,
        )
        result: AccessToken = await (self._send(call) if retry else self._attempt(call))
        return result

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r}, auth={self._auth!r})"


def _decode_token(status: int, body: bytes) -> AccessToken:
    return decode_access_token(body)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    return parse_retry_after(headers.get("Retry-After"), time.time())


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _log_retry(details: Any) -> None:
    call: _Call = details["args"][0]
    exc = details.get("exception")
    if isinstance(exc, APIError):
        cause = why = f"HTTP {exc.status_code}"
    else:
        cause, why = type(exc).__name__, _describe(exc)
    logger.info(
        "retrying %s %s in %.2f s after %s (retry %d)",
        call.method,
        call.path,
        details["wait"],
        why,
        details["tries"],
        # For counting retries by cause without parsing the message.
        extra={"retry_cause": cause},
    )


def _log_give_up(details: Any) -> None:
    call: _Call = details["args"][0]
    logger.debug(
        "%s %s failed after %d attempt(s): %s",
        call.method,
        call.path,
        details["tries"],
        details.get("exception"),
    )

"""LeanClient: configuration, lifecycle, and the resources hung off it."""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import os
import ssl as ssl_module
from collections.abc import Mapping
from types import TracebackType
from urllib.parse import urlsplit

import aiohttp

from ._auth import Credentials, fetch_token
from ._constants import (
    APP_TOKEN_HEADER,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    ENV_AUTH_URL,
    ENV_BASE_URL,
    ENVIRONMENTS,
    HOSTS,
    LOGGER_NAME,
    REGIONS,
)
from ._exceptions import ConfigurationError
from ._ids import CustomerLike, validate_customer_id
from ._observe import OnRequest, OnRetry
from ._ratelimit import RateControl, check_rate
from ._retry import RetryPolicy
from ._transport import Transport
from .resources.customers import Customers
from .resources.events import Events
from .resources.payment_destinations import PaymentDestinations
from .resources.payment_sources import PaymentSources
from .types.payment_sources import AccessToken

__all__ = ["LeanClient"]

logger = logging.getLogger(LOGGER_NAME)


class LeanClient:
    """An asyncio client for Lean's API, owning one pooled aiohttp session.

    Credentials: exactly one of ``app_token=``, ``access_token=``, or ``client_id=`` with
    ``client_secret=`` (OAuth2 client credentials); with none, the ``LEAN_APP_TOKEN``,
    ``LEAN_ACCESS_TOKEN`` or ``LEAN_CLIENT_ID``/``LEAN_CLIENT_SECRET`` environment variables.
    Hosts: Lean's for ``environment`` and ``region``, unless ``base_url=``/``auth_url=``
    or the ``LEAN_BASE_URL``/``LEAN_AUTH_URL`` environment variables say otherwise.

    Hooks: ``on_request(RequestEvent)`` after every attempt of every request (answered or
    not), ``on_retry(RetryEvent)`` before each wait for a retry; plain functions, called
    in the event loop, that should return quickly. One that raises is logged (a warning
    once per hook, the traceback at DEBUG) and the call goes on.

    Constructing a client does no I/O; the session is opened on the first call, inside the
    running event loop, and closed by ``async with`` or ``await client.close()``.
    """

    customers: Customers
    payment_sources: PaymentSources
    payment_destinations: PaymentDestinations
    events: Events

    def __init__(
        self,
        *,
        app_token: str | None = None,
        access_token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        environment: str = "sandbox",
        region: str = "uae",
        base_url: str | None = None,
        auth_url: str | None = None,
        timeout: float | aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        rate_limit: float | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        session: aiohttp.ClientSession | None = None,
        ssl: ssl_module.SSLContext | None = None,
        insecure_disable_tls_verification: bool = False,
        environ: Mapping[str, str] | None = None,
        on_request: OnRequest | None = None,
        on_retry: OnRetry | None = None,
    ) -> None:
        if environment not in ENVIRONMENTS:
            raise ConfigurationError(
                f"environment must be one of {', '.join(map(repr, ENVIRONMENTS))}, "
                f"got {environment!r}"
            )
        if region not in REGIONS:
            raise ConfigurationError(
                f"region must be one of {', '.join(map(repr, REGIONS))}, got {region!r}"
            )
        credentials = Credentials.resolve(
            app_token=app_token,
            access_token=access_token,
            client_id=client_id,
            client_secret=client_secret,
            environ=environ,
        )
        env = os.environ if environ is None else environ
        default_base, default_auth = HOSTS[(environment, region)]
        self.environment = environment
        self.region = region
        self.base_url = _check_url(base_url or env.get(ENV_BASE_URL) or default_base, "base_url")
        auth_url = auth_url or env.get(ENV_AUTH_URL)
        if auth_url is None and credentials.scheme == "client_credentials":
            _check_token_host(self.base_url, default_base, default_auth)
        self.auth_url = _check_url(auth_url or default_auth, "auth_url")
        self._auth_scheme = credentials.scheme
        self._credentials = credentials
        policy = _check_retry(max_retries, retry)
        self._transport = Transport(
            base_url=self.base_url,
            auth_url=self.auth_url,
            credentials=credentials,
            timeout=_check_timeout(timeout),
            retry=policy,
            max_connections=_check_positive_int(max_connections, "max_connections"),
            max_response_bytes=_check_positive_int(max_response_bytes, "max_response_bytes"),
            session=_check_session(session),
            ssl=_check_ssl(ssl, insecure_disable_tls_verification),
            # One rate control for every call and sweep of this client.
            rate_control=RateControl(_check_rate_limit(rate_limit), policy=policy),
            on_request=on_request,
            on_retry=on_retry,
        )
        self.customers = Customers(self._transport)
        self.payment_sources = PaymentSources(self._transport)
        self.payment_destinations = PaymentDestinations(self._transport)
        self.events = Events(self._transport)

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy every call follows."""
        return self._transport.retry

    @property
    def closed(self) -> bool:
        return self._transport.closed

    async def customer_token(self, customer_id: CustomerLike) -> AccessToken:
        """Mint an access token scoped to one customer (``scope=customer.<id>``; a
        ``Customer`` stands for its id), to hand to the front-end LinkSDK. Needs client
        credentials; the token is not cached."""
        customer = validate_customer_id(customer_id)
        if self._auth_scheme != "client_credentials":
            raise ConfigurationError(
                "customer_token() needs client_id= and client_secret= credentials"
            )
        transport = self._transport
        return await fetch_token(
            functools.partial(transport.post_form, retries=True),
            self.auth_url,
            self._credentials,
            f"customer.{customer}",
        )

    async def close(self) -> None:
        """Close the owned session (a caller's own session is left open). Idempotent."""
        await self._transport.close()

    async def __aenter__(self) -> LeanClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return (
            f"LeanClient(environment={self.environment!r}, region={self.region!r}, "
            f"base_url={self.base_url!r}, auth={self._auth_scheme!r})"
        )


def _check_url(url: str, name: str) -> str:
    if not isinstance(url, str):
        raise ConfigurationError(f"{name} must be a string URL, got {url!r}")
    parts = urlsplit(url)
    # Checked first, so that no later message echoes a password in the URL.
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigurationError(
            f"{name} must not carry a query, fragment or user info, got {parts.scheme}://"
            f"{parts.hostname}..."
        )
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(f"{name} must be an http(s) URL with a host, got {url!r}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigurationError(
            f"{name} {url!r} is plain http to a non-loopback host: credentials would travel "
            "unencrypted; use https (http is allowed only for 127.0.0.1, ::1 and localhost)"
        )
    return url.rstrip("/")


def _check_token_host(base_url: str, default_base: str, default_auth: str) -> None:
    """OAuth2 tokens come from Lean's auth host unless told otherwise: with the API host
    pointed elsewhere, that is almost never meant (a mock or a proxy would get a token from
    Lean for every call, and each would fail slowly), so both hosts must be given. There is
    no safe guess: a token URL on the API host is only the fake server's layout."""
    if base_url == default_base.rstrip("/"):
        return
    raise ConfigurationError(
        f"base_url= (or {ENV_BASE_URL}) sends requests to {base_url}, but OAuth2 tokens "
        f"would still come from {default_auth}: pass auth_url= (or set {ENV_AUTH_URL}) "
        "with the token URL to use"
    )


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_timeout(timeout: float | aiohttp.ClientTimeout) -> aiohttp.ClientTimeout:
    if isinstance(timeout, aiohttp.ClientTimeout):
        for name in ("total", "connect", "sock_read", "sock_connect"):
            value = getattr(timeout, name)
            # aiohttp silently takes a negative or zero timeout for no timeout at all.
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ConfigurationError(
                    f"timeout.{name} must be a number of seconds > 0 or None, got {value!r}"
                )
        return timeout
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ConfigurationError(
            f"timeout must be a number of seconds > 0 or an aiohttp.ClientTimeout, got {timeout!r}"
        )
    return aiohttp.ClientTimeout(
        total=timeout, sock_connect=min(DEFAULT_CONNECT_TIMEOUT, float(timeout))
    )


def _check_retry(max_retries: int | None, retry: RetryPolicy | None) -> RetryPolicy:
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise ConfigurationError(f"retry must be a lean_async.RetryPolicy, got {retry!r}")
    if max_retries is not None and (
        isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0
    ):
        raise ConfigurationError(f"max_retries must be a whole number >= 0, got {max_retries!r}")
    policy = retry or RetryPolicy()
    if max_retries is not None and max_retries != policy.max_retries:
        policy = RetryPolicy(
            max_retries=max_retries,
            initial_delay=policy.initial_delay,
            max_delay=policy.max_delay,
            max_retry_after=policy.max_retry_after,
        )
    return policy


def _check_positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a whole number >= 1, got {value!r}")
    return value


def _check_session(session: aiohttp.ClientSession | None) -> aiohttp.ClientSession | None:
    if session is None:
        return None
    if not isinstance(session, aiohttp.ClientSession):
        raise ConfigurationError(f"session must be an aiohttp.ClientSession, got {session!r}")
    clashing = {"authorization", APP_TOKEN_HEADER} & {h.lower() for h in session.headers}
    if clashing:
        # A request must carry exactly one credential: the client's.
        raise ConfigurationError(
            f"the session's default headers carry {', '.join(sorted(clashing))}; pass "
            "credentials to LeanClient instead"
        )
    return session


def _check_ssl(
    ssl: ssl_module.SSLContext | None, insecure: bool
) -> ssl_module.SSLContext | bool | None:
    if ssl is not None and not isinstance(ssl, ssl_module.SSLContext):
        raise ConfigurationError(
            "ssl must be an ssl.SSLContext (e.g. with a client certificate for mutual TLS); "
            "to turn certificate checks off, pass insecure_disable_tls_verification=True"
        )
    if insecure:
        if ssl is not None:
            raise ConfigurationError(
                "pass either ssl= or insecure_disable_tls_verification=True, not both"
            )
        logger.warning(
            "TLS certificate verification is disabled (insecure_disable_tls_verification="
            "True): anyone on the network path can read and change this client's requests, "
            "credentials included"
        )
        return False
    return ssl


def _check_rate_limit(rate_limit: float | None) -> float | None:
    if rate_limit is None:
        return None
    try:
        return check_rate(rate_limit)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None

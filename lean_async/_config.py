"""ClientConfig: every option of a client, resolved and checked once, then frozen."""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import ssl as ssl_module
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from ._auth import Credentials
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
from ._observe import OnRequest, OnRetry
from ._ratelimit import check_rate
from ._retry import RetryPolicy

__all__ = ["ClientConfig"]

logger = logging.getLogger(LOGGER_NAME)


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything a LeanClient is told, resolved: credentials and hosts read from the
    environment where not given, the timeout as an ``aiohttp.ClientTimeout``, ``max_retries``
    folded into the retry policy.

    Build one with :meth:`build` (it takes ``LeanClient``'s keyword arguments) and hand it
    to ``LeanClient(config=...)``, as many times as you like. Every field is checked when the
    object is made, also by ``dataclasses.replace``, with the ConfigurationError that
    ``LeanClient(...)`` raises. ``repr()`` shows no secret.
    """

    credentials: Credentials
    environment: str
    region: str
    #: The API's base URL, without a trailing slash.
    base_url: str
    #: The OAuth2 token URL.
    auth_url: str
    #: One attempt's bounds (not the whole call with its retries).
    timeout: aiohttp.ClientTimeout
    retry: RetryPolicy
    max_connections: int
    #: A known limit, in request starts per second, or None to learn it from 429s.
    rate_limit: float | None
    max_response_bytes: int
    ssl: ssl_module.SSLContext | None
    insecure_disable_tls_verification: bool
    #: A caller's own session, used as is and never closed by the client.
    session: aiohttp.ClientSession | None
    on_request: OnRequest | None
    on_retry: OnRetry | None

    def __post_init__(self) -> None:
        # Every check of a resolved value, in the order LeanClient(...) reports them.
        if not isinstance(self.credentials, Credentials):
            raise ConfigurationError(
                f"credentials must be lean_async Credentials, got {type(self.credentials)!r}"
            )
        _check_choice(self.environment, "environment", ENVIRONMENTS)
        _check_choice(self.region, "region", REGIONS)
        _check_url(self.base_url, "base_url")
        _check_url(self.auth_url, "auth_url")
        if not isinstance(self.retry, RetryPolicy):
            raise ConfigurationError(f"retry must be a lean_async.RetryPolicy, got {self.retry!r}")
        _check_timeout(self.timeout)
        _check_positive_int(self.max_connections, "max_connections")
        _check_positive_int(self.max_response_bytes, "max_response_bytes")
        _check_session(self.session)
        _check_ssl(self.ssl, self.insecure_disable_tls_verification)
        if self.rate_limit is not None:
            try:
                check_rate(self.rate_limit)
            except ValueError as exc:
                raise ConfigurationError(str(exc)) from None
        for name in ("on_request", "on_retry"):
            hook = getattr(self, name)
            if hook is not None and not callable(hook):
                raise ConfigurationError(f"{name} must be a callable or None, got {hook!r}")

    @property
    def ssl_option(self) -> ssl_module.SSLContext | bool | None:
        """What aiohttp's ``ssl=`` gets: False turns certificate checks off."""
        return False if self.insecure_disable_tls_verification else self.ssl

    @classmethod
    def build(
        cls,
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
        on_request: OnRequest | None = None,
        on_retry: OnRetry | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> ClientConfig:
        """The configuration ``LeanClient(...)`` with these keyword arguments uses: reads
        ``environ`` (default ``os.environ``) for what is not given; ConfigurationError (a
        ``ValueError``) names the first option that is wrong."""
        _check_choice(environment, "environment", ENVIRONMENTS)
        _check_choice(region, "region", REGIONS)
        credentials = Credentials.resolve(
            app_token=app_token,
            access_token=access_token,
            client_id=client_id,
            client_secret=client_secret,
            environ=environ,
        )
        env = os.environ if environ is None else environ
        default_base, default_auth = HOSTS[(environment, region)]
        base_url = _strip_slash(base_url or env.get(ENV_BASE_URL) or default_base)
        auth_url = auth_url or env.get(ENV_AUTH_URL)
        if auth_url is None and credentials.scheme == "client_credentials":
            _check_token_host(base_url, default_base, default_auth)
        config = cls(
            credentials=credentials,
            environment=environment,
            region=region,
            base_url=base_url,
            auth_url=_strip_slash(auth_url or default_auth),
            timeout=_as_client_timeout(timeout),
            retry=_with_max_retries(retry, max_retries),
            max_connections=max_connections,
            rate_limit=rate_limit if rate_limit is None else _as_float(rate_limit),
            max_response_bytes=max_response_bytes,
            ssl=ssl,
            insecure_disable_tls_verification=insecure_disable_tls_verification,
            session=session,
            on_request=on_request,
            on_retry=on_retry,
        )
        if config.insecure_disable_tls_verification:
            logger.warning(
                "TLS certificate verification is disabled (insecure_disable_tls_verification="
                "True): anyone on the network path can read and change this client's requests, "
                "credentials included"
            )
        return config


def _check_choice(value: str, name: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigurationError(
            f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}"
        )


def _strip_slash(url: str) -> str:
    # A non-string is left for _check_url to refuse by name.
    return url.rstrip("/") if isinstance(url, str) else url


def _as_float(rate: float) -> float:
    # A number becomes a float; anything else is left for check_rate to refuse.
    is_number = isinstance(rate, (int, float)) and not isinstance(rate, bool)
    return float(rate) if is_number else rate


def _check_url(url: str, name: str) -> None:
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
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigurationError(
            f"{name} {url!r} is plain http to a non-loopback host: credentials would travel "
            "unencrypted; use https (http is allowed only for 127.0.0.1, ::1 and localhost)"
        )


def _check_token_host(base_url: str, default_base: str, default_auth: str) -> None:
    """OAuth2 tokens come from Lean's auth host unless told otherwise: with the API host
    pointed elsewhere, that is almost never meant (a mock or a proxy would get a token from
    Lean for every call, and each would fail slowly), so both hosts must be given. There is
    no safe guess: a token URL on the API host is only the fake server's layout."""
    if base_url == default_base:
        return
    raise ConfigurationError(
        f"base_url= (or {ENV_BASE_URL}) sends requests to {base_url}, but OAuth2 tokens "
        f"would still come from {default_auth}: pass auth_url= (or set {ENV_AUTH_URL}) "
        "with the token URL to use"
    )


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_seconds(value: object) -> bool:
    """A finite number of seconds > 0 (aiohttp silently takes 0 or less for no bound)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _as_client_timeout(timeout: float | aiohttp.ClientTimeout) -> aiohttp.ClientTimeout:
    """A number of seconds bounds the whole attempt, and connecting to at most 10 s of it;
    anything else is left for _check_timeout."""
    if not _is_seconds(timeout):
        return timeout  # type: ignore[return-value]
    seconds = float(timeout)  # type: ignore[arg-type]
    return aiohttp.ClientTimeout(total=seconds, sock_connect=min(DEFAULT_CONNECT_TIMEOUT, seconds))


def _check_timeout(timeout: aiohttp.ClientTimeout) -> None:
    if not isinstance(timeout, aiohttp.ClientTimeout):
        raise ConfigurationError(
            f"timeout must be a number of seconds > 0 or an aiohttp.ClientTimeout, got {timeout!r}"
        )
    for name in ("total", "connect", "sock_read", "sock_connect"):
        value = getattr(timeout, name)
        if value is not None and not _is_seconds(value):
            raise ConfigurationError(
                f"timeout.{name} must be a number of seconds > 0 or None, got {value!r}"
            )


def _with_max_retries(retry: RetryPolicy | None, max_retries: int | None) -> RetryPolicy:
    """``retry`` (default ``RetryPolicy()``) with its count replaced by ``max_retries``."""
    if max_retries is not None and (
        isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0
    ):
        raise ConfigurationError(f"max_retries must be a whole number >= 0, got {max_retries!r}")
    if retry is None:
        retry = RetryPolicy()
    if max_retries is None or not isinstance(retry, RetryPolicy):
        return retry  # a wrong retry= is refused by name when the config is made
    return RetryPolicy(
        max_retries=max_retries,
        initial_delay=retry.initial_delay,
        max_delay=retry.max_delay,
        max_retry_after=retry.max_retry_after,
    )


def _check_positive_int(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a whole number >= 1, got {value!r}")


def _check_session(session: aiohttp.ClientSession | None) -> None:
    if session is None:
        return
    if not isinstance(session, aiohttp.ClientSession):
        raise ConfigurationError(f"session must be an aiohttp.ClientSession, got {session!r}")
    clashing = {"authorization", APP_TOKEN_HEADER} & {h.lower() for h in session.headers}
    if clashing:
        # A request must carry exactly one credential: the client's.
        raise ConfigurationError(
            f"the session's default headers carry {', '.join(sorted(clashing))}; pass "
            "credentials to LeanClient instead"
        )


def _check_ssl(ssl: ssl_module.SSLContext | None, insecure: bool) -> None:
    if ssl is not None and not isinstance(ssl, ssl_module.SSLContext):
        raise ConfigurationError(
            "ssl must be an ssl.SSLContext (e.g. with a client certificate for mutual TLS); "
            "to turn certificate checks off, pass insecure_disable_tls_verification=True"
        )
    if not isinstance(insecure, bool):
        raise ConfigurationError(
            f"insecure_disable_tls_verification must be True or False, got {insecure!r}"
        )
    if insecure and ssl is not None:
        raise ConfigurationError(
            "pass either ssl= or insecure_disable_tls_verification=True, not both"
        )

"""LeanClient: configuration, lifecycle, and the resources hung off it."""

from __future__ import annotations

import functools
import inspect
import ssl as ssl_module
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import aiohttp

from ._auth import fetch_token
from ._config import ClientConfig
from ._constants import DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT
from ._exceptions import ConfigurationError
from ._ids import CustomerLike, validate_customer_id
from ._observe import OnRequest, OnRetry
from ._ratelimit import RateControl
from ._retry import RetryPolicy
from ._transport import Transport
from .resources.customers import Customers
from .resources.events import Events
from .resources.payment_destinations import PaymentDestinations
from .resources.payment_sources import PaymentSources
from .types.payment_sources import AccessToken

__all__ = ["LeanClient"]


class LeanClient:
    """An asyncio client for Lean's API, owning one pooled aiohttp session.

    Credentials: exactly one of ``app_token=``, ``access_token=``, or ``client_id=`` with
    ``client_secret=`` (OAuth2 client credentials); with none, the ``LEAN_APP_TOKEN``,
    ``LEAN_ACCESS_TOKEN`` or ``LEAN_CLIENT_ID``/``LEAN_CLIENT_SECRET`` environment variables.
    Hosts: Lean's for ``environment`` and ``region``, unless ``base_url=``/``auth_url=``
    or the ``LEAN_BASE_URL``/``LEAN_AUTH_URL`` environment variables say otherwise.
    ``config=``: a :class:`ClientConfig` built beforehand, instead of the other options.

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
        on_request: OnRequest | None = None,
        on_retry: OnRetry | None = None,
        environ: Mapping[str, str] | None = None,
        config: ClientConfig | None = None,
    ) -> None:
        options = dict(locals())
        del options["self"], options["config"]
        if config is None:
            config = ClientConfig.build(**options)
        elif not isinstance(config, ClientConfig):
            raise ConfigurationError(f"config must be a lean_async.ClientConfig, got {config!r}")
        else:
            given = [name for name, value in options.items() if value != _DEFAULTS[name]]
            if given:
                raise ConfigurationError(
                    "pass either config= or the options it holds, not both; got config= "
                    f"and {', '.join(name + '=' for name in given)}"
                )
        self._config = config
        self._transport = Transport(
            config,
            # One rate control for every call and sweep of this client.
            rate_control=RateControl(config.rate_limit, policy=config.retry),
        )
        self.customers = Customers(self._transport)
        self.payment_sources = PaymentSources(self._transport)
        self.payment_destinations = PaymentDestinations(self._transport)
        self.events = Events(self._transport)

    @property
    def config(self) -> ClientConfig:
        """Every option of this client, resolved and checked."""
        return self._config

    @property
    def environment(self) -> str:
        return self.config.environment

    @property
    def region(self) -> str:
        return self.config.region

    @property
    def base_url(self) -> str:
        """The API's base URL this client calls (resolved: given, from the environment, or
        Lean's for the environment and region)."""
        return self.config.base_url

    @property
    def auth_url(self) -> str:
        """The OAuth2 token URL (used with client credentials only)."""
        return self.config.auth_url

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy every call follows."""
        return self.config.retry

    @property
    def closed(self) -> bool:
        return self._transport.closed

    async def customer_token(self, customer_id: CustomerLike) -> AccessToken:
        """Mint an access token scoped to one customer (``scope=customer.<id>``; a
        ``Customer`` stands for its id), to hand to the front-end LinkSDK. Needs client
        credentials; the token is not cached."""
        customer = validate_customer_id(customer_id)
        if self.config.credentials.scheme != "client_credentials":
            raise ConfigurationError(
                "customer_token() needs client_id= and client_secret= credentials"
            )
        config = self.config
        return await fetch_token(
            functools.partial(self._transport.post_form, retries=True),
            config.auth_url,
            config.credentials,
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
            f"base_url={self.base_url!r}, auth={self.config.credentials.scheme!r})"
        )


# The keyword arguments that config= stands for, with their defaults.
_DEFAULTS: dict[str, Any] = {
    name: parameter.default
    for name, parameter in inspect.signature(ClientConfig.build).parameters.items()
}

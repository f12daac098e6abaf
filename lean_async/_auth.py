"""Credentials: which scheme, the headers each request carries, and the OAuth2
client-credentials grant, sent through a "post a form, get bytes" function it is given."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from ._constants import (
    APP_TOKEN_HEADER,
    DEFAULT_TOKEN_SCOPE,
    ENV_ACCESS_TOKEN,
    ENV_APP_TOKEN,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    LOGGER_NAME,
    TOKEN_REFRESH_FRACTION,
    TOKEN_REFRESH_MAX_MARGIN,
)
from ._exceptions import ClientClosedError, ConfigurationError
from ._protocol import Headers
from .types.payment_sources import AccessToken, decode_access_token

logger = logging.getLogger(LOGGER_NAME)

# POST ``form`` to ``url``; the answer's body on a 2xx, the library's error otherwise.
PostForm = Callable[[str, Mapping[str, str]], Awaitable[bytes]]


@dataclass(frozen=True)
class Credentials:
    """Exactly one scheme's secrets; ``repr`` never shows them."""

    app_token: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)

    @property
    def scheme(self) -> str:
        if self.app_token is not None:
            return "app_token"
        if self.access_token is not None:
            return "access_token"
        return "client_credentials"

    @classmethod
    def resolve(
        cls,
        *,
        app_token: str | None,
        access_token: str | None,
        client_id: str | None,
        client_secret: str | None,
        environ: Mapping[str, str] | None = None,
    ) -> Credentials:
        """The one scheme given, else the one in the LEAN_* environment variables."""
        given = _schemes(app_token, access_token, client_id, client_secret)
        if not given:
            env = os.environ if environ is None else environ
            app_token = env.get(ENV_APP_TOKEN) or None
            access_token = env.get(ENV_ACCESS_TOKEN) or None
            client_id = env.get(ENV_CLIENT_ID) or None
            client_secret = env.get(ENV_CLIENT_SECRET) or None
            given = _schemes(app_token, access_token, client_id, client_secret)
            where = (
                f" in the environment ({ENV_APP_TOKEN}, {ENV_ACCESS_TOKEN}, "
                f"{ENV_CLIENT_ID}/{ENV_CLIENT_SECRET})"
            )
        else:
            where = ""
        if not given:
            raise ConfigurationError(
                "no credentials: pass app_token=, access_token=, or client_id= and "
                f"client_secret=, or set {ENV_APP_TOKEN}, {ENV_ACCESS_TOKEN}, or "
                f"{ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}"
            )
        if len(given) > 1:
            raise ConfigurationError(
                f"give exactly one credential scheme, got {' and '.join(given)}{where}"
            )
        if given == ["client_id/client_secret"] and not (client_id and client_secret):
            missing = "client_secret=" if client_id else "client_id="
            raise ConfigurationError(
                f"client credentials need both client_id= and client_secret=; {missing} is "
                f"missing (or set {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET})"
            )
        for name, value in (
            ("app_token", app_token),
            ("access_token", access_token),
            ("client_id", client_id),
            ("client_secret", client_secret),
        ):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigurationError(f"{name} must be a non-empty string")
            if value is not None and not value.isprintable():
                # Read from a file, a secret often ends in a newline, which no header may hold.
                raise ConfigurationError(
                    f"{name} contains a line break or other control character "
                    "(a trailing newline read from a file?)"
                )
        return cls(app_token, access_token, client_id, client_secret)


def _schemes(
    app_token: str | None,
    access_token: str | None,
    client_id: str | None,
    client_secret: str | None,
) -> list[str]:
    schemes = []
    if app_token is not None:
        schemes.append("app_token")
    if access_token is not None:
        schemes.append("access_token")
    if client_id is not None or client_secret is not None:
        schemes.append("client_id/client_secret")
    return schemes


class StaticAuth:
    """An app token or a fixed bearer: the same headers on every request."""

    refreshable = False

    def __init__(self, base: Headers, name: str, value: str) -> None:
        self._headers: Headers = {**base, name: value}

    async def headers(self) -> Headers:
        return self._headers

    def invalidate(self, used: Headers) -> None:
        """Nothing to refresh: a 401 is final."""

    def __repr__(self) -> str:
        return "StaticAuth(***)"


def token_form(credentials: Credentials, scope: str) -> dict[str, str]:
    """The form of an OAuth2 client-credentials grant for ``scope``."""
    # Only client credentials reach here: customer_token() and make_auth() see to it.
    assert credentials.client_id is not None and credentials.client_secret is not None
    return {
        "client_id": credentials.client_id,
        "client_secret": credentials.client_secret,
        "grant_type": "client_credentials",
        "scope": scope,
    }


async def fetch_token(
    post_form: PostForm, token_url: str, credentials: Credentials, scope: str
) -> AccessToken:
    """A client-credentials token for ``scope`` from ``token_url``, sent by ``post_form``
    (which decides how often it tries); DecodeError for an answer that is not a token."""
    return decode_access_token(await post_form(token_url, token_form(credentials, scope)))


class ClientCredentialsAuth:
    """OAuth2 client credentials: one token shared by every call, fetched by one request
    at a time however many calls need it, and refreshed shortly before it expires."""

    refreshable = True

    def __init__(
        self,
        base: Headers,
        post_form: PostForm,
        token_url: str,
        credentials: Credentials,
        *,
        scope: str = DEFAULT_TOKEN_SCOPE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = base
        self._post_form = post_form
        self._token_url = token_url
        self._credentials = credentials
        self._scope = scope
        self._clock = clock
        self._headers: Headers | None = None
        self._refresh_at = 0.0
        self._inflight: asyncio.Task[Headers] | None = None
        self._closed = False

    async def headers(self) -> Headers:
        headers = self._headers
        if headers is not None and self._clock() < self._refresh_at:
            return headers
        if self._inflight is None:
            if headers is not None:  # not the first token, nor one a 401 dropped (logged)
                logger.info("refreshing the access token shortly before it expires")
            task = asyncio.ensure_future(self._refresh())
            task.add_done_callback(self._forget_inflight)
            self._inflight = task
        task = self._inflight
        try:
            # Shielded: one caller's cancellation must not cancel the fetch the others await.
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # close() cancelled the fetch: its waiters were not cancelled, the client closed.
            if self._closed and task.cancelled() and not _being_cancelled():
                raise ClientClosedError("this LeanClient was closed") from None
            raise

    async def _refresh(self) -> Headers:
        started = self._clock()
        token = await fetch_token(self._post_form, self._token_url, self._credentials, self._scope)
        headers = {**self._base, "Authorization": f"Bearer {token.access_token}"}
        self._headers = headers
        self._refresh_at = started + refresh_after(token.expires_in)
        return headers

    def _forget_inflight(self, task: asyncio.Task[Headers]) -> None:
        self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved here so an unawaited failure is not logged as lost

    def invalidate(self, used: Headers) -> None:
        """Drop the token a 401 rejected, unless a newer one already replaced it."""
        if self._headers is used:
            self._headers = None

    async def aclose(self) -> None:
        self._closed = True
        task = self._inflight
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth(scope={self._scope!r})"


def _being_cancelled() -> bool:
    """Whether the current task has a cancellation request pending (Python 3.11+)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling()) if cancelling is not None else False


def refresh_after(expires_in: float | None) -> float:
    """Seconds after fetching that a token is refreshed: shortly before it expires,
    the margin scaling with its lifetime so that short-lived tokens are still reused."""
    if expires_in is None or expires_in <= 0:
        # No lifetime given: keep the token until a 401 says otherwise.
        return float("inf") if expires_in is None else 0.0
    margin = min(expires_in * TOKEN_REFRESH_FRACTION, TOKEN_REFRESH_MAX_MARGIN)
    return expires_in - margin


def make_auth(
    credentials: Credentials, base: Headers, post_form: PostForm, token_url: str
) -> StaticAuth | ClientCredentialsAuth:
    """The auth of ``credentials``' scheme; an OAuth2 one gets its tokens from
    ``token_url`` through ``post_form``."""
    if credentials.app_token is not None:
        return StaticAuth(base, APP_TOKEN_HEADER, credentials.app_token)
    if credentials.access_token is not None:
        return StaticAuth(base, "Authorization", f"Bearer {credentials.access_token}")
    return ClientCredentialsAuth(base, post_form, token_url, credentials)

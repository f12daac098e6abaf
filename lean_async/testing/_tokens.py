"""The OAuth2 client-credentials grant: JWT-shaped tokens that expire and can be revoked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import Callable, Mapping

import msgspec

from ._data import is_uuid

__all__ = ["TokenIssuer", "TokenRefusal"]

API_SCOPE = "api"
CUSTOMER_SCOPE_PREFIX = "customer."
# Expired grants are swept when more than this many are held.
_SWEEP_AT = 10_000


class TokenRefusal(Exception):
    """An OAuth2 error answer: ``{"error": code, "error_description": description}``."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description

    def body(self) -> bytes:
        return msgspec.json.encode({"error": self.code, "error_description": self.description})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """Issues tokens to one client and remembers each one's scope and expiry."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.ttl = ttl
        self._clock = clock
        self._key = os.urandom(32)
        self._grants: dict[str, tuple[str, float]] = {}  # token -> (scope, expires at)

    def issue(self, form: Mapping[str, str]) -> bytes:
        """The token answer for a client-credentials form; raises TokenRefusal."""
        for name in ("client_id", "client_secret", "grant_type", "scope"):
            if not form.get(name):
                raise TokenRefusal(400, "invalid_request", f"missing form field {name!r}")
        if (form["client_id"], form["client_secret"]) != (self.client_id, self._client_secret):
            raise TokenRefusal(401, "invalid_client", "Bad client credentials")
        if form["grant_type"] != "client_credentials":
            raise TokenRefusal(
                400, "unsupported_grant_type", "only client_credentials is supported"
            )
        scope = form["scope"]
        if not _valid_scope(scope):
            raise TokenRefusal(
                400, "invalid_scope", "scope must be 'api' or 'customer.<customer_id>'"
            )
        now = self._clock()
        token = self._jwt(scope, now)
        if len(self._grants) >= _SWEEP_AT:
            self._grants = {t: g for t, g in self._grants.items() if g[1] > now}
        self._grants[token] = (scope, now + self.ttl)
        return msgspec.json.encode(
            {"access_token": token, "token_type": "Bearer", "scope": scope, "expires_in": self.ttl}
        )

    def scope_of(self, token: str) -> str | None:
        """The scope of a live token this issuer gave; None if unknown, revoked or expired."""
        grant = self._grants.get(token)
        if grant is None or grant[1] <= self._clock():
            return None
        return grant[0]

    def revoke_all(self) -> None:
        self._grants.clear()

    def _jwt(self, scope: str, now: float) -> str:
        header = _b64url(b'{"alg":"HS256","typ":"JWT"}')
        claims = {
            "sub": self.client_id,
            "scope": scope,
            "iat": int(now),
            "exp": int(now + self.ttl),
            "jti": os.urandom(8).hex(),
        }
        signing_input = f"{header}.{_b64url(msgspec.json.encode(claims))}"
        signature = hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64url(signature)}"


def _valid_scope(scope: str) -> bool:
    if scope == API_SCOPE:
        return True
    customer = scope.removeprefix(CUSTOMER_SCOPE_PREFIX)
    return customer != scope and is_uuid(customer)


def scope_allows(scope: str, customer_id: str) -> bool:
    """Whether a token of ``scope`` may act on ``customer_id``'s paths."""
    return scope == API_SCOPE or scope.lower() == (CUSTOMER_SCOPE_PREFIX + customer_id).lower()

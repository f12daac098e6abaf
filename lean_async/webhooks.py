"""Lean webhooks: the ``lean-signature`` header (HMAC-SHA512 of the raw body)."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SIGNATURE_HEADER", "sign"]

SIGNATURE_HEADER = "lean-signature"


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(body: bytes, secret: str | bytes) -> str:
    """The ``lean-signature`` header value for ``body``: ``sha512=<hex digest>``."""
    return "sha512=" + hmac.new(_key(secret), body, hashlib.sha512).hexdigest()

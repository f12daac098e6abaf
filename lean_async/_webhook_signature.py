"""The ``lean-signature`` header: HMAC-SHA512 of the raw body, pure functions, no I/O.

Lean does not say whether the digest is hex or base64, so both are accepted; the two
cannot be confused because a SHA-512 digest is 128 characters in hex and 86 to 88 in
base64. Several comma-separated ``algorithm=digest`` entries are accepted (the body is
genuine when any ``sha512`` entry matches), so a header that carries one signature per
key during a key rotation still verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

from ._exceptions import ConfigurationError, WebhookSignatureError

SIGNATURE_HEADER = "lean-signature"

_ALGORITHM = "sha512"
_DIGEST_SIZE = hashlib.sha512().digest_size
_HEX_LENGTH = 2 * _DIGEST_SIZE
# More entries than this is not a key rotation but an attempt to make us work.
_MAX_SIGNATURES = 8
# An algorithm name is echoed in an error only when it looks like one.
_ALGORITHM_NAME = re.compile(r"[A-Za-z0-9_-]{1,16}")


def check_secret(secret: str | bytes) -> bytes:
    """The HMAC key for ``secret``; raises ConfigurationError when it is empty."""
    key = secret.encode() if isinstance(secret, str) else secret
    if not key:
        # Anyone can compute an HMAC keyed with nothing: refuse rather than accept forgeries.
        raise ConfigurationError("the webhook secret is empty")
    return key


def _digest(body: bytes, secret: str | bytes) -> bytes:
    return hmac.new(check_secret(secret), body, hashlib.sha512).digest()


def sign(body: bytes, secret: str | bytes) -> str:
    """The ``lean-signature`` header value for ``body``: ``sha512=<hex digest>``."""
    return f"{_ALGORITHM}=" + _digest(body, secret).hex()


def _decode_digest(text: str) -> bytes | None:
    """The digest bytes of a hex (any case) or base64 (standard or url-safe, padding optional)
    digest; None when ``text`` is neither or has the wrong length."""
    try:
        if len(text) == _HEX_LENGTH:
            decoded = bytes.fromhex(text)
        else:
            standard = text.replace("-", "+").replace("_", "/")
            decoded = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (ValueError, binascii.Error):
        return None
    # fromhex skips spaces, so the length is checked for both encodings.
    return decoded if len(decoded) == _DIGEST_SIZE else None


def signature_digests(header: str | None) -> list[bytes]:
    """The sha512 digests a header carries; raises WebhookSignatureError when it has none.
    Needs no body: a receiver refuses a header of the wrong form before reading one."""
    if header is None:
        raise WebhookSignatureError(f"the {SIGNATURE_HEADER} header is missing")
    entries = [entry.strip() for entry in header.split(",") if entry.strip()]
    if not entries:
        raise WebhookSignatureError(f"the {SIGNATURE_HEADER} header is empty")
    if len(entries) > _MAX_SIGNATURES:
        raise WebhookSignatureError(f"the {SIGNATURE_HEADER} header has too many signatures")
    digests: list[bytes] = []
    other_algorithms: list[str] = []
    for entry in entries:
        algorithm, equals, digest_text = entry.partition("=")
        algorithm = algorithm.strip().lower()
        if not equals:
            continue
        if algorithm != _ALGORITHM:
            other_algorithms.append(algorithm)
            continue
        digest = _decode_digest(digest_text.strip())
        if digest is not None:
            digests.append(digest)
    if digests:
        return digests
    if len(other_algorithms) == len(entries):
        shown = (name if _ALGORITHM_NAME.fullmatch(name) else "?" for name in other_algorithms)
        raise WebhookSignatureError(
            f"the {SIGNATURE_HEADER} header uses {', '.join(shown)}, not {_ALGORITHM}"
        )
    raise WebhookSignatureError(
        f"the {SIGNATURE_HEADER} header is malformed: expected "
        f"'{_ALGORITHM}=<hex or base64 digest>'"
    )


def verify_signature(body: bytes, signature_header: str | None, secret: str | bytes) -> None:
    """Check that ``signature_header`` is the HMAC-SHA512 of the raw ``body`` keyed with
    ``secret``; raises WebhookSignatureError (whose message never holds the secret or a
    digest) when it is not, ConfigurationError when ``secret`` is empty."""
    verify_digests(body, signature_digests(signature_header), secret)


def verify_digests(body: bytes, digests: list[bytes], secret: str | bytes) -> None:
    """Check that one of ``digests`` (from ``signature_digests``) is the HMAC-SHA512 of
    ``body`` keyed with ``secret``; raises WebhookSignatureError when none is."""
    expected = _digest(body, secret)
    # No early exit: every candidate is compared in constant time.
    matched = False
    for candidate in digests:
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise WebhookSignatureError(
            f"the {SIGNATURE_HEADER} header does not match the body (wrong secret, or the "
            "body was changed: verify the raw bytes, before any JSON parsing)"
        )

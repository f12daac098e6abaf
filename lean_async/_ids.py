"""Validation of the ids that go into URL paths, and their encoding as path segments."""

from __future__ import annotations

import re
import uuid
from urllib.parse import quote

from ._constants import APP_USER_ID_MAX_LENGTH
from ._exceptions import InvalidIdError
from .types.customers import Customer

# Only the canonical hyphenated form: uuid.UUID() also takes braces, "urn:uuid:" and
# 32 bare hex digits, none of which Lean's paths accept.
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")

IdLike = str | uuid.UUID
# A customer's id, or the Customer itself (e.g. from client.customers.list()).
CustomerLike = IdLike | Customer


def validate_id(value: object, name: str) -> str:
    """``value`` as it goes into the path; raises InvalidIdError for anything not a UUID."""
    # str.__str__ and UUID.__str__, not str(): a subclass's own __str__ (an enum member's,
    # or a hostile one) would put something other than the checked id into the URL.
    if isinstance(value, str):
        if _UUID_RE.fullmatch(value):
            return str.__str__(value)
    elif isinstance(value, uuid.UUID):
        return uuid.UUID.__str__(value)
    raise InvalidIdError(
        f"{name} must be a UUID such as 6db94cb7-3a02-4a57-a03a-e2a92ce86406, got {value!r:.80}"
    )


def validate_customer_id(value: object) -> str:
    """A customer's id as it goes into a path or a scope; a ``Customer`` stands for its
    ``customer_id``. InvalidIdError for anything else that is not a UUID."""
    # The str test first: isinstance() against a msgspec struct class costs 0.15 µs.
    if not isinstance(value, str) and isinstance(value, Customer):
        value = value.customer_id
    return validate_id(value, "customer_id")


def validate_app_user_id(value: object) -> str:
    """``value`` if it is an app user id Lean takes: a string of 1 to 255 characters
    (free text); InvalidIdError otherwise."""
    if isinstance(value, str):
        text = str.__str__(value)
        if 1 <= len(text) <= APP_USER_ID_MAX_LENGTH:
            try:
                text.encode()
            except UnicodeEncodeError:
                raise InvalidIdError(
                    f"app_user_id must be valid Unicode text (no lone surrogates), got {text!r:.80}"
                ) from None
            return text
        got = f"{len(text)} characters"
    else:
        got = f"{value!r:.80}"
    raise InvalidIdError(
        f"app_user_id must be a string of 1 to {APP_USER_ID_MAX_LENGTH} characters, got {got}"
    )


def path_segment(text: str) -> str:
    """``text`` percent-encoded as exactly one path segment: every byte but letters,
    digits and ``-._~`` is escaped (``/``, ``?``, ``#`` and ``%`` included)."""
    segment = quote(text, safe="")
    if not segment.strip("."):
        # "." and ".." are dot segments, which servers and proxies remove (walking up
        # the path): escaped, they are names.
        segment = segment.replace(".", "%2E")
    return segment

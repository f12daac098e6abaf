"""Validation of the ids that go into URL paths."""

from __future__ import annotations

import re
import uuid

from ._exceptions import InvalidIdError

# Only the canonical hyphenated form: uuid.UUID() also takes braces, "urn:uuid:" and
# 32 bare hex digits, none of which Lean's paths accept.
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")

IdLike = str | uuid.UUID


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

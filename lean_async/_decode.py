"""Decoding JSON bodies with msgspec decoders built once, msgspec's errors becoming
the library's DecodeError that says where the body does not fit."""

from __future__ import annotations

from typing import TypeVar

import msgspec

from ._exceptions import DecodeError

T = TypeVar("T")


def decode_json(decoder: msgspec.json.Decoder[T], data: bytes, what: str) -> T:
    """``data`` decoded by ``decoder``; DecodeError naming ``what`` otherwise."""
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"{what} is not of the expected shape: {exc}") from None
    except msgspec.DecodeError as exc:
        raise DecodeError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise DecodeError(f"{what} is nested too deeply") from None
    except UnicodeDecodeError:
        # msgspec checks UTF-8 only where it decodes a string, and raises this there.
        raise DecodeError(f"{what} is not valid UTF-8") from None

"""Customer ids from a file or stdin, one per line, read lazily.

Blank lines and lines starting with ``#`` are skipped; whitespace (and a byte order mark)
is stripped. A first line naming a ``customer_id`` column is a header: with other columns
too, the ids are read from that one. Reading happens in chunks on a daemon thread,
straight from the file descriptor, so that a slow pipe never blocks the event loop and
Ctrl-C never waits for input that may not come.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import threading
from collections.abc import AsyncIterator, Container, Iterable, Iterator

__all__ = ["count_ids", "parse_ids", "read_ids"]

_CHUNK = 64 * 1024
# A longer line is cut (and then fails as an invalid id): a file that is not a list of
# ids must not make one "line" fill the memory.
_MAX_LINE = 4096


def _id_of(raw: bytes) -> str | None:
    text = raw[:_MAX_LINE].decode("utf-8", errors="replace").strip().lstrip("\ufeff").strip()
    return text if text and not text.startswith("#") else None


_ID_COLUMN = "customer_id"


def _header(text: str) -> list[str] | None:
    """The column names when ``text`` is a header naming a ``customer_id`` column."""
    if _ID_COLUMN not in text.lower():
        return None
    columns = [name.strip().lower() for name in next(csv.reader([text]), [])]
    return columns if _ID_COLUMN in columns else None


class _IdLines:
    """Lines to ids, across the chunks of one input. A first line naming a
    ``customer_id`` column is a header, not an id; when it names others too (sweep's own
    CSV, a database export) each line's id is in that column, and a customer's
    consecutive rows give it once."""

    def __init__(self, skip: Container[str]) -> None:
        self._skip = skip
        self._first = True
        self._column: int | None = None
        self._previous: str | None = None

    def ids(self, lines: Iterable[bytes]) -> Iterator[str]:
        skip = self._skip
        for raw in lines:
            customer_id = _id_of(raw)
            if customer_id is None:
                continue
            if self._first:
                self._first = False
                columns = _header(customer_id)
                if columns is not None:
                    if len(columns) > 1:
                        self._column = columns.index(_ID_COLUMN)
                    continue
            if self._column is not None:
                customer_id = self._in_column(customer_id)
                if customer_id == self._previous:
                    continue
                self._previous = customer_id
            if customer_id not in skip:
                yield customer_id

    def _in_column(self, text: str) -> str:
        """The id in the ``customer_id`` column; the whole line (which then fails as an
        invalid id) when it has no such column."""
        assert self._column is not None
        row = next(csv.reader([text]), [])
        return row[self._column].strip() if len(row) > self._column else text


def parse_ids(lines: Iterable[bytes], skip: Container[str] = ()) -> Iterator[str]:
    """The ids in ``lines`` (with or without their line endings), minus those in ``skip``."""
    return _IdLines(skip).ids(lines)


def count_ids(path: str, skip: Container[str] = ()) -> int:
    """How many ids the file at ``path`` holds (a progress bar's total)."""
    with open(path, "rb") as file:
        return sum(1 for _ in parse_ids(file, skip))


async def read_ids(fd: int, skip: Container[str] = ()) -> AsyncIterator[str]:
    """The ids read from the file descriptor ``fd`` as they arrive, minus those in
    ``skip``. The caller owns ``fd``."""
    parser = _IdLines(skip)
    tail = b""
    while True:
        chunk = await _read_off_loop(fd)
        if not chunk:
            break
        lines = (tail + chunk).split(b"\n")
        tail = lines.pop()[:_MAX_LINE]
        for customer_id in parser.ids(lines):
            yield customer_id
    for customer_id in parser.ids([tail]):
        yield customer_id


async def _read_off_loop(fd: int) -> bytes:
    """``os.read(fd, _CHUNK)`` on a daemon thread (no lock of a Python file object is
    held, so an abandoned read cannot hang the interpreter's shutdown)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[bytes] = loop.create_future()

    def settle(chunk: bytes | None, error: OSError | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(chunk or b"")

    def work() -> None:
        try:
            chunk, error = os.read(fd, _CHUNK), None
        except OSError as exc:
            chunk, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(settle, chunk, error)

    threading.Thread(target=work, name="lean-async-input", daemon=True).start()
    return await future

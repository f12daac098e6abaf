"""Where ``sweep`` writes: stdout, a new file, or (``--resume``) the end of an earlier run's
file, after dropping what a killed run left half-written."""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

from .._sweep import SweepResult
from . import UsageError
from .records import Format

__all__ = ["Output", "Written", "open_output", "read_written"]


@dataclass
class Written:
    """The complete customers found in an output file."""

    done: set[str] = field(default_factory=set)
    records: int = 0  # customers written, counting a repeated id each time
    failed: int = 0
    complete_bytes: int = 0  # where the complete customers end
    dropped_bytes: int = 0  # what followed them, cut off by --resume
    needs_header: bool = False


class Output:
    """Writes each customer's lines at once and flushes them, so that a killed run loses
    at most the customer it was writing."""

    def __init__(self, file: BinaryIO, fmt: Format, name: str, *, owned: bool) -> None:
        self.file = file
        self.format = fmt
        self.name = name
        self.records = 0
        self._owned = owned

    def write(self, result: SweepResult[str]) -> None:
        self.file.write(self.format.encode(result))
        self.file.flush()
        self.records += 1

    def close(self) -> None:
        if self._owned:
            self.file.close()


def open_output(
    path: str | None, fmt: Format, *, resume: bool, overwrite: bool
) -> tuple[Output, Written | None]:
    """The output, and with ``resume`` what the file already holds (None when it is new).

    Refuses to replace a non-empty file unless ``overwrite``: a forgotten ``--resume``
    must not wipe out hours of work.
    """
    if path is None or path == "-":
        if resume:
            raise UsageError("--resume needs an output file (--output PATH)")
        stdout = sys.stdout.buffer
        # The header too: what is piped to a file must be a file --resume can continue.
        stdout.write(fmt.header)
        stdout.flush()
        return Output(stdout, fmt, "stdout", owned=False), None
    try:
        mode, size = _mode_and_size(path)
    except OSError as exc:
        raise UsageError(f"cannot use {path}: {exc.strerror}") from None
    if resume and stat.S_ISREG(mode):
        return _reopen(path, fmt)
    if resume and mode:
        raise UsageError(f"--resume needs a regular file, and {path} is not one")
    if stat.S_ISREG(mode) and size and not overwrite:
        raise UsageError(
            f"{path} already exists: pass --resume to continue it, or --overwrite to replace it"
        )
    file = _open(path, "wb")
    file.write(fmt.header)
    file.flush()
    return Output(file, fmt, path, owned=True), (Written() if resume else None)


def _mode_and_size(path: str) -> tuple[int, int]:
    """The file's mode and size; (0, 0) when there is no such file."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return 0, 0
    return info.st_mode, info.st_size


def _open(path: str, mode: Literal["wb", "r+b"]) -> BinaryIO:
    try:
        return open(path, mode)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def _reopen(path: str, fmt: Format) -> tuple[Output, Written]:
    file = _open(path, "r+b")
    try:
        written = read_written(file, fmt, path)
        written.dropped_bytes = file.seek(0, os.SEEK_END) - written.complete_bytes
        file.seek(written.complete_bytes)
        file.truncate()
        if written.needs_header:
            file.write(fmt.header)
            file.flush()
    except BaseException:
        file.close()
        raise
    return Output(file, fmt, path, owned=True), written


def read_written(file: BinaryIO, fmt: Format, name: str) -> Written:
    """The complete customers at the start of ``file``. Stops at a last line without its
    newline, or at a customer missing some of its CSV rows (what a kill can leave); any
    other unreadable line raises UsageError, as the file is not what it seems."""
    written = Written()
    offset = 0
    number = 0
    if fmt.header:
        first = file.readline()
        if first != fmt.header:
            if not fmt.header.startswith(first):
                raise UsageError(f"{name} does not start with the {fmt.name} columns of sweep")
            written.needs_header = True
            return written
        offset = written.complete_bytes = len(first)
        number = 1
    customer, ok, left = "", True, 0
    for line in file:
        number += 1
        if not line.endswith(b"\n"):
            break
        try:
            record = fmt.parse(line)
        except ValueError:
            raise UsageError(
                f"{name}, line {number}: not a {fmt.name} record of sweep; is it the right "
                "file (and --format)?"
            ) from None
        if not left:
            customer, ok, left = record.customer_id, record.ok, record.lines
        elif record.customer_id != customer:
            raise UsageError(f"{name}, line {number}: the rows of {customer!r} are incomplete")
        left -= 1
        offset += len(line)
        if not left:
            written.done.add(customer)
            written.records += 1
            written.failed += not ok
            written.complete_bytes = offset
    return written

"""Where ``sweep`` writes: stdout, a new file, or (``--resume``) the end of an earlier run's
file, after dropping what a killed run left half-written."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

from .._sweep import SweepResult
from .errors import EXIT_OUTPUT_FAILED, CommandError, UsageError
from .formats import Format

if sys.platform != "win32":
    import fcntl

__all__ = ["Output", "OutputError", "Written", "open_output", "read_written"]


@dataclass
class Written:
    """The complete customers found in an output file."""

    done: set[str] = field(default_factory=set)
    records: int = 0  # customers written, counting a repeated id each time
    failed: int = 0
    complete_bytes: int = 0  # where the complete customers end
    dropped_bytes: int = 0  # what followed them, cut off by --resume
    needs_header: bool = False


class OutputError(CommandError):
    """The output could not be written (a full disk...): what it holds is complete."""

    exit_status = EXIT_OUTPUT_FAILED


class Output:
    """Writes each customer's lines at once and flushes them, so that a killed run loses
    at most the customer it was writing. A file of its own is unbuffered: when a write
    fails, the customer's partial lines are cut off and nothing is left to flush."""

    def __init__(self, file: BinaryIO, fmt: Format, name: str, *, owned: bool) -> None:
        self.file = file
        self.format = fmt
        self.name = name
        self.records = 0
        self._owned = owned

    def write(self, result: SweepResult[str]) -> None:
        """Write one customer's lines; OutputError when they cannot be."""
        self._write(self.format.encode(result))
        self.records += 1

    def write_header(self) -> None:
        self._write(self.format.header)

    def _write(self, data: bytes) -> None:
        if not data:  # even an empty write fails on a full device
            return
        file = self.file
        try:
            if self._owned:
                start = file.tell()
                try:
                    _write_all(file, data)
                except OSError:
                    _cut(file, start)
                    raise
            else:
                file.write(data)
                file.flush()
        except BrokenPipeError:
            raise  # the reader of stdout is gone: the command stops quietly
        except OSError as exc:
            raise self._failed(exc) from None

    def _failed(self, exc: OSError) -> OutputError:
        why = exc.strerror or str(exc)
        if not self._owned:
            # Python would flush the rest at exit, and fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.file.fileno())
            return OutputError(
                f"cannot write to stdout: {why}; it got the {self.records} customers before"
            )
        return OutputError(
            f"cannot write {self.name}: {why}; it holds the {self.records} customers written "
            "before: make room and run the same command with --resume to continue"
        )

    def close(self) -> None:
        if self._owned:
            self.file.close()


def _write_all(file: BinaryIO, data: bytes) -> None:
    """``data`` written whole to an unbuffered file (a raw write may write only part)."""
    view = memoryview(data)
    while view:
        view = view[file.write(view) or 0 :]


def _cut(file: BinaryIO, size: int) -> None:
    """Drop what a failed write left after ``size`` bytes, where the file allows it."""
    with contextlib.suppress(OSError):
        os.ftruncate(file.fileno(), size)
        file.seek(size)


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
        output = Output(sys.stdout.buffer, fmt, "stdout", owned=False)
        # The header too: what is piped to a file must be a file --resume can continue.
        output.write_header()
        return output, None
    try:
        mode = _mode(path)
    except OSError as exc:
        raise UsageError(f"cannot use {path}: {exc.strerror}") from None
    if resume and mode and not stat.S_ISREG(mode):
        raise UsageError(f"--resume needs a regular file, and {path} is not one")
    file = _open(path)
    if resume and stat.S_ISREG(mode):
        return _reopen(file, fmt, path)
    output = Output(file, fmt, path, owned=True)
    _written_or_closed(output, lambda: _start(output, overwrite=overwrite))
    return output, (Written() if resume else None)


def _mode(path: str) -> int:
    """The file's mode; 0 when there is no such file."""
    try:
        return os.stat(path).st_mode
    except FileNotFoundError:
        return 0


def _open(path: str) -> BinaryIO:
    """``path`` opened unbuffered to read and write, created when missing but not emptied,
    and locked (see ``_locked``)."""
    try:
        return _locked(open(os.open(path, os.O_RDWR | os.O_CREAT, 0o666), "r+b", buffering=0))
    except BlockingIOError:  # before OSError, of which it is one
        raise UsageError(
            f"{path} is being written by another lean-async sweep: let it finish (or stop "
            "it), then run this one again"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


def _locked(file: BinaryIO) -> BinaryIO:
    """``file``, held against a second sweep until it is closed (BlockingIOError when one
    holds it): two runs writing one file (a --resume while the first still runs) would
    interleave their lines and sweep customers twice. Where there are no such locks
    (Windows, some network file systems), the file is used unguarded."""
    if sys.platform == "win32" or not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
        return file
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.close()
        raise
    except OSError:
        pass
    return file


def _start(output: Output, *, overwrite: bool) -> None:
    """A new output: refuses to replace a non-empty file unless ``overwrite``."""
    file = output.file
    info = os.fstat(file.fileno())
    if stat.S_ISREG(info.st_mode):
        if info.st_size and not overwrite:
            raise UsageError(
                f"{output.name} already exists: pass --resume to continue it, or --overwrite "
                "to replace it"
            )
        file.truncate(0)
    output.write_header()


def _reopen(file: BinaryIO, fmt: Format, path: str) -> tuple[Output, Written]:
    try:
        with open(file.fileno(), "rb", closefd=False) as reading:  # buffered, for lines
            written = read_written(reading, fmt, path)
        written.dropped_bytes = file.seek(0, os.SEEK_END) - written.complete_bytes
        file.seek(written.complete_bytes)
        file.truncate()
    except BaseException:
        file.close()
        raise
    output = Output(file, fmt, path, owned=True)
    if written.needs_header:
        _written_or_closed(output, output.write_header)
    return output, written


def _written_or_closed(output: Output, write: Callable[[], None]) -> None:
    try:
        write()
    except BaseException:
        output.close()
        raise


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
        if not line.strip():  # a blank line (added by hand, an editor...) is no record
            offset += len(line)
            if not left:
                written.complete_bytes = offset
            continue
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

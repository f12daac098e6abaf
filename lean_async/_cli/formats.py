"""The output formats of ``sweep``: how one customer's result is written, and read back by
``--resume``.

JSON Lines: one line per customer, ``{"customer_id", "ok": true, "sources": [...]}`` with
the fields of the payment sources this version knows (all of them as Lean sent them with
``--raw``), or ``{"customer_id", "ok": false, "error": {...}}``.
CSV: one row per payment source (a customer with none, or an error, still gets one row),
a summary without full account numbers or IBANs. A customer's lines are encoded together,
to be written at once.
"""

from __future__ import annotations

import csv
import io
from typing import NamedTuple, Protocol

import msgspec

from .._exceptions import APIError, LeanError
from .._sweep import SweepResult
from ..types.payment_sources import PaymentSource

__all__ = ["CSV", "FORMATS", "JSONL", "ErrorInfo", "Format", "Record", "format_named"]


class Record(NamedTuple):
    """What ``--resume`` needs from a customer's first line."""

    customer_id: str
    ok: bool
    lines: int  # how many lines the customer takes


class Format(Protocol):
    name: str
    header: bytes  # written once at the top of a new file (b"" for none)

    def encode(self, result: SweepResult[str]) -> bytes:
        """All the lines of one customer, each ending with a newline."""
        ...

    def parse(self, line: bytes) -> Record:
        """Read back a line this format wrote; ValueError for anything else."""
        ...


class ErrorInfo(msgspec.Struct):
    """Why a customer failed."""

    type: str
    status_code: int | None
    code: str | None
    message: str
    request_id: str | None
    trace_id: str | None

    @classmethod
    def of(cls, error: LeanError) -> ErrorInfo:
        if isinstance(error, APIError):
            return cls(
                type(error).__name__,
                error.status_code,
                error.code,
                error.message or str(error),
                error.request_id,
                error.trace_id,
            )
        return cls(type(error).__name__, None, None, str(error), None, None)


# -- JSON Lines -------------------------------------------------------------------------


class _Succeeded(msgspec.Struct):
    customer_id: str
    ok: bool
    # Lean's JSON of each source as it came, with --raw (encoded as is).
    sources: list[PaymentSource] | list[msgspec.Raw]


class _Failed(msgspec.Struct):
    customer_id: str
    ok: bool
    error: ErrorInfo


class _Written(msgspec.Struct):
    customer_id: str
    ok: bool


_JSON_ENCODER = msgspec.json.Encoder()
_WRITTEN_DECODER = msgspec.json.Decoder(_Written)


class _JsonLines:
    name = "jsonl"
    header = b""

    def encode(self, result: SweepResult[str]) -> bytes:
        line: _Succeeded | _Failed
        if result.error is None:
            line = _Succeeded(result.customer_id, True, result.sources or [])
        else:
            line = _Failed(result.customer_id, False, ErrorInfo.of(result.error))
        return _JSON_ENCODER.encode(line) + b"\n"

    def parse(self, line: bytes) -> Record:
        try:
            written = _WRITTEN_DECODER.decode(line)
        except msgspec.MsgspecError as exc:
            raise ValueError(str(exc)) from None
        return Record(written.customer_id, written.ok, 1)


# -- CSV --------------------------------------------------------------------------------

SOURCE_COLUMNS = (
    "customer_id",
    "ok",
    "source_count",
    "payment_source_id",
    "bank_identifier",
    "status",
    "currency",
    "account_iban_last4",
    "account_count",
    "beneficiary_count",
    "active_beneficiary_count",
    "created_at",
)
ERROR_COLUMNS = tuple(f"error_{name}" for name in ErrorInfo.__struct_fields__)
CSV_COLUMNS = SOURCE_COLUMNS + ERROR_COLUMNS

Cell = str | int | None


def _source_cells(source: PaymentSource) -> tuple[Cell, ...]:
    created_at = source.created_at
    return (
        source.id,
        source.bank_identifier,
        source.status,
        source.currency,
        source.account_iban_last4,
        len(source.accounts),
        len(source.beneficiaries),
        sum(1 for beneficiary in source.beneficiaries if beneficiary.is_active),
        None if created_at is None else msgspec.to_builtins(created_at),
    )


_NO_SOURCE = (None,) * (len(SOURCE_COLUMNS) - 3)
_NO_ERROR = (None,) * len(ERROR_COLUMNS)


def _one_line(cell: Cell) -> Cell:
    # One row per line, so that --resume can read the file line by line.
    if isinstance(cell, str) and ("\n" in cell or "\r" in cell):
        return cell.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    return cell


class _Csv:
    name = "csv"
    header = (",".join(CSV_COLUMNS) + "\n").encode()

    def encode(self, result: SweepResult[str]) -> bytes:
        customer = result.customer_id
        rows: list[tuple[Cell, ...]]
        if result.error is not None:
            error = msgspec.structs.astuple(ErrorInfo.of(result.error))
            rows = [(customer, "false", None, *_NO_SOURCE, *error)]
        else:
            sources = result.sources or []
            count = len(sources)
            rows = [
                (customer, "true", count, *_source_cells(source), *_NO_ERROR) for source in sources
            ] or [(customer, "true", 0, *_NO_SOURCE, *_NO_ERROR)]
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(
            [_one_line(cell) for cell in row] for row in rows
        )
        return text.getvalue().encode()

    def parse(self, line: bytes) -> Record:
        try:
            row = next(csv.reader([line.decode()]))
        except (UnicodeDecodeError, csv.Error, StopIteration) as exc:
            raise ValueError(str(exc)) from None
        if len(row) != len(CSV_COLUMNS) or row[1] not in ("true", "false"):
            raise ValueError(f"expected {len(CSV_COLUMNS)} columns with ok true or false")
        ok = row[1] == "true"
        return Record(row[0], ok, max(int(row[2]), 1) if ok else 1)


JSONL: Format = _JsonLines()
CSV: Format = _Csv()
FORMATS: dict[str, Format] = {JSONL.name: JSONL, CSV.name: CSV}


def format_named(name: str | None, path: str | None) -> Format:
    """The format asked for, else the output file's: CSV for ``.csv``, else JSON Lines."""
    if name is not None:
        return FORMATS[name]
    if path is not None and path.lower().endswith(".csv"):
        return CSV
    return JSONL

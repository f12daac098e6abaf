"""sweep's output formats (JSON Lines and CSV) without I/O: every customer's lines read
back by ``--resume`` as that customer, one record per physical line, whatever the cells hold."""

from __future__ import annotations

import csv
import io
import json

import pytest

from lean_async import APIConnectionError, NotFoundError
from lean_async._cli.formats import CSV, CSV_COLUMNS, JSONL, Format, Record, format_named
from lean_async._sweep import SweepResult
from lean_async.models import decode_payment_sources

CUSTOMER = "6db94cb7-3a02-4a57-a03a-e2a92ce86406"
SOURCES_JSON = b"""[
 {"id": "d8d7a9b3-c401-49f6-81a4-386d8398aa2c", "customer_id": "%s", "status": "ACTIVE",
  "bank_identifier": "LINE1\\nLINE2\\r\\nLINE3\\rEND", "beneficiaries": [], "accounts": []},
 {"id": "0f3e6a2b-1c4d-4e5f-8a9b-0c1d2e3f4a5b", "customer_id": "%s", "status": "ACTIVE",
  "bank_identifier": "ONLY\\rCR", "beneficiaries": [], "accounts": []}
]""" % (CUSTOMER.encode(), CUSTOMER.encode())
SOURCES = decode_payment_sources(SOURCES_JSON)

# A result, and whether it is ok and how many CSV rows it takes (JSON Lines: always one).
RESULTS: dict[str, tuple[SweepResult[str], bool, int]] = {
    "no sources": (SweepResult(CUSTOMER, []), True, 1),
    "two sources, a cell with line breaks": (SweepResult(CUSTOMER, SOURCES), True, 2),
    "an API error whose message has line breaks": (
        SweepResult(
            CUSTOMER,
            error=NotFoundError(404, code="UNKNOWN", message="no such\ncustomer\r\nat all\r"),
        ),
        False,
        1,
    ),
    "a connection error": (
        SweepResult(CUSTOMER, error=APIConnectionError("refused,\nthen\rnothing")),
        False,
        1,
    ),
}


@pytest.mark.parametrize("output", [JSONL, CSV], ids=["jsonl", "csv"])
@pytest.mark.parametrize(("result", "ok", "csv_rows"), RESULTS.values(), ids=RESULTS.keys())
def test_each_line_a_customer_takes_is_one_physical_line_read_back_as_that_customer(
    output: Format, result: SweepResult[str], ok: bool, csv_rows: int
) -> None:
    lines_taken = csv_rows if output is CSV else 1
    data = output.encode(result)
    assert data.endswith(b"\n")
    # --resume reads line by line: a record split over two lines would be unreadable. A
    # lone \r counts too: text mode (universal newlines) and spreadsheets end a line there.
    lines = data.splitlines()
    assert len(lines) == lines_taken
    assert [output.parse(line + b"\n") for line in lines] == [
        Record(CUSTOMER, ok, lines_taken)
    ] * lines_taken


def test_a_csv_cell_with_line_breaks_keeps_its_text_on_one_line_with_spaces_for_the_breaks() -> (
    None
):
    rows = csv.reader(io.StringIO(CSV.encode(SweepResult(CUSTOMER, SOURCES)).decode()))
    column = CSV_COLUMNS.index("bank_identifier")
    assert [row[column] for row in rows] == ["LINE1 LINE2 LINE3 END", "ONLY CR"]


def test_csv_rows_have_the_header_s_columns() -> None:
    header = next(csv.reader([CSV.header.decode()]))
    assert header == list(CSV_COLUMNS)
    for result, _, _ in RESULTS.values():
        for row in csv.reader(io.StringIO(CSV.encode(result).decode())):
            assert len(row) == len(header)


def test_a_jsonl_line_holds_the_error_or_the_sources() -> None:
    failed = json.loads(JSONL.encode(RESULTS["an API error whose message has line breaks"][0]))
    assert failed["ok"] is False and failed["error"]["status_code"] == 404
    assert failed["error"]["message"] == "no such\ncustomer\r\nat all\r"
    succeeded = json.loads(JSONL.encode(SweepResult(CUSTOMER, SOURCES)))
    assert succeeded["ok"] is True and len(succeeded["sources"]) == 2


@pytest.mark.parametrize(
    "line",
    [b"", b"shopping list\n", b"{}\n", b'{"customer_id": "x"}\n', b"a,b,c\n", b"\xff\n"],
)
@pytest.mark.parametrize("output", [JSONL, CSV], ids=["jsonl", "csv"])
def test_a_line_the_format_did_not_write_is_a_value_error(output: Format, line: bytes) -> None:
    with pytest.raises(ValueError):
        output.parse(line)


@pytest.mark.parametrize(
    ("name", "path", "chosen"),
    [
        (None, "out.csv", CSV),
        (None, "OUT.CSV", CSV),  # a file name's case says nothing about its format
        (None, "dir.csv/out.Csv", CSV),
        (None, "out.jsonl", JSONL),
        (None, "out.csv.jsonl", JSONL),
        (None, "csv", JSONL),
        (None, None, JSONL),
        ("jsonl", "out.csv", JSONL),  # asked for: the name does not matter
        ("csv", "out.jsonl", CSV),
        ("csv", None, CSV),
    ],
)
def test_the_format_is_the_one_asked_for_else_the_output_file_s(
    name: str | None, path: str | None, chosen: Format
) -> None:
    assert format_named(name, path) is chosen


WITH_BENEFICIARIES = decode_payment_sources(
    b"""[{"id": "d8d7a9b3-c401-49f6-81a4-386d8398aa2c", "status": "ACTIVE", "currency": "AED",
    "bank_identifier": "ENBD_UAE\\nbank", "created_at": "2026-05-13T10:50:10Z",
    "accounts": [{"id": "a1"}],
    "beneficiaries": [
        {"id": "b1", "status": "ACTIVE"}, {"id": "b2", "status": "AWAITING_BENEFICIARY_COOL_OFF"},
        {"id": "b3", "status": "ACTIVE"}]}]"""
)


@pytest.mark.parametrize(
    ("result", "cells"),
    [
        (
            SweepResult(CUSTOMER, WITH_BENEFICIARIES),
            {
                "ok": "true",
                "source_count": "1",
                "bank_identifier": "ENBD_UAE bank",
                "account_count": "1",
                "beneficiary_count": "3",
                "active_beneficiary_count": "2",
                "created_at": "2026-05-13T10:50:10Z",
                "error_type": "",
            },
        ),
        (
            SweepResult(CUSTOMER, []),
            {"ok": "true", "source_count": "0", "payment_source_id": "", "created_at": ""},
        ),
        (
            SweepResult(CUSTOMER, error=NotFoundError(404, code="NOPE", message="gone\nfor good")),
            {
                "ok": "false",
                "source_count": "",
                "error_type": "NotFoundError",
                "error_status_code": "404",
                "error_code": "NOPE",
                "error_message": "gone for good",
            },
        ),
    ],
    ids=["three beneficiaries, two active", "no sources", "an error"],
)
def test_a_csv_row_holds_the_summary_of_a_source_or_the_error(
    result: SweepResult[str], cells: dict[str, str]
) -> None:
    [row] = csv.DictReader(io.StringIO(CSV.header.decode() + CSV.encode(result).decode()))
    assert row["customer_id"] == CUSTOMER
    assert {name: row[name] for name in cells} == cells

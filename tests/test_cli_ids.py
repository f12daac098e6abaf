"""Reading sweep's input: one id per line, a recognised header skipped, the id column of a
CSV with one, across the chunks the input arrives in."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from lean_async._cli import ids

A = "6db94cb7-3a02-4a57-a03a-e2a92ce86406"
B = "0267ce8c-92d1-4b8e-9a41-863c0bdbc23a"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{A}\n{B}\n", [A, B]),
        (f"customer_id\n{A}\n{B}\n", [A, B]),
        (f"\ufeffCustomer_ID \r\n{A}\r\n{B}\r\n", [A, B]),
        (f'"customer_id"\n{A}\n', [A]),
        (f"# ids\n\ncustomer_id\n{A}\n", [A]),
        # sweep's own CSV: the id column, a customer's rows once
        (f"customer_id,ok,source_count\n{A},true,2\n{A},true,2\n{B},false,\n", [A, B]),
        # a database export with the id elsewhere
        (f'name,customer_id\n"Doe, J",{A}\nX,{B}\n', [A, B]),
        # a row without the column stays whole (and fails as an invalid id)
        (f"name,customer_id\nlonely\n{A}\n", ["lonely", A]),
        # only the first line can be a header
        (f"{A}\ncustomer_id\n", [A, "customer_id"]),
        # a header that does not name the column is an id (which fails as invalid)
        (f"id\n{A}\n", ["id", A]),
        (f"customer_ids_v2\n{A}\n", ["customer_ids_v2", A]),
    ],
)
def test_ids_of_an_input(text: str, expected: list[str]) -> None:
    assert list(ids.parse_ids(text.encode().splitlines(True))) == expected


@pytest.mark.parametrize("chunk", [1, 7, 64 * 1024])
async def test_a_header_and_columns_are_read_across_chunks(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ids, "_CHUNK", chunk)
    text = f"customer_id,ok\n{A},true\n{A},true\n{B},true".encode()
    read, write = os.pipe()
    try:
        os.write(write, text)
        os.close(write)
        got = await asyncio.wait_for(_all(ids.read_ids(read)), 10)
    finally:
        os.close(read)
    assert got == [A, B]


async def _all(customer_ids: AsyncIterator[str]) -> list[str]:
    return [customer_id async for customer_id in customer_ids]


def test_skip_applies_to_the_ids_read_from_the_column() -> None:
    lines = f"customer_id,ok\n{A},true\n{B},true\n".encode().splitlines(True)
    assert list(ids.parse_ids(lines, skip={A})) == [B]

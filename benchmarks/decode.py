"""Decoding list responses of 1, 5 and 50 payment sources (as the fake server encodes
them) with the library's decoder, ``json.loads`` and ``orjson.loads`` to dicts, and
pydantic v2 models of the same shape.

    python -m benchmarks.decode [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import msgspec
import orjson
import pydantic

from benchmarks import _common
from lean_async.models import PaymentSource, decode_payment_sources
from lean_async.testing import DataSet

SIZES = (1, 5, 50)
BASELINE = "lean-async"
SEED = 7
TARGET_SECONDS = 0.05  # per contender per repeat


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", frozen=True)


class BeneficiaryModel(_Model):
    id: str
    payment_destination_id: str | None = None
    status: str | None = None
    beneficiary_cool_off_expiry: datetime | None = None
    bank_identifier: str | None = None


class AccountModel(_Model):
    id: str
    account_id: str | None = None
    account_name: str | None = None
    account_number: str | None = None
    iban: str | None = None
    currency: str | None = None
    balance: float | None = None
    balance_last_updated: datetime | None = None
    application_id: str | None = None


class PaymentSourceModel(_Model):
    id: str
    customer_id: str | None = None
    app_id: str | None = None
    status: str | None = None
    bank_identifier: str | None = None
    beneficiary_cool_off_expiry: datetime | None = None
    consent_id: str | None = None
    account_iban_last4: str | None = None
    currency: str | None = None
    created_at: datetime | None = None
    end_user_ids: list[str] = []
    beneficiaries: list[BeneficiaryModel] = []
    accounts: list[AccountModel] = []


_PYDANTIC_LIST = pydantic.TypeAdapter(list[PaymentSourceModel])

CONTENDERS: dict[str, Callable[[bytes], Sequence[Any]]] = {
    "lean-async": decode_payment_sources,
    # The same structs' decoder called bare: what decode_payment_sources costs over it (its
    # error mapping, and the null-tolerant second try that only a failure reaches).
    "msgspec, bare": msgspec.json.Decoder(list[PaymentSource]).decode,
    "json.loads": json.loads,
    "orjson.loads": orjson.loads,
    "pydantic v2": _PYDANTIC_LIST.validate_json,
}


def bodies(sizes: Sequence[int] = SIZES) -> dict[int, bytes]:
    """List answers of each size, encoded by the fake server's own data set."""
    data = DataSet.generate(max(sizes) * 2, SEED)
    sources = list(data.all_payment_sources())[: max(sizes)]
    customer_id = sources[0].customer_id or data.customer_ids[0]
    answers = {}
    for size in sizes:
        one = DataSet(data.app_id, data.destinations, {customer_id: sources[:size]})
        body = one.list_body(customer_id)
        assert body is not None
        answers[size] = body
    return answers


def _time_per_call(decode: Callable[[bytes], object], body: bytes, number: int) -> float:
    started = time.perf_counter()
    for _ in range(number):
        decode(body)
    return (time.perf_counter() - started) / number


def run(*, repeats: int, sizes: Sequence[int] = SIZES) -> dict[int, dict[str, list[float]]]:
    """Per size, per contender: the µs per decode of each repeat (interleaved, rotated)."""
    results: dict[int, dict[str, list[float]]] = {}
    names = list(CONTENDERS)
    for size, body in bodies(sizes).items():
        for name, decode in CONTENDERS.items():
            if len(decode(body)) != size:
                raise RuntimeError(f"{name} decoded a wrong number of sources")
        # Enough calls per repeat to take about TARGET_SECONDS with the slowest contender.
        slowest = max(_time_per_call(decode, body, 3) for decode in CONTENDERS.values())
        number = max(int(TARGET_SECONDS / slowest), 10)
        by_name = results.setdefault(size, {name: [] for name in names})
        for turn in range(repeats):
            for name in _common.rotated(names, turn):
                by_name[name].append(_time_per_call(CONTENDERS[name], body, number) * 1e6)
    return results


HEADERS = ("sources", "bytes", "decoder", "µs per response", "vs lib")


def summarize(results: dict[int, dict[str, list[float]]]) -> list[list[str]]:
    sizes = bodies(list(results))
    rows = []
    for size, by_name in results.items():
        mine = by_name[BASELINE]
        for name, values in by_name.items():
            rows.append(
                [
                    str(size),
                    f"{len(sizes[size]):,}",
                    name,
                    _common.with_spread(values, digits=1),
                    _common.times(_common.paired_ratio(values, mine)),
                ]
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.decode", description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    print(_common.table(HEADERS, summarize(run(repeats=args.repeats))))


if __name__ == "__main__":
    main()

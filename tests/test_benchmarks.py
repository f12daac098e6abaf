"""Every benchmark still runs, with tiny sizes (the figures are not checked: CI machines
are too noisy for that; see benchmarks/README.md)."""

from __future__ import annotations

import pytest

pytest.importorskip("orjson")
pytest.importorskip("pydantic")
pytest.importorskip("httpx")

from benchmarks import decode, importtime, memory, sweep


def test_decode_benchmark_compares_every_decoder_at_every_size() -> None:
    results = decode.run(repeats=1, sizes=(1, 5))
    rows = decode.summarize(results)
    assert len(rows) == 2 * len(decode.CONTENDERS)


def test_sweep_benchmark_runs_every_variant_in_its_own_process() -> None:
    outcome = sweep.run(customers=60, concurrency=4, rounds=1, loops=["asyncio"], log=str)
    rows = sweep.summarize(outcome)
    assert [row[1] for row in rows] == list(sweep.VARIANTS)


def test_memory_benchmark_sweeps_each_size_in_a_fresh_process() -> None:
    results = memory.run(sizes=(50, 120), log=str)
    assert sorted(results) == [50, 120]
    assert all(result["peak_rss_mb"] > 0 for result in results.values())


def test_import_time_benchmark_reads_python_importtime() -> None:
    assert 0 < importtime.added_ms() < 1000


def test_mcp_benchmark_times_every_path_in_every_round() -> None:
    from benchmarks import mcp

    results = mcp.run(calls=3, rounds=2)
    assert list(results) == list(mcp.PATHS)
    assert all(len(ms) == 2 and min(ms) > 0 for ms in results.values())
    assert len(mcp.summarize(results)) == len(mcp.PATHS)

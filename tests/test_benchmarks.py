"""Every benchmark still runs, with tiny sizes (the figures are not checked: CI machines
are too noisy for that; see benchmarks/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("orjson")
pytest.importorskip("pydantic")
pytest.importorskip("httpx")

from benchmarks import decode, importtime, memory, ratelimit, sweep, webhooks


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


def test_webhook_benchmark_measures_throughput_and_abuse_against_a_receiver_process() -> None:
    runs = webhooks.throughput(events=200, concurrency=20, rounds=1, offered_rate=50)
    assert [(r["durable"], r["acknowledged"], r["missing"]) for r in runs] == [
        (True, 200, 0),
        (False, 200, None),
    ]
    abused = webhooks.abuse(abusers=6, seconds=1.5, valid_rate=10, comeback=0.2)
    assert abused["valid_200"] == abused["valid"] > 0
    report = webhooks.report(runs, 20, abused, quick=True)
    assert report.startswith(webhooks.SECTION_START) and report.endswith(webhooks.SECTION_END)


def test_the_webhook_section_replaces_its_old_self_and_leaves_the_rest(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\nother sections\n")
    for run in ("first", "second"):
        section = f"{webhooks.SECTION_START}\n\n{run}\n\n{webhooks.SECTION_END}"
        webhooks.save_section(section, results)
    text = results.read_text()
    assert text.startswith("# Benchmark results\n\nother sections\n")
    assert "second" in text and "first" not in text
    assert webhooks.saved_section(results).strip().endswith(webhooks.SECTION_END)


def test_ratelimit_benchmark_sweeps_each_limit_untold_and_told_and_nothing_hangs() -> None:
    cases = [ratelimit.CASES[0], ratelimit.CASES[3]]  # a token bucket, an in-flight limit
    runs = ratelimit.run(seconds=1.0, cases=cases, log=str)
    assert len(runs) == len(cases) * 4  # with and without Retry-After, untold and told
    assert all(r["exactly_once"] and r["all_ok"] and not r["hung"] for r in runs)
    rows = ratelimit.summarize(runs)
    assert [row[0] for row in rows] == [c.name for c in cases for _ in range(2)]


def test_rate_limit_simulation_prints_its_table_and_a_trace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from benchmarks import ratesim

    ratesim.main(["--seconds", "2", "--seeds", "1", "--case", "fixed"])
    table = capsys.readouterr().out
    assert "fixed 1 s windows of 150" in table and table.count("\n| fixed") == 2
    ratesim.main(["--seconds", "2", "--case", "dropping", "--trace"])
    trace = capsys.readouterr().out
    assert " 0.0s sent" in trace and "rate control: 429" in trace and "x ideal" in trace

"""The pair benchmarks: SUBJECT timed against PEER in alternating rounds (see conftest.py)."""

from __future__ import annotations

from itertools import count
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks import harness
from benchmarks.suite import Suite


@pytest.mark.benchmark(timer=harness.subject_seconds, group="pairs")
def test_pair(benchmark: BenchmarkFixture, suite: Suite, pair: harness.Pair) -> None:
    """pytest-benchmark records the subject's seconds (each round's runs, checked, are in
    extra_info); the test fails on a wrong result or a reader other than the expected one."""
    store = suite.store()
    bench = suite.bench(store)
    rounds: list[dict[str, Any]] = []
    numbers = count(1)
    benchmark.pedantic(
        lambda: rounds.append(harness.pair_round(bench, pair, next(numbers))),
        rounds=suite.rounds,
        iterations=1,
        warmup_rounds=0,
    )
    summary = harness.pair_summary(pair, rounds, store.bytes)
    name = suite.ratio_name(pair, store)
    benchmark.extra_info.update(
        ratio_name=name,
        store=store.info(),
        reference=bench.reference.tool,
        cpus=suite.cpus,
        **summary,
    )
    suite.summaries.append((name, summary))
    assert not summary["reader_warnings"], summary["reader_warnings"]

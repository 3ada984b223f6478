"""Memory runs, of their own: the RSS and PSS sums of streamclean's process tree, sampled every
10 ms (which slows what it samples, so these runs are never timed). Reported in the benchmark
JSON under "streamclean"; the peers' memory is the ru_maxrss of their timed runs (extra_info)."""

from __future__ import annotations

from benchmarks import harness
from benchmarks.suite import MEMORY_SIZES, Suite


def test_memory_bounds(suite: Suite, memory_tool: str) -> None:
    """The RSS sum at 80 MB is at most 64 MiB, and at most 1.25x the one at 20 MB."""
    low, high = (suite.memory_run(memory_tool, suite.store(size)) for size in MEMORY_SIZES)
    assert not harness.memory_bound_failures(low, high)


def test_memory_on_the_store(suite: Suite, memory_tool: str) -> None:
    """The benchmark's own store (reported; the bounds above are what is asserted)."""
    record = suite.memory_run(memory_tool, suite.store())
    assert record["rss_sum_peak_mib"] > 0 and record["pss_sum_peak_mib"] > 0

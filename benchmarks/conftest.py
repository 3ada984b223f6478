"""The benchmark suite: `python -m pytest benchmarks` (pytest-benchmark, in the test extras).

    python -m pytest benchmarks                                    # small: a 20 MB store, as CI runs it
    python -m pytest benchmarks --store-size 500MB --rounds 5 --benchmark-json pairs-500MB.json
    python -m pytest benchmarks --store-size 500MB --rounds 5 --cpus 0 --peers orjson,streamclean-before
    python -m pytest benchmarks --benchmark-json F --ratios-json R --ratios-baseline OLD_R --ratios-fail 25%

`test_pair[SUBJECT-vs-PEER]` (test_pairs.py) is one pytest-benchmark benchmark in pedantic mode:
each round runs the floor, then the subject and its peer in alternating order, every run on a
fresh synced copy and checked byte for byte; pytest-benchmark records the subject's own seconds
(the timer is `harness.subject_seconds`), and `extra_info` holds the rest (harness.pair_summary).
`test_memory*` (test_memory.py) are the memory runs, sampled, so never timed: their figures go
into the JSON under "streamclean", beside the ratios. Nothing here asserts a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import harness
from benchmarks.suite import (
    DEFAULT_MEMORY_TOOLS,
    DEFAULT_PEERS,
    SUITE,
    Suite,
    checked,
    parse_memory_tools,
    parse_rounds,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("streamclean", "streamclean's benchmarks (benchmarks/conftest.py)")
    group.addoption(
        "--store-size",
        type=checked(harness.load_generator().parse_size),
        default="20MB",
        metavar="SIZE",
        help="generate a store of about SIZE (seed --seed) [20MB]",
    )
    group.addoption(
        "--store", type=Path, metavar="PATH", help="an existing store instead (tools get copies)"
    )
    group.addoption("--seed", type=int, default=0, help="the generated stores' seed [0]")
    group.addoption(
        "--rounds",
        type=checked(parse_rounds),
        default=5,
        metavar="N",
        help="rounds of every pair [5]",
    )
    group.addoption(
        "--cpus", metavar="LIST", help="run every tool under `taskset -c LIST` (e.g. 0: one CPU)"
    )
    group.addoption(
        "--workers", choices=("1", "2", "auto"), help="STREAMCLEAN_WORKERS for streamclean's runs"
    )
    group.addoption(
        "--peers",
        type=checked(harness.parse_pairs),
        default=DEFAULT_PEERS,
        metavar="LIST",
        help="the pairs: PEER (against streamclean) or SUBJECT/PEER, comma-separated; tools: "
        f"{', '.join(harness.TOOLS)}; NAME:direct spawns without the launcher [{DEFAULT_PEERS}]",
    )
    group.addoption(
        "--memory-tools",
        type=checked(parse_memory_tools),
        default=DEFAULT_MEMORY_TOOLS,
        metavar="LIST",
        help=f"the memory runs' tools, or none [{DEFAULT_MEMORY_TOOLS}]",
    )
    group.addoption(
        "--reference",
        choices=("auto", "json", "streamclean-general"),
        default="auto",
        help="what every output is checked against [auto: json up to 2 GB]",
    )
    group.addoption(
        "--ratios-json",
        type=Path,
        metavar="PATH",
        help="write the ratios as github-action-benchmark's customSmallerIsBetter list",
    )
    group.addoption(
        "--ratios-baseline",
        type=Path,
        metavar="PATH",
        help="a --ratios-json of an earlier run: fail when a ratio is worse by more than --ratios-fail",
    )
    group.addoption(
        "--ratios-fail",
        type=checked(harness.parse_percent),
        default="25%",
        metavar="PCT",
        help="how much worse than the baseline a ratio may be [25%%]",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SUITE] = Suite(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    if SUITE in config.stash:
        config.stash[SUITE].close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    suite = metafunc.config.stash[SUITE]
    if "pair" in metafunc.fixturenames:
        metafunc.parametrize("pair", suite.pairs, ids=[pair.id for pair in suite.pairs])
    if "memory_tool" in metafunc.fixturenames:
        metafunc.parametrize("memory_tool", suite.memory_tools)


@pytest.fixture(scope="session")
def suite(request: pytest.FixtureRequest) -> Iterator[Suite]:
    yield request.config.stash[SUITE]


def pytest_benchmark_update_json(
    config: pytest.Config, benchmarks: list[Any], output_json: dict[str, Any]
) -> None:
    output_json["streamclean"] = config.stash[SUITE].report()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The ratios JSON and the gate on a baseline's ratios (a failed gate fails the run)."""
    config = session.config
    suite = config.stash[SUITE]
    entries = harness.ratio_entries(suite.summaries)
    path: Path | None = config.getoption("--ratios-json")
    if path is not None and entries:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    baseline_path: Path | None = config.getoption("--ratios-baseline")
    if baseline_path is None:
        return
    try:
        baseline = json.loads(baseline_path.read_text(encoding="utf-8"))
        failures, notes = harness.ratio_gate(entries, baseline, config.getoption("--ratios-fail"))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        failures, notes = [f"cannot read the baseline {baseline_path}: {exc}"], []
    suite.gate_failures[:], suite.gate_notes[:] = failures, notes
    if failures and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    suite = config.stash[SUITE]
    if config.getoption("--ratios-baseline") is None:
        return
    terminalreporter.section("ratio gate")
    for note in suite.gate_notes:
        terminalreporter.write_line(f"ok      {note}")
    for failure in suite.gate_failures:
        terminalreporter.write_line(f"FAILED  {failure}", red=True)
    if not suite.gate_failures:
        terminalreporter.write_line("every ratio within the baseline's limit", green=True)

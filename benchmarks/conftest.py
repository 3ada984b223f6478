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

import argparse
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import harness
import pytest

MEMORY_SIZES = (20_000_000, 80_000_000)  # the stores the memory bounds are asserted on
PEER_LIMIT = 2_000_000_000  # above this the in-memory peers do not fit; the reference is then the general reader
DEFAULT_PEERS = "orjson,streamclean-general,inspect/dry-run"
DEFAULT_MEMORY_TOOLS = "streamclean,streamclean-general"


def _checked(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An option type that turns a BenchError into argparse's usage error."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except harness.BenchError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__
    return convert


def parse_rounds(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise harness.BenchError(f"{text!r}: rounds must be a whole number, at least 1")
    return int(text)


def parse_memory_tools(text: str) -> list[str]:
    tools = [name.strip() for name in text.split(",") if name.strip() and name.strip() != "none"]
    for name in tools:
        tool, sampler = harness.tool_spec(name)
        if sampler != "none" or not tool.name.startswith("streamclean"):
            raise harness.BenchError(f"{name!r}: memory runs are of streamclean's tools "
                                     "(streamclean, streamclean-general, streamclean-before)")
    return tools


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("streamclean", "streamclean's benchmarks (benchmarks/conftest.py)")
    group.addoption("--store-size", type=_checked(harness.load_generator().parse_size), default="20MB",
                    metavar="SIZE", help="generate a store of about SIZE (seed --seed) [20MB]")
    group.addoption("--store", type=Path, metavar="PATH", help="an existing store instead (tools get copies)")
    group.addoption("--seed", type=int, default=0, help="the generated stores' seed [0]")
    group.addoption("--rounds", type=_checked(parse_rounds), default=5, metavar="N",
                    help="rounds of every pair [5]")
    group.addoption("--cpus", metavar="LIST", help="run every tool under `taskset -c LIST` (e.g. 0: one CPU)")
    group.addoption("--workers", choices=("1", "2", "auto"), help="STREAMCLEAN_WORKERS for streamclean's runs")
    group.addoption("--peers", type=_checked(harness.parse_pairs), default=DEFAULT_PEERS, metavar="LIST",
                    help="the pairs: PEER (against streamclean) or SUBJECT/PEER, comma-separated; tools: "
                         f"{', '.join(harness.TOOLS)}; NAME:direct spawns without the launcher [{DEFAULT_PEERS}]")
    group.addoption("--memory-tools", type=_checked(parse_memory_tools), default=DEFAULT_MEMORY_TOOLS,
                    metavar="LIST", help=f"the memory runs' tools, or none [{DEFAULT_MEMORY_TOOLS}]")
    group.addoption("--reference", choices=("auto", "json", "streamclean-general"), default="auto",
                    help="what every output is checked against [auto: json up to 2 GB]")
    group.addoption("--ratios-json", type=Path, metavar="PATH",
                    help="write the ratios as github-action-benchmark's customSmallerIsBetter list")
    group.addoption("--ratios-baseline", type=Path, metavar="PATH",
                    help="a --ratios-json of an earlier run: fail when a ratio is worse by more than --ratios-fail")
    group.addoption("--ratios-fail", type=_checked(harness.parse_percent), default="25%", metavar="PCT",
                    help="how much worse than the baseline a ratio may be [25%%]")


class Suite:
    """The session's stores, references, results and scratch space."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        option = config.getoption
        self.store_size: int = option("--store-size")
        self.store_path: Path | None = option("--store")
        self.seed: int = option("--seed")
        self.rounds: int = option("--rounds")
        self.cpus: str | None = option("--cpus")
        self.workers: str | None = option("--workers")
        self.pairs: list[harness.Pair] = option("--peers")
        self.memory_tools: list[str] = option("--memory-tools")
        self.reference_tool: str = option("--reference")
        self.summaries: list[tuple[str, dict]] = []
        self.memory: dict[tuple[str, str], dict] = {}
        self.gate_failures: list[str] = []
        self.gate_notes: list[str] = []
        self._scratch: Path | None = None
        self._stores: dict[int | None, harness.Store] = {}
        self._refs: dict[str, harness.Reference] = {}

    @property
    def scratch(self) -> Path:
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="streamclean-bench-"))
        return self._scratch

    def close(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def store(self, size: int | None = None) -> harness.Store:
        """The benchmark's store (size None), or a generated one of `size` bytes."""
        if size is None and self.store_path is not None:
            if None not in self._stores:
                self._stores[None] = harness.existing_store(self.store_path)
            return self._stores[None]
        size = size or self.store_size
        if size not in self._stores:
            folder = Path(tempfile.mkdtemp(prefix=f"store-{size}-", dir=self.scratch))
            self._stores[size] = harness.generated_store(folder, size, self.seed)
        return self._stores[size]

    def reference(self, store: harness.Store) -> harness.Reference:
        tool = self.reference_tool
        if tool == "auto":
            tool = "json" if store.bytes <= PEER_LIMIT else "streamclean-general"
        if store.sha256 not in self._refs:
            workdir = Path(tempfile.mkdtemp(prefix="reference-", dir=self.scratch))
            try:
                self._refs[store.sha256] = harness.Reference.of(store, tool, workdir)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        return self._refs[store.sha256]

    def bench(self, store: harness.Store) -> harness.Bench:
        workdir = Path(tempfile.mkdtemp(prefix="work-", dir=self.scratch))
        return harness.Bench(store, self.reference(store), workdir, cpus=self.cpus, workers=self.workers)

    def store_label(self, store: harness.Store) -> str:
        if self.store_path is not None and store.path == self.store_path:
            return f"{store.path.name}, {store.bytes / 1e6:.0f} MB"
        return f"{store.bytes / 1e6:.0f} MB store"

    def cpus_label(self) -> str:
        return f"taskset -c {self.cpus}" if self.cpus else f"{len(os.sched_getaffinity(0))} CPUs"

    def ratio_name(self, pair: harness.Pair, store: harness.Store) -> str:
        """Stable across runs of the same configuration, so a baseline's ratio is found by name."""
        return f"{pair.subject} / {pair.peer} ({self.store_label(store)}, {self.cpus_label()})"

    def memory_run(self, tool: str, store: harness.Store) -> dict:
        """One memory run of `tool` (sampled over its process tree; its time is not its own)."""
        key = (tool, store.sha256)
        if key not in self.memory:
            record = self.bench(store).run(f"{tool}:tree", 1)
            self.memory[key] = harness.memory_record(record, store)
        return self.memory[key]

    def report(self) -> dict:
        """What the benchmark JSON carries beside pytest-benchmark's own fields."""
        return {
            "options": {"rounds": self.rounds, "cpus": self.cpus, "workers": self.workers or "auto",
                        "peers": [pair.id for pair in self.pairs], "memory_tools": self.memory_tools,
                        "seed": self.seed},
            "stores": [store.info() for store in self._stores.values()],
            "references": [asdict(ref) for ref in self._refs.values()],
            "ratios": harness.ratio_entries(self.summaries),
            "memory": list(self.memory.values()),
            "gate": {"failures": self.gate_failures, "notes": self.gate_notes},
        }


SUITE = pytest.StashKey[Suite]()


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


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: list, output_json: dict) -> None:
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

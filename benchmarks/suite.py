"""The benchmark session's state: its options, stores, references, results and scratch space.

Imported by conftest.py (the hooks) and the benchmark modules, under its own name so that it
never meets tests/conftest.py in one session.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from benchmarks import harness

MEMORY_SIZES = (20_000_000, 80_000_000)  # the stores the memory bounds are asserted on
PEER_LIMIT = 2_000_000_000  # above this the in-memory peers do not fit; the reference is then the general reader
DEFAULT_PEERS = "orjson,streamclean-general,inspect/dry-run"
DEFAULT_MEMORY_TOOLS = "streamclean,streamclean-general"


def checked(parse: Callable[[str], Any]) -> Callable[[str], Any]:
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
            raise harness.BenchError(
                f"{name!r}: memory runs are of streamclean's tools "
                "(streamclean, streamclean-general, streamclean-before)"
            )
    return tools


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
        self.summaries: list[tuple[str, dict[str, Any]]] = []
        self.memory: dict[tuple[str, str], dict[str, Any]] = {}
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
        return harness.Bench(
            store, self.reference(store), workdir, cpus=self.cpus, workers=self.workers
        )

    def store_label(self, store: harness.Store) -> str:
        if self.store_path is not None and store.path == self.store_path:
            return f"{store.path.name}, {store.bytes / 1e6:.0f} MB"
        return f"{store.bytes / 1e6:.0f} MB store"

    def cpus_label(self) -> str:
        return f"taskset -c {self.cpus}" if self.cpus else f"{len(os.sched_getaffinity(0))} CPUs"

    def ratio_name(self, pair: harness.Pair, store: harness.Store) -> str:
        """Stable across runs of the same configuration, so a baseline's ratio is found by name."""
        return f"{pair.subject} / {pair.peer} ({self.store_label(store)}, {self.cpus_label()})"

    def memory_run(self, tool: str, store: harness.Store) -> dict[str, Any]:
        """One memory run of `tool` (sampled over its process tree; its time is not its own)."""
        key = (tool, store.sha256)
        if key not in self.memory:
            record = self.bench(store).run(f"{tool}:tree", 1)
            self.memory[key] = harness.memory_record(record, store)
        return self.memory[key]

    def report(self) -> dict[str, Any]:
        """What the benchmark JSON carries beside pytest-benchmark's own fields."""
        return {
            "options": {
                "rounds": self.rounds,
                "cpus": self.cpus,
                "workers": self.workers or "auto",
                "peers": [pair.id for pair in self.pairs],
                "memory_tools": self.memory_tools,
                "seed": self.seed,
            },
            "stores": [store.info() for store in self._stores.values()],
            "references": [asdict(ref) for ref in self._refs.values()],
            "ratios": harness.ratio_entries(self.summaries),
            "memory": list(self.memory.values()),
        }


SUITE = pytest.StashKey[Suite]()

"""The benchmark suite (benchmarks/): its options, its JSON for CI tools, and the ratio gate.

Fast: the pure parts are tested on made-up records; the suite itself runs once, end to end, on a
2 MB store (`python -m pytest benchmarks` in a child process), to check the files it writes and
that its gate passes against its own baseline and fails against a far better one.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "streamclean_bench_harness", ROOT / "benchmarks" / "harness.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


harness = _harness()


def suite(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m pytest benchmarks ARGS` in a child, its scratch space and reference cache in tmp."""
    env = {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


def test_pairs_parse_as_peer_or_subject_slash_peer() -> None:
    pairs = harness.parse_pairs("orjson, streamclean-general,inspect/dry-run,orjson/orjson:direct")
    assert [(p.subject, p.peer) for p in pairs] == [
        ("streamclean", "orjson"),
        ("streamclean", "streamclean-general"),
        ("inspect", "dry-run"),
        ("orjson", "orjson:direct"),
    ]
    assert [p.id for p in pairs][2] == "inspect-vs-dry-run"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "nosuchtool",
        "orjson:tree",
        "orjson:statm",
        "streamclean:tree/orjson",
        "floor/orjson",
        "orjson/orjson",
        "orjson,orjson",
        "orjson:bogus",
    ],
)
def test_pairs_refuse_what_cannot_be_timed_honestly(text: str) -> None:
    with pytest.raises(harness.BenchError):
        harness.parse_pairs(text)


@pytest.mark.parametrize(
    ("text", "value"), [("25%", 25.0), ("25", 25.0), (" 7.5 % ", 7.5), ("0%", 0.0)]
)
def test_percent_parses(text: str, value: float) -> None:
    assert harness.parse_percent(text) == value


@pytest.mark.parametrize("text", ["", "%", "-5%", "five", "25%%"])
def test_percent_refuses(text: str) -> None:
    with pytest.raises(harness.BenchError):
        harness.parse_percent(text)


def test_rounds_alternate_after_the_floor() -> None:
    pair = harness.Pair("streamclean", "orjson")
    assert [pair.order(n) for n in (1, 2, 3)] == [
        ["floor", "streamclean", "orjson"],
        ["floor", "orjson", "streamclean"],
        ["floor", "streamclean", "orjson"],
    ]
    assert harness.Pair("streamclean", "floor").order(2) == ["floor", "streamclean"]


@pytest.mark.slow
def test_the_suite_collects_its_pairs_and_refuses_bad_options(tmp_path: Path) -> None:
    done = suite(
        tmp_path,
        "--collect-only",
        "-q",
        "--peers",
        "json,inspect/dry-run",
        "--memory-tools",
        "none",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "benchmarks/test_pairs.py::test_pair[streamclean-vs-json]" in done.stdout
    assert "benchmarks/test_pairs.py::test_pair[inspect-vs-dry-run]" in done.stdout
    assert "test_memory_bounds[streamclean" not in done.stdout  # no tool, no memory run
    for bad in (
        ["--rounds", "0"],
        ["--peers", "orjson:tree"],
        ["--store-size", "big"],
        ["--ratios-fail", "x"],
        ["--memory-tools", "orjson"],
    ):
        done = suite(tmp_path, "--collect-only", "-q", *bad)
        assert done.returncode == pytest.ExitCode.USAGE_ERROR, (bad, done.stdout + done.stderr)
        assert bad[0] in done.stderr


def test_pytest_alone_runs_only_tests() -> None:
    """The README's test command, `pytest`, does not run the benchmarks (testpaths)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests"]


# --------------------------------------------------------------------------------------------
# What the records mean, and the gate
# --------------------------------------------------------------------------------------------


def _run(seconds: float, reader: str | None = None) -> dict[str, Any]:
    return {
        "seconds": seconds,
        "cpu_seconds": seconds,
        "maxrss_bytes": 10 << 20,
        "loadavg_1m": 1.0,
        "reader": reader,
        "verified": "bytes",
        "workers": None,
    }


def test_ratios_are_taken_pair_by_pair_not_from_the_medians() -> None:
    pair = harness.Pair("streamclean", "orjson")
    times = [(1.0, 2.0, 4.0), (1.0, 6.0, 3.0), (2.0, 3.0, 12.0)]  # floor, streamclean, orjson
    rounds = [
        {
            "round": n,
            "order": pair.order(n),
            "runs": {"floor": _run(f), "streamclean": _run(s, "layout"), "orjson": _run(o)},
        }
        for n, (f, s, o) in enumerate(times, 1)
    ]
    summary = harness.pair_summary(pair, rounds, 100_000_000)
    assert summary["ratio"]["pairs"] == [0.5, 2.0, 0.25]
    assert (summary["ratio"]["min"], summary["ratio"]["median"], summary["ratio"]["max"]) == (
        0.25,
        0.5,
        2.0,
    )
    # The ratio of the medians would be 3 / 4 = 0.75: not what is recorded.
    assert summary["seconds"]["streamclean"] == {"min": 2.0, "median": 3.0, "max": 6.0}
    assert summary["mb_per_s"]["streamclean"] == round(100 / 3.0, 1)
    assert summary["floor_multiple"]["streamclean"] == {"min": 1.5, "median": 2.0, "max": 6.0}
    assert summary["reader"] == {"streamclean": ["layout"]}
    assert "floor" not in summary["floor_multiple"]


def _entries(*values: float) -> list[dict[str, Any]]:
    return [
        {"name": f"pair {n}", "unit": "x", "value": value, "range": f"{value}-{value}"}
        for n, value in enumerate(values)
    ]


def test_gate_passes_against_its_own_ratios_and_up_to_the_limit() -> None:
    current = _entries(0.3, 0.5)
    assert harness.ratio_gate(current, current, 25.0)[0] == []
    assert (
        harness.ratio_gate(_entries(0.375, 0.5), current, 25.0)[0] == []
    )  # exactly +25 %: allowed


def test_gate_fails_a_ratio_worse_than_the_limit() -> None:
    failures, notes = harness.ratio_gate(_entries(0.3, 0.5), _entries(0.3, 0.39), 25.0)
    assert len(failures) == 1 and failures[0].startswith(
        "pair 1: 0.5000 against the baseline's 0.3900"
    )
    assert len(notes) == 1


def test_gate_fails_when_nothing_could_be_compared() -> None:
    failures, _ = harness.ratio_gate(
        _entries(0.3), [{"name": "other", "unit": "x", "value": 1.0}], 25.0
    )
    assert failures and "none of this run's ratios" in failures[0]


def test_memory_bounds() -> None:
    def record(size: int, mib: float) -> dict[str, Any]:
        return {"tool": "streamclean", "store_bytes": size, "rss_sum_peak_mib": mib}

    assert harness.memory_bound_failures(record(20, 50.0), record(80, 60.0)) == []
    assert "exceeds 64 MiB" in harness.memory_bound_failures(record(20, 60.0), record(80, 64.5))[0]
    assert "grew 1.30x" in harness.memory_bound_failures(record(20, 40.0), record(80, 52.0))[0]


# --------------------------------------------------------------------------------------------
# The suite end to end: the JSON for github-action-benchmark, and the gate
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_suite_writes_both_jsons_and_gates_on_a_baseline(tmp_path: Path) -> None:
    bench, ratios = tmp_path / "bench.json", tmp_path / "ratios.json"
    small = [
        "--store-size",
        "2MB",
        "--rounds",
        "3",
        "--peers",
        "floor,json",
        "--memory-tools",
        "streamclean",
    ]
    done = suite(
        tmp_path, *small, "-k", "pair", "--benchmark-json", str(bench), "--ratios-json", str(ratios)
    )
    assert done.returncode == 0, done.stdout + done.stderr

    # pytest-benchmark's JSON, as github-action-benchmark's `pytest` tool reads it.
    document = json.loads(bench.read_text(encoding="utf-8"))
    assert {"machine_info", "commit_info", "benchmarks", "datetime", "version"} <= set(document)
    by_name = {b["fullname"]: b for b in document["benchmarks"]}
    assert set(by_name) == {
        "benchmarks/test_pairs.py::test_pair[streamclean-vs-floor]",
        "benchmarks/test_pairs.py::test_pair[streamclean-vs-json]",
    }
    for b in by_name.values():
        stats, info = b["stats"], b["extra_info"]
        assert stats["rounds"] == 3 and len(info["rounds"]) == 3
        # The recorded seconds are the subject's own, as its launcher measured them, round by round.
        own = [r["runs"]["streamclean"]["seconds"] for r in info["rounds"]]
        assert stats["data"] == pytest.approx(own, abs=1e-9)
        assert stats["mean"] == pytest.approx(statistics.mean(own))
        assert stats["stddev"] == pytest.approx(statistics.stdev(own))
        assert stats["ops"] == pytest.approx(1 / stats["mean"])
        assert [r["order"][0] for r in info["rounds"]] == ["floor"] * 3
        assert info["reader"]["streamclean"] == ["layout"]
        assert "streamclean" in info["verified"] and info["loadavg_1m"]["max"] > 0
    orders = [
        r["order"]
        for r in by_name["benchmarks/test_pairs.py::test_pair[streamclean-vs-json]"]["extra_info"][
            "rounds"
        ]
    ]
    assert orders == [
        ["floor", "streamclean", "json"],
        ["floor", "json", "streamclean"],
        ["floor", "streamclean", "json"],
    ]
    assert document["streamclean"]["ratios"] == json.loads(ratios.read_text(encoding="utf-8"))

    # The ratios, as github-action-benchmark's customSmallerIsBetter list.
    entries = json.loads(ratios.read_text(encoding="utf-8"))
    assert isinstance(entries, list) and len(entries) == 2
    for entry in entries:
        assert set(entry) == {"name", "unit", "value", "range", "extra"}
        assert isinstance(entry["value"], float) and entry["value"] > 0
        low, high = (float(x) for x in entry["range"].split("-"))
        assert low <= entry["value"] <= high
    json_pair = next(e for e in entries if e["name"].startswith("streamclean / json ("))
    info = by_name["benchmarks/test_pairs.py::test_pair[streamclean-vs-json]"]["extra_info"]
    assert json_pair["value"] == info["ratio"]["median"] and json_pair["name"] == info["ratio_name"]

    # The gate: against its own ratios it passes (the limit is wide: a 2 MB store is all noise),
    # against ratios a hundred times better it fails the run.
    done = suite(
        tmp_path, *small, "-k", "pair", "--ratios-baseline", str(ratios), "--ratios-fail", "400%"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every ratio within the baseline's limit" in done.stdout
    better = tmp_path / "better.json"
    better.write_text(
        json.dumps([{**e, "value": e["value"] / 100} for e in entries]), encoding="utf-8"
    )
    done = suite(
        tmp_path, *small, "-k", "pair", "--ratios-baseline", str(better), "--ratios-fail", "400%"
    )
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout + done.stderr
    assert done.stdout.count("FAILED  streamclean / ") == 2


@pytest.mark.slow
def test_every_output_is_checked_byte_for_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run whose output differs from the reference's by its bytes alone, or by its counts, is
    refused: no figure is recorded for it."""
    monkeypatch.setattr(harness.tempfile, "tempdir", str(tmp_path))  # the reference cache
    (tmp_path / "store").mkdir()
    (tmp_path / "work").mkdir()
    store = harness.generated_store(tmp_path / "store", 300_000)
    reference = harness.Reference.of(store, "json", tmp_path / "work")
    bench = harness.Bench(store, reference, tmp_path / "work")
    assert bench.run("orjson", 1)["verified"] == "bytes and counts against json"
    other_bytes = dataclasses.replace(reference, sha256="0" * 64)
    with pytest.raises(harness.BenchError, match="same size, other bytes"):
        harness.Bench(store, other_bytes, tmp_path / "work").run("orjson", 1)
    counts = {**reference.counts, "terminal_job_count": reference.counts["terminal_job_count"] + 1}
    with pytest.raises(harness.BenchError, match="counts differ"):
        harness.Bench(store, dataclasses.replace(reference, counts=counts), tmp_path / "work").run(
            "streamclean", 1
        )

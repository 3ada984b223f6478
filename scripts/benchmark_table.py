#!/usr/bin/env python3
"""Print the Performance tables (Markdown) from the benchmark suite's JSON.

    python -m pytest benchmarks --store-size 500MB --rounds 5 --benchmark-json artifacts/pairs-500MB.json
    python scripts/benchmark_table.py artifacts/pairs-500MB.json [more.json ...]

The JSON is pytest-benchmark's (`--benchmark-json`); what this project adds to it is in each
benchmark's `extra_info` (harness.pair_summary) and under "streamclean" (the memory runs). One
row per tool of each pair: seconds as median [min–max] over the rounds, MB/s (store MB / median),
the ratio subject / peer taken within each round (min / median / max), the multiple of the same
round's floor, the largest process's `ru_maxrss`; then the memory runs, then where each file was
measured (pytest-benchmark's machine and commit info). Nothing is computed here that the suite
did not record, except the formatting.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

TOOL_NAMES = {
    "streamclean": "`streamclean clean`",
    "streamclean-general": "`streamclean clean`, general reader",
    "streamclean-before": "`streamclean clean`, before",
    "orjson": "`orjson` in-memory peer",
    "json": "`json` in-memory peer",
    "floor": "floor (read, write + fsync the result)",
    "dry-run": "`streamclean clean --dry-run`",
    "inspect": "`streamclean inspect --json`",
}


def tool_text(spec: str) -> str:
    name, _, sampler = spec.partition(":")
    text = TOOL_NAMES.get(name, f"`{name}`")
    return text + (" (spawned directly, no launcher)" if sampler == "direct" else "")


def seconds_text(value: float) -> str:
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.1f}"


def spread_text(spread: dict[str, Any], fmt: str = "seconds") -> str:
    """median [min–max] of a harness.spread dict."""
    show = seconds_text if fmt == "seconds" else (lambda v: f"{v:.1f}×")
    if spread["min"] == spread["max"]:
        return show(spread["median"])
    return f"{show(spread['median'])} [{show(spread['min'])}–{show(spread['max'])}]"


def pair_rows(info: dict[str, Any]) -> list[str]:
    ratio = info["ratio"]
    rows: list[str] = []
    for spec in (info["subject"], info["peer"], "floor"):
        if spec not in info["seconds"] or (spec == "floor" and rows and info["peer"] == "floor"):
            continue
        if spec == info["subject"]:
            vs = f"{ratio['min']:.2f} / **{ratio['median']:.2f}** / {ratio['max']:.2f}×"
        elif spec == info["peer"]:
            vs = "1"
        else:
            vs = "—"
        multiple = (
            spread_text(info["floor_multiple"][spec], "x")
            if spec in info["floor_multiple"]
            else "1"
        )
        readers = info.get("reader", {}).get(spec)
        reader = f" [reader {', '.join(readers)}]" if readers else ""
        rows.append(
            f"| {tool_text(spec)}{reader} | {spread_text(info['seconds'][spec])} | "
            f"{info['mb_per_s'][spec]:,.1f} | {vs} | {multiple} | {info['maxrss_mib'][spec]:,.1f} MiB |"
        )
    return rows


def pair_table(bench: dict[str, Any]) -> list[str]:
    info = bench["extra_info"]
    store = info["store"]
    jobs = f", {store['jobs']:,} jobs" if store.get("jobs") else ""
    where = f", `taskset -c {info['cpus']}`" if info.get("cpus") else ""
    load = info["loadavg_1m"]
    return [
        f"**{info['subject']} against {info['peer']}** (`{bench['name']}`) — {store['mb']:,} MB store{jobs}{where}, "
        f"{len(info['rounds'])} rounds; every output checked against the `{info['reference']}` reference; "
        f"load average {load['min']:.2f}–{load['max']:.2f}",
        "",
        f"| tool | seconds, median [min–max] | MB/s | vs {info['peer']}, pair by pair (min / median / max) "
        "| × floor, median [min–max] | largest process (`ru_maxrss`) |",
        "|---|---:|---:|---:|---:|---:|",
        *pair_rows(info),
        "",
    ]


def memory_table(records: list[dict[str, Any]]) -> list[str]:
    if not records:
        return []
    lines = [
        "**Memory runs** (sampled every 10 ms over the process tree; their times are not comparable)",
        "",
        "| store | tool | CPUs | peak RSS sum | peak PSS sum | largest process |",
        "|---|---|---|---:|---:|---:|",
    ]
    for record in sorted(records, key=lambda r: (r["store_bytes"], r["tool"])):
        lines.append(
            f"| {record['store_bytes'] / 1e6:,.0f} MB | {tool_text(record['tool'])} | "
            f"{record['cpus'] or 'all'} | {record['rss_sum_peak_mib']:,.1f} MiB | "
            f"{record['pss_sum_peak_mib']:,.1f} MiB | {record['maxrss_mib']:,.1f} MiB |"
        )
    return [*lines, ""]


def machine_text(document: dict[str, Any]) -> str:
    machine, commit = document.get("machine_info", {}), document.get("commit_info", {})
    cpu = machine.get("cpu", {})
    at = (
        f", commit {commit['id'][:10]}{' + local changes' if commit.get('dirty') else ''}"
        if commit.get("id")
        else ""
    )
    return (
        f"{cpu.get('count', '?')} CPUs ({cpu.get('brand_raw', machine.get('processor', '?'))}), "
        f"Linux {machine.get('release', '?')}, {machine.get('python_implementation', '')} "
        f"{machine.get('python_version', '?')}, {document.get('datetime', '?')}{at}"
    )


def render(sources: list[tuple[Path, dict[str, Any]]]) -> str:
    out: list[str] = []
    for _, document in sources:
        for bench in document.get("benchmarks", []):
            if "ratio" in bench.get("extra_info", {}):
                out += pair_table(bench)
        out += memory_table(document.get("streamclean", {}).get("memory", []))
    out.append(
        "Seconds: wall time of the whole command, spawn to exit, no memory sampler. Each round runs the "
        "floor, then the pair in alternating order, every run on a fresh, fsynced copy of the store; "
        "ratios are taken within each round. MB/s: store size / median."
    )
    out.append("")
    out += [f"Measured on {machine_text(document)} (`{path.name}`)." for path, document in sources]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "files", nargs="+", type=Path, help="JSON of `python -m pytest benchmarks --benchmark-json`"
    )
    args = parser.parse_args(argv)
    sources = []
    for path in args.files:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            parser.error(f"{path}: {exc}")
        if "streamclean" not in document or "benchmarks" not in document:
            parser.error(f"{path}: not written by `python -m pytest benchmarks --benchmark-json`")
        sources.append((path, document))
    print(render(sources))
    return 0


if __name__ == "__main__":
    sys.exit(main())

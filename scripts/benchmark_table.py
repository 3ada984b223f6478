#!/usr/bin/env python3
"""Print the README's Performance tables from pytest-benchmark JSON files of benchmarks/.

    python -m pytest benchmarks/ --benchmark-only --store-size 500MB --benchmark-json artifacts/bench-500MB.json
    python scripts/benchmark_table.py artifacts/bench-20MB.json artifacts/bench-500MB.json

For every store size: each tool's median wall time, throughput (store MB / median seconds),
peak RSS and time relative to the orjson in-memory peer on the same store in the same run;
then the memory benchmark (peak RSS on two store sizes), the machine each file was measured
on, and the command that produced it. Output is Markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TOOL_ORDER = ("streamclean", "streamclean-general", "orjson", "json")
TOOL_NAMES = {
    "streamclean": "`streamclean clean`",
    "streamclean-general": "streamclean, general path (`FAST_PATH = False`)",
    "orjson": "`orjson` in-memory peer",
    "json": "`json` in-memory peer",
}
BASELINE = "orjson"
REFERENCE_TEXT = {
    "json": "the `json` peer's (the service's own serialisation)",
    "streamclean-general": "streamclean's general path (stores too big for the peers)",
}


def store_label(size: int) -> str:
    return f"{size / 1e9:.3g} GB" if size >= 1e9 else f"{size / 1e6:.3g} MB"


def seconds_text(value: float) -> str:
    if value < 1:
        return f"{value:.3f}"
    if value < 100:
        return f"{value:.2f}"
    return f"{value:.1f}"


def tool_text(info: dict) -> str:
    tool = info.get("tool", "?")
    text = TOOL_NAMES.get(tool, f"`{tool}`")
    path = info.get("path")
    if tool == "streamclean" and path not in (None, "fast"):
        text += f" (path: {path})"
    return text


def tool_rank(tool: str) -> tuple:
    return (TOOL_ORDER.index(tool), "") if tool in TOOL_ORDER else (len(TOOL_ORDER), tool)


def machine_text(document: dict) -> str:
    machine = document.get("machine_info", {})
    ours = machine.get("streamclean")
    if ours:
        ram = f"{ours['mem_total_gib']} GiB RAM" if ours.get("mem_total_gib") else "RAM unknown"
        return (f"{ours['nproc']} CPUs ({ours['cpu_model']}), {ram}, Linux {ours.get('kernel', '?')}, "
                f"{ours.get('python_implementation', 'Python')} {ours['python']}")
    cpu = machine.get("cpu", {})
    return (f"{cpu.get('count', '?')} CPUs ({cpu.get('brand_raw', machine.get('processor', '?'))}), "
            f"{machine.get('system', '?')} {machine.get('release', '')}, "
            f"{machine.get('python_implementation', 'Python')} {machine.get('python_version', '?')}")


def command_text(document: dict, path: str) -> str:
    command = document.get("streamclean_command")
    if not command:
        return f"(not recorded in {path})"
    return command


def speed_table(rows: list[tuple[dict, dict]]) -> list[str]:
    """rows: (benchmark entry, its extra_info) for the side-by-side speed runs."""
    baseline = {}  # (file index, store bytes) -> the orjson peer's median seconds
    for bench, info in rows:
        if info["tool"] == BASELINE:
            baseline[(bench["_file"], info["store_bytes"])] = bench["stats"]["median"]
    lines = [
        "| store | tool | seconds (median) | MB/s | peak RSS | peak PSS | time vs orjson | rounds |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = sorted(rows, key=lambda r: (r[1]["store_bytes"], r[0]["_file"], tool_rank(r[1]["tool"])))
    for bench, info in rows:
        median = bench["stats"]["median"]
        size = info["store_bytes"]
        base = baseline.get((bench["_file"], size))
        ratio = f"{median / base:.2f}×" if base else "—"
        store = f"{store_label(size)} ({info['jobs']:,} jobs)"
        lines.append(
            f"| {store} | {tool_text(info)} | {seconds_text(median)} | {size / 1e6 / median:,.1f} "
            f"| {info['peak_rss_mib']:,.1f} MiB | {pss_text(info)} | {ratio} | {bench['stats']['rounds']} |"
        )
    return lines


def pss_text(info: dict) -> str:
    return f"{info['peak_pss_mib']:,.1f} MiB" if "peak_pss_mib" in info else "—"  # older files lack it


def memory_table(rows: list[tuple[dict, dict]]) -> list[str]:
    lines = [
        "| tool | small store | peak RSS | large store | peak RSS | large / small | growth per GB | issue sizes |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    rows = sorted(rows, key=lambda r: (r[1]["large_store_bytes"], tool_rank(r[1]["tool"])))
    for _, info in rows:
        lines.append(
            f"| {tool_text(info)} | {store_label(info['small_store_bytes'])} | {info['small_peak_rss_mib']:.1f} MiB "
            f"| {store_label(info['large_store_bytes'])} | {info['large_peak_rss_mib']:.1f} MiB "
            f"| {info['ratio_large_to_small']:.2f} | {info['growth_mib_per_gb']:+.1f} MiB "
            f"| {'yes' if info.get('issue_sizes') else 'no (smoke check)'} |"
        )
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="JSON written by --benchmark-json")
    args = parser.parse_args(argv)

    speed, memory, sources = [], [], []
    for index, path in enumerate(args.files):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            parser.error(f"{path}: {exc}")
        sources.append((path, document))
        for bench in document.get("benchmarks", []):
            info = bench.get("extra_info", {})
            if "tool" not in info or "store_bytes" not in info:
                continue  # not one of ours
            bench["_file"] = index
            (memory if info.get("kind") == "memory" else speed).append((bench, info))
    if not speed and not memory:
        parser.error("no streamclean benchmarks in these files")

    out = []
    if speed:
        out += speed_table(speed)
        out.append("")
        references = sorted({info.get("verified_against", "json") for _, info in speed + memory})
        checked = " and ".join(REFERENCE_TEXT.get(ref, f"`{ref}`") for ref in references)
        out.append("Seconds: wall time of the whole command, interpreter start to exit (streamclean: both "
                   "passes, write, fsync, atomic swap; the peers: load, clean, dump to a file, no fsync), "
                   "median over the rounds. MB/s: store size / median. Peak RSS: the process's own "
                   "`ru_maxrss` or, if larger, the peak of its process tree's resident sizes summed "
                   "(streamclean's workers included), sampled every 10 ms. Peak PSS: the same sum of "
                   "proportional set sizes, where a page two processes share counts half in each. "
                   f"Every run's output is checked byte for byte against {checked}.")
        out.append("")
    if memory:
        out += memory_table(memory)
        out.append("")
    for path, document in sources:
        commit = document.get("commit_info", {})
        at = f", commit {commit['id'][:10]}{' + local changes' if commit.get('dirty') else ''}" if commit.get("id") else ""
        out.append(f"Measured on {machine_text(document)}, {document.get('datetime', '?')[:10]}{at} "
                   f"(`{path.name}`). Reproduce: `{command_text(document, str(path))}`, then "
                   f"`python scripts/benchmark_table.py {path}`.")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Print the README's Performance tables from the JSON files of scripts/bench_pairs.py.

    python scripts/bench_pairs.py --store-size 500MB --rounds 5 --json artifacts/pairs-500MB.json
    python scripts/benchmark_table.py artifacts/pairs-500MB.json [more.json ...]

One table per section (a store, a CPU set, a set of tools): for every tool its wall time as
median [min–max] over the rounds, throughput (store MB / median seconds), its time relative to
the baseline (the orjson peer) taken pair by pair within each round (min / median / max), its
time as a multiple of the floor of the same round, and its memory: the largest process's
`ru_maxrss` from the timed runs, and for memory runs (sampled) the peak RSS sum and PSS sum of
its process tree. Then the machine, commit and command of each file. Output is Markdown.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

MIB = 1 << 20
SAMPLED = ("statm", "tree")  # the samplers of memory runs; "none" and "direct" runs are timed
TOOL_NAMES = {
    "streamclean": "`streamclean clean`",
    "streamclean-general": "`streamclean clean`, general reader",
    "orjson": "`orjson` in-memory peer",
    "json": "`json` in-memory peer",
    "floor": "floor (read, write + fsync the result)",
    "dry-run": "`streamclean clean --dry-run`",
    "inspect": "`streamclean inspect --json`",
}


def store_label(size: int) -> str:
    return f"{size / 1e9:.3g} GB" if size >= 1e9 else f"{size / 1e6:.3g} MB"


def seconds_text(value: float) -> str:
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.1f}"


def spread(values: list[float], fmt) -> str:
    """median [min–max], or the one value."""
    if not values:
        return "—"
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(statistics.median(values))} [{fmt(min(values))}–{fmt(max(values))}]"


def summarize(section: dict) -> list[dict]:
    """Per tool spec, in round order: times, pairwise ratios to the baseline and the floor, memory."""
    by_round: dict[int, dict[str, float]] = {}
    for record in section["records"]:
        by_round.setdefault(record["round"], {})[record["spec"]] = record["seconds"]
    baseline = section.get("baseline")
    rows = []
    for spec in section["tools"]:
        records = [r for r in section["records"] if r["spec"] == spec]
        if not records:
            continue
        seconds = [r["seconds"] for r in records]
        ratios = [times[spec] / times[baseline] for times in by_round.values()
                  if baseline and spec in times and baseline in times]
        floors = [times[spec] / times["floor"] for times in by_round.values()
                  if spec in times and "floor" in times]
        sampled = [r for r in records if r["sampler"] in SAMPLED]
        deep = [r for r in records if r["sampler"] == "tree"]  # statm samples no PSS
        readers = sorted({str(r.get("reader")) for r in records if r.get("reader")})
        rows.append({
            "spec": spec,
            "tool": records[0]["tool"],
            "sampler": records[0]["sampler"],
            "runs": len(records),
            "seconds": seconds,
            "median": statistics.median(seconds),
            "mb_per_s": section["store"]["bytes"] / 1e6 / statistics.median(seconds),
            "ratios": ratios if spec != baseline else [],
            "floor_multiples": floors if spec != "floor" else [],
            "maxrss_mib": max(r["maxrss_bytes"] for r in records) / MIB,
            "rss_sum_mib": max(r["rss_sum_peak_bytes"] for r in sampled) / MIB if sampled else None,
            "pss_sum_mib": max(r["pss_sum_peak_bytes"] for r in deep) / MIB if deep else None,
            "hwm_sum_mib": max(r["hwm_sum_bytes"] for r in deep) / MIB if deep else None,
            "readers": readers,
            "warnings": sorted({r["reader_warning"] for r in records if r.get("reader_warning")}),
        })
    return rows


def ratio_text(values: list[float]) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.2f}×"
    return f"{min(values):.2f} / **{statistics.median(values):.2f}** / {max(values):.2f}×"


def tool_text(row: dict, section: dict) -> str:
    text = TOOL_NAMES.get(row["tool"], f"`{row['tool']}`")
    if row["sampler"] in SAMPLED:
        text += f" (memory run, sampler {row['sampler']})"
    elif row["sampler"] == "direct":
        text += " (spawned directly, no launcher)"
    if row["tool"].startswith("streamclean") or row["tool"] == "dry-run":
        if row["readers"]:
            text += f" [reader {', '.join(row['readers'])}]"
        if section.get("workers") not in (None, "auto"):
            text += f" [workers {section['workers']}]"
    if row["warnings"]:
        text += " — " + "; ".join(row["warnings"])
    return text


def section_table(section: dict) -> list[str]:
    store = section["store"]
    where = f", `taskset -c {section['cpus']}`" if section.get("cpus") else ""
    jobs = f", {store['jobs']:,} jobs" if store.get("jobs") else ""
    baseline = section.get("baseline")
    loads = [r["loadavg_1m"] for r in section["records"] if "loadavg_1m" in r]
    busy = f"; load average before the runs {min(loads):.2f}–{max(loads):.2f}" if loads else ""
    lines = [
        f"**{section['title']}** — {store_label(store['bytes'])} store{jobs}{where}, "
        f"{section['rounds']} round(s); checked against the `{section['reference']['tool']}` reference{busy}",
        "",
        f"| tool | seconds, median [min–max] | MB/s | time vs {baseline or '(no baseline)'} (pairs: min / median / max) "
        "| × floor, median [min–max] | peak RSS (largest process) | peak RSS sum | peak PSS sum | runs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    if section.get("failure"):
        lines[0] += f" — **stopped by a wrong result: {section['failure'].splitlines()[0]}**"
    for row in summarize(section):
        rss_sum = f"{row['rss_sum_mib']:,.1f} MiB" if row["rss_sum_mib"] is not None else "—"
        pss_sum = f"{row['pss_sum_mib']:,.1f} MiB" if row["pss_sum_mib"] is not None else "—"
        timing_ok = row["sampler"] not in SAMPLED
        maxrss = f"{row['maxrss_mib']:,.1f} MiB" if row["sampler"] != "direct" else "—"
        speed = f"{row['mb_per_s']:,.1f}" if timing_ok else "—"  # a sampled run's time is not its own
        lines.append(
            f"| {tool_text(row, section)} | {spread(row['seconds'], seconds_text)}{'' if timing_ok else ' (sampled)'} "
            f"| {speed} | {ratio_text(row['ratios'])} "
            f"| {spread(row['floor_multiples'], lambda v: f'{v:.1f}×')} | {maxrss} "
            f"| {rss_sum} | {pss_sum} | {row['runs']} |"
        )
    return lines


def machine_text(machine: dict) -> str:
    ram = f"{machine['mem_total_gib']} GiB RAM" if machine.get("mem_total_gib") else "RAM unknown"
    return (f"{machine['nproc']} CPUs ({machine['cpu_model']}), {ram}, Linux {machine.get('kernel', '?')}, "
            f"CPython {machine['python']}")


def render(sources: list[tuple[Path, dict]]) -> str:
    out = []
    for _, document in sources:
        for section in document.get("sections", []):
            out += section_table(section)
            out.append("")
    out.append("Seconds: wall time of the whole command, spawn to exit, no memory sampler (streamclean: "
               "both passes, write, fsync, atomic swap; the peers: load, clean, dump to a new file, no "
               "fsync). Each round runs every tool once on a fresh, fsynced copy of the store; ratios are "
               "taken within each round. MB/s: store size / median. Peak RSS: `ru_maxrss` of the timed "
               "runs (the largest single process). RSS and PSS sums: sampled every 10 ms over the "
               "process tree (streamclean's worker included) in separate memory runs. Every output was "
               "checked byte for byte and by its counts against the reference named above.")
    out.append("")
    for path, document in sources:
        commit = document.get("commit", {})
        at = f", commit {commit['id'][:10]}{' + local changes' if commit.get('dirty') else ''}" if commit.get("id") else ""
        failures = document.get("failures")
        failed = f" **FAILED: {'; '.join(failures)}**" if failures else ""
        out.append(f"Measured on {machine_text(document['machine'])}, {document.get('date', '?')}{at} "
                   f"(`{path.name}`). Reproduce: `{document.get('command', '?')}`.{failed}")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="JSON written by scripts/bench_pairs.py --json")
    args = parser.parse_args(argv)
    sources = []
    for path in args.files:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            parser.error(f"{path}: {exc}")
        if document.get("harness") != "scripts/bench_pairs.py":
            parser.error(f"{path}: not written by scripts/bench_pairs.py")
        sources.append((path, document))
    print(render(sources))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The in-memory peers streamclean is measured against: load the whole store, apply SPEC §2, dump.

    python benchmarks/peers.py json   IN OUT [--now ISO] [--results-ttl-seconds S] [--events-ttl-seconds S]
    python benchmarks/peers.py orjson IN OUT [...]

Each reads IN whole, deletes the expired results and events of terminal jobs exactly as SPEC §2
says, writes the cleaned store to OUT and prints a SPEC §3-style report (the counts) on stdout.

- `json`:   json.loads, and json.dumps(state, ensure_ascii=False, sort_keys=True, indent=2) — the
            service's own serialisation, so OUT is byte for byte what the service would write.
- `orjson`: orjson.loads and orjson.dumps(OPT_INDENT_2 | OPT_SORT_KEYS). For stores written by
            scripts/generate_store.py (which only uses values both libraries print alike) OUT equals
            the `json` peer's; for real stores it may not (NaN, big integers, float formatting,
            lone surrogates) — it is a speed yardstick, not a tool.

Both write OUT plainly (no temp file, no fsync), which only flatters them against streamclean.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta, timezone

TERMINAL_STATUSES = frozenset({"completed", "failed", "canceled"})
DEFAULT_RESULTS_TTL_SECONDS = 604800.0
DEFAULT_EVENTS_TTL_SECONDS = 259200.0


def parse_timestamp(value) -> datetime | None:
    """SPEC §2.4: None when missing or unparseable; a naive time is UTC."""
    try:
        text = str(value or "").strip()
    except ValueError:  # an int too long for str() (Python 3.11's digit limit): not a timestamp
        return None
    if not text:
        return None
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def new_counts(cutoff: datetime | None) -> dict:
    return {"total": 0, "eligible_terminal": 0, "delete_count": 0, "kept_count": 0,
            "skipped_missing_timestamp": 0, "cutoff": None if cutoff is None else cutoff.isoformat()}


def expired(counts: dict, cutoff: datetime | None, stamp) -> bool:
    """For one eligible record: is it deleted? Counts a missing timestamp when retention is on."""
    if cutoff is None:
        return False
    moment = parse_timestamp(stamp)
    if moment is None:
        counts["skipped_missing_timestamp"] += 1
        return False
    return moment <= cutoff


def clean_state(state: dict, now: datetime, results_ttl: float | None, events_ttl: float | None):
    """Apply SPEC §2 to a loaded store, in place; return the report's counts."""
    results_cutoff = None if results_ttl is None else now - timedelta(seconds=results_ttl)
    events_cutoff = None if events_ttl is None else now - timedelta(seconds=events_ttl)

    jobs = state.get("jobs")
    jobs = jobs if isinstance(jobs, dict) else {}
    terminal = {job_id for job_id, job in jobs.items()
                if isinstance(job, dict) and job.get("status") in TERMINAL_STATUSES}

    results_counts = new_counts(results_cutoff)
    results = state.get("results")
    if isinstance(results, dict):
        for result_id in list(results):
            result = results[result_id]
            if not isinstance(result, dict):
                continue  # kept, not counted
            results_counts["total"] += 1
            if str(result.get("job_id") or "") in terminal:
                results_counts["eligible_terminal"] += 1
                if expired(results_counts, results_cutoff, result.get("created_at")):
                    results_counts["delete_count"] += 1
                    del results[result_id]

    events_counts = new_counts(events_cutoff)
    events = state.get("events")
    if isinstance(events, dict):
        for job_id, items in events.items():
            if not isinstance(items, list):
                continue  # kept, not counted
            events_counts["total"] += len(items)
            if job_id not in terminal:
                continue
            kept = []
            for item in items:
                events_counts["eligible_terminal"] += 1
                stamp = item.get("occurred_at") if isinstance(item, dict) else None
                if expired(events_counts, events_cutoff, stamp):
                    events_counts["delete_count"] += 1
                else:
                    kept.append(item)
            items[:] = kept  # the key stays, even when its array is now empty

    for counts in (results_counts, events_counts):
        counts["kept_count"] = counts["total"] - counts["delete_count"]
    return {
        "terminal_job_count": len(terminal),
        "active_job_count": len(jobs) - len(terminal),
        "results": results_counts,
        "events": events_counts,
    }


def run_json(source: str, target: str, **rule) -> dict:
    with open(source, "rb") as fh:
        state = json.loads(fh.read())
    counts = clean_state(state, **rule)
    text = json.dumps(state, ensure_ascii=False, sort_keys=True, indent=2)
    with open(target, "w", encoding="utf-8") as fh:
        fh.write(text)
    return counts


def run_orjson(source: str, target: str, **rule) -> dict:
    import orjson

    with open(source, "rb") as fh:
        state = orjson.loads(fh.read())
    counts = clean_state(state, **rule)
    data = orjson.dumps(state, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    with open(target, "wb") as fh:
        fh.write(data)
    return counts


PEERS = {"json": run_json, "orjson": run_orjson}


def parse_now(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="In-memory retention cleanup (a benchmark peer).")
    parser.add_argument("peer", choices=sorted(PEERS))
    parser.add_argument("source", help="the store to read")
    parser.add_argument("target", help="where to write the cleaned store (may equal source)")
    parser.add_argument("--now", type=parse_now, default=None, help="ISO-8601; a naive time is UTC")
    parser.add_argument("--results-ttl-seconds", type=float, default=DEFAULT_RESULTS_TTL_SECONDS)
    parser.add_argument("--events-ttl-seconds", type=float, default=DEFAULT_EVENTS_TTL_SECONDS)
    parser.add_argument("--disable-results-retention", action="store_true")
    parser.add_argument("--disable-events-retention", action="store_true")
    args = parser.parse_args(argv)

    now = args.now or datetime.now(timezone.utc)
    results_ttl = None if args.disable_results_retention else args.results_ttl_seconds
    events_ttl = None if args.disable_events_retention else args.events_ttl_seconds
    counts = PEERS[args.peer](args.source, args.target, now=now,
                              results_ttl=results_ttl, events_ttl=events_ttl)
    report = {"runner": f"peers.py {args.peer}", "now": now.isoformat(),
              "results_ttl_seconds": results_ttl, "events_ttl_seconds": events_ttl, **counts}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

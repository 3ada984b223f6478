#!/usr/bin/env python3
"""The in-memory peers streamclean is measured against: load the whole store, apply SPEC §2, dump.

    python benchmarks/peers.py json   IN OUT [--now ISO] [--results-ttl-seconds S] [--events-ttl-seconds S]
    python benchmarks/peers.py orjson IN OUT [...]

Each reads IN whole, deletes the expired results and events of terminal jobs by the test
oracle's rule (tests/oracle.py, SPEC §2, imported by path rather than copied), writes the
cleaned store to OUT and prints a SPEC §3-style report (the counts) on stdout.

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
import importlib.util
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_RESULTS_TTL_SECONDS = 604800.0
DEFAULT_EVENTS_TTL_SECONDS = 259200.0
ORACLE = Path(__file__).resolve().parents[1] / "tests" / "oracle.py"


def _load_oracle():
    """The test oracle (tests/oracle.py), imported by path: its rule is the one the peers apply,
    so there is no second copy of SPEC §2 to keep in step. (streamclean itself never uses it.)"""
    spec = importlib.util.spec_from_file_location("streamclean_test_oracle", ORACLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


oracle = _load_oracle()
REPORT_KEYS = ("terminal_job_count", "active_job_count", "results", "events")


def clean_state(
    state: dict, now: datetime, results_ttl: float | None, events_ttl: float | None
) -> tuple:
    """SPEC §2 applied to a loaded store by the oracle: (the cleaned state, the report's counts)."""
    cleaned, report = oracle.clean_state(
        state, results_ttl=results_ttl, events_ttl=events_ttl, now=now
    )
    return cleaned, {key: report[key] for key in REPORT_KEYS}


def run_json(source: str, target: str, **rule) -> dict:
    with open(source, "rb") as fh:
        state = json.loads(fh.read())
    state, counts = clean_state(state, **rule)
    text = json.dumps(state, ensure_ascii=False, sort_keys=True, indent=2)
    with open(target, "w", encoding="utf-8") as fh:
        fh.write(text)
    return counts


def run_orjson(source: str, target: str, **rule) -> dict:
    import orjson

    with open(source, "rb") as fh:
        state = orjson.loads(fh.read())
    state, counts = clean_state(state, **rule)
    data = orjson.dumps(state, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    with open(target, "wb") as fh:
        fh.write(data)
    return counts


PEERS = {"json": run_json, "orjson": run_orjson}


def parse_now(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


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

    now = args.now or datetime.now(UTC)
    results_ttl = None if args.disable_results_retention else args.results_ttl_seconds
    events_ttl = None if args.disable_events_retention else args.events_ttl_seconds
    counts = PEERS[args.peer](
        args.source, args.target, now=now, results_ttl=results_ttl, events_ttl=events_ttl
    )
    report = {
        "runner": f"peers.py {args.peer}",
        "now": now.isoformat(),
        "results_ttl_seconds": results_ttl,
        "events_ttl_seconds": events_ttl,
        **counts,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Independent in-memory reference for the retention rule (SPEC §2) and report (SPEC §3).

Derived from the SPEC only; deliberately naive and short.  It is the yardstick the
real (streaming) implementation is held to by the property tests.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

TERMINAL_STATUSES = ("completed", "failed", "canceled")


def parse_timestamp(value):
    """SPEC §2.4: return an aware UTC-comparable datetime, or None when missing."""
    try:
        text = str(value or "").strip()
        if not text:
            return None
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed
    except Exception:
        return None


def _section(state, key):
    value = state.get(key)
    return value if isinstance(value, dict) else {}


def _counts():
    return {
        "total": 0,
        "eligible_terminal": 0,
        "delete_count": 0,
        "kept_count": 0,
        "skipped_missing_timestamp": 0,
        "cutoff": None,
    }


def _verdict(counts, cutoff, stamp_value):
    """For one eligible entry: True when it is deleted.  Updates skip counts."""
    if cutoff is None:
        return False
    stamp = parse_timestamp(stamp_value)
    if stamp is None:
        counts["skipped_missing_timestamp"] += 1
        return False
    return stamp <= cutoff


def clean_state(state, *, results_ttl, events_ttl, now, jobs_ttl=None):
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    now = now.astimezone(UTC)
    results_cutoff = None if results_ttl is None else now - timedelta(seconds=results_ttl)
    events_cutoff = None if events_ttl is None else now - timedelta(seconds=events_ttl)

    # §2.1 terminal index, keyed by the job's key in `jobs`
    jobs = _section(state, "jobs")
    terminal_ids = {
        key
        for key, job in jobs.items()
        if isinstance(job, dict) and job.get("status") in TERMINAL_STATUSES
    }

    new_state = dict(state)

    # job retention (issue 13): terminal jobs finished at or before now - jobs_ttl go,
    # with their events array, results and notifications
    removed = set()
    jc = _counts()
    with_jobs = {"results": 0, "events": 0, "notifications": 0}
    notifications_total = 0
    if jobs_ttl is not None:
        jobs_cutoff = now - timedelta(seconds=jobs_ttl)
        jc["total"] = len(jobs)
        jc["eligible_terminal"] = len(terminal_ids)
        for key in terminal_ids:
            finished = parse_timestamp(jobs[key].get("finished_at"))
            if finished is None:
                jc["skipped_missing_timestamp"] += 1
            elif finished <= jobs_cutoff:
                removed.add(key)
        jc["delete_count"] = len(removed)
        jc["kept_count"] = jc["total"] - jc["delete_count"]
        jc["cutoff"] = jobs_cutoff.isoformat()
        if isinstance(state.get("jobs"), dict):
            new_state["jobs"] = {key: job for key, job in jobs.items() if key not in removed}
        if isinstance(state.get("notifications"), dict):
            kept = {}
            for key, note in state["notifications"].items():
                if isinstance(note, dict):
                    notifications_total += 1
                    if str(note.get("job_id") or "") in removed:
                        with_jobs["notifications"] += 1
                        continue
                kept[key] = note
            new_state["notifications"] = kept

    # §2.2 results
    rc = _counts()
    if isinstance(state.get("results"), dict):
        kept = {}
        for key, result in state["results"].items():
            if isinstance(result, dict):
                rc["total"] += 1
                if str(result.get("job_id") or "") in removed:
                    rc["eligible_terminal"] += 1
                    rc["delete_count"] += 1
                    with_jobs["results"] += 1
                    continue
                if str(result.get("job_id") or "") in terminal_ids:
                    rc["eligible_terminal"] += 1
                    if _verdict(rc, results_cutoff, result.get("created_at")):
                        rc["delete_count"] += 1
                        continue
            kept[key] = result
        new_state["results"] = kept

    # §2.3 events
    ec = _counts()
    if isinstance(state.get("events"), dict):
        kept = {}
        for key, items in state["events"].items():
            if key in removed:
                if isinstance(items, list):
                    ec["total"] += len(items)
                    ec["eligible_terminal"] += len(items)
                    ec["delete_count"] += len(items)
                    with_jobs["events"] += len(items)
                continue
            if isinstance(items, list):
                ec["total"] += len(items)
                if key in terminal_ids:
                    survivors = []
                    for item in items:
                        ec["eligible_terminal"] += 1
                        stamp = item.get("occurred_at") if isinstance(item, dict) else None
                        if _verdict(ec, events_cutoff, stamp):
                            ec["delete_count"] += 1
                        else:
                            survivors.append(item)
                    items = survivors
            kept[key] = items
        new_state["events"] = kept

    for counts, cutoff in ((rc, results_cutoff), (ec, events_cutoff)):
        counts["kept_count"] = counts["total"] - counts["delete_count"]
        counts["cutoff"] = None if cutoff is None else cutoff.isoformat()

    rt = None if results_ttl is None else float(results_ttl)
    et = None if events_ttl is None else float(events_ttl)
    report = {
        "now": now.isoformat(),
        "results_ttl_seconds": rt,
        "events_ttl_seconds": et,
        "ttl_seconds": {"results": rt, "events": et},
        "terminal_job_count": len(terminal_ids),
        "active_job_count": len(jobs) - len(terminal_ids),
        "results": rc,
        "events": ec,
    }
    if jobs_ttl is not None:
        report["jobs"] = dict(
            jc,
            ttl_seconds=float(jobs_ttl),
            removed_with_jobs=with_jobs,
            notifications_total=notifications_total,
        )
    return new_state, report


def dump_like_service(state) -> bytes:
    return json.dumps(state, ensure_ascii=False, sort_keys=True, indent=2).encode("utf-8")

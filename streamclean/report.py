"""The report of docs/CONTRACT.md §3: counts per kind and the JSON that dashboards read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .policy import KindRule, RetentionPolicy


@dataclass
class KindTally:
    """What pass 2 saw of one kind (results or events)."""

    total: int = 0
    eligible_terminal: int = 0
    delete_count: int = 0
    skipped_missing_timestamp: int = 0

    @property
    def kept_count(self) -> int:
        return self.total - self.delete_count

    def add(self, other: KindTally) -> None:
        """Count in what another part of the same pass saw."""
        self.total += other.total
        self.eligible_terminal += other.eligible_terminal
        self.delete_count += other.delete_count
        self.skipped_missing_timestamp += other.skipped_missing_timestamp

    def as_dict(self, rule: KindRule) -> dict[str, Any]:
        return {
            "total": self.total,
            "eligible_terminal": self.eligible_terminal,
            "delete_count": self.delete_count,
            "kept_count": self.kept_count,
            "skipped_missing_timestamp": self.skipped_missing_timestamp,
            "cutoff": _iso(rule.cutoff),
        }


@dataclass
class WithJobs:
    """What went with removed jobs (job retention): results and events (also counted in their
    kinds' `delete_count`), notifications, and how many notifications were judged."""

    results: int = 0
    events: int = 0
    notifications: int = 0
    notifications_total: int = 0

    def add(self, other: WithJobs) -> None:
        self.results += other.results
        self.events += other.events
        self.notifications += other.notifications
        self.notifications_total += other.notifications_total


@dataclass
class JobsTally:
    """The jobs block: every job of the index (a repeated id once, its last word), the
    terminal ones, the removed ones, those kept for want of a valid `finished_at`."""

    total: int = 0
    eligible_terminal: int = 0
    delete_count: int = 0
    skipped_missing_timestamp: int = 0

    def as_dict(self, rule: KindRule, with_jobs: WithJobs) -> dict[str, Any]:
        return {
            "total": self.total,
            "eligible_terminal": self.eligible_terminal,
            "delete_count": self.delete_count,
            "kept_count": self.total - self.delete_count,
            "skipped_missing_timestamp": self.skipped_missing_timestamp,
            "cutoff": _iso(rule.cutoff),
            "ttl_seconds": rule.ttl_seconds,
            "removed_with_jobs": {
                "results": with_jobs.results,
                "events": with_jobs.events,
                "notifications": with_jobs.notifications,
            },
            "notifications_total": with_jobs.notifications_total,
        }


@dataclass
class CleanupReport:
    """Everything a run found and did."""

    store_file: str
    policy: RetentionPolicy
    dry_run: bool
    terminal_job_count: int = 0
    active_job_count: int = 0
    results: KindTally = field(default_factory=KindTally)
    events: KindTally = field(default_factory=KindTally)
    bytes_before: int = 0
    bytes_after: int = 0
    rewritten: bool = False
    reader: str | None = None  # which reader did the work: "layout" or "general"
    survey: object = field(default=None, repr=False)  # what `inspect` asked the passes to gather
    jobs: JobsTally = field(default_factory=JobsTally)
    with_jobs: WithJobs = field(default_factory=WithJobs)
    # the archive written (--archive-file): its file, records and bytes
    archive: dict[str, Any] | None = None
    # with --archive-keep: the archives removed (file, now)
    archives_pruned: list[dict[str, Any]] | None = None

    @property
    def delete_count(self) -> int:
        return self.results.delete_count + self.events.delete_count

    def as_dict(self, runner: str = "streamclean") -> dict[str, Any]:
        """The report in docs/CONTRACT.md §3's key order; keys after `events` are streamclean's own."""
        policy = self.policy
        document: dict[str, Any] = {
            "runner": runner,
            "store_file": self.store_file,
            "now": _iso(policy.now),
            "dry_run": self.dry_run,
            "results_ttl_seconds": policy.results.ttl_seconds,
            "events_ttl_seconds": policy.events.ttl_seconds,
            "ttl_seconds": {
                "results": policy.results.ttl_seconds,
                "events": policy.events.ttl_seconds,
            },
            "terminal_job_count": self.terminal_job_count,
            "active_job_count": self.active_job_count,
            "results": self.results.as_dict(policy.results),
            "events": self.events.as_dict(policy.events),
        }
        if policy.jobs.enabled:
            document["jobs"] = self.jobs.as_dict(policy.jobs, self.with_jobs)
        document |= {
            "store_bytes_before": self.bytes_before,
            "store_bytes_after": self.bytes_after,
            "rewritten": self.rewritten,
            "reader": self.reader,
        }
        if self.archive is not None:
            document["archive"] = self.archive
        if self.archives_pruned is not None:
            document["archives_pruned"] = self.archives_pruned
        return document


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()

"""The run's metrics as a Prometheus text file, for node_exporter's textfile collector.

The file is replaced whole (`atomicfile`, under a name the collector skips), also when a run
fails, so an alert can tell a failed or skipped run from a cleaned store. What each exit status
records, and why a dry run or a run that gives way leaves the last success standing:
docs/operating.md.

`inspect --metrics-textfile` writes a file of its own (`STORE_FAMILIES`): the store's sizes,
growth and level as inspect found them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .atomicfile import write_atomically
from .errors import EXIT_FAILED, EXIT_TEMPFAIL, OutputError
from .report import CleanupReport

if TYPE_CHECKING:
    from .inspect import Inspection

FILE_MODE = 0o644  # node_exporter usually runs as its own user: it must be able to read the file

LAST_SUCCESS = "streamclean_last_success_timestamp_seconds"
LAST_SKIP = "streamclean_last_skip_timestamp_seconds"

# Every family the file can hold, in the file's order, with its HELP text.
FAMILIES = {
    "streamclean_records_deleted": "Records the last run deleted (a dry run: would have deleted), by kind.",
    "streamclean_records_kept": "Records the last run kept, by kind.",
    "streamclean_store_bytes": "Size of the store before and after the last run, in bytes.",
    "streamclean_archive_records": "Records in the archive the last run wrote (--archive-file, --archive-dir).",
    "streamclean_archive_bytes": "Size of the archive the last run wrote, in bytes.",
    "streamclean_archives_pruned": "Old archives the last run removed from --archive-dir (--archive-keep; "
    "a dry run: would have removed).",
    "streamclean_last_run_timestamp_seconds": "When the last run ended, in seconds since the epoch.",
    "streamclean_last_run_duration_seconds": "How long the last run took, in seconds.",
    "streamclean_last_run_success": "1 if the last run succeeded (exit status 0), else 0; "
    "a run that gave way (exit status 75) leaves it as it was.",
    "streamclean_last_run_exit_status": "The exit status of the last run that did not give way.",
    LAST_SUCCESS: "When the last successful run that was not a dry run ended, in seconds since the epoch.",
    LAST_SKIP: "When a run last gave way (exit status 75) to another cleanup or to the service.",
}
# The families of `inspect --metrics-textfile`: the store's state, its growth and its level.
STORE_FAMILIES = {
    "streamclean_store_size_bytes": "Size of the store file when inspect read it, in bytes.",
    "streamclean_store_section_bytes": "Bytes of each top-level section of the store, its key included.",
    "streamclean_store_section_records": "Entries of each top-level section (for events: jobs' events arrays).",
    "streamclean_store_growth_window_seconds": "The time before the inspection whose records give the growth, in seconds.",
    "streamclean_store_growth_bytes_per_day": "Bytes a day the store grew over the growth window, "
    "from the records' own timestamps.",
    "streamclean_store_section_growth_bytes_per_day": "Bytes a day each section grew over the growth window.",
    "streamclean_store_kept_bytes_per_day": "Bytes a day of the growth that the TTLs never remove; "
    "above 0 the store never levels off.",
    "streamclean_store_section_kept_bytes_per_day": "Bytes a day of each section's growth that the TTLs never remove.",
    "streamclean_store_levels_off_bytes": "Where the store levels off under the TTLs: its size right after a "
    "cleanup once every TTL has passed at today's rate; absent when it never does.",
    "streamclean_store_inspected_timestamp_seconds": "When inspect read the store (its now), "
    "in seconds since the epoch.",
}
_SAMPLE_LINE = re.compile(r"^(\w+)(\{[^}]*\})?\s+(\S+)\s*$", re.MULTILINE)

Samples = dict[str, list[tuple[str, str]]]  # family -> [(labels, value)], values as written


@dataclass(frozen=True)
class RunOutcome:
    """What the metrics say about one run: when it ended, how long it took, its exit status
    and its report (None when the run ended before it had one)."""

    finished_at: float  # seconds since the epoch
    duration_seconds: float
    report: CleanupReport | None = None
    exit_status: int = EXIT_FAILED

    @property
    def succeeded(self) -> bool:
        return self.exit_status == 0

    @property
    def gave_way(self) -> bool:
        return self.exit_status == EXIT_TEMPFAIL


def write_textfile(path: str | os.PathLike, outcome: RunOutcome, store_mode: int | None = None) -> None:
    """Replace the metrics file at `path` atomically, no more open than a store of mode
    `store_mode` (FILE_MODE at most); raises OutputError if it cannot."""
    path = Path(path)
    write_samples(path, render_samples(samples_for(outcome, previous_samples(path))), store_mode)


def write_store_textfile(path: str | os.PathLike, inspection: Inspection, store_mode: int | None = None) -> None:
    """Replace the file at `path` with the store's state as `inspection` found it, atomically,
    as `write_textfile` writes; raises OutputError if it cannot."""
    write_samples(Path(path), render_samples(store_samples(inspection), STORE_FAMILIES), store_mode)


def store_samples(inspection: Inspection) -> Samples:
    """The samples of `inspect --metrics-textfile`: sizes, growth and level of the store."""
    growth = inspection.growth
    sections = inspection.survey.in_file_order()
    samples: Samples = {
        "streamclean_store_size_bytes": [("", str(inspection.bytes_total))],
        "streamclean_store_section_bytes": [(_section(name), str(sizes.bytes)) for name, sizes in sections],
        "streamclean_store_section_records": [(_section(name), str(sizes.count)) for name, sizes in sections],
        "streamclean_store_growth_window_seconds": [("", f"{growth.window_days * 86400:g}")],
        "streamclean_store_growth_bytes_per_day": [("", _format_bytes(growth.bytes_per_day))],
        "streamclean_store_section_growth_bytes_per_day": [
            (_section(name), _format_bytes(section.bytes_per_day)) for name, section in growth.sections.items()],
        "streamclean_store_kept_bytes_per_day": [("", _format_bytes(growth.kept_bytes_per_day))],
        "streamclean_store_section_kept_bytes_per_day": [
            (_section(name), _format_bytes(section.kept_bytes_per_day)) for name, section in growth.sections.items()],
        "streamclean_store_inspected_timestamp_seconds": [
            ("", _format_seconds(inspection.dry_run.policy.now.timestamp()))],
    }
    if growth.levels_off_bytes is not None:
        samples["streamclean_store_levels_off_bytes"] = [("", _format_bytes(growth.levels_off_bytes))]
    return samples


def _section(name: str) -> str:
    """A `section` label; a store's keys can hold any character, escaped as the format asks."""
    value = name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{{section="{value}"}}'


def _format_bytes(nbytes: float) -> str:
    return str(round(nbytes))


def write_samples(path: Path, text: str, store_mode: int | None = None) -> None:
    """Replace the file at `path` with `text` atomically, readable by node_exporter, no more
    open than a store of mode `store_mode` (FILE_MODE at most)."""
    try:
        write_atomically(path, text.encode("utf-8"), new_file_mode=FILE_MODE, store_mode=store_mode)
    except OSError as exc:
        raise OutputError(
            f"cannot write the metrics file {path}: {exc.strerror or exc}",
            "its folder must exist and be writable",
        ) from None


def samples_for(outcome: RunOutcome, previous: Samples) -> Samples:
    """The samples of the new file, given the run and those of the file it replaces."""
    if outcome.gave_way:
        return {**previous, LAST_SKIP: [("", _format_seconds(outcome.finished_at))]}
    samples: Samples = {}
    report = outcome.report
    if report is not None:
        samples["streamclean_records_deleted"] = [
            ('{kind="results"}', str(report.results.delete_count)),
            ('{kind="events"}', str(report.events.delete_count)),
        ]
        samples["streamclean_records_kept"] = [
            ('{kind="results"}', str(report.results.kept_count)),
            ('{kind="events"}', str(report.events.kept_count)),
        ]
        if report.policy.jobs.enabled:  # job retention: the jobs and notifications it removed and kept
            jobs, notifications = report.jobs, report.with_jobs
            samples["streamclean_records_deleted"] += [
                ('{kind="jobs"}', str(jobs.delete_count)),
                ('{kind="notifications"}', str(notifications.notifications)),
            ]
            samples["streamclean_records_kept"] += [
                ('{kind="jobs"}', str(jobs.total - jobs.delete_count)),
                ('{kind="notifications"}', str(notifications.notifications_total - notifications.notifications)),
            ]
        samples["streamclean_store_bytes"] = [
            ('{stage="before"}', str(report.bytes_before)),
            ('{stage="after"}', str(report.bytes_after)),
        ]
        if report.archive is not None:
            samples["streamclean_archive_records"] = [("", str(report.archive["records"]))]
            samples["streamclean_archive_bytes"] = [("", str(report.archive["bytes"]))]
        if report.archives_pruned is not None:
            samples["streamclean_archives_pruned"] = [("", str(len(report.archives_pruned)))]
    samples["streamclean_last_run_timestamp_seconds"] = [("", _format_seconds(outcome.finished_at))]
    samples["streamclean_last_run_duration_seconds"] = [("", _format_seconds(outcome.duration_seconds))]
    samples["streamclean_last_run_success"] = [("", "1" if outcome.succeeded else "0")]
    samples["streamclean_last_run_exit_status"] = [("", str(outcome.exit_status))]
    if outcome.succeeded and report is not None and not report.dry_run:
        samples[LAST_SUCCESS] = [("", _format_seconds(outcome.finished_at))]
    elif LAST_SUCCESS in previous:
        samples[LAST_SUCCESS] = previous[LAST_SUCCESS]
    if LAST_SKIP in previous:
        samples[LAST_SKIP] = previous[LAST_SKIP]
    return samples


def render_samples(samples: Samples, families: dict[str, str] = FAMILIES) -> str:
    """The text exposition format: each metric with its HELP and TYPE lines, then its samples."""
    lines: list[str] = []
    for name, help_text in families.items():
        if name in samples:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} gauge")
            lines.extend(f"{name}{labels} {value}" for labels, value in samples[name])
    return "\n".join(lines) + "\n"


def render(outcome: RunOutcome, previous: Samples | None = None) -> str:
    return render_samples(samples_for(outcome, previous or {}))


def previous_samples(path: Path) -> Samples:
    """The samples of streamclean's families in the file a previous run wrote, exactly as
    written; a file that is missing or unreadable, or a value that is not a number, counts as
    absent. An absent last-success time means "never succeeded", which an `absent()` alert
    catches as well as an old timestamp."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    samples: Samples = {}
    for name, labels, value in _SAMPLE_LINE.findall(text):
        if name not in FAMILIES:
            continue
        try:
            float(value)
        except ValueError:
            continue
        samples.setdefault(name, []).append((labels, value))
    return samples


def previous_last_success(path: Path) -> str | None:
    """The last-success timestamp of the file a previous run wrote, exactly as written, or None."""
    values = previous_samples(path).get(LAST_SUCCESS)
    return values[0][1] if values else None


def _format_seconds(seconds: float) -> str:
    return f"{seconds:.3f}"

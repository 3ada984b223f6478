"""The run's metrics as a Prometheus text file, for node_exporter's textfile collector.

node_exporter reads every `*.prom` file in its textfile directory each time it is scraped, so
the file must never be seen half written: it is written to a temporary file in the same folder
(a name not ending in `.prom`, so the collector skips it) and renamed over the target.

A failed run writes the file too, so that a failure is visible without reading cron mail:
`streamclean_last_run_success 0`, and `streamclean_last_success_timestamp_seconds` carried
over unchanged from the previous file, so that "no successful cleanup for a day" can be
alerted on. The record and size metrics describe a finished run only; after a failure they
are left out rather than repeated from an earlier run.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import StreamcleanError
from .report import CleanupReport

FILE_MODE = 0o644  # node_exporter usually runs as its own user: it must be able to read the file

LAST_SUCCESS = "streamclean_last_success_timestamp_seconds"
_LAST_SUCCESS_LINE = re.compile(rf"^{LAST_SUCCESS}\s+(\S+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class RunOutcome:
    """What the metrics say about one run: when it ended, how long it took, and its report.

    `report` is None when the run failed (the command exits non-zero).
    """

    finished_at: float  # seconds since the epoch
    duration_seconds: float
    report: CleanupReport | None = None

    @property
    def succeeded(self) -> bool:
        return self.report is not None


def write_textfile(path: str | os.PathLike, outcome: RunOutcome) -> None:
    """Replace the metrics file at `path` atomically; raises StreamcleanError if it cannot."""
    path = Path(path)
    last_success = _format_seconds(outcome.finished_at) if outcome.succeeded else previous_last_success(path)
    text = render(outcome, last_success)
    try:
        _replace_atomically(path, text.encode("utf-8"))
    except OSError as exc:
        raise StreamcleanError(
            f"cannot write the metrics file {path}: {exc.strerror or exc}",
            "its folder must exist and be writable",
        ) from None


def render(outcome: RunOutcome, last_success: str | None) -> str:
    """The text exposition format: each metric with its HELP and TYPE lines, then its samples."""
    lines: list[str] = []

    def gauge(name: str, help_text: str, samples: list[tuple[str, object]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        lines.extend(f"{name}{labels} {value}" for labels, value in samples)

    report = outcome.report
    if report is not None:
        gauge(
            "streamclean_records_deleted",
            "Records the last run deleted (a dry run: would have deleted), by kind.",
            [('{kind="results"}', report.results.delete_count), ('{kind="events"}', report.events.delete_count)],
        )
        gauge(
            "streamclean_records_kept",
            "Records the last run kept, by kind.",
            [('{kind="results"}', report.results.kept_count), ('{kind="events"}', report.events.kept_count)],
        )
        gauge(
            "streamclean_store_bytes",
            "Size of the store before and after the last run, in bytes.",
            [('{stage="before"}', report.bytes_before), ('{stage="after"}', report.bytes_after)],
        )
    gauge(
        "streamclean_last_run_timestamp_seconds",
        "When the last run ended, in seconds since the epoch.",
        [("", _format_seconds(outcome.finished_at))],
    )
    gauge(
        "streamclean_last_run_duration_seconds",
        "How long the last run took, in seconds.",
        [("", _format_seconds(outcome.duration_seconds))],
    )
    gauge(
        "streamclean_last_run_success",
        "1 if the last run succeeded (exit status 0), else 0.",
        [("", 1 if outcome.succeeded else 0)],
    )
    if last_success is not None:
        gauge(
            LAST_SUCCESS,
            "When the last successful run ended, in seconds since the epoch.",
            [("", last_success)],
        )
    return "\n".join(lines) + "\n"


def previous_last_success(path: Path) -> str | None:
    """The last-success timestamp of the file a previous run wrote, exactly as written, or None.

    A file that is missing, unreadable or holds no valid value means "never succeeded": the
    metric is then left out, which an `absent()` alert catches as well as an old timestamp.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    match = _LAST_SUCCESS_LINE.search(text)
    if match is None:
        return None
    try:
        float(match.group(1))
    except ValueError:
        return None
    return match.group(1)


def _format_seconds(seconds: float) -> str:
    return f"{seconds:.3f}"


def _replace_atomically(path: Path, data: bytes) -> None:
    folder = path.parent
    fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fchmod(out.fileno(), FILE_MODE)  # mkstemp makes it 0600
            os.fsync(out.fileno())  # so a crash after the rename cannot leave an empty file
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise

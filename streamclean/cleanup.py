"""One cleanup run: lock, index, filter, swap — the whole pipeline, usable without the CLI.

    >>> policy = RetentionPolicy.build(now, results_ttl=604800, events_ttl=259200)
    >>> report = clean("runtime/async_jobs/store.v1.json", policy)
    >>> report.delete_count
"""

from __future__ import annotations

import os
import stat
from contextlib import nullcontext
from pathlib import Path
from typing import BinaryIO, Callable

from . import fs, signals
from .errors import StoreFileError
from .filter import filter_store
from .index import build_index
from .lock import StoreLock
from .policy import RetentionPolicy
from .report import CleanupReport
from .swap import AtomicReplace, Snapshot, remove_leftovers
from .writer import StoreWriter

Progress = Callable[[str, int, int], None]  # (pass name, bytes done, bytes total)


def clean(
    store_file: str | os.PathLike,
    policy: RetentionPolicy,
    *,
    dry_run: bool = False,
    lock_file: str | os.PathLike | None = None,
    backup: bool = False,
    progress: Progress | None = None,
) -> CleanupReport:
    """Apply the retention policy to the store at `store_file`.

    Raises a StreamcleanError subclass on failure, with the store exactly as it was. When
    nothing is to be deleted, or in a dry run, nothing is written at all.
    """
    # A symlinked store is cleaned where it lives; the link itself stays a link.
    store = Path(os.path.realpath(store_file))
    report = CleanupReport(store_file=str(store_file), policy=policy, dry_run=dry_run)
    with _open_store(store, str(store_file)) as source:
        snapshot = Snapshot.of(os.fstat(source.fileno()))
        report.bytes_before = report.bytes_after = snapshot.size
        lock = nullcontext() if dry_run else StoreLock(Path(lock_file or f"{store}.lock"))
        with lock:
            if not dry_run:
                remove_leftovers(store)
            if snapshot.size == 0:
                return report  # an empty store: nothing to read, nothing to delete
            _run_passes(source, store, snapshot, policy, report, dry_run, backup, progress)
    return report


def _run_passes(
    source: BinaryIO,
    store: Path,
    snapshot: Snapshot,
    policy: RetentionPolicy,
    report: CleanupReport,
    dry_run: bool,
    backup: bool,
    progress: Progress | None,
) -> None:
    index = build_index(source, _pass_progress(progress, "index", snapshot.size))
    report.terminal_job_count = index.terminal_count
    report.active_job_count = index.active_count

    source.seek(0)
    replace = None
    if not dry_run:
        backup_path = store.with_name(store.name + ".bak") if backup else None
        replace = AtomicReplace(store, snapshot, backup_path)
    writer = StoreWriter(
        open_target=replace.open if replace else lambda: None,
        copy_prefix=lambda fd, nbytes: fs.copy_range(source.fileno(), fd, nbytes),
    )
    try:
        report.results, report.events = filter_store(
            source, index, policy, writer, _pass_progress(progress, "filter", snapshot.size)
        )
        if replace is not None and writer.fd is not None:
            writer.flush()
            with signals.critical_section():
                replace.commit()
            report.rewritten = True
    except BaseException:
        if replace is not None:
            replace.rollback()
        raise
    report.bytes_after = writer.size


def _open_store(store: Path, shown: str) -> BinaryIO:
    try:
        source = open(store, "rb", buffering=0)
    except FileNotFoundError:
        raise StoreFileError(
            f"store file not found: {shown}",
            "check --store-file or ASYNC_JOBS_STORE_FILE",
        ) from None
    except IsADirectoryError:
        raise StoreFileError(f"store file is a directory: {shown}", "give the path of store.v1.json") from None
    except OSError as exc:
        raise StoreFileError(f"cannot open the store {shown}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
        source.close()
        raise StoreFileError(f"store file is not a regular file: {shown}")
    return source


def _pass_progress(progress: Progress | None, name: str, total: int) -> Callable[[int], None] | None:
    if progress is None:
        return None
    return lambda done: progress(name, done, total)

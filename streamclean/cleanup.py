"""One cleanup run: lock, index, filter, swap — the whole pipeline, usable without the CLI.

    >>> policy = RetentionPolicy.build(now, results_ttl=604800, events_ttl=259200)
    >>> report = clean("runtime/async_jobs/store.v1.json", policy)
    >>> report.delete_count
"""

from __future__ import annotations

import os
import stat
import threading
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import BinaryIO, Callable

from . import fast, fs, signals, worker
from .errors import InvalidStoreError, StoreFileError, UsageError, WriteError
from .filter import filter_store
from .index import build_index
from .lock import StoreLock
from .policy import RetentionPolicy
from .report import CleanupReport
from .swap import AtomicReplace, Snapshot, remove_leftovers
from .units import megabytes
from .writer import StoreWriter, write_errors

Progress = Callable[[str, int, int], None]  # (pass name, bytes done, bytes total)


def clean(
    store_file: str | os.PathLike,
    policy: RetentionPolicy,
    *,
    dry_run: bool = False,
    lock_file: str | os.PathLike | None = None,
    backup: bool = False,
    progress: Progress | None = None,
    reader: str = "auto",
    workers: str | int = "auto",
) -> CleanupReport:
    """Apply the retention policy to the store at `store_file`.

    Raises a StreamcleanError subclass on failure, with the store exactly as it was. When
    nothing is to be deleted, or in a dry run, nothing is written at all.
    """
    reader, workers = check_reader(reader), check_workers(workers)
    # A symlinked store is cleaned where it lives; the link itself stays a link.
    store = Path(os.path.realpath(store_file))
    signals.run_started()
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
            _run_passes(source, store, snapshot, policy, report, dry_run, backup, progress, reader, workers)
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
    reader: str,
    workers: str,
) -> None:
    """Both passes and the swap: on the fast path if the store is in the service's layout."""

    def new_replace() -> AtomicReplace | None:
        if dry_run:
            return None
        return AtomicReplace(store, snapshot, store.with_name(store.name + ".bak") if backup else None)

    if reader in ("auto", "layout"):
        try:
            _fast_passes(source, snapshot, policy, report, new_replace(), progress, workers)
            report.reader = "layout"
            return
        except fast.LayoutMismatch:
            source.seek(0)  # not the service's layout somewhere: start over, reading any JSON
            if reader == "layout":
                # Invalid JSON is worded by the general reader, with its byte offset.
                _general_passes(source, snapshot, policy, CleanupReport(str(store), policy, True), None, None)
                raise InvalidStoreError(
                    "the store is valid JSON but not in the service's layout (STREAMCLEAN_READER=layout)"
                ) from None
    _general_passes(source, snapshot, policy, report, new_replace(), progress)
    report.reader = "general"


READERS = ("auto", "layout", "general")
WORKERS = ("auto", "1", "2")


def check_reader(name: str, what: str = "reader") -> str:
    if name not in READERS:
        raise UsageError(f"{what}: unknown reader {name!r}", "choose one of " + ", ".join(READERS))
    return name


def check_workers(value: str | int, what: str = "workers") -> str:
    if str(value) not in WORKERS:
        raise UsageError(f"{what}: unknown worker count {value!r}", "choose one of " + ", ".join(WORKERS))
    return str(value)


def _fast_passes(source, snapshot, policy, report, replace, progress, workers) -> None:
    helper = None
    if _may_fork(snapshot, workers):
        helper = lambda boundary: worker.IndexWorker(source.fileno(), boundary)  # noqa: E731
    index, jobs_span, events_span = fast.build_index(
        source, _pass_progress(progress, "index", snapshot.size), helper
    )

    def filter_into(replace, name, tail=None):
        source.seek(0)
        on_progress = _pass_progress(progress, name, snapshot.size)
        if tail is not None and on_progress is not None:
            # Both processes' bytes: ours up to where the tail begins, and the worker's.
            report_own = on_progress
            on_progress = lambda done: report_own(min(done, tail.start) + tail.done)  # noqa: E731
            tail.on_wait = lambda: report_own(tail.start + tail.done)
        return fast.filter_store(
            source,
            index,
            jobs_span,
            policy,
            open_target=replace.open if replace else lambda: None,
            copy_source=lambda fd, start, nbytes: _copy_range(source.fileno(), fd, nbytes, start),
            write=_write_new_store,
            size=snapshot.size,
            on_progress=on_progress,
            tail=tail,
        )

    def counted_size() -> int:
        out = filter_into(None, "space")[2]
        return snapshot.size - out.skipped if out.diverged else 0

    if replace is not None:
        _ensure_space(replace.store, snapshot, counted_size)
    with _rolled_back_on_error(replace):
        tail = _start_tail(source, snapshot, index, jobs_span, events_span, policy, replace, workers)
        try:
            results, events, out = filter_into(replace, "filter", tail)
        finally:
            if tail is not None:
                tail.stop()
        _finish(replace, out.fd, report)
    _fill(report, index, results, events, snapshot.size - out.skipped)


def _may_fork(snapshot: Snapshot, workers: str) -> bool:
    """A worker process pays off (`auto`): a store big enough and a second CPU; `2` forces it.
    Never from a process with other threads (a library caller's): a lock one of them holds at
    the fork would stay locked forever in the worker."""
    if workers == "1" or threading.active_count() != 1:
        return False
    return workers == "2" or (snapshot.size >= worker.MIN_STORE_BYTES and worker.usable_cpus() >= 2)


def _start_tail(source, snapshot, index, jobs_span, events_span, policy, replace, workers) -> worker.TailWorker | None:
    """The store's tail filtered on the second core, when there is one and room for the
    worker's output beside the old store and the new one (worst case: nothing deleted)."""
    if not _may_fork(snapshot, workers):
        return None
    start, in_events = worker.split_point(source.fileno(), snapshot.size, jobs_span, events_span)
    segment = None
    if replace is not None:
        try:
            vfs = os.statvfs(replace.store.parent)
        except OSError:
            return None
        if vfs.f_bavail * vfs.f_frsize < snapshot.size + (snapshot.size - start):
            return None
        segment = worker.unnamed_file(replace.store)
        if segment is None:
            return None
    return worker.TailWorker(
        source.fileno(), start, in_events, snapshot.size, index, jobs_span, policy, segment,
        _copy_range, _write_new_store,
    )


def _general_passes(source, snapshot, policy, report, replace, progress) -> None:
    index = build_index(source, _pass_progress(progress, "index", snapshot.size))

    def filter_into(replace, name):
        source.seek(0)
        writer = StoreWriter(
            open_target=replace.open if replace else lambda: None,
            copy_prefix=_copy_prefix(source),
        )
        results, events = filter_store(
            source, index, policy, writer, _pass_progress(progress, name, snapshot.size)
        )
        writer.flush()
        return results, events, writer

    def counted_size() -> int:
        writer = filter_into(None, "space")[2]
        return writer.size if writer.diverged else 0

    if replace is not None:
        _ensure_space(replace.store, snapshot, counted_size)
    with _rolled_back_on_error(replace):
        results, events, writer = filter_into(replace, "filter")
        _finish(replace, writer.fd, report)
    _fill(report, index, results, events, writer.size)


def _ensure_space(store: Path, snapshot: Snapshot, counted_size: Callable[[], int]) -> None:
    """Refuse before writing anything when the new store cannot fit beside the old one.

    The new store is never larger than the old one, so when the old store's size is free
    there is nothing to decide. Requiring that much always would refuse legitimate cleanups
    on a nearly full disk, exactly when they matter most; so on a tighter disk the new
    store's exact size is counted first, by pass 2 writing nothing (one more read of the
    store, paid only then), and the run goes ahead whenever that fits. Refusing before
    writing also spares the service a disk filled to the last block by a run that could not
    finish. Free space is what an unprivileged writer may use (`f_bavail`). A write that still
    fails (the disk filled up meanwhile) is rolled back like any other.
    """
    try:
        vfs = os.statvfs(store.parent)
    except OSError:
        return  # no answer: the writes themselves will tell
    free = vfs.f_bavail * vfs.f_frsize
    if free >= snapshot.size:
        return
    needed = counted_size()
    if needed > free:
        raise WriteError(
            f"not enough free space for the new store in {store.parent}: "
            f"{megabytes(free)} free, {megabytes(needed)} needed",
            "the store was left unchanged; free space there and run again",
        )


def _finish(replace: AtomicReplace | None, fd: int | None, report: CleanupReport) -> None:
    if replace is not None and fd is not None:
        with signals.critical_section():
            replace.commit()
        report.rewritten = True


def _fill(report: CleanupReport, index, results, events, size_after: int) -> None:
    report.terminal_job_count = index.terminal_count
    report.active_job_count = index.active_count
    report.results, report.events = results, events
    report.bytes_after = size_after


@contextmanager
def _rolled_back_on_error(replace: AtomicReplace | None):
    try:
        yield
    except BaseException:
        if replace is not None:
            replace.rollback()
        raise


def _copy_prefix(source: BinaryIO) -> Callable[[int, int], None]:
    """Copies the unchanged start of the old store into the new one, errors worded."""

    def copy(fd: int, nbytes: int) -> None:
        with write_errors():
            fs.copy_range(source.fileno(), fd, nbytes)

    return copy


def _copy_range(src_fd: int, dst_fd: int, nbytes: int, start: int) -> None:
    with write_errors():
        fs.copy_range(src_fd, dst_fd, nbytes, start)


def _write_new_store(fd: int, data: bytes) -> None:
    with write_errors():
        fs.write_all(fd, data)


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

"""One cleanup run: lock, reader, pass 1, pass 2, swap — the whole pipeline, usable without the CLI.

    >>> policy = RetentionPolicy.build(now, results_ttl=604800, events_ttl=259200)
    >>> report = clean("runtime/async_jobs/store.v1.json", policy)
    >>> report.delete_count, report.reader

`reader` names the reader (`auto`, `layout`, `general`; see `readers/`), `workers` how many
processes may share the passes (`auto`, `1`, `2`; see `second_core.py`).
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from . import archive as archives
from . import fs, pass1, pass2, second_core, signals
from .archive_folder import ArchiveFolder, check_options
from .errors import InvalidStoreError, StoreFileError, UsageError, WriteError
from .index import NO_FINISHED_AT, REMOVED
from .judge import Judge
from .lock import StoreLock
from .outputs import ARCHIVE_DIR, LOCK
from .outputs import check as check_outputs
from .pass2 import Context
from .policy import RetentionPolicy
from .readers import LayoutMismatch, candidates, check_reader, reader_class
from .report import CleanupReport
from .splice import RangeWriter
from .swap import AtomicReplace, Snapshot, remove_leftovers, unnamed_file
from .units import megabytes

if TYPE_CHECKING:
    from .inspect import StoreSurvey

Progress = Callable[[str, int, int], None]  # (pass name, bytes done, bytes total)
WORKERS = ("auto", "1", "2")


def check_workers(value: str | int, what: str = "workers") -> str:
    if str(value) not in WORKERS:
        raise UsageError(
            f"{what}: unknown worker count {value!r}", "choose one of " + ", ".join(WORKERS)
        )
    return str(value)


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
    survey: Callable[[], StoreSurvey] | None = None,
    archive_file: str | os.PathLike | None = None,
    archive_dir: str | os.PathLike | None = None,
    archive_keep: float | None = None,
) -> CleanupReport:
    """Apply the retention policy to the store at `store_file`.

    Raises a StreamcleanError subclass on failure, with the store exactly as it was. When
    nothing is to be deleted, or in a dry run, nothing is written at all. With `survey`, a
    factory of an observer the passes tell what they read (`inspect`), the report carries it.
    With `archive_file`, every record removed is kept there for `restore` (see `archive.py`);
    an existing file is refused before the store is opened, and a dry run or a run that
    deletes nothing writes none.

    With `archive_dir` instead, the run names the archive itself in that folder, and with
    `archive_keep` (seconds) removes, once it has succeeded, this store's archives there that
    are older than that (see `archive_folder.py`); the report lists them (`archives_pruned`).
    """
    choice, workers = check_reader(reader), check_workers(workers)
    check_options(archive_dir, archive_keep, archive_file)
    if archive_file is not None:
        archives.refuse_existing(archive_file)
    folder = None
    if archive_dir is not None:
        folder = ArchiveFolder(archive_dir, Path(os.path.realpath(store_file)), archive_keep)
    signals.run_started()
    report = CleanupReport(store_file=str(store_file), policy=policy, dry_run=dry_run)
    outputs = [("--archive-file", archive_file), (ARCHIVE_DIR, archive_dir)]
    with store_under_lock(store_file, dry_run, lock_file, outputs) as (store, source, snapshot):
        report.bytes_before = report.bytes_after = snapshot.size
        names = None
        if folder is not None:
            folder.prepare(snapshot.mode, dry_run)
            names = folder.names(policy.now)
            archive_file = next(names)
        run = Run(
            store,
            source,
            snapshot,
            policy,
            report,
            dry_run,
            backup,
            progress,
            workers,
            survey,
            None if archive_file is None else Path(archive_file),
            names,
        )
        if snapshot.size == 0:
            report.survey = survey() if survey else None
        else:
            for name in candidates(choice):
                try:
                    run.attempt(name)
                    break
                except LayoutMismatch:
                    # not the service's layout somewhere: start over, reading any JSON
                    source.seek(0)
                    if choice == "layout":
                        run.refuse_layout()
        if folder is not None and archive_keep is not None:
            written = Path(report.archive["file"]) if report.archive else None
            report.archives_pruned = [
                found.as_dict() for found in folder.prune(policy.now, written, dry_run)
            ]
    return report


@contextmanager
def store_under_lock(
    store_file: str | os.PathLike,
    dry_run: bool,
    lock_file: str | os.PathLike | None,
    outputs: Iterable[tuple[str, str | os.PathLike | None]] = (),
    reads: Iterable[tuple[str, str | os.PathLike | None]] = (),
):
    """The store opened where it lives (a symlink stays a link), its snapshot, and, unless in
    a dry run, the lock beside it held and this tool's leftovers removed: how `clean` and
    `restore` begin. First, before the store is opened, the lock and the run's other
    `outputs` are held to the rule of `outputs.check` (`reads`: what the run only reads)."""
    # a dry run's lock too: it may be in use
    check_outputs(store_file, [(LOCK, lock_file), *outputs], reads)
    store = Path(os.path.realpath(store_file))
    with _open_store(store, str(store_file)) as source:
        snapshot = Snapshot.of(os.fstat(source.fileno()))
        with (
            nullcontext()
            if dry_run
            else StoreLock(Path(lock_file or f"{store}.lock"), snapshot.mode)
        ):
            if not dry_run:
                remove_leftovers(store)
            yield store, source, snapshot


@dataclass
class Run:
    """What one run reads, may write and reports; `attempt` is the pipeline on one reader."""

    store: Path
    source: BinaryIO
    snapshot: Snapshot
    policy: RetentionPolicy
    report: CleanupReport
    dry_run: bool
    backup: bool
    progress: Progress | None
    workers: str
    survey: Callable[[], StoreSurvey] | None
    archive_file: Path | None = None
    archive_names: Iterator[Path] | None = None  # with --archive-dir: the names after archive_file

    def attempt(self, name: str) -> None:
        """Both passes and the swap on the reader `name`; LayoutMismatch if it does not fit."""
        survey = self.survey() if self.survey else None
        index, jobs_span, events_span = self.pass1(name, survey)
        judge = Judge(self.policy)
        replace = archive = None
        if not self.dry_run:
            backup = self.store.with_name(self.store.name + ".bak") if self.backup else None
            replace = AtomicReplace(self.store, self.snapshot, backup)
            self.ensure_space(name, index, jobs_span)
            if self.archive_file is not None:
                archive = archives.ArchiveWriter(
                    self.archive_file, self.source.fileno(), self.store, self.archive_names
                )
        context = Context(index, jobs_span, judge, self.snapshot.size, survey, archive)
        with _rolled_back_on_error(replace, archive):
            tail = self.start_tail(name, context, events_span, replace)
            try:
                out = self.pass2(name, context, replace, tail)
            finally:
                if tail is not None:
                    tail.stop()
            if replace is not None and out.fd is not None:
                if archive is not None:
                    self.seal(archive, replace, out)
                with signals.critical_section():
                    replace.commit()
                    self.report.rewritten = True
                    if archive is not None:  # named in the same breath: a signal waits for it too
                        archive.publish()
                        self.report.archive = archive.as_report()
        if archive is not None:
            archive.close_body()
        self.fill_report(name, index, judge, out, survey)

    def fill_report(self, name: str, index, judge: Judge, out: RangeWriter, survey) -> None:
        report = self.report
        report.reader = name
        report.terminal_job_count, report.active_job_count = (
            index.terminal_count,
            index.active_count,
        )
        report.results, report.events = judge.results, judge.events
        if self.policy.jobs.enabled:
            jobs = report.jobs
            jobs.total, jobs.eligible_terminal = len(index), index.terminal_count
            jobs.delete_count, jobs.skipped_missing_timestamp = (
                index.count(REMOVED),
                index.count(NO_FINISHED_AT),
            )
            report.with_jobs = judge.with_jobs
        report.bytes_after = self.snapshot.size - out.skipped
        report.survey = survey

    # -- the stages ------------------------------------------------------------------------------

    def _index_worker(self, fd: int, survey, boundary: int) -> second_core.IndexWorker:
        return second_core.IndexWorker(fd, boundary, Judge(self.policy), survey)

    def pass1(self, name: str, survey):
        self.source.seek(0)
        reader = reader_class(name)(self.source, self._progress("index"))
        helper = None
        if self.may_fork(name):
            fd = self.source.fileno()
            helper = partial(self._index_worker, fd, survey)
        index, jobs_span = pass1.index_jobs(reader, Judge(self.policy), helper, survey)
        splits = reader.powers.splits
        return index, jobs_span, None if splits is None else splits.events_span

    def seal(self, archive, replace: AtomicReplace, out: RangeWriter) -> None:
        """The archive, put together and fsynced before the swap: its header names the new
        store by size and SHA-256 (read back from the written file, still in the page cache)."""
        new_size = self.snapshot.size - out.skipped
        assert replace.fd is not None  # open until `commit`
        header = archives.header(
            self.store,
            self.snapshot.size,
            new_size,
            archives.digest(replace.fd),
            self.policy.now.isoformat(),
        )
        archive.seal(header)

    def pass2(
        self,
        name: str,
        context: Context,
        replace: AtomicReplace | None,
        tail: second_core.TailWorker | None = None,
        stage: str = "filter",
    ) -> RangeWriter:
        """Pass 2 into the new store (`replace`), or counting only (None)."""
        self.source.seek(0)
        on_progress = self._progress(stage)
        if tail is not None and on_progress is not None:
            on_progress, tail.on_wait = _both_processes(on_progress, tail)
        reader = reader_class(name)(self.source, on_progress)
        out = RangeWriter(
            reader.window,
            replace.open if replace else lambda: None,
            self._copy_source,
            _write_new_store,
            read_source=self._read_source,
            writeback=True,
        )
        try:
            pass2.filter_store(reader, out, context, tail)
        finally:
            out.close()  # before anyone closes or removes the file it writes to
        return out

    def start_tail(
        self,
        name: str,
        context: Context,
        events_span: tuple[int, int] | None,
        replace: AtomicReplace | None,
    ) -> second_core.TailWorker | None:
        """The store's tail filtered on the second core, when there is one and room for the
        worker's output beside the old store and the new one (worst case: nothing deleted).
        With an archive, the worker archives its part into an unnamed file of its own, which
        this process appends behind its own part (store order); with job retention, the tail
        starts where `jobs` ends (the events object is filtered whole)."""
        jobs_span, archive = context.jobs_span, context.archive
        if jobs_span is None or not self.may_fork(name):
            return None
        splitter = reader_class(name).tail_split
        if splitter is None:
            return None
        size = context.size
        if self.policy.jobs.enabled:
            start, in_events = jobs_span[1], False
        else:
            start, in_events = splitter(
                second_core.read_at(self.source.fileno()), size, jobs_span, events_span
            )
        segment = None
        if replace is not None:
            try:
                vfs = os.statvfs(replace.store.parent)
            except OSError:
                return None
            if vfs.f_bavail * vfs.f_frsize < size + (size - start):
                return None
            segment = unnamed_file(replace.store, self.snapshot.mode)
            if segment is None:
                return None
        archive_fd = None
        if archive is not None:
            archive_fd = unnamed_file(archive.path, self.snapshot.mode)
            if archive_fd is None:
                if segment is not None:
                    os.close(segment)
                return None
        return second_core.TailWorker(
            self.source.fileno(),
            start,
            in_events,
            context,
            segment,
            _copy_range,
            _write_new_store,
            archive_fd,
        )

    def may_fork(self, name: str) -> bool:
        """A worker process pays off (`auto`): a store big enough and a second CPU; `2` forces
        it wherever the reader can split. Never from a process with other threads (a library
        caller's): a lock one of them holds at the fork would stay locked forever in the worker."""
        if (
            reader_class(name).tail_split is None
            or self.workers == "1"
            or threading.active_count() != 1
        ):
            return False
        return self.workers == "2" or (
            self.snapshot.size >= second_core.MIN_STORE_BYTES and second_core.usable_cpus() >= 2
        )

    def ensure_space(self, name: str, index, jobs_span) -> None:
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
            vfs = os.statvfs(self.store.parent)
        except OSError:
            return  # no answer: the writes themselves will tell
        free = vfs.f_bavail * vfs.f_frsize
        size = self.snapshot.size
        if free >= size:
            return
        counting = Context(index, jobs_span, Judge(self.policy), size)
        out = self.pass2(name, counting, None, stage="space")
        needed = size - out.skipped if out.diverged else 0
        if needed > free:
            raise WriteError(
                f"not enough free space for the new store in {self.store.parent}: "
                f"{megabytes(free)} free, {megabytes(needed)} needed",
                "the store was left unchanged; free space there and run again",
            )

    def refuse_layout(self) -> None:
        """STREAMCLEAN_READER=layout met a store not in the layout: invalid JSON is worded by
        the general reader, with its byte offset; valid JSON is refused as not the layout."""
        judge = Judge(self.policy)
        reader = reader_class("general")
        index, jobs_span = pass1.index_jobs(reader(self.source), judge)
        self.source.seek(0)
        out = RangeWriter(None, lambda: None, self._copy_source, _write_new_store)
        context = Context(index, jobs_span, judge, self.snapshot.size)
        pass2.filter_store(reader(self.source), out, context)
        raise InvalidStoreError(
            "not in the service's layout, which STREAMCLEAN_READER=layout requires "
            "(valid JSON: unset it, or set auto or general)"
        )

    # -- helpers ---------------------------------------------------------------------------------

    def _progress(self, stage: str) -> Callable[[int], None] | None:
        if self.progress is None:
            return None
        progress, total = self.progress, self.snapshot.size
        return lambda done: progress(stage, done, total)

    def _copy_source(self, fd: int, start: int, nbytes: int) -> None:
        _copy_range(self.source.fileno(), fd, nbytes, start)

    def _read_source(self, start: int, nbytes: int) -> bytes:
        try:
            data = os.pread(self.source.fileno(), nbytes, start)
        except OSError as exc:
            raise StoreFileError(
                f"cannot read the store at byte {start}: {exc.strerror or exc}"
            ) from None
        if len(data) != nbytes:
            raise StoreFileError(
                f"the store ends before byte {start + nbytes}",
                "did something truncate it? run again",
            )
        return data


def _both_processes(on_progress: Callable[[int], None], tail: second_core.TailWorker):
    """Pass 2's progress when the worker reads the tail: ours up to where it begins, plus its."""
    return (
        lambda done: on_progress(min(done, tail.start) + tail.done),
        lambda: on_progress(tail.start + tail.done),
    )


@contextmanager
def _rolled_back_on_error(replace: AtomicReplace | None, archive=None):
    try:
        yield
    except BaseException:
        if replace is not None:
            replace.rollback()
        if archive is not None:
            if replace is not None and replace.holds_ours():
                # the swap could not be undone: the cleaned store stays, so does its archive
                archive.close_body()
            else:
                archive.rollback()
        raise


def _copy_range(src_fd: int, dst_fd: int, nbytes: int, start: int) -> None:
    with write_errors():
        fs.copy_range(src_fd, dst_fd, nbytes, start)


def _write_new_store(fd: int, data: bytes) -> None:
    with write_errors():
        fs.write_all(fd, data)


@contextmanager
def write_errors():
    """An OSError while writing the new store, as the one-line error every writer gives."""
    try:
        yield
    except OSError as exc:
        raise WriteError(
            f"cannot write the new store: {exc.strerror or exc}",
            "the store was left unchanged; free space beside it and run again",
        ) from None


def _open_store(store: Path, shown: str) -> BinaryIO:
    """The store, opened for reading. Anything but a regular file is refused before it is
    opened, and again after (O_NONBLOCK: a FIFO put there meanwhile does not hang the open)."""
    try:
        _regular_store(os.stat(store), shown)
        fd = os.open(store, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise StoreFileError(
            f"store file not found: {shown}",
            "check --store-file or ASYNC_JOBS_STORE_FILE",
        ) from None
    except OSError as exc:
        raise StoreFileError(f"cannot open the store {shown}: {exc.strerror}") from None
    try:
        _regular_store(os.fstat(fd), shown)
    except BaseException:
        os.close(fd)
        raise
    return open(fd, "rb", buffering=0)


def _regular_store(st: os.stat_result, shown: str) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise StoreFileError(
            f"store file is a directory: {shown}", "give the path of store.v1.json"
        )
    if not stat.S_ISREG(st.st_mode):
        raise StoreFileError(f"store file is not a regular file: {shown}")

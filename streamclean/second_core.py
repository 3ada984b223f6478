"""The split over two cores: half of each pass done by a forked worker while this process does
the rest, over any reader that offers split points (today the `layout` reader).

Both passes cost Python time per record, so each is split at a record boundary: pass 1 in
`jobs`, pass 2 between two jobs' events. The parts are judged as one store, and a worker cannot
outlive its run. Where a worker is not possible, one process does all of it, with the same
result. See docs/design.md.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import pickle
import select
import signal
import struct
from collections.abc import Callable
from dataclasses import replace
from typing import BinaryIO

from . import fs, pass1, pass2, signals
from .archive import ArchiveWriter
from .errors import StreamcleanError
from .index import JobIndex
from .judge import Judge
from .readers import LayoutReader
from .splice import RangeWriter

MIN_STORE_BYTES = 8 << 20  # below this, forking and splicing cost more than the core saves
_PR_SET_PDEATHSIG = 1
_WAIT_TICK = 0.25  # seconds between progress reports while waiting for the worker
_FORWARD_TICK = 0.02  # seconds between copies of the worker's output while waiting for it


class WorkerDiedError(StreamcleanError):
    """The worker ended without an answer (killed, out of memory)."""


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def read_at(fd: int):
    """`read_at(offset, size)` over a descriptor, for the readers' split searches."""
    return lambda offset, size: os.pread(fd, size, offset)


class _PositionedReader:
    """A file read from an offset of a descriptor with `pread`, leaving its shared position
    alone: what the layout reader reads (`layout.File`)."""

    def __init__(self, fd: int, offset: int) -> None:
        self._fd = fd
        self._offset = offset

    def read(self, size: int) -> bytes:
        data = os.pread(self._fd, size, self._offset)
        self._offset += len(data)
        return data

    def readinto(self, buffer: memoryview) -> int:
        count = os.preadv(self._fd, [buffer], self._offset)
        self._offset += count
        return count

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR:
            offset += self._offset
        elif whence == os.SEEK_END:
            offset += os.fstat(self._fd).st_size
        self._offset = offset
        return offset

    def tell(self) -> int:
        return self._offset


class Forked:
    """`work()` run in a forked process. `result()` waits for what it returned (or raises what
    it raised); `stop()` must follow, on success and on failure: it ends the worker if it still
    runs and frees what it used, and raises nothing."""

    what = "a worker"  # for the message when it dies
    on_wait: Callable[[], None] | None = None  # called now and then while `result()` waits

    def _fork(self) -> None:
        # The worker's RSS starts as every page this process has: give the C heap's free
        # pages back first (pass 1 leaves megabytes of them), or both would count them.
        _release_free_memory()
        answer, reply = os.pipe()
        parent = os.getpid()
        # Inside a critical section a signal is only noted, so none can raise in the worker
        # before it ignores them, and take it up the parent's stack.
        with signals.critical_section(deliver=True):
            pid = os.fork()
            if pid == 0:
                os.close(answer)
                self._serve(parent, reply)  # never returns
            self._pid: int | None = pid
        os.close(reply)
        self._answer: int | None = answer

    def work(self):
        raise NotImplementedError

    def _serve(self, parent: int, reply: int) -> None:
        status = 70
        try:
            _die_with(parent)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            with os.fdopen(reply, "wb") as answer:
                try:
                    done = self.work()
                except BaseException as exc:  # sent to the parent, which raises it
                    answer.write(_pickled_exception(exc))
                else:
                    self._send(answer, done)
            status = 0
        finally:
            os._exit(status)  # never the parent's cleanup, atexit or buffers: they are its own

    def _send(self, answer: BinaryIO, done) -> None:
        pickle.dump(("done", done), answer, protocol=pickle.HIGHEST_PROTOCOL)

    def _receive(self, answer: BinaryIO, value, *args):
        """The rest of an answer `_send` wrote after its pickled ("done", value)."""
        return value

    def _wait_tick(self) -> float | None:
        """Seconds between calls of `_while_waiting` while `result()` waits; None: just wait."""
        return None if self.on_wait is None else _WAIT_TICK

    def _while_waiting(self) -> None:
        if self.on_wait is not None:
            self.on_wait()

    def result(self, *args):
        tick = self._wait_tick()
        if tick is not None:
            while not select.select([self._answer], [], [], tick)[0]:
                self._while_waiting()
            self._while_waiting()
        try:
            with os.fdopen(self._answer, "rb", closefd=False) as answer:
                kind, value = pickle.load(answer)
                if kind == "done":
                    value = self._receive(answer, value, *args)
        except (EOFError, pickle.UnpicklingError, ValueError):
            kind = value = None  # it ended without an answer, or in the middle of one
        _, status = os.waitpid(self._pid, 0)
        self._pid = None
        if kind is None:
            raise WorkerDiedError(
                f"the process {self.what} ended without an answer ({_describe(status)})",
                "the store was left unchanged; run again",
            )
        if kind == "raised":
            raise value
        return value

    def stop(self) -> None:
        with signals.critical_section():
            if self._pid is not None:
                try:
                    os.kill(self._pid, signal.SIGKILL)
                    os.waitpid(self._pid, 0)
                except OSError:
                    pass
                self._pid = None
            if self._answer is not None:
                os.close(self._answer)
                self._answer = None


class IndexWorker(Forked):
    """Indexes the jobs from the one whose line starts at `start` to the end of the section.
    `result(into, survey)` merges that part of the index into `into`, where its word wins,
    adds the part's survey to `survey`, and gives the offset where the section ends. The part
    crosses the pipe as its arrays' raw bytes, appended to `into` as they arrive: neither
    process holds a second copy of it."""

    what = "indexing the jobs"

    def __init__(self, source_fd: int, start: int, judge: Judge, survey=None) -> None:
        self._source_fd = source_fd
        self.start = start
        self._judge = judge
        self._survey = survey.fresh() if survey is not None else None
        self._fork()

    def work(self) -> tuple[JobIndex, int, object]:
        reader = LayoutReader(_PositionedReader(self._source_fd, self.start), start=self.start)
        part, end = pass1.index_from(reader, self.start, self._judge, self._survey)
        return part, end, self._survey

    def result(self, into: JobIndex, survey=None) -> int:
        end, part_survey = super().result(into)
        if survey is not None:
            survey.add(part_survey)
        return end

    def _send(self, answer: BinaryIO, done: tuple[JobIndex, int, object]) -> None:
        part, end, survey = done
        super()._send(answer, (end, survey))
        part.send(answer)

    def _receive(self, answer: BinaryIO, head, into: JobIndex):
        into.update_from(answer)
        return head


class TailWorker(Forked):
    """Filters the store from `start` to its end: from where the top-level `jobs` value ends
    or, `in_events`, where a job's events array ends (see `layout.tail_split`), with the run's
    `pass2.Context` (the worker counts with a judge, survey and archive part of its own).
    `copy(src_fd, dst_fd, nbytes, start)` copies bytes, errors worded; `write(fd, data)` writes
    them. With `segment_fd` None it only counts (a dry run). `result()` gives a `pass2.Tail`, and
    `copy_output(fd, tail)` appends the tail's new bytes to `fd`.

    Once this process's own part of the new store is written, `forward_to(fd)` lets `result()`
    copy the worker's output behind it while waiting, as far as the worker has written it, and
    have the kernel start writing it to disk: so the copy and most of the final fsync's work
    happen while the worker is still busy, not after it. The worker only ever appends to its
    file, and every byte below the file's size is written, so what is copied is final.
    """

    what = "filtering the store's tail"

    def __init__(
        self,
        source_fd: int,
        start: int,
        in_events: bool,
        context: pass2.Context,
        segment_fd: int | None,
        copy: Callable[[int, int, int, int], None],
        write: Callable[[int, bytes], None],
        archive_fd: int | None = None,
    ) -> None:
        self.start = start
        self.in_events = in_events
        self._source_fd = source_fd
        self._size = context.size
        self._context = context
        self._segment_fd = segment_fd
        self._copy = copy
        self._write = write
        survey = context.survey
        self._survey = survey.fresh() if survey is not None else None
        # With an archive: the worker's part of it goes to a file of its own, with no name
        self.archive_fd = archive_fd
        self._read = mmap.mmap(-1, 8)  # how far the worker has read, for progress
        self._forward_fd: int | None = None
        self._forwarded = 0  # bytes of the worker's output copied to `_forward_fd` so far
        self._fork()

    @property
    def done(self) -> int:
        """Bytes of the tail the worker has read so far."""
        return struct.unpack_from("Q", self._read)[0]

    def result(self) -> pass2.Tail:
        """What the worker's filter of the tail found (see `Forked.result`)."""
        tail: pass2.Tail = super().result()
        return tail

    def work(self) -> pass2.Tail:
        start, source = self.start, self._source_fd

        def copy_source(fd: int, offset: int, nbytes: int) -> None:
            self._copy(source, fd, nbytes, offset)

        def progress(offset: int) -> None:
            struct.pack_into("Q", self._read, 0, offset - start)

        reader = LayoutReader(_PositionedReader(source, start), progress, start)
        out = RangeWriter(reader.window, lambda: self._segment_fd, copy_source, self._write)
        judge = Judge(self._context.judge.policy)  # this part's counts, added to the parent's
        archive = None
        whole = self._context.archive  # the run's archive, which this part is appended to
        if whole is not None and self.archive_fd is not None:
            archive = ArchiveWriter.part(whole.path, source, self.archive_fd)
        part = replace(self._context, judge=judge, survey=self._survey, archive=archive)
        try:
            return pass2.filter_tail(reader, out, part, start, self.in_events)
        finally:
            out.close()
            if archive is not None:
                archive.close_body()

    def forward_to(self, fd: int) -> None:
        """Copy the worker's output to `fd` (the new store, written up to where the tail's
        output goes) while `result()` waits; `copy_output` then adds only the rest."""
        if self._segment_fd is not None:
            self._forward_fd = fd

    def _wait_tick(self) -> float | None:
        return _FORWARD_TICK if self._forward_fd is not None else super()._wait_tick()

    def _while_waiting(self) -> None:
        if self._forward_fd is not None:
            self._forward()
        super()._while_waiting()

    def _forward(self) -> None:
        # `forward_to` sets a file to forward to only where the worker writes one
        segment, to = self._segment_fd, self._forward_fd
        if segment is None or to is None:
            return
        written = os.fstat(segment).st_size
        if written > self._forwarded:
            self._copy(segment, to, written - self._forwarded, self._forwarded)
            self._forwarded = written
            fs.start_writeback(to)

    def copy_output(self, fd: int, tail: pass2.Tail) -> None:
        """Append the new store's tail to `fd`: the worker's output (what `forward_to` has not
        copied yet), or the old bytes unchanged."""
        length = self._size - self.start
        if tail.diverged:
            if self._forwarded and fd != self._forward_fd:
                raise ValueError("the tail's output was forwarded to another file")
            if self._segment_fd is None:  # cannot happen: a run that writes gives the worker a file
                raise ValueError("the tail diverged but the worker wrote no output")
            self._copy(
                self._segment_fd, fd, length - tail.skipped - self._forwarded, self._forwarded
            )
        else:
            if self._forwarded:  # cannot happen: a worker that writes has diverged
                raise ValueError("the tail wrote output but did not diverge")
            self._copy(self._source_fd, fd, length, self.start)

    def stop(self) -> None:
        super().stop()
        with signals.critical_section():
            if self._segment_fd is not None:
                os.close(self._segment_fd)  # it has no name: closing it frees its blocks
                self._segment_fd = None
            if self.archive_fd is not None:
                os.close(self.archive_fd)
                self.archive_fd = None
            self._read.close()


def _pickled_exception(exc: BaseException) -> bytes:
    try:
        return pickle.dumps(("raised", exc))
    except Exception:  # an exception that cannot travel: its words can
        return pickle.dumps(("raised", RuntimeError(f"{type(exc).__name__}: {exc}")))


def _load_libc():
    # the C library the interpreter itself is linked with (no `find_library`: it spawns ldconfig)
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_libc = _load_libc()
_prctl = getattr(_libc, "prctl", None)
_malloc_trim = getattr(_libc, "malloc_trim", None)  # glibc's; other C libraries may lack it


def _release_free_memory() -> None:
    if _malloc_trim is not None:
        _malloc_trim(0)


def _die_with(parent: int) -> None:
    """Ask the kernel to kill this process when its parent dies, so a killed run leaves no
    worker behind holding the store's lock; if the parent is gone already, go too."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(70)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"

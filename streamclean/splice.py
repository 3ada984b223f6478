"""The splice: the new store as the old one minus byte ranges, with the separators kept right.

A deletion is a range of the old store to leave out, and everything kept is copied undecoded:
`Splice` turns "drop this member, keep that one" into ranges, one container at a time, and
`RangeWriter` turns ranges into the new file, on a thread of its own. Nothing is written before
the first range is left out, so a run that deletes nothing writes nothing.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from . import fs, signals

# Output goes to the writer thread in chunks this big, at most two queued: both processes of a
# run hold them (up to four at a time, with the one being filled and the one being written), so
# they are kept small; the page cache takes them at any size. 256 KiB rather than 512 KiB made
# a 500 MB run's peak RSS 2 MiB smaller a process, at no measurable cost in time.
WRITE_CHUNK = 1 << 18
_JOIN_POLL = 0.05  # seconds: how long `_DiskWriter.close` keeps a signal waiting
SMALL_RANGE = 1 << 16  # a kept range no window holds is read into a chunk up to this size
# with `writeback`, the kernel is asked to start writing after this many bytes
WRITEBACK_EVERY = 16 << 20


class Splice:
    """Deletions inside one container (opening at `open_at`), as byte ranges.

    A run of dropped members is left out from the end of the last kept value up to the comma
    before the next kept member, so the kept member keeps its own leading whitespace. At the
    start of the container the run goes from just after the opening bracket through that comma;
    at its end, up to the end of the last dropped value. A container left empty becomes `{}`
    or `[]`, as `json.dumps` writes it. In the service's layout the comma follows its value
    directly, and the result is what `json.dumps(indent=2)` writes for what is kept.
    """

    __slots__ = ("_last_kept_end", "_open_at", "_out", "_run_end")

    def __init__(self, out: RangeWriter, open_at: int) -> None:
        self._out = out
        self._open_at = open_at
        self._last_kept_end: int | None = None
        self._run_end: int | None = None

    def drop(self, member) -> None:
        if self._run_end is None:
            self._out.skip_from(
                self._open_at + 1 if self._last_kept_end is None else self._last_kept_end
            )
        self._run_end = member.value_end

    def keep(self, member) -> None:
        if self._run_end is not None:
            self._resume(member.comma_at)
        self._last_kept_end = member.value_end

    def close(self, close_at: int) -> None:
        if self._run_end is not None:
            self._out.resume_at(close_at if self._last_kept_end is None else self._run_end)
            self._run_end = None

    def block(self, block, dropped: list[int]) -> None:
        """A `Block` of members (see `readers.base.Block`) of which those at the positions
        `dropped` (ascending) go: the ranges `drop` and `keep` would give member by member,
        from the offsets alone, one step a run of dropped members."""
        if not dropped:
            if self._run_end is not None:
                self._resume(block.comma_at)
            self._last_kept_end = block.end
            return
        out, base, ends = self._out, block.base, block.value_ends
        kept_from = 0  # the first member not yet handed on
        for position in dropped:
            if position > kept_from:  # members kept_from .. position - 1 are kept
                if self._run_end is not None:
                    self._resume(block.comma_at if kept_from == 0 else base + ends[kept_from - 1])
                self._last_kept_end = base + ends[position - 1]
            if self._run_end is None:
                out.skip_from(
                    self._open_at + 1 if self._last_kept_end is None else self._last_kept_end
                )
            self._run_end = base + ends[position]
            kept_from = position + 1
        if kept_from < len(ends):
            self._resume(base + ends[kept_from - 1])
            self._last_kept_end = base + ends[-1]

    def _resume(self, comma: int) -> None:
        """The run of dropped members ends: the next kept one follows the comma at `comma`."""
        self._out.resume_at(comma + 1 if self._last_kept_end is None else comma)
        self._run_end = None

    def drop_all(self, close_at: int) -> None:
        """Every member goes: the container becomes empty."""
        self._out.skip_from(self._open_at + 1)
        self._out.resume_at(close_at)

    def kept_until(self, end: int) -> None:
        """The member last kept ends at `end` (known only once its value was read, after `keep`)."""
        self._last_kept_end = end


# A dropped member waiting for the next to show where its range ends:
# (key, position, start, value_start, value_end, its bytes if the window held them)
_Pending = tuple[str | None, int, int, int, int, bytes | None]


class ArchivingSplice(Splice):
    """A `Splice` that also hands every member it drops to an archive (`archive.record`),
    with the exact bytes it takes along: `before` (from the end of the previous value, or
    from just after the opening bracket, to the value), the value, and `after` (what the
    range leaves out behind the value: at the start of a container the separator up to the
    next kept member, in an emptied container the whitespace before its closing bracket).
    The pieces of a run of dropped members tile exactly the byte range left out, so putting
    them back where the range was gives the old bytes. A dropped member is handed over once
    the next member (or the close) shows where its range ends. `section` and `key` name the
    container: for a job's events array, elements are archived with their positions."""

    __slots__ = ("_archive", "_key", "_pending", "_position", "_previous_end", "_section")

    def __init__(
        self, out: RangeWriter, open_at: int, archive, section: str, key: str | None = None
    ) -> None:
        super().__init__(out, open_at)
        self._archive = archive
        self._section = section
        self._key = key  # the array's job key; None for an object's members
        self._previous_end = open_at + 1
        self._position = 0
        self._pending: _Pending | None = None

    def drop(self, member) -> None:
        if self._pending is not None:
            self._hand_over(self._pending, None)
        start, end = self._previous_end, member.value_end
        w = self._out._w  # the reader's window holds the member now (from the value before it on)
        inside = w is not None and w.base <= start and end <= w.end
        head = bytes(w.buf[start - w.base : end - w.base]) if inside else None
        self._pending = (member.key, self._position, start, member.value_start, end, head)
        super().drop(member)
        self._previous_end = member.value_end
        self._position += 1

    def keep(self, member) -> None:
        if self._pending is not None:
            resume = member.comma_at + 1 if self._last_kept_end is None else member.comma_at
            self._hand_over(self._pending, resume)
        super().keep(member)
        self._previous_end = member.value_end
        self._position += 1

    def kept_until(self, end: int) -> None:
        super().kept_until(end)
        self._previous_end = end

    def block(self, block, dropped: list[int]) -> None:
        """As `Splice.block`, member by member: each dropped one is archived."""
        count = len(block)
        kept_from = 0  # the first member not yet handed on
        for position in dropped:
            if position > kept_from:
                self.keep_run(
                    block.member(kept_from), position - kept_from, block.value_end(position - 1)
                )
            self.drop(block.member(position))
            kept_from = position + 1
        if kept_from < count:
            self.keep_run(block.member(kept_from), count - kept_from, block.value_end(count - 1))

    def keep_run(self, first, count: int, end: int) -> None:
        """`count` members kept, from `first` to one whose value ends at `end`."""
        self.keep(first)
        self._last_kept_end = self._previous_end = end
        self._position += count - 1

    def close(self, close_at: int) -> None:
        if self._pending is not None:
            self._hand_over(self._pending, close_at if self._last_kept_end is None else None)
        super().close(close_at)

    def drop_all(self, close_at: int) -> None:
        raise TypeError("an archived container is dropped member by member")

    def _hand_over(self, pending: _Pending, resume: int | None) -> None:
        key, position, start, value_start, value_end, head = pending
        self._pending = None
        if head is not None and resume is not None and resume > value_end:
            w = self._out._w  # the separator behind it is in the window too, as it is decided now
            if w is not None and w.base <= value_end and resume <= w.end:
                head += w.buf[value_end - w.base : resume - w.base]
        self._archive.record(
            self._section,
            key if self._key is None else self._key,
            None if self._key is None else position,
            start,
            value_start,
            value_end,
            resume,
            head,
        )


class RangeWriter:
    """The new store as the old one minus skipped byte ranges.

    With a reader's `window`, kept bytes are copied out of it before it drops them; without
    one (`window` None, starting at `origin`), a kept range is copied from the old store in
    the kernel, or, up to SMALL_RANGE bytes, read (`read_source`) into the next chunk, so that
    a store of many small deletions does not cost a system call a record. Nothing is written before
    the first skip: then `open_target` gives the file and `copy_source(fd, start, nbytes)`
    copies the unchanged start from the old store in the kernel, as it copies any range kept
    unread (`pass_over`). In a dry run `open_target` returns None and only sizes are counted.
    Full chunks are written by a `_DiskWriter` thread while parsing goes on; `close()` must
    follow, also on failure, before the file is closed or removed. With `writeback` (the new
    store, which is fsynced before the swap), that thread also asks the kernel to start writing
    the file to disk as it grows, so the disk works during pass 2 rather than after it.
    """

    def __init__(
        self,
        w,
        open_target,
        copy_source,
        write,
        origin: int = 0,
        read_source=None,
        writeback: bool = False,
    ) -> None:
        self._w = w
        # the file is the new store, to be fsynced: start writing it early
        self._writeback = writeback
        # read_source(offset, nbytes): small kept ranges no window holds
        self._read_source = read_source
        self._open_target = open_target
        self._copy_source = copy_source
        self._write = write
        self._disk: _DiskWriter | None = None
        self.fd: int | None = None
        self.diverged = False
        self._origin = w.base if w is not None else origin  # where the output this decides begins
        self.cursor = self._origin  # input offset up to which the output is decided
        self.skipping = False
        self.skipped = 0
        self.inserted = 0  # bytes put in that the old store did not have (`insert`, restore)
        self._out = bytearray()
        if w is not None:
            w.on_drop = self._emit_upto

    def _diverge(self, offset: int) -> None:
        """The first change, at `offset`: the new file is opened, the unchanged bytes before
        `offset` are copied to it in the kernel, and the writer thread starts."""
        self.diverged = True
        self.fd = self._open_target()
        if self.fd is not None:
            self._copy_source(self.fd, self._origin, offset - self._origin)
            with signals.critical_section(deliver=True):  # the thread must be known to close()
                self._disk = _DiskWriter(self._write, self.fd, self._writeback)

    def _queue_if_full(self) -> None:
        if len(self._out) >= WRITE_CHUNK:
            self._put(self._out)
            self._out = bytearray()

    def _put(self, work: bytes | bytearray | Callable[[], object]) -> None:
        """Queue bytes (or a copy to make) for the writer thread, which runs once diverged."""
        if self._disk is None:
            raise RuntimeError("the new store is written only after its first change")
        self._disk.put(work)

    def skip_from(self, offset: int) -> None:
        if not self.diverged:
            self._diverge(offset)
        else:
            self._emit_upto(offset)
        self.cursor = offset
        self.skipping = True

    def insert(self, offset: int, data: bytes) -> None:
        """Put `data` into the new store at the old store's `offset` (restore): the bytes up
        to there are copied as they are, `data` follows, then the bytes from `offset` on."""
        if not self.diverged:
            self._diverge(offset)
            self.cursor = offset
        else:
            self._emit_upto(offset)
        self.inserted += len(data)
        if self.fd is not None:
            self._out += data
            self._queue_if_full()

    def pass_over(self, start: int, end: int) -> None:
        """Bytes from `start` to `end` are kept as they are and never read: once the output
        has diverged they are copied from the old store in the kernel, in turn with the
        chunks queued before them."""
        if self.fd is not None:
            self._emit_upto(start)
            if self._out:
                self._put(self._out)
                self._out = bytearray()
            copy, fd = self._copy_source, self.fd
            self._put(lambda: copy(fd, start, end - start))
        self.cursor = end

    def resume_at(self, offset: int) -> None:
        self.skipped += offset - self.cursor
        self.cursor = offset
        self.skipping = False

    def _emit_upto(self, offset: int) -> None:
        if self.skipping or self.fd is None or offset <= self.cursor:
            return
        w = self._w
        if w is None or self.cursor < w.base:
            nbytes = offset - self.cursor
            if self._read_source is None or nbytes > SMALL_RANGE:
                # no window holds these bytes: the kernel copies them
                self.pass_over(self.cursor, offset)
                return
            self._out += self._read_source(self.cursor, nbytes)  # small: into the next chunk
        else:
            self._out += w.buf[self.cursor - w.base : offset - w.base]
        self.cursor = offset
        self._queue_if_full()

    def finish(self, size: int) -> None:
        """Write the rest and wait until every byte is handed to the kernel. Once more with
        the same `size` it does nothing."""
        self._emit_upto(size)
        if self._disk is not None:
            if self._out:
                self._disk.put(self._out)
                self._out = bytearray()
            self._disk.close()
            self._disk = None

    def finish_with_tail(self, start: int, tail, copy_tail) -> None:
        """Finish when the bytes from `start` on were filtered elsewhere: `copy_tail(fd, tail)`
        appends their output (the tail's own if it diverged, else the old store's bytes)."""
        if tail.diverged and not self.diverged:
            self.skip_from(start)  # opens the file and copies everything before `start`
            self.resume_at(start)
        self.finish(start)
        if self.fd is not None:
            copy_tail(self.fd, tail)
        self.skipped += tail.skipped

    def close(self) -> None:
        """Stop the writer thread, whatever happened; raises nothing."""
        if self._disk is not None:
            with signals.critical_section():  # a stray thread could write into a reused fd
                self._disk.abandon()


class _DiskWriter:
    """Writes chunks on a thread of its own: `os.write` releases the GIL, so the disk works
    while the next records are parsed. A write error is raised in the caller's thread at its
    next `put` or at `close`; a few chunks in flight bound the memory.

    The queue and the thread are only ever touched with signals held back (`put` and `close`
    here, `abandon` and the start by the callers): a handler that raises inside `queue` or
    `threading` code can leave the queue's lock taken (the writer thread and then `abandon`
    would wait for it forever), or have a thread still writing reported as ended."""

    def __init__(self, write, fd: int, writeback: bool = False) -> None:
        self._write = write
        self._fd = fd
        self._writeback = writeback
        self._chunks: queue.Queue = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="streamclean-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        unsynced = 0  # bytes written since the kernel was last asked to start writing back
        while (chunk := self._chunks.get()) is not None:
            if self._error is None:
                try:
                    if callable(chunk):
                        chunk()
                        unsynced = WRITEBACK_EVERY  # a kernel copy: usually large
                    else:
                        self._write(self._fd, chunk)
                        unsynced += len(chunk)
                    if self._writeback and unsynced >= WRITEBACK_EVERY:
                        fs.start_writeback(self._fd)
                        unsynced = 0
                except BaseException as exc:  # handed to the caller's thread
                    self._error = exc

    def put(self, chunk) -> None:
        """Queue bytes to write, or a function that writes (a kernel copy). A signal waits
        until the chunk is queued (at most until the thread has taken the one it is writing)."""
        if self._error is not None:
            raise self._error
        with signals.critical_section(deliver=True):
            self._chunks.put(chunk)

    def close(self) -> None:
        """Write what is queued and wait for the thread. A signal waits at most a poll's
        time, then ends the wait (`abandon` stops the thread)."""
        with signals.critical_section(deliver=True):
            self._chunks.put(None)
        while True:
            with signals.critical_section(deliver=True):
                self._thread.join(_JOIN_POLL)
                ended = not self._thread.is_alive()
            if ended:
                break
        if self._error is not None:
            raise self._error

    def abandon(self) -> None:
        """Skip what is queued and wait for the thread (call inside a critical section)."""
        if self._thread.is_alive():
            self._error = self._error or RuntimeError("abandoned")  # skip what is still queued
            self._chunks.put(None)
            self._thread.join()

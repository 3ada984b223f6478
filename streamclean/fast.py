"""The fast path: stores in the service's own layout, handled as bytes.

`json.dumps(indent=2)` puts every member of an object and every element of an array on a line
of its own, indented by two spaces a level, and a string never holds a raw newline. So in a
store the service wrote, a record at depth d ends at the first line that is the closing
bracket indented by 2·d spaces, and `bytes.find` locates it at memory speed. Each record found
that way is then parsed (orjson, or the stdlib where orjson refuses a value the service can
write), and only a record that parses whole is accepted: if the layout guess was wrong, the
parse fails. Whatever does not match the layout raises `LayoutMismatch`, and the caller starts
over on the general path, which reads any valid JSON and words the errors.

Pass 1 jumps to the `jobs` section and stops after it. Pass 2 turns each deletion into a
byte range to skip; kept bytes are copied from the read window without being decoded, and the
`jobs` section, which pass 1 read, is copied in the kernel. Either pass can leave the part of
the store from a given record on to a worker process (worker.py): `index_jobs_from` and
`filter_tail` are what the worker runs.
"""

from __future__ import annotations

import json
import queue
import re
import threading
from dataclasses import dataclass
from typing import BinaryIO, Callable

import orjson

from . import signals
from .filter import judge_all, judge_eligible
from .index import JobIndex
from .policy import KindRule, RetentionPolicy, is_terminal
from .report import KindTally

BLOCK_SIZE = 1 << 20
# Output goes to the writer thread in chunks this big, at most two queued: both processes of a
# run hold that much, so it is kept small; the page cache takes it at any size.
WRITE_CHUNK = 1 << 19
_MAX_LINE_START = 1 << 16  # a key line longer than this is not the service's; take the general path
_KEY = {
    # a JSON string without raw control characters, written as an unrolled loop: 4x faster
    indent: re.compile(rb" " * indent + rb'("[^"\\\x00-\x1f]*(?:\\.[^"\\\x00-\x1f]*)*"): ')
    for indent in (2, 4)
}


class LayoutMismatch(Exception):
    """This store (or this part of it) is not in the service's layout."""


class Window:
    """A byte window over the stream. Offsets are absolute; bytes before `keep` may be dropped.

    `on_drop(upto)` is called before bytes up to `upto` leave the window, so a writer can copy
    what it keeps of them first.
    """

    def __init__(self, stream: BinaryIO, on_progress: Callable[[int], None] | None = None, start: int = 0) -> None:
        self._stream = stream  # positioned at `start`
        self._on_progress = on_progress
        self.buf = bytearray()
        self.base = start
        self.end = start  # base + len(buf)
        self.eof = False
        self.keep = start
        self.on_drop: Callable[[int], None] | None = None

    def _more(self) -> bool:
        if self.eof:
            return False
        data = self._stream.read(BLOCK_SIZE)
        if not data:
            self.eof = True
            return False
        if self.keep > self.base:
            if self.on_drop is not None:
                self.on_drop(self.keep)
            del self.buf[: self.keep - self.base]
            self.base = self.keep
        self.buf += data
        self.end = self.base + len(self.buf)
        if self._on_progress is not None:
            self._on_progress(self.end)
        return True

    def need(self, end: int) -> bool:
        """Make bytes up to offset `end` available; False if the stream ends first."""
        while self.end < end:
            if not self._more():
                return False
        return True

    def find(self, pattern: bytes, start: int, release: bool = False, limit: int | None = None) -> int:
        """Absolute offset of `pattern` at or after `start` (and before `limit`, if given), or
        -1 if the stream or the limit comes first.

        With `release`, the bytes searched are not needed afterwards and may leave the window
        as the search goes (they are still handed to `on_drop`).
        """
        while True:
            stop = len(self.buf) if limit is None else min(len(self.buf), limit - self.base)
            found = self.buf.find(pattern, start - self.base, stop)
            if found >= 0:
                return self.base + found
            if limit is not None and self.end >= limit:
                return -1
            start = max(start, self.end - len(pattern) + 1)
            if release:
                self.keep = max(self.keep, start)
            if not self._more():
                return -1

    def jump(self, offset: int) -> None:
        """Go on reading at `offset`, skipping whatever lies between; the consumer has taken
        care of those bytes (see `RangeWriter.pass_over`)."""
        if offset <= self.end:
            self.keep = max(self.keep, offset)
            return
        del self.buf[:]
        self.base = self.end = self.keep = offset
        self._stream.seek(offset)

    def at(self, offset: int, prefix: bytes) -> bool:
        if self.end < offset + len(prefix):
            self.need(offset + len(prefix))
        i = offset - self.base
        return self.buf[i : i + len(prefix)] == prefix

    def byte(self, offset: int) -> int:
        if self.end <= offset and not self.need(offset + 1):
            raise LayoutMismatch(f"the file ends at byte {offset}")
        return self.buf[offset - self.base]

    def slice(self, start: int, end: int) -> bytearray:
        if self.end < end:
            self.need(end)
        return self.buf[start - self.base : end - self.base]


def load(data: bytes | bytearray) -> object:
    """Parse one record as the service would; LayoutMismatch if it does not parse whole."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass  # NaN, Infinity, a lone surrogate: values orjson refuses and the service writes
    try:
        # Decoded strictly first: json.loads(bytes) would let encoded surrogates through.
        return json.loads(bytes(data).decode("utf-8"))
    except (ValueError, RecursionError):
        raise LayoutMismatch("a record does not parse") from None


def load_exact(data: bytes | bytearray, record: object, field: str) -> object:
    """Re-read a record with the stdlib when orjson may have changed the deciding field.

    orjson reads an integer beyond 64 bits as a float; the service reads it as an int, and
    `str()` of the two differ.
    """
    if isinstance(record, dict) and isinstance(record.get(field), float):
        return json.loads(data)
    return record


# -- walking the layout ----------------------------------------------------------------------


class Member:
    __slots__ = ("key", "start", "value_start", "value_end")

    def __init__(self, key: str | None, start: int, value_start: int, value_end: int) -> None:
        self.key = key
        self.start = start  # the first byte of the member's line after its indentation
        self.value_start = value_start
        self.value_end = value_end


class walk:
    """The members of the container opening at `open_at`, whose members sit at `indent`.

    Iterate it for a `Member` per member. With `span_values` each value's end is found before
    the member is handed out; otherwise the consumer reads the value and sets
    `member.value_end`. Afterwards `close` is the offset of the closing bracket.
    """

    def __init__(
        self,
        w: Window,
        open_at: int,
        indent: int,
        keyed: bool,
        span_values: bool = True,
        resume_after: int | None = None,
    ) -> None:
        self.close: int | None = None
        self._steps = self._walk(w, open_at, indent, keyed, span_values, resume_after)

    def __iter__(self):
        return self._steps

    def _walk(self, w: Window, open_at: int, indent: int, keyed: bool, span_values: bool, resume_after):
        # The innermost loop of both passes, run once a record: the usual case is handled on
        # the buffer directly, and anything unusual goes through the Window's careful methods.
        # With `resume_after`, the walk starts behind a member value ending there, which
        # somebody else has read (`open_at` is then unused).
        closing = b"}" if keyed else b"]"
        close_line = b"\n" + b" " * (indent - 2) + closing
        value_closers = {0x7B: b"\n" + b" " * indent + b"}", 0x5B: b"\n" + b" " * indent + b"]"}
        key_line = _KEY.get(indent)
        element_line = b" " * indent
        if resume_after is None:
            after = w.byte(open_at + 1)
            if after == closing[0]:
                self.close = open_at + 1
                return
            if after != 0x0A:  # "\n": a non-empty container spans lines in the service's layout
                raise LayoutMismatch("not the service's layout")
            line = open_at + 2
        else:
            line = self._next_line(w, resume_after, close_line)
            if line is None:
                return
        while True:
            # Keep from the previous value's end: a deletion may start at its comma, and a
            # writer may copy out everything before it, which is decided.
            w.keep = line - 2
            if w.end < line + _MAX_LINE_START:
                w.need(line + _MAX_LINE_START)
            buf, base = w.buf, w.base
            if keyed:
                match = key_line.match(buf, line - base)
                if match is None:
                    raise LayoutMismatch("not a member line")
                key = _key(match.group(1))
                value_start = base + match.end()
            else:
                i = line - base
                if buf[i : i + indent] != element_line or buf[i + indent : i + indent + 1] in (b" ", b""):
                    raise LayoutMismatch("not an element line")
                key, value_start = None, line + indent
            member = Member(key, line + indent, value_start, -1)
            if span_values:
                i = value_start - base
                closer = value_closers.get(buf[i]) if buf[i + 1 : i + 2] == b"\n" else None
                found = buf.find(closer, i) if closer is not None else -1
                if found >= 0:
                    member.value_end = base + found + len(closer)
                else:
                    member.value_end = value_end(w, value_start, indent)
            yield member
            end = member.value_end
            if w.end < end + len(close_line):
                w.need(end + len(close_line))
            i = end - w.base
            following = w.buf[i : i + len(close_line)]
            if following[:2] == b",\n":
                line = end + 2
            else:
                line = self._next_line(w, end, close_line)
                if line is None:
                    return

    def _next_line(self, w: Window, end: int, close_line: bytes) -> int | None:
        """After a value ending at `end`: the next member's line, or None at the closing line."""
        following = w.slice(end, end + len(close_line))
        if following[:2] == b",\n":
            return end + 2
        if following == close_line:
            self.close = end + len(close_line) - 1
            return None
        raise LayoutMismatch("not the service's layout after a value")


def value_end(w: Window, start: int, indent: int) -> int:
    """Where the value starting at `start`, on a line indented by `indent`, ends."""
    first = w.byte(start)
    if first in (0x7B, 0x5B):  # { or [
        second = w.byte(start + 1)
        if second == 0x0A:
            closer = b"\n" + b" " * indent + (b"}" if first == 0x7B else b"]")
            found = w.find(closer, start)
            if found < 0:
                raise LayoutMismatch("a container does not close")
            return found + len(closer)
        if second == first + 2:  # {} or []
            return start + 2
        raise LayoutMismatch("not the service's layout inside a value")
    newline = w.find(b"\n", start)
    if newline < 0:
        raise LayoutMismatch("a value runs to the end of the file")
    return newline - 1 if w.byte(newline - 1) == 0x2C else newline  # drop the separating comma


def _key(token: bytes | bytearray) -> str:
    try:
        return bytes(token[1:-1]).decode("utf-8") if b"\\" not in token else json.loads(token)
    except ValueError:
        raise LayoutMismatch("a key does not parse") from None


def _top_level(w: Window, seen: set[str], resume_after: int | None = None):
    """The top-level members; the store must open with `{` and a newline, as the service
    writes it, and end with the closing brace. The consumer sets each `value_end`. Keys go
    into `seen`; with `resume_after`, the walk starts behind the member value ending there."""
    if resume_after is None and not w.at(0, b"{\n  \"") and not w.at(0, b"{}"):
        raise LayoutMismatch("not the service's layout")
    members = walk(w, 0, 2, keyed=True, span_values=False, resume_after=resume_after)
    for member in members:
        if member.key in seen:
            raise LayoutMismatch("a top-level key appears twice")
        seen.add(member.key)
        yield member
    if w.need(members.close + 2):
        raise LayoutMismatch("data after the top-level object")  # trailing bytes: let the general path judge


# -- pass 1 ----------------------------------------------------------------------------------


def build_index(stream: BinaryIO, on_progress=None, helper=None):
    """The index from the `jobs` section alone, that section's (start, end) offsets, and, if
    the events section comes before it, the events value's (start, end) offsets, else None.

    Finds the lines `  "jobs": ` and `  "events": {`, which in the service's layout only the
    top-level members start, and the events section's closing line `  },`, reading nothing
    else; pass 2 confirms that it found the sections at the same offsets.

    With `helper`, a function that starts indexing the jobs from a given job line to the end
    of the section elsewhere (a `worker.IndexWorker`), the section is indexed in two halves.
    """
    if _read_at(stream, 0, 5) != b'{\n  "':
        raise LayoutMismatch("not the service's layout")
    # Long patterns: bytes.find runs about 2.5 times as fast on them as on `\n  "`.
    line = scan(stream, 0, b'\n  "jobs": ')
    if line < 0:
        raise LayoutMismatch("no jobs section where the service puts it")
    if on_progress is not None:
        on_progress(line)
    events_span = None
    events = scan(stream, 0, b'\n  "events": {\n', limit=line)
    if events >= 0:
        close = scan(stream, events, _SECTION_CLOSE, limit=line + 4)
        if close >= 0:
            events_span = (events + len(b'\n  "events": '), close + 4)  # the value, without the comma
    start = line + len(b'\n  "jobs": ')
    index = JobIndex()
    opening = _read_at(stream, start, 2)
    if opening[:1] != b"{":
        raise LayoutMismatch("jobs is not an object")
    middle = _middle_job(stream, start) if helper is not None and opening == b"{\n" else None
    if middle is None:
        stream.seek(start)
        return index, (start, _index_jobs(Window(stream, on_progress, start), start, index)), events_span
    boundary, section_end = middle
    later = helper(boundary)
    try:
        stream.seek(start)
        _index_jobs(Window(stream, on_progress, start), start, index, stop_at=boundary)
        end = later.result(index)  # the later jobs' word wins, as if indexed here
    finally:
        later.stop()
    if end != section_end:
        raise LayoutMismatch("the jobs section does not end where it seemed to")
    return index, (start, end), events_span


SCAN_BLOCK = 4 << 20
_SECTION_CLOSE = b'\n  },\n  "'  # a top-level object value ends, and another member follows


def scan(stream: BinaryIO, start: int, pattern: bytes, limit: int | None = None) -> int:
    """Offset of the first `pattern` at or after `start` (and ending before `limit`), or -1:
    a search at the speed of reading, keeping nothing."""
    if limit is not None:
        stream = _Limited(stream, limit)
    stream.seek(start)
    block = bytearray(max(SCAN_BLOCK, 2 * len(pattern)))
    view = memoryview(block)
    carry = len(pattern) - 1
    base, filled = start, 0
    try:
        while True:
            count = stream.readinto(view[filled:])
            if not count:
                return -1
            filled += count
            found = block.find(pattern, 0, filled)
            if found >= 0:
                return base + found
            if filled > carry:  # keep the last bytes, a pattern may begin there
                block[:carry] = block[filled - carry : filled]
                base += filled - carry
                filled = carry
    finally:
        view.release()


class _Limited:
    """A stream that ends at `limit`."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self._position = 0

    def seek(self, offset: int) -> None:
        self._position = offset
        self._stream.seek(offset)

    def readinto(self, buffer) -> int:
        view = memoryview(buffer)[: max(0, self._limit - self._position)]
        with view:
            count = self._stream.readinto(view) if len(view) else 0
        self._position += count
        return count


def _read_at(stream: BinaryIO, offset: int, size: int) -> bytes:
    stream.seek(offset)
    return stream.read(size)


def _middle_job(stream: BinaryIO, start: int) -> tuple[int, int] | None:
    """Where a job near the middle of the jobs section opening at `start` begins (the comma
    that ends the job before it), and where the section ends; None if no such place is found.
    In the service's layout the section closes at the first line `  }`."""
    close = scan(stream, start, _SECTION_CLOSE)
    if close < 0:
        close = scan(stream, start, b"\n  }\n}")  # jobs is the last section
        if close < 0:
            return None
    middle = (start + close) // 2
    found = _read_at(stream, middle, 1 << 20).find(b',\n    "')
    if found < 0 or middle + found >= close:
        return None
    return middle + found, close + 4


def index_jobs_from(stream: BinaryIO, boundary: int) -> tuple[JobIndex, int]:
    """Index the jobs behind the job ending at `boundary` to the end of the section; returns
    that part of the index and where the section ends. `stream` is positioned at `boundary`.
    That `boundary` is such a place is for the caller to confirm, by ending its own walk there."""
    index = JobIndex()
    end = _index_jobs(Window(stream, start=boundary), None, index, resume_after=boundary)
    return index, end


def _index_jobs(w: Window, start: int | None, index: JobIndex, resume_after=None, stop_at=None) -> int:
    jobs = walk(w, start, 4, keyed=True, resume_after=resume_after)
    for job in jobs:
        index.add(job.key, is_terminal(load(w.slice(job.value_start, job.value_end))))
        if stop_at is not None and job.value_end >= stop_at:
            if job.value_end != stop_at:
                raise LayoutMismatch("the jobs section was split inside a job")
            return stop_at
    if stop_at is not None:
        raise LayoutMismatch("the jobs section was split outside it")
    return jobs.close + 1


# -- pass 2 ----------------------------------------------------------------------------------


class RangeWriter:
    """The new store as the old one minus skipped byte ranges.

    Kept bytes are copied out of the window before it drops them. Nothing is written before
    the first skip: then `open_target` gives the file and `copy_source(fd, start, nbytes)`
    copies the unchanged start from the old store in the kernel, as it copies any range kept
    unread (`pass_over`). In a dry run `open_target` returns None and only sizes are counted.
    Full chunks are written by a `_DiskWriter` thread while parsing goes on; `close()` must
    follow, also on failure, before the file is closed or removed.
    """

    def __init__(self, w: Window, open_target, copy_source, write) -> None:
        self._w = w
        self._open_target = open_target
        self._copy_source = copy_source
        self._write = write
        self._disk: _DiskWriter | None = None
        self.fd: int | None = None
        self.diverged = False
        self._origin = w.base  # where the window, and the output it decides, begin
        self.cursor = w.base  # input offset up to which the output is decided
        self.skipping = False
        self.skipped = 0
        self._out = bytearray()
        w.on_drop = self._emit_upto

    def skip_from(self, offset: int) -> None:
        if not self.diverged:
            self.diverged = True
            self.fd = self._open_target()
            if self.fd is not None:
                self._copy_source(self.fd, self._origin, offset - self._origin)
                with signals.critical_section(deliver=True):  # the thread must be known to close()
                    self._disk = _DiskWriter(self._write, self.fd)
        else:
            self._emit_upto(offset)
        self.cursor = offset
        self.skipping = True

    def pass_over(self, start: int, end: int) -> None:
        """Bytes from `start` to `end` are kept as they are and never read: once the output
        has diverged they are copied from the old store in the kernel, in turn with the
        chunks queued before them."""
        if self.fd is not None:
            self._emit_upto(start)
            if self._out:
                self._disk.put(self._out)
                self._out = bytearray()
            copy, fd = self._copy_source, self.fd
            self._disk.put(lambda: copy(fd, start, end - start))
        self.cursor = end

    def resume_at(self, offset: int) -> None:
        self.skipped += offset - self.cursor
        self.cursor = offset
        self.skipping = False

    def _emit_upto(self, offset: int) -> None:
        if self.skipping or self.fd is None or offset <= self.cursor:
            return
        w = self._w
        self._out += w.buf[self.cursor - w.base : offset - w.base]
        self.cursor = offset
        if len(self._out) >= WRITE_CHUNK:
            self._disk.put(self._out)
            self._out = bytearray()

    def finish(self, size: int) -> None:
        """Write the rest and wait until every byte is handed to the kernel."""
        self._emit_upto(size)
        if self._disk is not None:
            if self._out:
                self._disk.put(self._out)
                self._out = bytearray()
            self._disk.close()

    def finish_with_tail(self, start: int, tail: "Tail", copy_tail) -> None:
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
    next `put` or at `close`; a few chunks in flight bound the memory."""

    def __init__(self, write, fd: int) -> None:
        self._write = write
        self._fd = fd
        self._chunks: queue.Queue = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="streamclean-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            if self._error is None:
                try:
                    if callable(chunk):
                        chunk()
                    else:
                        self._write(self._fd, chunk)
                except BaseException as exc:  # handed to the caller's thread
                    self._error = exc

    def put(self, chunk) -> None:
        """Queue bytes to write, or a function that writes (a kernel copy)."""
        if self._error is not None:
            raise self._error
        self._chunks.put(chunk)

    def close(self) -> None:
        self._chunks.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abandon(self) -> None:
        if self._thread.is_alive():
            self._error = self._error or RuntimeError("abandoned")  # skip what is still queued
            self._chunks.put(None)
            self._thread.join()


class _Splice:
    """Deletions inside one container, as byte ranges that keep the separators right.

    A run of deleted members is skipped from the end of the last kept value (taking the comma
    before the run) or, at the start of the container, from just after the opening bracket
    (then the comma after the run goes too). A container left empty becomes `{}` or `[]`.
    """

    def __init__(self, out: RangeWriter, open_at: int) -> None:
        self._out = out
        self._open_at = open_at
        self._last_kept_end: int | None = None
        self._run_end: int | None = None

    def drop(self, member: Member) -> None:
        if self._run_end is None:
            self._out.skip_from(self._open_at + 1 if self._last_kept_end is None else self._last_kept_end)
        self._run_end = member.value_end

    def keep(self, member: Member) -> None:
        if self._run_end is not None:
            self._out.resume_at(self._run_end + 1 if self._last_kept_end is None else self._run_end)
            self._run_end = None
        self._last_kept_end = member.value_end

    def close(self, close_at: int) -> None:
        if self._run_end is not None:
            self._out.resume_at(close_at if self._last_kept_end is None else self._run_end)


def filter_store(
    stream: BinaryIO,
    index: JobIndex,
    jobs_span: tuple[int, int] | None,
    policy: RetentionPolicy,
    open_target,
    copy_source,
    write,
    size: int,
    on_progress=None,
    tail=None,
) -> tuple[KindTally, KindTally, RangeWriter]:
    """Pass 2 on the service's layout: the same tallies and bytes as `filter.filter_store`.

    With `tail` (a `worker.TailWorker`, already started), everything after the `jobs` section
    is filtered by the tail's process while this one filters what comes before; the tail's
    output is spliced in behind ours.
    """
    w = Window(stream, on_progress)
    out = RangeWriter(w, open_target, copy_source, write)
    try:
        return _filter_sections(w, out, index, jobs_span, policy, size, tail)
    finally:
        out.close()  # before anyone closes or removes the file it writes to


def _filter_sections(w, out, index, jobs_span, policy, size, tail):
    results, events = KindTally(), KindTally()
    seen: set[str] = set()
    jobs_confirmed = jobs_span is None
    for section in _top_level(w, seen):
        if tail is not None and tail.in_events and section.key == "events":
            # The worker took over behind the job whose events end at `tail.start`.
            _filter_events(w, section.value_start, index, policy.events, events, out, stop_at=tail.start)
            break
        section.value_end = _filter_section(w, section, index, jobs_span, policy, results, events, out)
        if section.key == "jobs" and jobs_span is not None:
            jobs_confirmed = True
            if tail is not None:
                if tail.in_events or section.value_end != tail.start:
                    raise LayoutMismatch("the split point is not where the jobs section ends")
                break
    else:
        if tail is not None:
            raise LayoutMismatch("the split point was not reached")
    if tail is None:
        out.finish(size)
    else:
        done = tail.result()
        jobs_confirmed = jobs_confirmed or done.jobs_confirmed
        if done.keys & seen:
            raise LayoutMismatch("a top-level key appears twice")
        results.add(done.results)
        events.add(done.events)
        out.finish_with_tail(tail.start, done, tail.copy_output)
    if not jobs_confirmed:
        raise LayoutMismatch("the jobs section pass 1 read is not the top-level one")
    return results, events, out


def filter_tail(
    stream: BinaryIO,
    start: int,
    in_events: bool,
    index: JobIndex,
    jobs_span: tuple[int, int] | None,
    policy: RetentionPolicy,
    open_target,
    copy_source,
    write,
    size: int,
    on_progress=None,
) -> "Tail":
    """Pass 2 over the store's tail, every byte from `start`, as `filter_store` would filter
    it. `start` is where the top-level `jobs` value ends or, `in_events`, where a job's events
    array ends inside the events section. `stream` is positioned at `start`.

    Whether `start` really is such a place is for the caller to confirm, by reaching it on its
    own walk: this one only checks that what follows is the rest of such a store.
    """
    w = Window(stream, on_progress, start)
    out = RangeWriter(w, open_target, copy_source, write)
    try:
        results, events = KindTally(), KindTally()
        seen: set[str] = set()
        resume_after = start
        if in_events:
            resume_after = _filter_events(w, None, index, policy.events, events, out, resume_after=start)
        jobs_confirmed = False
        for section in _top_level(w, seen, resume_after=resume_after):
            section.value_end = _filter_section(w, section, index, jobs_span, policy, results, events, out)
            jobs_confirmed = jobs_confirmed or (section.key == "jobs" and jobs_span is not None)
        out.finish(size)
        return Tail(results, events, seen, out.diverged, out.skipped, jobs_confirmed)
    finally:
        out.close()


@dataclass
class Tail:
    """What filtering the store's tail found: tallies, top-level keys, whether it confirmed
    the jobs section, and whether (and by how many bytes) its output differs from the old
    store's tail."""

    results: KindTally
    events: KindTally
    keys: set[str]
    diverged: bool
    skipped: int
    jobs_confirmed: bool = False


def _filter_section(w, section, index, jobs_span, policy, results, events, out) -> int:
    """Filter (or check) one top-level section; returns the offset where its value ends."""
    start = section.value_start
    first = w.byte(start)
    if section.key == "results" and first == 0x7B:
        return _filter_results(w, start, index, policy.results, results, out)
    if section.key == "events" and first == 0x7B:
        return _filter_events(w, start, index, policy.events, events, out)
    if section.key == "jobs" and jobs_span is not None:
        return _skip_jobs(w, start, jobs_span, out)
    if first in (0x7B, 0x5B):
        return _check_section(w, start)
    end = value_end(w, start, 2)
    load(w.slice(start, end))
    return end


def _skip_jobs(w: Window, start: int, jobs_span: tuple[int, int], out: RangeWriter) -> int:
    """Pass 1 parsed this section already, from the same open file: once it starts where pass 1
    found it, it is copied in the kernel without being read again, and its end checked."""
    if start != jobs_span[0]:
        raise LayoutMismatch("the jobs section is not where pass 1 read it")
    end = jobs_span[1]
    if w.byte(start + 1) == 0x0A and end - start > 4:
        out.pass_over(start, end - 4)
        w.jump(end - 4)
        if not w.at(end - 4, b"\n  }"):
            raise LayoutMismatch("the jobs section does not end where pass 1 found its end")
    elif value_end(w, start, 2) != end:
        raise LayoutMismatch("the jobs section does not end where pass 1 found its end")
    return end


def _check_section(w: Window, start: int) -> int:
    """Validate a section that is copied unchanged, one record at a time."""
    members = walk(w, start, 4, keyed=w.byte(start) == 0x7B)
    for member in members:
        load(w.slice(member.value_start, member.value_end))
    return members.close + 1


def _filter_results(w, start, index, rule: KindRule, tally: KindTally, out: RangeWriter) -> int:
    splice = _Splice(out, start)
    members = walk(w, start, 4, keyed=True)
    for member in members:
        text = w.slice(member.value_start, member.value_end)
        record = load_exact(text, load(text), "job_id")
        if isinstance(record, dict):
            tally.total += 1
            if str(record.get("job_id") or "") in index and judge_eligible(record, "created_at", rule, tally):
                splice.drop(member)
                continue
        splice.keep(member)
    splice.close(members.close)
    return members.close + 1


def _filter_events(w, start, index, rule: KindRule, tally: KindTally, out: RangeWriter,
                   resume_after: int | None = None, stop_at: int | None = None) -> int:
    """Filter the events section opening at `start` (or, with `resume_after`, the rest of it
    behind a job's array ending there); returns where the section ends, or `stop_at` once a
    job's array ends exactly there (a LayoutMismatch if one runs past it)."""
    members = walk(w, start, 4, keyed=True, span_values=False, resume_after=resume_after)
    for member in members:
        value_start = member.value_start
        terminal = member.key in index
        # The usual case, an array that ends within the window, found inline: this runs once a job.
        i = value_start - w.base
        found = w.buf.find(b"\n    ]", i, i + WHOLE_ARRAY_LIMIT) if w.buf[i : i + 2] == b"[\n" else -1
        if found >= 0:
            end = w.base + found + 6
        else:
            end = _array_end_within(w, value_start, WHOLE_ARRAY_LIMIT)
        if end is None:  # a huge array: element by element, so memory stays flat
            end = _filter_elements(w, value_start, out, rule if terminal else None, tally)
        else:
            if end < 0:
                end = value_end(w, value_start, 4)
            if terminal and w.byte(value_start) == 0x5B:
                _filter_job_events(w, value_start, end, rule, tally, out)
            else:
                value = load(w.slice(value_start, end))
                if isinstance(value, list):
                    tally.total += len(value)
        member.value_end = end
        if stop_at is not None and end >= stop_at:
            if end != stop_at:
                raise LayoutMismatch("the split point is not between two jobs' events")
            return stop_at
    if stop_at is not None:
        raise LayoutMismatch("the split point is not in the events section")
    return members.close + 1


WHOLE_ARRAY_LIMIT = 1 << 20  # a job's events array larger than this is not parsed at once


def _array_end_within(w: Window, start: int, limit: int) -> int | None:
    """The end of the multi-line array at `start` if it closes within `limit` bytes, None if
    it does not; -1 if the value is not a multi-line array."""
    if w.byte(start) != 0x5B or w.byte(start + 1) != 0x0A:
        return -1
    found = w.find(b"\n    ]", start, limit=start + limit)
    return None if found < 0 else found + 6


def _filter_job_events(w, start, end, rule: KindRule, tally: KindTally, out: RangeWriter) -> None:
    """A terminal job's events. A job's events lie close in time, so usually all of them or
    none expire and the array is handled whole; a mixed one is split into its elements."""
    events = load(w.slice(start, end))
    expired = judge_all(events, "occurred_at", rule, tally)
    tally.total += len(events)
    if not any(expired):
        return
    if all(expired):
        out.skip_from(start + 1)
        out.resume_at(end - 1)  # leaves "[]", as json.dumps writes an empty list
        return
    # Judged again one by one (the same verdicts), counted aside: the tally has them already.
    _filter_elements(w, start, out, rule, KindTally(), expect=len(events))


def _filter_elements(w, start, out: RangeWriter, rule: KindRule | None, tally: KindTally, expect=None) -> int:
    """Walk an events array element by element; with a rule, drop the expired ones.

    Each piece the layout finds must parse on its own, which proves it is an element; with
    `expect`, their count must match what the whole array held."""
    splice = _Splice(out, start)
    elements = walk(w, start, 6, keyed=False)
    count = 0
    for element in elements:
        event = load(w.slice(element.value_start, element.value_end))
        count += 1
        tally.total += 1
        if rule is not None and judge_eligible(event, "occurred_at", rule, tally):
            splice.drop(element)
        else:
            splice.keep(element)
    if expect is not None and count != expect:
        raise LayoutMismatch("pieces and elements do not match")
    splice.close(elements.close)
    return elements.close + 1

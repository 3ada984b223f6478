"""The `layout` reader: stores in the service's own layout, read as bytes.

`json.dumps(indent=2)` ends a record at depth d at the first line that is its closing bracket
indented by 2·d spaces, which `bytes.find` locates at memory speed; each record found so must
then decode whole, so a wrong guess cannot pass. Anything else raises `LayoutMismatch`. It also
offers the split points the second core needs, and a section's members a block at a time
(`blocks`: one scan finds them, one msgspec call each proves them, and the record-by-record walk
takes over wherever that proof fails). See docs/design.md.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Protocol

import orjson

from . import fields as _fields
from .base import STREAM, Block, LayoutMismatch, Member, Powers, Walk

BLOCK_SIZE = 1 << 19  # bytes read at a time (the window grows beyond it for a record that needs it)
_MAX_LINE_START = 1 << 16  # a key line longer than this is not the service's; take the general path
_KEY = {
    # a JSON string without raw control characters, written as an unrolled loop: 4x faster;
    # one for each indentation a walk has (6: the elements of an array, which have no key)
    indent: re.compile(rb" " * indent + rb'("[^"\\\x00-\x1f]*(?:\\.[^"\\\x00-\x1f]*)*"): ')
    for indent in (2, 4, 6)
}
WHOLE_ARRAY_LIMIT = 1 << 20  # a job's events array larger than this is streamed element by element


class Source(Protocol):
    """What a `Window` reads: a file, or one read from an offset (`split._PositionedReader`)."""

    def read(self, size: int, /) -> bytes: ...

    def seek(self, offset: int, /) -> object: ...


class _Scannable(Protocol):
    """What `scan` reads: a file, or `_Limited` over one."""

    def readinto(self, buffer: memoryview, /) -> int: ...

    def seek(self, offset: int, /) -> object: ...


class File(Protocol):
    """The store as the layout reader reads it: a file opened for binary reading, or a stand-in
    reading from an offset of one (`split._PositionedReader`)."""

    def read(self, size: int, /) -> bytes: ...

    def readinto(self, buffer: memoryview, /) -> int: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def tell(self) -> int: ...


class Window:
    """A byte window over the stream. Offsets are absolute; bytes before `keep` may be dropped.

    `on_drop(upto)` is called before bytes up to `upto` leave the window, so a writer can copy
    what it keeps of them first.
    """

    def __init__(
        self, stream: Source, on_progress: Callable[[int], None] | None = None, start: int = 0
    ) -> None:
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

    def more(self) -> bool:
        """Read one more block (dropping what lies before `keep`); False at the end of the stream."""
        return self._more()

    def need(self, end: int) -> bool:
        """Make bytes up to offset `end` available; False if the stream ends first."""
        while self.end < end:
            if not self._more():
                return False
        return True

    def find(
        self, pattern: bytes, start: int, release: bool = False, limit: int | None = None
    ) -> int:
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
    `str()` of the two differ. Such an integer may also sit inside a list or an object there.
    """
    if isinstance(record, dict) and type(record.get(field)) in (float, list, dict):
        return json.loads(data)
    return record


def decoder(exact: str | None = None, fields: tuple[str, ...] | None = None, array: bool = False):
    """How a walk decodes each value: whole (`load`, with `exact` as in `load_exact`) or, given
    the `fields` the consumer reads, just those where msgspec is at hand (see `fields.py`)."""
    whole = load if exact is None else lambda text: load_exact(text, load(text), exact)
    if fields is not None:
        fast = _fields.decoder(fields, array, whole)
        if fast is not None:
            return fast
    return whole


# -- walking the layout ----------------------------------------------------------------------


class walk:
    """The members of the container opening at `open_at`, whose members sit at `indent`.

    Iterate it for a `Member` per member. With `span_values` each value's end is found before
    the member is handed out (and its bytes given to `decode`, if given, for `member.value`);
    otherwise the consumer reads the value and sets `member.value_end`. Afterwards `close` is
    the offset of the closing bracket.
    """

    def __init__(
        self,
        w: Window,
        open_at: int | None,
        indent: int,
        keyed: bool,
        span_values: bool = True,
        resume_after: int | None = None,
        decode: Callable[[bytearray], object] | None = None,
    ) -> None:
        self.close: int = -1  # set once the iteration is over
        self._steps = self._walk(w, open_at, indent, keyed, span_values, resume_after, decode)

    def __iter__(self):
        return self._steps

    def _walk(
        self,
        w: Window,
        open_at: int | None,
        indent: int,
        keyed: bool,
        span_values: bool,
        resume_after: int | None,
        decode: Callable[[bytearray], object] | None,
    ) -> Iterator[Member]:
        # The innermost loop of both passes, run once a record: the usual case is handled on
        # the buffer directly, and anything unusual goes through the Window's careful methods.
        # With `resume_after`, the walk starts behind a member value ending there, which
        # somebody else has read (`open_at` is then unused).
        closing = b"}" if keyed else b"]"
        close_line = b"\n" + b" " * (indent - 2) + closing
        value_closers = {0x7B: b"\n" + b" " * indent + b"}", 0x5B: b"\n" + b" " * indent + b"]"}
        key_line = _KEY[indent]
        element_line = b" " * indent
        line: int | None
        comma_at: int | None
        if resume_after is not None:
            line = self._next_line(w, resume_after, close_line)
            if line is None:
                return
            comma_at = resume_after
        elif open_at is not None:
            after = w.byte(open_at + 1)
            if after == closing[0]:
                self.close = open_at + 1
                return
            if after != 0x0A:  # "\n": a non-empty container spans lines in the service's layout
                raise LayoutMismatch("not the service's layout")
            line = open_at + 2
            comma_at = None
        else:
            raise TypeError("a walk needs where its container opens or the value to resume behind")
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
                if buf[i : i + indent] != element_line or buf[i + indent : i + indent + 1] in (
                    b" ",
                    b"",
                ):
                    raise LayoutMismatch("not an element line")
                key, value_start = None, line + indent
            member = Member(key, line + indent, value_start, -1, comma_at)
            if span_values:
                i = value_start - base
                closer = value_closers.get(buf[i]) if buf[i + 1 : i + 2] == b"\n" else None
                if closer is not None and (found := buf.find(closer, i)) >= 0:
                    end = member.value_end = base + found + len(closer)
                    text = buf[i : found + len(closer)]
                else:
                    end = member.value_end = value_end(w, value_start, indent)
                    text = w.slice(value_start, end)
                if decode is not None:
                    member.value = decode(text)
            yield member
            end = member.value_end
            if w.end < end + len(close_line):
                w.need(end + len(close_line))
            i = end - w.base
            following = w.buf[i : i + len(close_line)]
            comma_at = end  # in the service's layout the comma follows the value
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
    if resume_after is None and not w.at(0, b'{\n  "') and not w.at(0, b"{}"):
        raise LayoutMismatch("not the service's layout")
    members = walk(w, 0, 2, keyed=True, span_values=False, resume_after=resume_after)
    for member in members:
        if member.key in seen:
            raise LayoutMismatch("a top-level key appears twice")
        seen.add(member.key)
        yield member
    if w.need(members.close + 2):
        # trailing bytes: let the general path judge
        raise LayoutMismatch("data after the top-level object")


# -- scanning ---------------------------------------------------------------------------------


SCAN_BLOCK = 4 << 20
_SECTION_CLOSE = b'\n  },\n  "'  # a top-level object value ends, and another member follows


def scan(stream: _Scannable, start: int, pattern: bytes, limit: int | None = None) -> int:
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

    def __init__(self, stream: _Scannable, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self._position = 0

    def seek(self, offset: int) -> None:
        self._position = offset
        self._stream.seek(offset)

    def readinto(self, buffer: memoryview) -> int:
        view = memoryview(buffer)[: max(0, self._limit - self._position)]
        with view:
            count = self._stream.readinto(view) if len(view) else 0
        self._position += count
        return count


def _read_at(stream: Source, offset: int, size: int) -> bytes:
    stream.seek(offset)
    return stream.read(size)


# a long pattern: bytes.find runs about 2.5 times as fast on it as on `\n  "`
_JOBS_LINE = b'\n  "jobs": '
_PROBE = 1 << 18  # bytes read at each step of the search for the jobs line


def _jobs_line(stream: File) -> int:
    """Where the line of the top-level `jobs` member begins, or -1.

    The service writes its sections in sorted order, `events` (an object of arrays) first, then
    `jobs` and the others (objects of objects). So instead of scanning the events section, a
    few hundred megabytes, for the jobs line, the place where section members stop holding
    arrays is found by bisection, reading a little at each step, and only the last few
    megabytes are scanned. In the service's layout the line `  "jobs": ` can only be the
    top-level member, wherever it is found; if the bisection does not find it (another order,
    another layout), the store is scanned from the start. Pass 2 confirms the section either way.
    """
    stream.seek(0, 2)
    low, high = 0, stream.tell()
    while high - low > SCAN_BLOCK:
        middle = (low + high) // 2
        member = _member_after(stream, middle)
        if member is None or member[0] >= high:
            break  # no member line close behind the middle: scan what is left
        at, first = member
        if first == 0x5B:  # "[": a job's events, before `jobs`
            low = at
        else:
            high = at
    line = scan(stream, low, _JOBS_LINE, limit=high + len(_JOBS_LINE))
    return line if line >= 0 else scan(stream, 0, _JOBS_LINE)


def _member_after(stream: Source, offset: int) -> tuple[int, int] | None:
    """The first member line of a section (indented by four spaces) after `offset`: where
    it begins and the first byte of its value; None if there is none close by."""
    block = _read_at(stream, offset, _PROBE)
    key_line = _KEY[4]
    found = block.find(b'\n    "')
    while found >= 0:
        match = key_line.match(block, found + 1)
        if match is not None and match.end() < len(block):
            return offset + found, block[match.end()]
        found = block.find(b'\n    "', found + 1)
    return None


def _middle_job(stream: File, start: int) -> tuple[int, int] | None:
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


_RAW_ARRAY = _fields.raw_array_decoder()

# -- blocks of section members ---------------------------------------------------------------

# A member line of a section object: `\n`, four spaces, a key without escapes or control
# characters, `": ` and a value that does not begin with whitespace. In the service's layout
# nothing else starts a line with four spaces and a quote (a string holds no raw newline).
_MEMBER_LINE = re.compile(rb'\n    "([^"\\\x00-\x1f]*)": (?=[^ \t\r\n])')
_SECTION_END = b"\n  }"
_WHITESPACE = b" \t\r\n"
_BLOCK_SLACK = 1 << 16  # read another block before scanning when fewer bytes than this are ahead


def _scan_block(
    w: Window,
    line: int,
    comma_at: int | None,
    decode: Callable[[object], object],
    stop_at: int | None,
) -> tuple[Block | None, int]:
    """The members of a section object from the one whose line begins at `line` on, as many
    as the window holds whole (up to `stop_at`), each proven by decoding the bytes between two
    cut points on its own: (the block, where it ends). Where that proof, or anything else the
    layout promises, fails at the first member, (None, where the members refused end), for the
    record-by-record path; where it fails at a later one, the block ends before it."""
    buf, base = w.buf, w.base
    first = line - 1 - base  # the newline before the member's line
    found = list(_MEMBER_LINE.finditer(buf, first))
    if not found or found[0].start() != first:
        return None, line
    lines = [match.start() for match in found]
    ends = [newline - 1 for newline in lines[1:]]  # the commas between members
    close = buf.find(_SECTION_END, lines[-1])
    if close >= 0:
        ends.append(close)
    else:
        del found[-1], lines[-1]  # the last member may go on beyond the window
        if not found:
            return None, line
    if stop_at is not None and base + ends[-1] >= stop_at:
        count = bisect_left(ends, stop_at - base)
        if ends[count] != stop_at - base:
            return None, stop_at  # the split point is not between two members: let the walk say so
        del found[count + 1 :], lines[count + 1 :], ends[count + 1 :]
    value_starts = [match.end() for match in found]
    # Each range must hold one value that ends just before a separating comma (or the closing
    # line); the first that does not may be where the section closes (the members behind it
    # belong to the next section), or something the layout does not promise.
    closing = len(ends) - 1 if ends[-1] == close else -1
    bad = [
        position
        for position, end in enumerate(ends)
        if buf[end - 1] in _WHITESPACE or (buf[end] != 0x2C and position != closing)
    ]
    values = []
    with memoryview(buf) as view:
        try:
            checked = ends[: bad[0] if bad else None]
            values = [
                decode(view[start:end]) for start, end in zip(value_starts, checked, strict=False)
            ]
        except _fields.REFUSED:
            for start, end in zip(value_starts, ends, strict=True):
                try:
                    values.append(decode(view[start:end]))
                except _fields.REFUSED:
                    break
        count = len(values)
        if count < len(ends):  # the member at `count` is refused: does the section close inside it?
            start = value_starts[count]
            close = buf.find(_SECTION_END, start, ends[count])
            if close >= 0 and buf[close - 1] not in _WHITESPACE:
                try:
                    values.append(decode(view[start:close]))
                except _fields.REFUSED:
                    pass
                else:
                    ends[count] = closing = close
                    count += 1
            if not count:
                return None, base + ends[0]
            del found[count:], lines[count:], ends[count:], value_starts[count:]
        try:
            # msgspec checks the UTF-8 of the strings it decodes, not of those it skips
            if not buf.isascii():
                [str(view[start:end], "utf-8") for start, end in zip(lines, ends, strict=True)]
            keys = b"\x00".join([match.group(1) for match in found]).decode("utf-8").split("\x00")
        except UnicodeDecodeError:
            return None, base + ends[-1]
    if len(set(keys)) != len(keys):
        # a repeated key: the record-by-record path takes it as it comes
        return None, base + ends[-1]
    return Block(
        base, keys, lines, value_starts, ends, values, comma_at, ends[-1] == closing
    ), base + ends[-1]


# -- the reader ------------------------------------------------------------------------------


class LayoutReader:
    """The reader contract over the service's layout (see `readers/__init__.py`).

    `stream` is positioned at `start`; with `start` > 0 the reader begins behind a member
    value ending there (a split point), and the walks take `resume_after=start`.
    """

    name = "layout"
    top_open = 0  # the store's opening brace: the service writes nothing before it

    def __init__(
        self, stream: File, on_progress: Callable[[int], None] | None = None, start: int = 0
    ) -> None:
        self.stream = stream
        self.window = Window(stream, on_progress, start)
        self._on_progress = on_progress
        self.events_span: tuple[int, int] | None = None  # found by `find_jobs`, for the split
        # blocks the fast path handed to the record-by-record path (`blocks`)
        self.careful_blocks = 0
        self.powers = Powers(splits=self, blocks=self)

    def moved(self, what: str) -> Exception:
        return LayoutMismatch(what)

    # -- the top level ---------------------------------------------------------------------------

    def sections(self, seen: set[str], resume_after: int | None = None):
        """The top-level members, keys into `seen`; the consumer reads each value through one
        of the methods below and sets the member's `value_end` to what that returns."""
        return _top_level(self.window, seen, resume_after)

    def first_byte(self, member: Member) -> int:
        return self.window.byte(member.value_start)

    def check(self, member: Member) -> tuple[int, int]:
        """Validate a value that is kept unchanged, one record at a time; its end and how many
        entries it has (members, elements, or 1 for a single value)."""
        w, start = self.window, member.value_start
        first = w.byte(start)
        if first in (0x7B, 0x5B):
            members = walk(w, start, 4, keyed=first == 0x7B, decode=load)
            count = 0
            for _ in members:
                count += 1
            return members.close + 1, count
        end = value_end(w, start, 2)
        member.value = load(w.slice(start, end))
        return end, 1

    def known_section(self, member: Member, span: tuple[int, int] | None, out) -> int:
        """Pass 2 over a section pass 1 read already, from the same open file (`jobs`): once it
        starts where pass 1 found it, it is copied in the kernel without being read again, and
        its end checked. Returns where it ends."""
        w, start = self.window, member.value_start
        if span is None or start != span[0]:
            raise LayoutMismatch("the jobs section is not where pass 1 read it")
        end = span[1]
        if w.byte(start + 1) == 0x0A and end - start > 4:
            out.pass_over(start, end - 4)
            w.jump(end - 4)
            if not w.at(end - 4, b"\n  }"):
                raise LayoutMismatch("the jobs section does not end where pass 1 found its end")
        elif value_end(w, start, 2) != end:
            raise LayoutMismatch("the jobs section does not end where pass 1 found its end")
        return end

    # -- records ---------------------------------------------------------------------------------

    def records(
        self,
        open_at: int | None,
        exact: str | None = None,
        resume_after: int | None = None,
        fields: tuple[str, ...] | None = None,
    ):
        """The members of the section object opening at `open_at`, each with its `value`
        decoded. With `exact`, a record whose field of that name came back as a float, a list
        or an object is read again by the stdlib (orjson reads integers beyond 64 bits as
        floats, also inside a list or an object; see `load_exact`). With `fields`,
        the only fields the consumer reads, a record may come as a dict of just those (see
        `fields.py`). `close` is the closing brace's offset once the walk is over."""
        return walk(
            self.window,
            open_at,
            4,
            keyed=True,
            resume_after=resume_after,
            decode=decoder(exact, fields),
        )

    def job_arrays(
        self,
        open_at: int | None,
        resume_after: int | None = None,
        fields: tuple[str, ...] | None = None,
    ):
        """The members of the `events` section: each job's events. A member's `values` is its
        array decoded whole (a list), or None: then `value` is `STREAM` for an array to stream with
        `elements` (larger than WHOLE_ARRAY_LIMIT), or the value itself if it is not an array.
        With `fields`, the array's events may come as dicts of just those (see `records`).
        The consumer sets `value_end` of a streamed array to what `elements` leaves there."""
        return Walk(
            lambda arrays: self._job_arrays(
                arrays, open_at, resume_after, decoder(None, fields, array=True)
            )
        )

    def _job_arrays(self, arrays: Walk, open_at: int | None, resume_after: int | None, decode):
        w = self.window
        members = walk(w, open_at, 4, keyed=True, span_values=False, resume_after=resume_after)
        for member in members:
            start = member.value_start
            # The usual case, an array that ends within the window, found inline: this runs once a job.
            i = start - w.base
            found = (
                _array_close(w.buf, i, i + WHOLE_ARRAY_LIMIT) if w.buf[i : i + 2] == b"[\n" else -1
            )
            end: int | None
            if found >= 0:
                end = w.base + found + 6
            else:
                end = _array_end_within(w, start, WHOLE_ARRAY_LIMIT)
            if end is None:  # a huge array: element by element, so memory stays flat
                member.values, member.value = None, STREAM
            else:
                if end < 0:
                    end = value_end(w, start, 4)
                value = decode(w.slice(start, end))
                member.value_end = end
                if type(value) is list:
                    member.values = value
                else:
                    member.values, member.value = None, value
            yield member
        arrays.close = members.close

    def blocks(
        self,
        open_at: int | None,
        fields: tuple[str, ...],
        array: bool = False,
        exact: str | None = None,
        resume_after: int | None = None,
        stop_at: int | None = None,
        told_apart: tuple[str, ...] = (),
    ) -> Walk:
        """The members of the section object opening at `open_at` (or behind `resume_after`),
        a block at a time: a `Block` where one scan finds them and one msgspec call a member
        proves them (each range between two cut points decoded on its own), and one `Member`
        at a time, decoded as `records` (with `array`, `job_arrays`) decodes it, wherever that
        proof fails, for the record-by-record path; each such hand-over is counted in
        `careful_blocks`. With `stop_at`, the walk ends with the member whose value ends there.
        `close` is the closing brace's offset once the walk is over. The `fields` in
        `told_apart` read as `msgspec.UNSET` where missing, not as None (see `fields.py`);
        with any, the record-by-record path decodes whole records."""
        decode = _fields.strict_decoder(fields, array, told_apart)
        # the record-by-record decoders read a missing field as None: whole records, then
        careful_fields = None if told_apart else fields

        def careful(open_at: int | None, after: int | None) -> Walk | walk:
            if array:
                return self.job_arrays(open_at, after, careful_fields)
            return self.records(open_at, exact, after, careful_fields)

        return Walk(
            lambda blocks: self._blocks(blocks, open_at, resume_after, stop_at, decode, careful)
        )

    def _blocks(
        self,
        blocks: Walk,
        open_at: int | None,
        resume_after: int | None,
        stop_at: int | None,
        decode: Callable[[object], object] | None,
        careful: Callable,
    ):
        w = self.window
        if decode is None:  # without msgspec: record by record
            members = careful(open_at, resume_after)
            yield from members
            blocks.close = members.close
            return
        comma = resume_after  # the comma before the next member; None before the first
        if comma is None:
            if open_at is None:
                raise TypeError(
                    "a walk needs where its section opens or the value to resume behind"
                )
            after = w.byte(open_at + 1)
            if after == 0x7D:  # "}": an empty section
                blocks.close = open_at + 1
                return
            if after != 0x0A:
                raise LayoutMismatch("not the service's layout")
            line = open_at + 2
        while True:
            if comma is not None:
                if stop_at is not None and comma >= stop_at:
                    return
                following = w.slice(comma, comma + len(_SECTION_END))
                if following == _SECTION_END:
                    blocks.close = comma + len(_SECTION_END) - 1
                    return
                if following[:2] != b",\n":
                    raise LayoutMismatch("not the service's layout after a value")
                line = comma + 2
            # a deletion may start at the comma: the writer keeps what lies before
            w.keep = line - 2
            if w.end - line < _BLOCK_SLACK:
                w.more()
            block, until = _scan_block(w, line, comma, decode, stop_at)
            if block is not None:
                yield block
                comma = block.end
                if block.closed:
                    blocks.close = comma + len(_SECTION_END) - 1
                    return
                continue
            self.careful_blocks += 1
            members = careful(open_at if comma is None else None, comma)
            for member in members:
                yield member
                if member.value_end >= until:
                    break
            else:
                blocks.close = members.close
                return
            comma = member.value_end

    def array_elements(self, array: Member) -> list[Member] | None:
        """The elements of a job's events array that the window holds whole (its `value_end`
        known), found without decoding them again: msgspec reads the array as raw values,
        whose lengths place them, and the layout's separators must lie exactly between them.
        None where they do not (then `elements` walks the array)."""
        w = self.window
        start, end = array.value_start, array.value_end
        if _RAW_ARRAY is None or start < w.base or end > w.end or end - start < 2:
            return None
        buf, base = w.buf, w.base
        with memoryview(buf) as view:
            try:
                raws = _RAW_ARRAY(view[start - base : end - base])
            except _fields.REFUSED:
                return None
            lengths = [len(raw) for raw in raws]
            del raws  # they hold the view
        if not lengths:
            return [] if buf[start - base : end - base] == b"[]" else None
        if buf[start - base : start - base + 8] != b"[\n      ":
            return None
        elements = []
        at, comma = start + 8, None
        for length in lengths:
            value_end = at + length
            elements.append(Member(None, at, at, value_end, comma))
            comma, at = value_end, value_end + 8
        separators = [
            buf[member.value_end - base : member.value_end - base + 8] for member in elements[:-1]
        ]
        if (
            not all(separator == b",\n      " for separator in separators)
            or elements[-1].value_end + 6 != end
            or (buf[end - 6 - base : end - base] != b"\n    ]")
        ):
            return None
        return elements

    def elements(self, array: Member, count: int | None = None):
        """The elements of a job's events array, each decoded; sets the array's `value_end`.
        Each piece the layout finds must decode on its own, which proves it is an element; with
        `count`, there must be that many."""
        w = self.window
        elements = walk(w, array.value_start, 6, keyed=False, decode=load)
        seen = 0
        for element in elements:
            seen += 1
            yield element
        if count is not None and seen != count:
            raise LayoutMismatch("pieces and elements do not match")
        array.value_end = elements.close + 1

    # -- pass 1's way in -------------------------------------------------------------------------

    def find_jobs(self) -> Member | None:
        """The top-level `jobs` member, found by its line alone; the reader then reads from its
        value on. Also notes the events section's span when it comes first (for the split).

        In the service's layout only top-level members start with `\\n  "`; pass 2 confirms
        that the section found here is the one it meets on its walk.
        """
        stream = self.stream
        opening = _read_at(stream, 0, 5)
        if opening[:2] == b"{}":
            stream.seek(0)
            return None  # json.dumps({}, indent=2); pass 2 checks that nothing follows
        if opening != b'{\n  "':
            raise LayoutMismatch("not the service's layout")
        line = _jobs_line(stream)
        if line < 0:
            stream.seek(0)
            return None  # no jobs: pass 2 refuses a `jobs` section it meets all the same
        if self._on_progress is not None:
            self._on_progress(line)
        events = scan(stream, 0, b'\n  "events": {\n', limit=line)
        if events >= 0 and _read_at(stream, line - 5, 5) == b"\n  },":
            # The service writes its sections in sorted order: `events` closes on the line
            # before `jobs`. Were another section between them, the split inside `events`
            # would not be met where it is expected, and the run would start over on `general`.
            # the value, without the comma
            self.events_span = (events + len(b'\n  "events": '), line - 1)
        start = line + len(_JOBS_LINE)
        if _read_at(stream, start, 1) != b"{":
            stream.seek(0)
            return None  # `jobs` is not an object: no job is terminal; pass 2 checks its value
        stream.seek(start)
        self.window = Window(stream, self._on_progress, start)
        return Member("jobs", line + 3, start, -1)

    def jobs_split(self, jobs: Member) -> tuple[int, int] | None:
        """Where a job near the middle of `jobs` begins (the comma that ends the job before
        it), and where the section ends; None if no such place is found."""
        found = None
        if _read_at(self.stream, jobs.value_start, 2) == b"{\n":
            found = _middle_job(self.stream, jobs.value_start)
        self.stream.seek(self.window.end)  # where the window goes on reading
        return found

    @staticmethod
    def tail_split(
        read_at: Callable[[int, int], bytes], size: int, jobs_span, events_span
    ) -> tuple[int, bool]:
        """Where a second process can take over pass 2 (see `tail_split` below)."""
        return tail_split(read_at, size, jobs_span, events_span)


def _array_close(buf: bytearray, start: int, stop: int) -> int:
    """`buf.find(b"\\n    ]", start, stop)` for a job's events array opening at `start`, found by
    its bracket: a one-byte search runs at memory speed, this six-byte one at about 1 GB/s here
    (indentation gives its skip table little to skip), and an events array rarely holds another
    `]` to check and pass over."""
    while True:
        found = buf.find(0x5D, start, stop)  # "]"
        if found < 0:
            return -1
        if buf[found - 5 : found] == b"\n    ":
            return found - 5
        start = found + 1


def _array_end_within(w: Window, start: int, limit: int) -> int | None:
    """The end of the multi-line array at `start` if it closes within `limit` bytes, None if
    it does not; -1 if the value is not a multi-line array."""
    if w.byte(start) != 0x5B or w.byte(start + 1) != 0x0A:
        return -1
    found = w.find(b"\n    ]", start, limit=start + limit)
    return None if found < 0 else found + 6


# -- where pass 2 can be split -----------------------------------------------------------------

# A byte of results costs pass 2 about this many bytes of events (measured on generated stores:
# 4.2 s for 132 MB of results, 5.8 s for 229 MB of events, both profiled in one process).
RESULTS_WEIGHT = 1.25
_BOUNDARY = b',\n    "'  # in the service's layout: one job's events end, the next job's begin


def tail_split(
    read_at: Callable[[int, int], bytes], size: int, jobs_span: tuple[int, int], events_span
) -> tuple[int, bool]:
    """Where a second process can take over pass 2, and whether that is inside `events`.

    The events section (before `jobs`, where the service writes it) is split between two jobs
    so that both processes get about the same work: the first the events up to there, the
    second the rest of them and everything after `jobs` (whose records pass 2 only copies).
    When the tail after `jobs` alone outweighs the events, the second takes just that.
    `read_at(offset, size)` reads the store.
    """
    jobs_end = jobs_span[1]
    if events_span is None:
        return jobs_end, False
    events_start, events_end = events_span
    target = int((events_start + events_end + RESULTS_WEIGHT * (size - jobs_end)) / 2)
    if target >= events_end:
        return jobs_end, False
    try:
        window = read_at(target, 1 << 20)
    except OSError:
        return jobs_end, False  # pass 2 will meet the error, and word it
    found = window.find(_BOUNDARY)
    if found < 0 or target + found >= events_end:
        return jobs_end, False  # one huge job's events there: the simple split will do
    return target + found, True

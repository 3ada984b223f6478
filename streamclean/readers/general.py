"""The `general` reader: any valid JSON, by exact byte offsets.

`Scanner` walks the top two levels itself and hands every record to the standard library's
parser (`json.JSONDecoder.raw_decode`), the one the service reads its store with, so a record
is read exactly as the service reads it, in any layout. Memory holds the read buffer and the
record being looked at, never the store.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable
from typing import BinaryIO

from ..errors import InvalidStoreError, StoreFileError
from .base import STREAM, Member, Powers, Walk

# larger chunks cost memory (a decoded chunk with one emoji takes 4 bytes a character) and gain no speed
CHUNK_SIZE = 1 << 16

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_decode_value = json.JSONDecoder().raw_decode
# An error this close to the end of the buffer may only mean the value goes on in the next chunk.
_TAIL_MARGIN = 16


class Scanner:
    """A cursor over the decoded text of a binary stream, refilled chunk by chunk.

    `on_progress`, when given, is called with the number of bytes read after every chunk.
    """

    def __init__(
        self,
        stream: BinaryIO,
        chunk_size: int | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self._stream = stream
        self._chunk_size = chunk_size or CHUNK_SIZE  # read at call time, so tests can shrink it
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._on_progress = on_progress
        self._bytes_read = 0
        self._base_offset = 0  # byte offset of buf[0] in the stream
        self._mark = 0  # a buffer position whose byte offset is known: `_mark_offset`
        self._mark_offset = 0
        self.buf = ""
        self.pos = 0
        self.eof = False

    # -- the buffer ---------------------------------------------------------------------------

    def offset(self, pos: int | None = None) -> int:
        """The byte offset in the stream of buffer position `pos` (default: the cursor).

        Counted on from the last position asked about, so walking a buffer forward costs the
        length of what was walked, not of the buffer."""
        pos = self.pos if pos is None else pos
        if pos >= self._mark:
            self._mark_offset += _utf8_len(self.buf[self._mark : pos])
            self._mark = pos
            return self._mark_offset
        return self._base_offset + _utf8_len(self.buf[:pos])

    def _fill(self, want: int = 1) -> bool:
        """Read more until at least `want` characters lie after the cursor; False at the end."""
        while len(self.buf) - self.pos < want and not self.eof:
            try:
                chunk = self._stream.read(max(self._chunk_size, want))
            except OSError as exc:
                raise StoreFileError(
                    f"cannot read the store at byte {self._bytes_read}: {exc.strerror or exc}"
                ) from None
            pending = len(self._decoder.getstate()[0])
            try:
                text = self._decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                raise InvalidStoreError(
                    "invalid UTF-8", self._bytes_read - pending + exc.start
                ) from None
            self._bytes_read += len(chunk)
            if not chunk:
                self.eof = True
            if self.pos:
                self._base_offset = self.offset(self.pos)
                self.buf = self.buf[self.pos :] + text
                self.pos = 0
                self._mark, self._mark_offset = 0, self._base_offset
            else:
                self.buf += text
            if self._on_progress is not None and chunk:
                self._on_progress(self._bytes_read)
        return len(self.buf) - self.pos >= want

    def error(self, problem: str, pos: int | None = None) -> InvalidStoreError:
        return InvalidStoreError(problem, self.offset(pos))

    # -- tokens -------------------------------------------------------------------------------

    def whitespace(self) -> str:
        """Consume and return the whitespace at the cursor (it may span chunks)."""
        parts = []
        while True:
            end = _WHITESPACE.match(self.buf, self.pos).end()
            parts.append(self.buf[self.pos : end])
            self.pos = end
            if end < len(self.buf) or not self._fill():
                return "".join(parts)

    def peek(self) -> str:
        """The next character ('' at the end of the stream)."""
        return self.buf[self.pos] if self._fill() else ""

    def expect(self, char: str, what: str) -> None:
        if self.peek() != char:
            raise self.error(self._found(f"expected {what}"))
        self.pos += 1

    def value(self) -> tuple[object, str]:
        """Decode the JSON value at the cursor; return it and its exact source text."""
        while True:
            start = self.pos
            try:
                obj, end = _decode_value(self.buf, start)
            except json.JSONDecodeError as exc:
                if self.eof or self._is_real_error(exc):
                    raise self.error(_problem(exc), exc.pos) from None
            except ValueError as exc:  # e.g. an integer beyond the interpreter's digit limit
                raise self.error(str(exc).split(":")[0].lower(), start) from None
            except RecursionError:  # deeper than json.dumps, and so the service, can go
                raise self.error("values nested too deep", start) from None
            else:
                # A number that ends with the buffer may go on in the next chunk.
                if end < len(self.buf) or self.eof:
                    self.pos = end
                    return obj, self.buf[start:end]
            self._fill(2 * (len(self.buf) - self.pos) + 1)

    def _is_real_error(self, exc: json.JSONDecodeError) -> bool:
        if exc.msg.startswith("Unterminated string"):
            return False
        return exc.pos < len(self.buf) - _TAIL_MARGIN

    def key(self) -> tuple[str, str]:
        """A member's key (a JSON string) and its source text."""
        if self.peek() != '"':
            raise self.error(self._found("expected a string key"))
        key, text = self.value()
        assert isinstance(key, str)
        return key, text

    def _found(self, expectation: str) -> str:
        char = self.peek()
        return (
            f"{expectation}, found {char!r}"
            if char
            else f"{expectation}, found the end of the file (truncated?)"
        )

    def expect_end(self) -> str:
        """Check that only whitespace follows; return it."""
        tail = self.whitespace()
        if self.peek():
            raise self.error("unexpected data after the top-level object")
        return tail


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _problem(exc: json.JSONDecodeError) -> str:
    message = exc.msg.lower().removesuffix(" at")  # "starting at" + our own " at byte N"
    if exc.pos >= len(exc.doc):
        return f"{message}, found the end of the file (truncated?)"
    return message


# -- walking containers ----------------------------------------------------------------------


class TextMember:
    """One member of an object being walked: its key and the text around its value.

    `lead` is the whitespace before the key, `key_text` the key's source, `colon` the text from
    the end of the key to the start of the value (`": "` in the service's layout).
    """

    __slots__ = ("colon", "key", "key_text", "lead")

    def __init__(self, key: str, lead: str, key_text: str, colon: str) -> None:
        self.key = key
        self.lead = lead
        self.key_text = key_text
        self.colon = colon

    @property
    def head(self) -> str:
        return self.lead + self.key_text + self.colon


class _Walk:
    """Steps through a container at the cursor: iterate it, consuming each value as it comes;
    afterwards `tail` holds the whitespace before the closing bracket (also returned, as a
    generator would, when the iteration stops)."""

    def __init__(self, sc: Scanner, where: str) -> None:
        self.tail: str | None = None
        self._steps = self._walk(sc, where)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._steps)

    def _walk(self, sc: Scanner, where: str):
        raise NotImplementedError

    def _finish(self, tail: str) -> str:
        self.tail = tail
        return tail


class iter_members(_Walk):
    """The members of the object at the cursor, as `TextMember`s with the cursor at each value."""

    def _walk(self, sc: Scanner, where: str):
        sc.expect("{", f"an object for {where}")
        lead = sc.whitespace()
        if sc.peek() == "}":
            sc.pos += 1
            return self._finish(lead)
        while True:
            key, key_text = sc.key()
            before = sc.whitespace()
            sc.expect(":", f"':' after key {key_text} in {where}")
            colon = before + ":" + sc.whitespace()
            yield TextMember(key, lead, key_text, colon)
            tail = sc.whitespace()
            char = sc.peek()
            if char == "}":
                sc.pos += 1
                return self._finish(tail)
            if char != ",":
                raise sc.error(sc._found(f"expected ',' or '}}' in {where}"))
            sc.pos += 1
            lead = tail + "," + sc.whitespace()


class iter_elements(_Walk):
    """The elements of the array at the cursor: yields the text before each (whitespace, and
    for all but the first the comma), with the cursor at the element."""

    def _walk(self, sc: Scanner, where: str):
        sc.expect("[", f"an array for {where}")
        lead = sc.whitespace()
        if sc.peek() == "]":
            sc.pos += 1
            return self._finish(lead)
        while True:
            yield lead
            tail = sc.whitespace()
            char = sc.peek()
            if char == "]":
                sc.pos += 1
                return self._finish(tail)
            if char != ",":
                raise sc.error(sc._found(f"expected ',' or ']' in {where}"))
            sc.pos += 1
            lead = tail + "," + sc.whitespace()


# -- the reader ------------------------------------------------------------------------------


class GeneralReader:
    """The reader contract (see `readers/base.py`) over any valid JSON."""

    name = "general"
    window = None  # kept bytes are copied from the old store in the kernel
    tail_split = None  # pass 2 is not split: the general walk cannot start in the middle
    powers = Powers()  # neither split points nor the block path

    def moved(self, what: str) -> Exception:
        return InvalidStoreError(f"{what} (did the file change?)")

    def __init__(self, stream: BinaryIO, on_progress: Callable[[int], None] | None = None) -> None:
        self.sc = Scanner(stream, on_progress=on_progress)
        self._sections = None

    # -- the top level ---------------------------------------------------------------------------

    def sections(self, seen: set[str], resume_after: int | None = None):
        """The top-level members; a repeated name, which would shadow a section, is refused."""
        if self._sections is not None:  # pass 1 began the walk (`find_jobs`): go on with it
            return self._sections
        return self._walk_sections(seen)

    def _walk_sections(self, seen: set[str]):
        sc = self.sc
        sc.whitespace()
        self.top_open = sc.offset()
        members = iter_members(sc, "the top level")
        for member in members:
            if member.key in seen:
                key_start = sc.pos - len(member.colon) - len(member.key_text)
                raise sc.error(f"duplicate top-level key {member.key_text}", key_start)
            seen.add(member.key)
            value_start = sc.offset()
            yield Member(
                member.key, value_start - _utf8_len(member.key_text + member.colon), value_start, -1
            )
        sc.expect_end()

    def first_byte(self, member: Member) -> int:
        char = self.sc.peek()
        return ord(char) if char else -1

    def check(self, member: Member) -> tuple[int, int]:
        """Read past a section one record at a time, so a huge section never sits in memory;
        its end and how many entries it has."""
        sc = self.sc
        char = sc.peek()
        if char in ("{", "["):
            walk = iter_members(sc, member.key) if char == "{" else iter_elements(sc, member.key)
            count = 0
            for _ in walk:
                sc.value()
                count += 1
            return sc.offset(), count
        member.value = sc.value()[0]
        return sc.offset(), 1

    def known_section(self, member: Member, span: tuple[int, int] | None, out) -> int:
        end = self.check(member)[0]
        if span is not None and (member.value_start, end) != span:
            # the file changed under us
            raise self.sc.error("the jobs section is not where pass 1 read it")
        return end

    # -- records ---------------------------------------------------------------------------------

    def records(
        self,
        open_at: int | None,
        exact: str | None = None,
        resume_after: int | None = None,
        fields: tuple[str, ...] | None = None,
    ):
        # Every record is decoded whole, by the stdlib itself: `exact` and `fields` change nothing.
        return _Records(self.sc, "records", open_at)

    def job_arrays(
        self,
        open_at: int | None,
        resume_after: int | None = None,
        fields: tuple[str, ...] | None = None,
    ):
        return Walk(self._job_arrays)

    def _job_arrays(self, arrays: Walk):
        sc = self.sc
        walk = _Records(sc, "events", None, decode=False)
        for member in walk:
            if sc.peek() == "[":
                member.value = STREAM  # read with `elements`
            else:
                member.value = sc.value()[0]
                member.value_end = sc.offset()
            yield member
        arrays.close = walk.close

    def elements(self, array: Member, count: int | None = None):
        sc = self.sc
        elements = iter_elements(sc, f"events of job {array.key!r}")
        previous_end = None
        for lead in elements:
            start = sc.offset()
            comma_at = None if previous_end is None else previous_end + len(lead.partition(",")[0])
            element = Member(None, start, start, -1, comma_at)
            element.value = sc.value()[0]
            element.value_end = previous_end = sc.offset()
            yield element
        array.value_end = sc.offset()

    # -- pass 1's way in -------------------------------------------------------------------------

    def find_jobs(self) -> Member | None:
        """Walk the top level up to the `jobs` object; the walk goes on in `sections`."""
        self._sections = self._walk_sections(set())
        for section in self._sections:
            if section.key == "jobs" and self.sc.peek() == "{":
                return section
            section.value_end = self.check(section)[0]
        return None


class _Records:
    """The members of the object at the cursor with their byte offsets and, with `decode`,
    their values (else the consumer reads each value and sets `value_end`); `close` is the
    closing brace's offset afterwards."""

    def __init__(self, sc: Scanner, where: str, open_at: int | None, decode: bool = True) -> None:
        self._sc, self._where, self._decode = sc, where, decode
        self.close: int = -1  # set once the iteration is over

    def __iter__(self):
        sc, decode = self._sc, self._decode
        members = iter_members(sc, self._where)
        previous_end = None
        for text_member in members:
            start = sc.offset()
            comma_at = (
                None
                if previous_end is None
                else previous_end + len(text_member.lead.partition(",")[0])
            )
            member = Member(text_member.key, start, start, -1, comma_at)
            if decode:
                member.value = sc.value()[0]
                member.value_end = sc.offset()
            yield member
            previous_end = member.value_end
        self.close = sc.offset() - 1

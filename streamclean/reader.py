"""Reading a store as a stream of exact source text.

The store is one JSON object whose sections (`events`, `jobs`, `results`, ...) are objects of
records. `Scanner` walks those top levels itself and hands every record to the standard
library's C scanner (`json.JSONDecoder.raw_decode`), the very parser the service reads its
store with. So a record is read exactly as the service reads it — `NaN`, `Infinity`, integers of
any size, lone surrogate escapes — and every piece of the store is also available as its
original text, which the filter copies out unchanged. Memory holds the read buffer and the
record being looked at, never the store.

Byte offsets in errors are exact: the buffer knows how many bytes its consumed text took.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import BinaryIO, Callable

from .errors import InvalidStoreError, StoreFileError

CHUNK_SIZE = 1 << 16  # larger chunks cost memory (a decoded chunk with one emoji takes 4 bytes a character) and gain no speed

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
        self.buf = ""
        self.pos = 0
        self.eof = False

    # -- the buffer ---------------------------------------------------------------------------

    def offset(self, pos: int | None = None) -> int:
        """The byte offset in the stream of buffer position `pos` (default: the cursor)."""
        pos = self.pos if pos is None else pos
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
                self._base_offset += _utf8_len(self.buf[: self.pos])
                self.buf = self.buf[self.pos :] + text
                self.pos = 0
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
        return f"{expectation}, found {char!r}" if char else f"{expectation}, found the end of the file (truncated?)"

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


class Member:
    """One member of an object being walked: its key and the text around its value.

    `lead` is the whitespace before the key, `key_text` the key's source, `colon` the text from
    the end of the key to the start of the value (`": "` in the service's layout).
    """

    __slots__ = ("key", "lead", "key_text", "colon")

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
    """The members of the object at the cursor, as `Member`s with the cursor at each value."""

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
            yield Member(key, lead, key_text, colon)
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

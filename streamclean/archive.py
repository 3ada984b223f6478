"""The archive (`--archive-file`): every record a run removes, as JSON Lines, for `restore`.

A header line names the store the archive belongs to (the cleaned store's size and SHA-256);
then one line a removed record, with its exact source and the exact bytes left out with it, so
that a restore gives back the old store byte for byte. `ArchiveWriter` writes it beside PATH and
names it only after the swap; `ArchiveReader` reads it back. Format and life: docs/archive.md.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson

from . import fs, signals
from .errors import EXIT_CLEANED, StreamcleanError, WriteError
from .splice import _DiskWriter
from .swap import leftover_name, unnamed_file

FORMAT = 1
GZIP_LEVEL = 1  # gzip's default ran at 17.6 MB/s here, level 1 at 114 MB/s
_BUFFER = 1 << 20


class ArchiveError(StreamcleanError):
    """An archive that cannot be read, or that belongs to another store."""


def is_gzip_name(path: str | os.PathLike) -> bool:
    return str(path).endswith(".gz")


def refuse_existing(path: str | os.PathLike) -> None:
    """An archive is never appended to or replaced (its positions point into one store)."""
    if os.path.lexists(path):
        raise ArchiveError(
            f"the archive file exists already: {path}",
            "give a new name, for example one with the date: --archive-file archive-$(date +%Y%m%dT%H%M%S).jsonl.gz",
        )
    folder = Path(path).parent
    if not folder.is_dir():
        raise ArchiveError(
            f"the archive's folder does not exist: {folder}",
            "create it, or give another --archive-file",
        )


class ArchiveNotNamedError(WriteError):
    """After the swap, the archive could not be given its name (or its folder synced): the
    new store is in place, and the message says where the archive is."""

    exit_code = EXIT_CLEANED


def temp_name(path: Path) -> Path:
    """The archive's name until the swap: a leftover name beside it (`swap.leftover_name`)."""
    return leftover_name(path)


class _Body:
    """Bytes to a descriptor through `fs`, buffered, gzip-compressed as one member when asked.
    After `start_thread`, full buffers are compressed and written on a thread of their own
    (`splice._DiskWriter`: zlib and os.write release the GIL), while pass 2 goes on; `close()`
    must follow, also on failure, before the descriptor is closed."""

    def __init__(self, fd: int, gzip: bool) -> None:
        self.fd = fd
        self._buffer = bytearray()
        self._zip = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31) if gzip else None
        self.written = 0
        self._finished = False
        self._disk: _DiskWriter | None = None

    def start_thread(self) -> None:
        """Compress and write on a thread from now on (call once this body is known to
        whoever will `close()` it)."""
        with signals.critical_section(deliver=True):  # the thread must be known to close()
            self._disk = _DiskWriter(self._emit, self.fd)

    def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= _BUFFER:
            chunk = bytes(self._buffer)
            self._buffer.clear()
            self._hand(chunk)

    def _hand(self, chunk) -> None:
        if self._disk is not None:
            self._disk.put(chunk)
        elif callable(chunk):
            chunk()
        else:
            self._emit(self.fd, chunk)

    def _emit(self, fd: int, data: bytes) -> None:
        if self._zip is not None:
            data = self._zip.compress(data)
        if data:
            _write(fd, data)
            self.written += len(data)

    def _final(self) -> None:
        if self._zip is not None:
            tail = self._zip.flush()
            _write(self.fd, tail)
            self.written += len(tail)

    def finish(self) -> None:
        """Everything written (on the thread, in order) and the gzip member ended; once."""
        if self._finished:
            return
        self._finished = True
        if self._buffer:
            chunk = bytes(self._buffer)
            self._buffer.clear()
            self._hand(chunk)
        self._hand(self._final)
        if self._disk is not None:
            self._disk.close()  # on an error (or a signal) here, `close()` still stops the thread
            self._disk = None

    def close(self) -> None:
        """Stop the thread, whatever happened; raises nothing."""
        if self._disk is not None:
            with signals.critical_section():
                self._disk.abandon()
            self._disk = None


def _json_line(value: dict) -> bytes:
    """One line of the archive. A lone surrogate (a key written escaped in the store, or a
    store path with a byte that is not UTF-8, as `os.fsdecode` gives it) is written as its
    JSON escape, so the line stays valid JSON and reads back as the same string."""
    try:
        return orjson.dumps(value) + b"\n"
    except TypeError:
        return json.dumps(value, ensure_ascii=True).encode() + b"\n"


def _write(fd: int, data: bytes) -> None:
    try:
        fs.write_all(fd, data)
    except OSError as exc:
        raise WriteError(
            f"cannot write the archive: {exc.strerror or exc}",
            "the store was left unchanged; free space beside the archive and run again",
        ) from None


class ArchiveWriter:
    """The archive of one run. `record` is called by pass 2 (through `ArchivingSplice`) for
    each record left out, in store order; nothing is created before the first. `seal` puts the
    archive together before the swap, `publish` names it after, `rollback` removes it."""

    def __init__(
        self,
        path: str | os.PathLike,
        source_fd: int,
        store: Path,
        other_names: Iterator[Path] | None = None,
    ) -> None:
        self.path = Path(path)
        self._other_names = other_names  # where `publish` goes on when `path` was taken meanwhile
        self.store = store
        self._source_fd = source_fd
        self._body: _Body | None = None
        self._gzip = is_gzip_name(path)
        self.temp: Path | None = None
        self._temp_exists = False
        self.records = 0
        self.size = 0
        self._part_fd: int | None = None  # a worker's part: the file the main process made for it
        self._store_mode = os.fstat(source_fd).st_mode  # what it is created no more open than

    def record(
        self,
        section: str,
        key: str,
        position: int | None,
        start: int,
        value_start: int,
        value_end: int,
        resume: int | None,
        head: bytes | None = None,
    ) -> None:
        """One record left out: bytes `start` to `resume` (or `value_end`) of the store, its
        value from `value_start`; `head`, if given, holds the first of those bytes already (read
        from the reader's window), the rest are read from the store."""
        end = value_end if resume is None else resume
        raw = head or b""
        if len(raw) < end - start:
            raw += os.pread(self._source_fd, end - start - len(raw), start + len(raw))
        if len(raw) != end - start:
            raise WriteError(
                "the store ended early while archiving a record",
                "the store was left unchanged; run again",
            )
        try:
            before = raw[: value_start - start].decode("utf-8")
            text = raw[value_start - start : value_end - start].decode("utf-8")
            after = raw[value_end - start :].decode("utf-8")
        except UnicodeDecodeError:
            raise WriteError(
                f"a record at byte {value_start} is not UTF-8", "the store was left unchanged"
            ) from None
        line: dict[str, object] = {"section": section, "key": key}
        if position is not None:
            line["position"] = position
        line["before"] = before
        line["text"] = text
        line["after"] = after
        self._opened_body().write(_json_line(line))
        self.records += 1

    @classmethod
    def part(cls, path: str | os.PathLike, source_fd: int, fd: int) -> ArchiveWriter:
        """The archive of a worker's part of pass 2 (`second_core.TailWorker`), into the unnamed
        file `fd` the main process made: a gzip member of its own, appended to the main
        process's part afterwards (`append_part`)."""
        part = cls(path, source_fd, Path(path))
        part._part_fd = fd
        return part

    def finish_part(self) -> tuple[int, int]:
        """In the worker: the part complete; its records and bytes."""
        if self._body is None:
            return 0, 0
        self._body.finish()
        return self.records, self._body.written

    def append_part(self, fd: int, records: int, nbytes: int) -> None:
        """In the main process, once its own part is done: the worker's part after it."""
        if not records:
            return
        body = self._opened_body()
        body.finish()
        try:
            fs.copy_range(fd, body.fd, nbytes, 0)
        except OSError as exc:
            raise WriteError(
                f"cannot write the archive: {exc.strerror or exc}",
                "the store was left unchanged; free space beside the archive and run again",
            ) from None
        body.written += nbytes
        self.records += records

    def _opened_body(self) -> _Body:
        """The body, opened (with its writer thread) on the first record."""
        if self._body is None:
            self._body = self._open_body()
        return self._body

    def _open_body(self) -> _Body:
        # the worker file's kind: no name, so nothing left behind
        fd = unnamed_file(self.path, self._store_mode) if self._part_fd is None else self._part_fd
        if fd is None:
            raise WriteError(
                f"cannot create the archive beside {self.path}",
                "its folder must exist and be writable",
            )
        body = _Body(fd, self._gzip)
        self._body = body  # known to close_body() before its thread starts
        body.start_thread()
        return body

    def seal(self, header: dict) -> None:
        """Before the swap: header and body under the temporary name, fsynced."""
        body = self._opened_body()
        body.finish()
        self.temp = temp_name(self.path)
        with signals.critical_section(deliver=True):
            try:
                fd = fs.create_file(self.temp, self._store_mode)
            except OSError as exc:
                raise WriteError(
                    f"cannot create the archive {self.temp}: {exc.strerror}",
                    "the store was left unchanged; the archive's folder must be writable",
                ) from None
            self._temp_exists = True
        try:
            head = _Body(fd, self._gzip)
            head.write(_json_line(dict(header, records=self.records)))
            head.finish()
            try:
                fs.copy_range(body.fd, fd, body.written, 0)
                fs.fsync(fd)
            except OSError as exc:
                raise WriteError(
                    f"cannot write the archive: {exc.strerror or exc}",
                    "the store was left unchanged; free space beside the archive and run again",
                ) from None
            self.size = head.written + body.written
        finally:
            os.close(fd)

    def publish(self) -> None:
        """After the swap: the archive under its name, never over another file (with
        `other_names`, under the next of them that is free)."""
        temp = self.temp
        if temp is None:
            raise RuntimeError("an archive is published only after it is sealed")
        while True:
            try:
                fs.link(str(temp), str(self.path))
                break
            except OSError as exc:
                if exc.errno == errno.EEXIST and self._other_names is not None:
                    self.path = next(self._other_names)
                    continue
                hint = "it exists now" if exc.errno == errno.EEXIST else exc.strerror
                raise ArchiveNotNamedError(
                    f"the archive could not be named {self.path} ({hint}); keep it: it is {self.temp}",
                    f"mv {self.temp} <a new name>",
                ) from None
        self._temp_exists = False
        try:
            os.unlink(temp)
            fs.fsync_dir(str(self.path.parent))
        except OSError as exc:
            raise ArchiveNotNamedError(
                f"the archive is {self.path}, but syncing its folder failed: {exc.strerror}",
                "check the disk",
            ) from None

    def close_body(self) -> None:
        if self._body is not None:
            self._body.close()
            with signals.critical_section():
                try:
                    os.close(self._body.fd)
                except OSError:
                    pass
                self._body = None

    def rollback(self) -> None:
        with signals.critical_section():
            self.close_body()
            if self._temp_exists and self.temp is not None:
                try:
                    os.unlink(self.temp)
                except OSError:
                    pass
                self._temp_exists = False

    def as_report(self) -> dict:
        return {"file": str(self.path), "records": self.records, "bytes": self.size}


def digest(fd: int) -> str:
    """SHA-256 of an open file, read in 1 MiB blocks from its start. (Nothing is opened: a
    signal, which may interrupt any instruction, cannot leave a file open.)"""
    sha = hashlib.sha256()
    offset = 0
    while block := os.pread(fd, _BUFFER, offset):
        sha.update(block)
        offset += len(block)
    return sha.hexdigest()


def header(store: Path, before: int, after: int, after_sha256: str, now: str) -> dict:
    return {
        "streamclean_archive": FORMAT,
        "store": str(store),
        "now": now,
        "before": {"size": before},
        "after": {"size": after, "sha256": after_sha256},
    }


# -- reading ---------------------------------------------------------------------------------

_WS = " \t\n\r"
HEADER_LIMIT = 1 << 20  # the header line: a store path and a few numbers
# How long a line can be when its cleanup removed n bytes (`before.size - after.size`): a
# record's pieces are at most n bytes, a JSON string escapes each at most sixfold (a two-byte
# character as \u00e9 where a key needs ASCII), the key comes once more in `key`, and the
# fields' names around them.
_EXPANSION = 12
_LINE_SLACK = 4096


def _separator(text: str) -> bool:
    """Whitespace around at most one comma: what lies between two members of a container."""
    return text.strip(_WS) in ("", ",")


_UNREAD = object()


class Entry:
    """One archived record, checked: where it goes and its exact pieces (bytes). `archive`
    is the rank of the archive it came from in a restore of several (0: the newest); `value`
    is `text` decoded as the service reads it (by the stdlib, when first asked for)."""

    __slots__ = (
        "_value",
        "after",
        "archive",
        "head",
        "job",
        "key",
        "line",
        "position",
        "section",
        "separator",
        "text",
    )

    def __init__(
        self,
        line: int,
        section: str,
        key: str,
        position: int | None,
        separator: bytes,
        head: bytes,
        text: bytes,
        after: bytes,
        archive: int = 0,
        value: object = _UNREAD,
    ) -> None:
        self.line, self.section, self.key, self.position = line, section, key, position
        self.separator, self.head, self.text, self.after = separator, head, text, after
        self.archive = archive
        self._value = value
        self.job = key if section in ("events", "jobs") else ""  # set for the others on reading

    @property
    def value(self) -> object:
        if self._value is _UNREAD:
            try:
                self._value = json.loads(self.text)
            except (ValueError, RecursionError):  # nested deeper than the stdlib reads
                raise ArchiveError(
                    f"archive line {self.line}: text is not a JSON value the service could read",
                    "the store was left unchanged",
                ) from None
        return self._value

    def order(self) -> tuple[str, str, int]:
        """Its place in store order: section, key, position (a whole array before its events)."""
        return self.section, self.key, -1 if self.position is None else self.position


def _header_time(text: str) -> datetime | None:
    """The header's `now` as an aware time, or None where it is not one."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _header_problem(head: object) -> str | None:
    """What is wrong with a header line's value, if anything; its types are checked strictly
    (`true` is not format 1, a size is a whole number)."""
    if not isinstance(head, dict) or "streamclean_archive" not in head:
        return "not a streamclean archive header"
    version = head["streamclean_archive"]
    if type(version) is not int or version != FORMAT:
        shown = json.dumps(version)[:40]
        return f"not an archive format this version reads (streamclean_archive: {shown}; it reads {FORMAT})"

    def whole(value: object) -> bool:
        return type(value) is int and value >= 0

    before, after = head.get("before"), head.get("after")
    if not isinstance(head.get("store"), str) or not isinstance(head.get("now"), str):
        return "the header's store and now must be strings"
    if not isinstance(before, dict) or not whole(before.get("size")):
        return "the header's before.size must be a whole number"
    if (
        not isinstance(after, dict)
        or not whole(after.get("size"))
        or not isinstance(after.get("sha256"), str)
    ):
        return "the header's after must hold a whole size and a sha256"
    if not whole(head.get("records")):
        return "the header's records must be a whole number"
    if after["size"] > before["size"]:
        return "the header's after.size is larger than its before.size"
    return None


class ArchiveReader:
    """The lines of an archive, checked one at a time as they are read (`header`, then
    iterate for `Entry`s). Read whole or refused whole: every line valid, in strict store
    order (section, key, position; none repeated), no line longer than the store the header
    names could explain (found without reading it whole), and at the end as many records as
    the header says. A problem raises ArchiveError naming the line. Only a regular file is
    opened (a FIFO or a device is refused at once, without waiting on it)."""

    def __init__(self, path: str | os.PathLike, rank: int = 0) -> None:
        import gzip
        import stat

        self.path = path
        self.rank = rank
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise ArchiveError(
                f"cannot open the archive {path}: {exc.strerror}", "the store was left unchanged"
            ) from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise ArchiveError(
                f"the archive {path} is not a regular file",
                "the store was left unchanged; name the archive itself",
            )
        os.set_blocking(fd, True)
        self.identity = (info.st_dev, info.st_ino)
        raw = open(fd, "rb")
        magic = raw.read(2)
        raw.seek(0)
        self._stream = gzip.GzipFile(fileobj=raw, mode="rb") if magic == b"\x1f\x8b" else raw
        self._raw = raw
        self._number = 0
        self.records = 0
        self._last: tuple[str, str, int] | None = None
        self._limit = HEADER_LIMIT
        try:
            self._read_header()
        except BaseException:
            self.close()
            raise

    def _read_header(self) -> None:
        first = self._next_line()
        if first is None:
            raise self.error("the archive is empty")
        try:
            head = json.loads(first)
        except (ValueError, RecursionError):
            head = None
        problem = _header_problem(head)
        if problem is not None:
            raise self.error(problem)
        now = _header_time(head["now"])
        if now is None:
            raise self.error(
                f"the header's now is not a time with a UTC offset: {head['now'][:40]!r}"
            )
        self.header, self.now = head, now
        self._limit = _EXPANSION * (head["before"]["size"] - head["after"]["size"]) + _LINE_SLACK

    def error(self, problem: str, line: int | None = None) -> ArchiveError:
        return ArchiveError(
            f"invalid archive {self.path}: line {self._number if line is None else line}: {problem}",
            "the store was left unchanged",
        )

    def _next_line(self) -> bytes | None:
        try:
            line = self._stream.readline(self._limit + 1)
        except (OSError, EOFError, zlib.error) as exc:
            where = f"after line {self._number}" if self._number else "at its start"
            raise ArchiveError(
                f"invalid archive {self.path}: the compressed data {where} cannot be read ({exc})",
                "the store was left unchanged",
            ) from None
        if not line:
            return None
        self._number += 1
        if not line.endswith(b"\n"):
            if len(line) > self._limit:
                removed = self.header["before"]["size"] - self.header["after"]["size"]
                raise self.error(
                    f"longer than any record of the {removed} bytes its cleanup removed could make it"
                    if self._number > 1
                    else "longer than any archive header"
                )
            raise self.error("the last line is cut short")
        return line

    def __iter__(self):
        while (line := self._next_line()) is not None:
            entry = self._entry(line)
            where = entry.order()
            if self._last is not None and where <= self._last:
                raise self.error("out of store order (section, key, position), or repeated")
            self._last = where
            self.records += 1
            yield entry
        expected = self.header["records"]
        if self.records != expected:
            raise ArchiveError(
                f"invalid archive {self.path}: it ends after {self.records} records, its header says {expected} "
                "(cut short, or not as written)",
                "the store was left unchanged",
            )

    def _entry(self, line: bytes) -> Entry:
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError:
            try:  # a lone surrogate escape (in a key), which orjson refuses and JSON allows
                item = json.loads(line.decode("utf-8"))
            except (ValueError, RecursionError):
                raise self.error("not a JSON object") from None
        if not isinstance(item, dict):
            raise self.error("not a JSON object")
        section, key, position = item.get("section"), item.get("key"), item.get("position")
        fields = (item.get("before"), item.get("text"), item.get("after"))
        if (
            not isinstance(section, str)
            or not isinstance(key, str)
            or not all(isinstance(f, str) for f in fields)
        ):
            raise self.error("section, key, before, text and after must be strings")
        if position is not None and (
            type(position) is not int or position < 0 or section != "events"
        ):
            raise self.error("position must be a whole number, for an event")
        before, text, after = (str(part) for part in fields)
        # Checked by orjson, which takes no JSON the stdlib refuses (it reads integers beyond
        # 64 bits as floats, so the value restore writes is the stdlib's, decoded when needed:
        # a restore of some jobs decodes only theirs); what orjson refuses, the stdlib decides.
        value: object = _UNREAD
        try:
            checked = orjson.loads(text)
        except orjson.JSONDecodeError:
            try:
                checked = value = json.loads(text)
            except (ValueError, RecursionError):
                raise self.error("text is not a JSON value") from None
        if position is not None:
            if not _separator(before):
                raise self.error("before is not a separator")
            separator, head = before, ""
        else:
            separator, head = self._member_before(before, key)
        if not _separator(after):
            raise self.error("after is not a separator")
        try:
            pieces = [part.encode("utf-8") for part in (separator, head, text, after)]
        except UnicodeEncodeError:
            raise self.error("not UTF-8 text (a lone surrogate)") from None
        entry = Entry(
            self._number,
            section,
            key,
            position,
            pieces[0],
            pieces[1],
            pieces[2],
            pieces[3],
            archive=self.rank,
            value=value,
        )
        if section not in (
            "events",
            "jobs",
        ):  # results and notifications name their job (a string: read alike)
            job = checked.get("job_id") if isinstance(checked, dict) else None
            if isinstance(job, str) or job is None:
                entry.job = job or ""
            else:
                value = entry.value
                entry.job = str(value.get("job_id") or "") if isinstance(value, dict) else ""
        return entry

    def _member_before(self, before: str, key: str) -> tuple[str, str]:
        """`before` of an object's member split into the separator and `"key": ` (string
        operations only, linear in its length whatever the key)."""
        quote = before.find('"')
        if quote < 0 or not _separator(before[:quote]):
            raise self.error("before is not a separator and a key")
        head = before[quote:]
        token = head.rstrip(_WS)
        if not token.endswith(":"):
            raise self.error("before is not a separator and a key")
        try:
            named = json.loads(token[:-1].rstrip(_WS))
        except (ValueError, RecursionError):
            raise self.error("before is not a separator and a key") from None
        if named != key:
            raise self.error("before does not name the key")
        return before[:quote], head

    def close(self) -> None:
        self._stream.close()
        self._raw.close()

"""`streamclean restore`: the records archives hold, put back into the store as it is now.

    >>> report = restore("runtime/async_jobs/store.v1.json", ["archive-20261128.jsonl.gz"])
    >>> report.restored_count, report.present_count

A merge in store order of the store (by the same readers as a cleanup) and the lines of one or
more archives, one line an archive at a time: what is missing goes back at its sorted key's
place (a single event at its position in its job's array), what is there stays, several
archives as if restored one at a time, newest first. Onto the store the cleanup produced it
gives back the original byte for byte; onto a store in the service's layout that changed since,
what the service would write. The new store is swapped in as a cleanup's is. See docs/archive.md.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson

from . import signals
from .archive import ArchiveError, ArchiveReader, Entry
from .archive import digest as sha256_of
from .cleanup import (
    _copy_range,
    _rolled_back_on_error,
    _write_new_store,
    store_under_lock,
)
from .errors import InvalidStoreError, UsageError, WriteError
from .readers import LayoutMismatch, candidates, check_reader, reader_class
from .readers.base import STREAM
from .splice import RangeWriter
from .swap import AtomicReplace, Snapshot
from .units import megabytes

Progress = Callable[[str, int, int], None]
SECTIONS_WITH_JOBS = ("events", "jobs", "notifications", "results")

# Indentation of the service's layout: section members at 4 spaces, a job's events at 6.
_MEMBER_INDENT = b"\n    "
_ELEMENT_INDENT = b"\n      "
_KEYS_ONLY = (
    "job_id",
)  # the store's records are compared by key: decode as little as a reader may


def service_text(value: object) -> bytes | None:
    """`value` as the service writes it at the top level (`json.dumps(value, ensure_ascii=False,
    sort_keys=True, indent=2)`), or None if that is not UTF-8 (a lone surrogate).

    The stdlib writes indented JSON in Python, a record at a time too slowly for a restore of
    many; orjson writes the same layout in C. Where orjson and the stdlib's C encoder write
    this value's compact form alike, every token is alike (numbers, escapes, key order), and
    so is the indented form; otherwise (NaN, an integer beyond 64 bits, a float orjson writes
    its own way) the stdlib writes it."""
    try:
        compact = json.dumps(
            value, ensure_ascii=False, sort_keys=True, separators=(",", ":")
        ).encode("utf-8")
        if orjson.dumps(value, option=orjson.OPT_SORT_KEYS) == compact:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
    except UnicodeEncodeError:
        return None
    except TypeError:  # orjson.JSONEncodeError: an integer it cannot write
        pass
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2).encode("utf-8")
    except UnicodeEncodeError:
        return None


class _NoPlace(ArchiveError):
    """An archived record that has no place in the store (its section or array is missing)."""


@dataclass
class ArchiveUse:
    """One archive of a restore: what it put back and what was there already."""

    file: str
    now: str
    records: int
    store_path: str
    header: dict = field(repr=False, default_factory=dict)
    store_matches: bool = False
    restored: Counter = field(default_factory=Counter)
    present: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "now": self.now,
            "records": self.records,
            "store_matches": self.store_matches,
            "restored": _counts(self.restored),
            "already_present": _counts(self.present),
        }


@dataclass
class JobRestore:
    """What came back for one job asked for with `jobs`."""

    restored: Counter = field(default_factory=Counter)
    present: Counter = field(default_factory=Counter)
    archives: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "found": bool(self.archives),
            "restored": _counts(self.restored),
            "already_present": _counts(self.present),
            "archives": self.archives,
        }


def _counts(counter: Counter) -> dict:
    return dict(sorted(counter.items()), total=sum(counter.values()))


@dataclass
class RestoreReport:
    """What a restore found and did; counts are archive lines (records) by section, a whole
    events array (of a removed job) counted under `event_arrays`."""

    store_file: str
    archive_file: str  # the newest archive
    dry_run: bool
    store_matches: bool = False  # the store is the one the newest archive was made from
    archives: list[ArchiveUse] = field(default_factory=list)  # newest first
    jobs: dict[str, JobRestore] | None = None
    skipped_files: list[str] = field(default_factory=list)  # in --archive-dir, not archives
    bytes_before: int = 0
    bytes_after: int = 0
    rewritten: bool = False
    reader: str | None = None

    @property
    def restored(self) -> Counter:
        return sum((use.restored for use in self.archives), Counter())

    @property
    def present(self) -> Counter:
        return sum((use.present for use in self.archives), Counter())

    @property
    def restored_count(self) -> int:
        return sum(self.restored.values())

    @property
    def present_count(self) -> int:
        return sum(self.present.values())

    @property
    def jobs_not_found(self) -> list[str]:
        return [job for job, found in (self.jobs or {}).items() if not found.archives]

    def as_dict(self, runner: str = "streamclean") -> dict:
        document = {
            "runner": runner,
            "command": "restore",
            "store_file": self.store_file,
            "archive_file": self.archive_file,
            "dry_run": self.dry_run,
            "store_matches_archive": self.store_matches,
            "restored": _counts(self.restored),
            "already_present": _counts(self.present),
            "store_bytes_before": self.bytes_before,
            "store_bytes_after": self.bytes_after,
            "rewritten": self.rewritten,
            "reader": self.reader,
            "archives": [use.as_dict() for use in self.archives],
        }
        if self.skipped_files:
            document["skipped_files"] = self.skipped_files
        if self.jobs is not None:
            document["jobs"] = {job: found.as_dict() for job, found in self.jobs.items()}
            document["jobs_not_found"] = self.jobs_not_found
        return document


def restore(
    store_file: str | os.PathLike,
    archive_files: str | os.PathLike | Sequence[str | os.PathLike] = (),
    *,
    archive_dir: str | os.PathLike | None = None,
    jobs: Iterable[str] | None = None,
    any_store_path: bool = False,
    dry_run: bool = False,
    lock_file: str | os.PathLike | None = None,
    reader: str = "auto",
    progress: Progress | None = None,
) -> RestoreReport:
    """Put back every record of the archives (`archive_files`, and every archive in
    `archive_dir`) that is missing from the store; with `jobs`, only those jobs' records.

    Raises a StreamcleanError on failure (ArchiveError for an archive that is invalid, with
    its line number, that names another store file, or whose record has no place here), with
    the store exactly as it was.
    """
    choice = check_reader(reader)
    if isinstance(archive_files, (str, os.PathLike)):
        archive_files = [archive_files]
    wanted = None if jobs is None else list(dict.fromkeys(jobs))
    signals.run_started()
    uses, skipped = _archives(list(archive_files), archive_dir)
    report = RestoreReport(
        str(store_file), uses[0].file, dry_run, archives=uses, skipped_files=skipped
    )
    if wanted is not None:
        report.jobs = {job: JobRestore() for job in wanted}
    reads = [("--archive-file", use.file) for use in uses]
    with store_under_lock(store_file, dry_run, lock_file, reads=reads) as (store, source, snapshot):
        if not any_store_path:
            _check_store_path(uses, store)
        report.bytes_before = report.bytes_after = snapshot.size
        _match(uses, source.fileno(), snapshot.size)
        report.store_matches = uses[0].store_matches
        for name in candidates(choice):
            try:
                _attempt(name, store, source, snapshot, report, not dry_run, progress)
                break
            except LayoutMismatch:
                source.seek(0)
                if choice == "layout":
                    raise InvalidStoreError(
                        "not in the service's layout, which STREAMCLEAN_READER=layout "
                        "requires (valid JSON: unset it, or set auto or general)"
                    ) from None
    return report


def archive_paths(
    files: Sequence[str | os.PathLike], folder: str | os.PathLike | None
) -> tuple[list[str], list[str]]:
    """The archives a restore reads: `files`, then every regular file in `folder` whose first
    line is an archive header (by name, not following symlinks); and the files of `folder`
    that are not archives. The command line holds its outputs to these before the run."""
    paths, skipped = [str(path) for path in files], []
    if folder is not None:
        try:
            names = sorted(os.listdir(folder))
        except OSError as exc:
            raise ArchiveError(
                f"cannot list the archive folder {folder}: {exc.strerror}",
                "the store was left unchanged",
            ) from None
        for name in names:
            path = os.path.join(folder, name)
            if not os.path.isfile(path) or os.path.islink(path):
                continue
            if _is_archive(path):
                paths.append(path)
            else:
                skipped.append(path)
        if len(paths) == len(files):
            raise ArchiveError(
                f"no streamclean archive in {folder}", "the store was left unchanged"
            )
    return paths, skipped


def _archives(files: list, folder) -> tuple[list[ArchiveUse], list[str]]:
    """The archives to restore, newest first by their header's `now`, each once (a file named
    twice, or hard-linked under two names, or a copy, counts once); the files of `folder` that
    are not archives. Only headers are read here."""
    paths, skipped = archive_paths(files, folder)
    if not paths:
        raise UsageError("no archive given", "give --archive-file or --archive-dir")
    uses: list[tuple[datetime, ArchiveUse]] = []
    seen: set[tuple] = set()
    for path in paths:
        reader = ArchiveReader(path)
        reader.close()
        head = reader.header
        same_run = (head["store"], head["now"], head["after"]["sha256"], head["records"])
        if reader.identity in seen or same_run in seen:
            continue  # the same file under another name, or a copy of it: read once
        seen.update((reader.identity, same_run))
        use = ArchiveUse(path, head["now"], head["records"], head["store"], head)
        uses.append((reader.now, use))
    uses.sort(key=lambda pair: pair[0], reverse=True)
    return [use for _, use in uses], skipped


def _check_store_path(uses: list[ArchiveUse], store: Path) -> None:
    """Each archive's header names the store file it was made from: this one."""
    for use in uses:
        if os.path.realpath(use.store_path) != str(store):
            raise ArchiveError(
                f"the archive {use.file} is of the store {use.store_path}, not of {store}",
                "the store was left unchanged; if the store was moved there, add --any-store-path",
            )


def _is_archive(path: str) -> bool:
    try:
        ArchiveReader(path).close()
    except ArchiveError:
        return False
    return True


def _match(uses: list[ArchiveUse], fd: int, size: int) -> None:
    """Which archives were made onto exactly this store (the store is digested only if some
    archive names its size)."""
    digest = None
    for use in uses:
        after = use.header["after"]
        if after["size"] == size:
            digest = digest or sha256_of(fd)
            use.store_matches = after["sha256"] == digest


def _attempt(
    name: str,
    store: Path,
    source,
    snapshot: Snapshot,
    report: RestoreReport,
    write: bool,
    progress: Progress | None,
) -> None:
    for use in report.archives:
        use.restored.clear()
        use.present.clear()
    if report.jobs is not None:
        report.jobs = {job: JobRestore() for job in report.jobs}
    replace = None
    if write:
        _ensure_space(store, snapshot.size + sum(_removed(use) for use in report.archives))
        replace = AtomicReplace(store, snapshot, made="restored")
    readers: list[ArchiveReader] = []
    try:
        for rank, use in enumerate(report.archives):
            readers.append(ArchiveReader(use.file, rank))
        with _rolled_back_on_error(replace):
            source.seek(0)
            on_progress = (
                None
                if progress is None
                else (lambda done: progress("restore", done, snapshot.size))
            )
            walk = reader_class(name)(source, on_progress)
            fd = source.fileno()
            out = RangeWriter(
                walk.window,
                replace.open if replace else lambda: None,
                lambda target, start, n: _copy_range(fd, target, n, start),
                _write_new_store,
            )
            exact = all(use.store_matches for use in report.archives) and report.jobs is None
            try:
                merge = _Merge(
                    walk,
                    _Heads(readers, report),
                    out,
                    fd,
                    report,
                    canonical=name == "layout" and not exact,
                )
                merge.run(snapshot.size)
            finally:
                out.close()
            if report.jobs is not None and len(report.jobs_not_found) == len(report.jobs):
                raise ArchiveError(
                    f"none of the jobs asked for is in the archives given: {', '.join(report.jobs)}",
                    "the store was left unchanged",
                )
            if replace is not None and out.fd is not None:
                with signals.critical_section():
                    replace.commit()
                report.rewritten = True
    finally:
        for entries in readers:
            entries.close()
    report.reader = name
    report.bytes_after = snapshot.size + out.inserted


def _removed(use: ArchiveUse) -> int:
    return use.header["before"]["size"] - use.header["after"]["size"]


def _ensure_space(store: Path, needed: int) -> None:
    """The restored store is written beside the current one and is at most as large as the
    store plus what the archives' cleanups took (their headers say how much)."""
    try:
        vfs = os.statvfs(store.parent)
    except OSError:
        return
    free = vfs.f_bavail * vfs.f_frsize
    if free < needed:
        raise WriteError(
            f"not enough free space for the restored store in {store.parent}: "
            f"{megabytes(free)} free, {megabytes(needed)} needed",
            "the store was left unchanged; free space there and run again",
        )


class _Heads:
    """The next line of each archive (one line an archive in memory), filtered to the jobs
    asked for; counts what each puts back or finds present."""

    def __init__(self, readers: list[ArchiveReader], report: RestoreReport) -> None:
        self.report = report
        self._lines = [self._filtered(iter(reader)) for reader in readers]
        self.heads: list[Entry | None] = [next(lines, None) for lines in self._lines]

    def _filtered(self, entries: Iterator[Entry]) -> Iterator[Entry]:
        jobs = self.report.jobs
        for entry in entries:
            if jobs is None or entry.job in jobs:
                yield entry

    def advance(self, rank: int) -> Entry:
        entry = self.heads[rank]
        assert entry is not None, "advanced past an archive's end"
        self.heads[rank] = next(self._lines[rank], None)
        return entry

    def head(self, rank: int) -> Entry:
        entry = self.heads[rank]
        assert entry is not None, "no line where one was found"
        return entry

    def least_key(self, section: str) -> str | None:
        keys = [e.key for e in self.heads if e is not None and e.section == section]
        return min(keys) if keys else None

    def counted(self, entry: Entry, kind: str, restored: bool) -> None:
        use = self.report.archives[entry.archive]
        (use.restored if restored else use.present)[kind] += 1
        if self.report.jobs is not None:
            found = self.report.jobs[entry.job]
            (found.restored if restored else found.present)[kind] += 1
            if use.file not in found.archives:
                found.archives.append(use.file)

    def left(self) -> Entry | None:
        """The first line not placed, if any (after the store's walk); every archive is read
        to its end first, so a cut archive is refused as such."""
        pending = [entry for entry in self.heads if entry is not None]
        for lines in self._lines:
            for _ in lines:
                pass
        return pending[0] if pending else None


class _Gap:
    """Records put back at one place of a container, streamed into the new store one at a
    time: behind a member (`after_a_member`) or just after the opening bracket. The comma
    rule: a record behind a member or another record gets a comma before it; at the start
    of a container followed by a member, one comma after the last (`close`)."""

    __slots__ = ("after_a_member", "at", "closing", "count", "merge")

    def __init__(self, merge: _Merge, at: int, after_a_member: bool, closing: bytes) -> None:
        self.merge, self.at, self.after_a_member, self.count = merge, at, after_a_member, 0
        self.closing = closing  # the whitespace before the closing bracket, in the service's layout

    def add(self, separator: bytes, head: bytes, text: bytes, after: bytes) -> None:
        if self.count or self.after_a_member:
            if b"," not in separator:
                separator = b"," + separator
        elif b"," in separator:
            separator = separator.replace(b",", b"", 1)
        if b"," in after:
            after = after.replace(b",", b"", 1)
        self.merge.out.insert(self.at, b"".join((separator, head, text, after)))
        self.count += 1

    def close(self, before_a_member: bool) -> None:
        if not self.count or self.after_a_member:
            return
        if before_a_member:
            self.merge.out.insert(self.at, b",")
        elif self.merge.canonical:
            self.merge.out.insert(self.at, self.closing)


class _Item:
    """One element of a job's events array as restore builds it: a store element (`member`),
    an element of an archived whole array, or an archived event (`entry`); `text` the bytes
    it is written as (read from the store when None), `value` decoded."""

    __slots__ = ("entry", "member", "text", "value")

    def __init__(self, member, entry: Entry | None, text: bytes | None, value: object) -> None:
        self.member, self.entry, self.text, self.value = member, entry, text, value


class _Merge:
    """The store's walk and the archives' lines side by side; missing records inserted."""

    def __init__(
        self,
        reader,
        heads: _Heads,
        out: RangeWriter,
        fd: int,
        report: RestoreReport,
        canonical: bool,
    ) -> None:
        self.reader, self.heads, self.out, self.fd, self.report = reader, heads, out, fd, report
        self.canonical = (
            canonical  # write records as the service does (a changed store in its layout)
        )

    def run(self, size: int) -> None:
        reader = self.reader
        for section in reader.sections(set()):
            first = reader.first_byte(section)
            if self.heads.least_key(section.key) is not None and first == 0x7B:
                if section.key == "events":
                    end = self.events(section.value_start)
                else:
                    end = self.records(section.key, section.value_start)
            else:
                end = reader.check(section)[0]
            section.value_end = end
        self.out.finish(size)
        entry = self.heads.left()
        if entry is not None:
            raise _NoPlace(
                f"{self._where(entry)}: the store has no place for it (its section {entry.section!r} "
                "is missing or not an object)",
                "the store was left unchanged",
            )

    def _where(self, entry: Entry) -> str:
        return f"archive {self.report.archives[entry.archive].file}: line {entry.line}"

    # -- the pieces of a record ----------------------------------------------------------------

    def text(self, entry: Entry, indent: bytes) -> bytes:
        """The record's value as it is written: as archived, or as the service writes it."""
        if not self.canonical:
            return entry.text
        text = service_text(entry.value)
        return entry.text if text is None else text.replace(b"\n", indent)

    def put(self, gap: _Gap, entry: Entry, text: bytes | None = None) -> None:
        element = entry.position is not None
        indent = _ELEMENT_INDENT if element else _MEMBER_INDENT
        text = self.text(entry, indent) if text is None else text
        if not self.canonical:
            gap.add(entry.separator, entry.head, text, entry.after)
            return
        head = b""
        if not element:
            try:
                head = json.dumps(entry.key, ensure_ascii=False).encode("utf-8") + b": "
            except UnicodeEncodeError:
                head = entry.head
        gap.add(indent, head, text, b"")

    # -- sections of keyed records --------------------------------------------------------------

    def records(self, section: str, open_at: int) -> int:
        walk = self.reader.records(open_at, fields=_KEYS_ONLY)
        gap = _Gap(self, open_at + 1, False, b"\n  ")
        for member in walk:
            self.restore_before(section, member.key, gap)
            gap.close(True)
            self.present_at(section, member.key)
            gap = _Gap(self, member.value_end, True, b"\n  ")
        self.restore_before(section, None, gap)
        gap.close(False)
        return walk.close + 1

    def restore_before(self, section: str, bound: str | None, gap: _Gap) -> None:
        """Every archived record of `section` whose key sorts before `bound` (a key the store
        does not hold): the newest archive's goes back, any older one's is then present."""
        heads = self.heads
        while (key := heads.least_key(section)) is not None and (bound is None or key < bound):
            ranks = [
                rank
                for rank, e in enumerate(heads.heads)
                if e is not None and e.section == section and e.key == key
            ]
            if section == "events":
                self.restore_array(key, ranks, gap)
                continue
            first = heads.advance(ranks[0])
            self.put(gap, first)
            heads.counted(first, section, True)
            for rank in ranks[1:]:
                heads.counted(heads.advance(rank), section, False)

    def present_at(self, section: str, key: str) -> None:
        heads = self.heads
        for rank, entry in enumerate(heads.heads):
            if entry is not None and entry.section == section and entry.key == key:
                heads.counted(heads.advance(rank), section, False)

    # -- events ---------------------------------------------------------------------------------

    def events(self, open_at: int) -> int:
        reader = self.reader
        arrays = reader.job_arrays(open_at, fields=_KEYS_ONLY)
        gap = _Gap(self, open_at + 1, False, b"\n  ")
        for job in arrays:
            self.restore_before("events", job.key, gap)
            gap.close(True)
            layers = self._layers(job.key)
            if layers:
                if job.value is not STREAM and not isinstance(job.values, list):
                    entry = self.heads.head(layers[0])
                    raise _NoPlace(
                        f"{self._where(entry)}: event {entry.position} of job {entry.key!r} has no place: "
                        "its events in the store are not an array",
                        "the store was left unchanged",
                    )
                self.into_store_array(job, layers)
            elif job.value is STREAM:
                for _ in reader.elements(job):
                    pass
            gap = _Gap(self, job.value_end, True, b"\n  ")
        self.restore_before("events", None, gap)
        gap.close(False)
        return arrays.close + 1

    def _layers(self, key: str) -> list[int]:
        """The archives whose next lines are single events of job `key`, newest first; a whole
        array of it is counted present (the store has one) and passed."""
        heads = self.heads
        for rank, entry in enumerate(heads.heads):
            if (
                entry is not None
                and entry.section == "events"
                and entry.key == key
                and entry.position is None
            ):
                heads.counted(heads.advance(rank), "event_arrays", False)
        return [
            rank
            for rank, e in enumerate(heads.heads)
            if e is not None and e.section == "events" and e.key == key and e.position is not None
        ]

    def restore_array(self, key: str, ranks: list[int], gap: _Gap) -> None:
        """A job's events array the store lacks: the newest archive's whole array, with the
        single events of the archives that hold some inserted in turn."""
        heads = self.heads
        whole: Entry | None = None
        for rank in ranks:
            if heads.head(rank).position is None:
                entry = heads.advance(rank)
                if whole is None:
                    whole = entry
                    heads.counted(entry, "event_arrays", True)
                else:
                    heads.counted(entry, "event_arrays", False)
        layers = self._layers(key)
        if whole is None:
            entry = heads.head(layers[0])
            raise _NoPlace(
                f"{self._where(entry)}: event {entry.position} of job {key!r} has no place: the job's events "
                "array is neither in the store nor whole in any archive given",
                "the store was left unchanged",
            )
        if not layers:
            self.put(gap, whole)
            return
        if not isinstance(whole.value, list):
            entry = heads.head(layers[0])
            raise _NoPlace(
                f"{self._where(entry)}: event {entry.position} of job {key!r} has no place: its archived "
                "events are not an array",
                "the store was left unchanged",
            )
        base = (_Item(None, None, self._element_text(value), value) for value in whole.value)
        items = self._weave(base, layers, key)
        texts = [
            item.text or b"" for item in items
        ]  # one archived array (an archive line) and its events
        body = b",".join(_ELEMENT_INDENT + text for text in texts)
        text = b"[" + body + b"\n    ]" if texts else b"[]"
        self.put(gap, whole, text)

    @staticmethod
    def _element_text(value: object) -> bytes:
        text = service_text(value)
        if text is None:  # a lone surrogate: escaped
            text = json.dumps(value, ensure_ascii=True, sort_keys=True, indent=2).encode("utf-8")
        return text.replace(b"\n", _ELEMENT_INDENT)

    def into_store_array(self, job, layers: list[int]) -> None:
        """Single events back into a job's array in the store, each archive's in turn."""
        base = (_Item(element, None, None, element.value) for element in self.reader.elements(job))
        items = self._weave(base, layers, job.key)
        gap = _Gap(self, job.value_start + 1, False, b"\n    ")
        for item in items:
            if item.member is not None:
                gap.close(True)
                gap = _Gap(self, item.member.value_end, True, b"\n    ")
            elif item.entry is not None:
                self.put(gap, item.entry, item.text)
        gap.close(False)

    def _weave(self, items: Iterator[_Item], ranks: list[int], key: str) -> Iterator[_Item]:
        """A job's array with the single events of the archives `ranks` (newest first) put
        back, as if each archive were restored in turn, newest first.

        An event of archive k has the position it had in the array as cleanup k found it:
        the elements, in the final order, that were in the array then — the store's, and the
        events of archive k and of every newer one (`count[k]` counts them as they go out).
        So an archived event goes out when as many of those went out as its position; where
        several are due, the oldest archive's first (restored last, it is put in front).
        An element already at its archive's place is that event, present: it is looked for
        oldest archive first, since an event cleanup k took was not in the arrays the newer
        cleanups found (so a second restore finds every event where it was put back)."""
        heads = self.heads
        count = dict.fromkeys(ranks, 0)

        def pending(rank: int) -> Entry | None:
            entry = heads.heads[rank]
            if (
                entry is None
                or entry.section != "events"
                or entry.key != key
                or entry.position is None
            ):
                return None
            return entry

        def due(rank: int) -> Entry | None:
            entry = pending(rank)
            return entry if entry is not None and (entry.position or 0) <= count[rank] else None

        def went_out(oldest_view: int) -> None:
            for rank in ranks:
                if rank >= oldest_view:
                    count[rank] += 1

        def put_back(rank: int) -> _Item:
            entry = heads.advance(rank)
            heads.counted(entry, "events", True)
            went_out(rank)
            return _Item(None, entry, self.text(entry, _ELEMENT_INDENT), entry.value)

        for item in items:
            while True:
                found = next(
                    (
                        rank
                        for rank in reversed(ranks)
                        if (entry := due(rank)) is not None
                        and entry.position == count[rank]
                        and self._same(entry, item)
                    ),
                    None,
                )
                if found is not None:
                    heads.counted(heads.advance(found), "events", False)
                    went_out(found)
                    break
                ready = [rank for rank in ranks if due(rank) is not None]
                if not ready:
                    went_out(-1)
                    break
                yield put_back(self._newest_twin(ready, due))
            yield item
        while True:
            ready = [rank for rank in ranks if due(rank) is not None]
            if ready:
                yield put_back(self._newest_twin(ready, due))
                continue
            left = [rank for rank in ranks if pending(rank) is not None]
            if not left:
                return
            yield put_back(left[0])

    def _newest_twin(self, ready: list[int], due: Callable[[int], Entry | None]) -> int:
        """Which due event goes out next: the oldest archive's, unless a newer archive holds
        the same event due here too (a record restored and taken again by a later cleanup):
        then the newer one goes back and the older one is present, as one at a time would do."""
        oldest = ready[-1]
        event = due(oldest)
        for rank in ready[:-1]:
            twin = due(rank)
            if (
                event is not None
                and twin is not None
                and (twin.text == event.text or twin.value == event.value)
            ):
                self.heads.counted(self.heads.advance(oldest), "events", False)
                return rank
        return oldest

    def _same(self, entry: Entry, item: _Item) -> bool:
        """Whether an element is the archived event: the same bytes or the same value."""
        return (item.value is not None and entry.value == item.value) or self.text(
            entry, _ELEMENT_INDENT
        ) == self._bytes(item)

    def _bytes(self, item: _Item) -> bytes:
        if item.text is not None:
            return item.text
        member = item.member
        return os.pread(self.fd, member.value_end - member.value_start, member.value_start)

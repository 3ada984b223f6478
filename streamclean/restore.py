"""`streamclean restore`: the records an archive holds, put back where a cleanup took them.

    >>> report = restore("runtime/async_jobs/store.v1.json", "archive-20261128.jsonl.gz")
    >>> report.restored_count, report.present_count

A merge of two streams in store order, the store (by the same readers as a cleanup) and the
archive; the new store is swapped in as a cleanup's is, with the same guarantees. Onto the
store the cleanup produced it gives back the original byte for byte. See docs/archive.md.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import signals
from .archive import ArchiveError, ArchiveReader, Entry, joined
from .cleanup import _copy_range, _rolled_back_on_error, _write_new_store, store_under_lock
from .errors import InvalidStoreError, WriteError
from .readers import LayoutMismatch, candidates, check_reader, reader_class
from .readers.base import STREAM
from .splice import RangeWriter
from .swap import AtomicReplace
from .units import megabytes

Progress = Callable[[str, int, int], None]


class _NoPlace(ArchiveError):
    """An archived record that has no place in the store (its section or array is missing)."""


@dataclass
class RestoreReport:
    """What a restore found and did; counts are archive lines (records) by section, a whole
    events array (of a removed job) counted under `event_arrays`."""

    store_file: str
    archive_file: str
    dry_run: bool
    store_matches: bool = False  # the store is the one the archive was made from
    restored: Counter = field(default_factory=Counter)
    present: Counter = field(default_factory=Counter)
    bytes_before: int = 0
    bytes_after: int = 0
    rewritten: bool = False
    reader: str | None = None

    @property
    def restored_count(self) -> int:
        return sum(self.restored.values())

    @property
    def present_count(self) -> int:
        return sum(self.present.values())

    def as_dict(self, runner: str = "streamclean") -> dict:
        return {
            "runner": runner,
            "command": "restore",
            "store_file": self.store_file,
            "archive_file": self.archive_file,
            "dry_run": self.dry_run,
            "store_matches_archive": self.store_matches,
            "restored": dict(sorted(self.restored.items()), total=self.restored_count),
            "already_present": dict(sorted(self.present.items()), total=self.present_count),
            "store_bytes_before": self.bytes_before,
            "store_bytes_after": self.bytes_after,
            "rewritten": self.rewritten,
            "reader": self.reader,
        }


def restore(
    store_file: str | os.PathLike,
    archive_file: str | os.PathLike,
    *,
    dry_run: bool = False,
    lock_file: str | os.PathLike | None = None,
    reader: str = "auto",
    progress: Progress | None = None,
) -> RestoreReport:
    """Put back every record of `archive_file` that is missing from the store.

    Raises a StreamcleanError on failure (ArchiveError for an archive that is invalid, with
    its line number, or made from another store), with the store exactly as it was.
    """
    choice = check_reader(reader)
    signals.run_started()
    report = RestoreReport(str(store_file), str(archive_file), dry_run)
    head = ArchiveReader(archive_file)
    header = head.header
    head.close()
    with store_under_lock(store_file, dry_run, lock_file, reads=[("--archive-file", archive_file)]) as (
            store, source, snapshot):
        report.bytes_before = report.bytes_after = snapshot.size
        after = header["after"]
        report.store_matches = snapshot.size == after["size"] and _digest(source.fileno()) == after["sha256"]
        write = report.store_matches and not dry_run
        no_place = False  # an archived record with no place in this store at all
        for name in candidates(choice):
            try:
                _attempt(name, store, source, snapshot, archive_file, header, report, write, progress)
                break
            except _NoPlace:
                if report.store_matches:
                    raise
                no_place = True  # another store: refused below
                break
            except LayoutMismatch:
                source.seek(0)
                if choice == "layout":
                    raise InvalidStoreError("not in the service's layout, which STREAMCLEAN_READER=layout "
                                            "requires (valid JSON: unset it, or set auto or general)") from None
    if not report.store_matches and (report.restored_count or no_place):
        raise ArchiveError(
            f"the archive {archive_file} was made from another store (or this one changed since): "
            f"{'some' if no_place else report.restored_count} of its records are missing here, and the store is not the one "
            f"it names ({header['after']['size']} bytes, sha256 {header['after']['sha256'][:16]}…)",
            "the store was left unchanged; restore onto the store that cleanup produced",
        )
    return report


def _attempt(name, store, source, snapshot, archive_file, header, report, write, progress) -> None:
    report.restored.clear()
    report.present.clear()
    replace = None
    if write:
        _ensure_space(store, header["before"]["size"])
        replace = AtomicReplace(store, snapshot, made="restored")
    entries = ArchiveReader(archive_file)
    try:
        with _rolled_back_on_error(replace):
            source.seek(0)
            on_progress = None if progress is None else (lambda done: progress("restore", done, snapshot.size))
            reader = reader_class(name)(source, on_progress)
            fd = source.fileno()
            out = RangeWriter(reader.window, replace.open if replace else lambda: None,
                              lambda target, start, n: _copy_range(fd, target, n, start), _write_new_store)
            try:
                _Merge(reader, iter(entries), out, fd, report).run(snapshot.size)
            finally:
                out.close()
            if replace is not None and out.fd is not None:
                with signals.critical_section():
                    replace.commit()
                report.rewritten = True
    finally:
        entries.close()
    report.reader = name
    report.bytes_after = snapshot.size + out.inserted


def _ensure_space(store: Path, needed: int) -> None:
    """The restored store is written beside the current one and is about as large as the
    store was before the cleanup (the archive's header says how large)."""
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


def _digest(fd: int) -> str:
    sha = hashlib.sha256()
    offset = 0
    while block := os.pread(fd, 1 << 20, offset):
        sha.update(block)
        offset += len(block)
    return sha.hexdigest()


class _Merge:
    """The store's walk and the archive's lines side by side; missing records inserted."""

    def __init__(self, reader, entries, out: RangeWriter, fd: int, report: RestoreReport) -> None:
        self.reader, self.out, self.fd, self.report = reader, out, fd, report
        self._entries = entries
        self._next: Entry | None = next(entries, None)

    def peek(self, section: str) -> Entry | None:
        entry = self._next
        return entry if entry is not None and entry.section == section else None

    def take(self) -> Entry:
        entry = self._next
        self._next = next(self._entries, None)
        return entry

    def run(self, size: int) -> None:
        reader = self.reader
        for section in reader.sections(set()):
            first = reader.first_byte(section)
            if self.peek(section.key) is not None and first == 0x7B:
                if section.key == "events":
                    end = self.events(section.value_start)
                else:
                    end = self.records(section.key, section.value_start)
            else:
                end = reader.check(section)[0]
            section.value_end = end
        self.out.finish(size)
        if self._next is not None:
            entry = self._next
            raise _NoPlace(f"archive line {entry.line}: the store has no place for it (section "
                               f"{entry.section!r} missing, not an object, or out of order)",
                               "the store was left unchanged")

    def put(self, entries: list[Entry], open_at: int, previous_end: int | None, before_a_member: bool,
            kind: str) -> None:
        if entries:
            data = joined(entries, previous_end is not None, before_a_member)
            self.out.insert(open_at + 1 if previous_end is None else previous_end, data)
            self.report.restored[kind] += len(entries)

    def records(self, section: str, open_at: int) -> int:
        records = self.reader.records(open_at)
        previous_end = None
        for member in records:
            group = []
            while (entry := self.peek(section)) is not None and entry.key < member.key:
                group.append(self.take())
            self.put(group, open_at, previous_end, True, section)
            while (entry := self.peek(section)) is not None and entry.key == member.key:
                self.take()
                self.report.present[section] += 1
            previous_end = member.value_end
        group = []
        while self.peek(section) is not None:
            group.append(self.take())
        self.put(group, open_at, previous_end, False, section)
        return records.close + 1

    def _whole_arrays_before(self, key: str | None) -> list[Entry]:
        group = []
        while (entry := self.peek("events")) is not None and (key is None or entry.key < key):
            if entry.position is not None:
                raise _NoPlace(f"archive line {entry.line}: the events array of job {entry.key!r} "
                                   "is not in the store", "the store was left unchanged")
            group.append(self.take())
        return group

    def events(self, open_at: int) -> int:
        reader = self.reader
        arrays = reader.job_arrays(open_at)
        previous_end = None
        for job in arrays:
            self.put(self._whole_arrays_before(job.key), open_at, previous_end, True, "event_arrays")
            streamed = False
            while (entry := self.peek("events")) is not None and entry.key == job.key:
                if entry.position is None:
                    self.take()
                    self.report.present["event_arrays"] += 1
                else:
                    self.elements(job)
                    streamed = True
            if job.value is STREAM and not streamed:
                for _ in reader.elements(job):
                    pass
            previous_end = job.value_end
        self.put(self._whole_arrays_before(None), open_at, previous_end, False, "event_arrays")
        return arrays.close + 1

    def elements(self, job) -> None:
        """Single events of `job`'s array back at their positions; one whose bytes are those
        at its position already is present."""
        key, placed, previous_end = job.key, 0, None
        for element in self.reader.elements(job):
            group = []
            while (entry := self.peek("events")) is not None and entry.key == key and entry.position is not None \
                    and entry.position <= placed:
                if entry.position == placed and entry.text == self._bytes(element):
                    self.take()
                    self.report.present["events"] += 1
                    break
                group.append(self.take())
                placed += 1
            self.put(group, job.value_start, previous_end, True, "events")
            previous_end = element.value_end
            placed += 1
        group = []
        while (entry := self.peek("events")) is not None and entry.key == key and entry.position is not None:
            group.append(self.take())
        self.put(group, job.value_start, previous_end, False, "events")

    def _bytes(self, member) -> bytes:
        return os.pread(self.fd, member.value_end - member.value_start, member.value_start)

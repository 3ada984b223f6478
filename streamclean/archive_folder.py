"""The archive folder (`clean --archive-dir DIR`, `--archive-keep DUR`): the run names its
archive `<store name>.<UTC now>.jsonl.gz` (`-2`, `-3`, ... when taken; never over a file), and
after a successful run removes this store's archives there that are older than DUR, judged by
their header, never following a symlink, each with one unlink. Names, modes, what pruning
leaves and why: docs/archive.md.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from . import fs
from .archive import ArchiveError, ArchiveReader
from .atomicfile import check_writable
from .errors import OutputError, UsageError, WriteError

SUFFIX = ".jsonl.gz"
STAMP = "%Y%m%dT%H%M%SZ"
_STAMP_PATTERN = r"\d{8}T\d{6}Z(?:-[1-9]\d*)?"
# Any name this module gives, whatever the store: no other output of a run may take one (outputs.py).
ANY_ARCHIVE_NAME = re.compile(r".+\." + _STAMP_PATTERN + re.escape(SUFFIX), re.DOTALL)
# a header line is a few hundred bytes; a file without one this soon is not ours
_HEADER_LIMIT = 1 << 16


def stamp(now: datetime) -> str:
    """The run's clock as it appears in an archive's name: UTC, to the second."""
    return now.astimezone(UTC).strftime(STAMP)


def folder_mode(store_mode: int) -> int:
    """The mode a missing archive folder is created with: what a file of the run may allow
    (`fs.private_mode`), with the search bit wherever that lets one read."""
    bits = fs.private_mode(store_mode)
    return bits | ((bits & 0o444) >> 2)


@dataclass(frozen=True)
class Pruned:
    """An archive removed (or, in a dry run, to be removed): its path and its header's `now`."""

    path: Path
    now: str

    def as_dict(self) -> dict[str, str]:
        return {"file": str(self.path), "now": self.now}


class ArchiveFolder:
    """The folder of one store's archives. `store` is the store's real path (the one archive
    headers name); `keep` the seconds an archive is kept (None: never pruned)."""

    def __init__(
        self, path: str | os.PathLike[str], store: Path, keep: float | None = None
    ) -> None:
        self.path = Path(path)
        self.store = store
        self.keep = keep
        self._own = re.compile(
            re.escape(store.name) + r"\." + _STAMP_PATTERN + re.escape(SUFFIX), re.DOTALL
        )

    # -- before the store is read ----------------------------------------------------------------

    def prepare(self, store_mode: int, dry_run: bool) -> None:
        """Check the folder can take an archive, creating it if missing (not in a dry run)."""
        if not dry_run and not os.path.lexists(self.path):
            try:
                os.mkdir(self.path, folder_mode(store_mode))
            except FileExistsError:
                pass  # made meanwhile: checked below like any folder
            except OSError as exc:
                raise OutputError(
                    f"cannot create the archive folder {self.path}: {exc.strerror or exc}",
                    "the store was left unchanged; its parent folder must exist and be writable",
                ) from None
        if dry_run and not os.path.lexists(self.path):
            return
        if not self.path.is_dir():
            raise OutputError(
                f"--archive-dir {self.path} is not a folder",
                "the store was left unchanged; give a folder for the archives",
            )
        if not dry_run:
            try:
                check_writable(self.path / f"{self.store.name}.probe", store_mode=store_mode)
            except OSError as exc:
                raise OutputError(
                    f"cannot write archives into {self.path}: {exc.strerror or exc}",
                    "the store was left unchanged; the folder must be writable",
                ) from None

    # -- names -------------------------------------------------------------------------------------

    def names(self, now: datetime) -> Iterator[Path]:
        """The names an archive of the run at `now` may take, first free one first; endless
        (the caller stops at the first it can link)."""
        base = f"{self.store.name}.{stamp(now)}"
        number = 1
        while True:
            path = self.path / (f"{base}{SUFFIX}" if number == 1 else f"{base}-{number}{SUFFIX}")
            number += 1
            if not os.path.lexists(path):
                yield path

    def is_own_name(self, name: str) -> bool:
        return self._own.fullmatch(name) is not None

    # -- pruning -----------------------------------------------------------------------------------

    def prune(self, now: datetime, written: Path | None, dry_run: bool) -> list[Pruned]:
        """Remove this store's archives older than `now` less `keep` (none if `keep` is None),
        never `written`; in a dry run, only list them. Oldest first."""
        if self.keep is None:
            return []
        cutoff = now - timedelta(seconds=self.keep)
        try:
            folder = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            if dry_run and exc.errno == errno.ENOENT:
                return []  # a dry run creates nothing, and there is nothing in a folder not there
            raise WriteError(
                f"cannot open the archive folder {self.path}: {exc.strerror or exc}",
                "the archives there were left as they were",
            ) from None
        try:
            keep_out = _identity_at(folder, written.name) if written is not None else None
            old = []
            for name in sorted(os.listdir(folder)):
                if not self.is_own_name(name):
                    continue
                found = self._old_archive(folder, name, cutoff)
                if found is not None and found[0] != keep_out:
                    old.append((found[1], name, found[0]))
            old.sort()
            pruned = []
            for moment, name, identity in old:
                if not dry_run and not self._unlink(folder, name, identity):
                    continue
                pruned.append(Pruned(self.path / name, moment.isoformat()))
            if pruned and not dry_run:
                self._sync()
            return pruned
        finally:
            os.close(folder)

    def _old_archive(
        self, folder: int, name: str, cutoff: datetime
    ) -> tuple[tuple[int, int], datetime] | None:
        """(identity, header now) of the archive `name` if it is one of this store's, older
        than `cutoff`; None for anything else (a symlink, not a regular file, not an archive,
        another store's, too new)."""
        try:
            fd = os.open(
                name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder
            )
        except OSError:
            return None  # a symlink (ELOOP), gone meanwhile, unreadable: not ours to judge
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or not _has_first_line(fd):
                return None
            try:  # the reader opens a path: this descriptor's own, so it reads the very file judged
                reader = ArchiveReader(f"/proc/self/fd/{fd}")
            except ArchiveError:
                return None
            head = reader.header
            reader.close()
        finally:
            os.close(fd)
        moment = reader.now
        if head["store"] != str(self.store) or moment >= cutoff:
            return None
        return (st.st_dev, st.st_ino), moment

    def _unlink(self, folder: int, name: str, identity: tuple[int, int]) -> bool:
        """Remove `name` if it still names the file judged; whether it was removed."""
        if _identity_at(folder, name) != identity:
            return False  # replaced or removed since it was read: not what was judged
        try:
            fs.unlink_at(name, folder)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise WriteError(
                f"cannot remove the old archive {self.path / name}: {exc.strerror or exc}",
                "check the archive folder's permissions",
            ) from None
        return True

    def _sync(self) -> None:
        try:
            fs.fsync_dir(str(self.path))
        except OSError as exc:
            raise WriteError(
                f"cannot sync the archive folder {self.path}: {exc.strerror or exc}",
                "check the disk",
            ) from None


def _identity_at(folder: int, name: str) -> tuple[int, int] | None:
    try:
        st = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


def _has_first_line(fd: int) -> bool:
    """Whether the file's first line (decompressed, if gzip) ends within `_HEADER_LIMIT` bytes:
    so that reading the header of a large file that is not an archive stays cheap."""
    raw = os.pread(fd, _HEADER_LIMIT, 0)
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = zlib.decompressobj(31).decompress(raw, _HEADER_LIMIT)
        except zlib.error:
            return False
    return b"\n" in raw


def check_options(
    archive_dir: str | os.PathLike[str] | None,
    archive_keep: float | None,
    archive_file: str | os.PathLike[str] | None,
) -> None:
    """The archive options' combinations, refused before anything is read."""
    if archive_dir is not None and archive_file is not None:
        raise UsageError(
            "--archive-dir and --archive-file cannot be given together",
            "give one: a folder where the run names the archive, or the archive's name",
        )
    if archive_keep is not None and archive_dir is None:
        raise UsageError(
            "--archive-keep needs --archive-dir", "it removes old archives from that folder"
        )

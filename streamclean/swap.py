"""Swapping the new store in, so the path always holds the whole old or the whole new store.

The new store is written to a temporary file in the store's own folder (a rename is atomic
only within one file system), synced, given the old store's mode and owner, and swapped in.
Where Linux offers it, the swap is `renameat2(RENAME_EXCHANGE)`: the old store is not
destroyed but moved to the temporary name, so we can look at what we really swapped out. If it
is not the file we read, someone replaced the store after our last check: we swap back, and
their write stands. Elsewhere a plain rename follows a final check, with a window of a few
system calls in which a concurrent replace would be lost (the README says so).

Our temporary files are named `<store>.streamclean-<pid>-<hex>.partial`, a pattern nothing
else uses, so a later run can remove those a killed run left behind without touching the
service's own `*.tmp` files.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from . import fs
from .errors import StoreChangedError, StoreFileError, WriteError

_SUFFIX = ".partial"


@dataclass(frozen=True)
class Snapshot:
    """The identity of the store file as we read it."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    mode: int
    uid: int
    gid: int

    @classmethod
    def of(cls, st: os.stat_result) -> "Snapshot":
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode, st.st_uid, st.st_gid)

    def matches(self, st: os.stat_result) -> bool:
        """Same inode, same size, same modification time: nobody wrote it since."""
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) == (
            self.dev,
            self.ino,
            self.size,
            self.mtime_ns,
        )


def leftover_pattern(store: Path) -> re.Pattern[str]:
    return re.compile(re.escape(store.name) + r"\.streamclean-\d+-[0-9a-f]{8}" + re.escape(_SUFFIX))


def remove_leftovers(store: Path) -> list[Path]:
    """Remove temporary files killed runs left beside `store`; call only while holding the lock."""
    pattern = leftover_pattern(store)
    removed = []
    for entry in os.scandir(store.parent):
        if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            removed.append(Path(entry.path))
    return removed


class AtomicReplace:
    """A temporary file beside `store` that either replaces it whole or disappears.

    `open()` creates it; `commit()` syncs and swaps it in, refusing if the store is no longer
    the file described by `snapshot`; `rollback()` removes it and never raises.
    """

    def __init__(self, store: Path, snapshot: Snapshot, backup: Path | None = None) -> None:
        self.store = store
        self.snapshot = snapshot
        self.backup = backup
        self.temp = store.with_name(
            f"{store.name}.streamclean-{os.getpid()}-{secrets.token_hex(4)}{_SUFFIX}"
        )
        self.fd: int | None = None
        self._temp_exists = False
        self._temp_ino: int | None = None

    def open(self) -> int:
        try:
            self.fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StoreFileError(
                f"cannot create the new store beside the old one: {exc.strerror}: {self.temp}",
                "the store's folder must be writable by this user",
            ) from None
        self._temp_exists = True
        self._temp_ino = os.fstat(self.fd).st_ino
        return self.fd

    def commit(self) -> None:
        """Sync the new store and swap it in; on any failure the old store stays in place."""
        assert self.fd is not None
        try:
            fs.fsync(self.fd)
            os.fchmod(self.fd, stat.S_IMODE(self.snapshot.mode))
            self._keep_owner()
            os.close(self.fd)
        except OSError as exc:
            raise WriteError(f"cannot finish writing the new store {self.temp}: {exc.strerror}") from None
        finally:
            self.fd = None
        self._check_unchanged()
        self._swap()

    def _keep_owner(self) -> None:
        if (self.snapshot.uid, self.snapshot.gid) == (os.geteuid(), os.getegid()):
            return
        try:
            os.fchown(self.fd, self.snapshot.uid, self.snapshot.gid)
        except PermissionError:
            pass  # only root may give files away; the store keeps our owner then

    def _check_unchanged(self) -> None:
        try:
            current = os.stat(self.store)
        except FileNotFoundError:
            raise StoreChangedError(
                f"the store {self.store} disappeared during the run", "nothing was written"
            ) from None
        if not self.snapshot.matches(current):
            raise _changed(self.store)

    def _swap(self) -> None:
        try:
            fs.exchange(str(self.temp), str(self.store))
        except OSError as exc:
            if exc.errno not in fs.exchange_supported_errors():
                raise WriteError(f"cannot swap in the new store: {exc.strerror}: {self.store}") from None
            self._replace()
            return
        # The old store now sits at the temporary name. Make sure it is the one we read.
        if not self.snapshot.matches(os.stat(self.temp)):
            self._swap_back()
            raise _changed(self.store)
        try:
            fs.fsync_dir(str(self.store.parent))
        except OSError as exc:
            self._swap_back()
            raise WriteError(f"cannot sync the store's folder: {exc.strerror}: {self.store.parent}") from None
        self._retire_old_store()

    def _swap_back(self) -> None:
        """Put the file we swapped out back at the store path; ours goes to the temp name.

        If yet another write replaced ours at the store path in the meantime, the temp name
        now holds that newest store: swap once more so the path has it, and keep the older one
        under a `displaced` name rather than delete anything that is not ours.
        """
        fs.exchange(str(self.temp), str(self.store))
        if os.stat(self.temp).st_ino == self._temp_ino:
            return
        fs.exchange(str(self.temp), str(self.store))
        displaced = self.store.with_name(f"{self.store.name}.streamclean-displaced-{secrets.token_hex(4)}")
        os.replace(self.temp, displaced)
        self._temp_exists = False

    def _retire_old_store(self) -> None:
        if self.backup is not None:
            os.replace(self.temp, self.backup)
        else:
            os.unlink(self.temp)
        self._temp_exists = False

    def _replace(self) -> None:
        """The swap where renameat2 is missing: link the backup, re-check, rename."""
        if self.backup is not None:
            staged = self.backup.with_name(self.backup.name + _SUFFIX)
            _unlink_quietly(staged)
            os.link(self.store, staged)
        self._check_unchanged()
        try:
            fs.replace(str(self.temp), str(self.store))
        except OSError as exc:
            raise WriteError(f"cannot rename the new store into place: {exc.strerror}: {self.store}") from None
        self._temp_exists = False
        if self.backup is not None:
            os.replace(staged, self.backup)
        try:
            fs.fsync_dir(str(self.store.parent))
        except OSError as exc:
            raise WriteError(
                f"the new store is in place but its folder could not be synced: {exc.strerror}",
                "check the disk; after a crash the old store may reappear",
            ) from None

    def rollback(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None
        if self._temp_exists:
            _unlink_quietly(self.temp)
            self._temp_exists = False


def _changed(store: Path) -> StoreChangedError:
    return StoreChangedError(
        f"the store {store} was changed by someone else during the run",
        "nothing was written; run again later",
    )


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass  # a rollback never masks the error that caused it

"""Swapping the new store in, so the path always holds the whole old or the whole new store.

The new store is written beside the old one, synced and swapped in (`renameat2` exchange where
Linux offers it, so what was swapped out can be checked, and swapped back if someone replaced
the store meanwhile); until the run is complete any failure undoes the swap. Its temporary
files, `<store>.streamclean-<pid>-<hex>.partial`, are the only ones a later run removes, once
their writer is gone. The guarantees and their limits: docs/design.md.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from . import fs, signals
from .errors import (
    StoreChangedError,
    StoreFileError,
    StreamcleanError,
    SwapNotUndoneError,
    WriteError,
)

_SUFFIX = ".partial"
_UNCHANGED = "the store was left unchanged"
_NO_HARD_LINKS = (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK)  # vfat, some FUSE
_MAX_SWAPS_BACK = 8  # each one means yet another write landed within microseconds of the last


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
    def of(cls, st: os.stat_result) -> Snapshot:
        return cls(
            st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode, st.st_uid, st.st_gid
        )

    def matches(self, st: os.stat_result) -> bool:
        """Same inode, same size, same modification time: nobody wrote it since."""
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) == (
            self.dev,
            self.ino,
            self.size,
            self.mtime_ns,
        )


def leftover_pattern(store: Path) -> re.Pattern[str]:
    """The names `leftover_name` gives, the writer's pid as group 1."""
    return re.compile(
        re.escape(store.name) + r"\.streamclean-(\d+)-[0-9a-f]{8}" + re.escape(_SUFFIX)
    )


def leftover_name(store: Path) -> Path:
    """A new name for a temporary file beside `store`, one `remove_leftovers` knows."""
    return store.with_name(
        f"{store.name}.streamclean-{os.getpid()}-{secrets.token_hex(4)}{_SUFFIX}"
    )


def unnamed_file(beside: Path, store_mode: int) -> int | None:
    """A file in `beside`'s folder that has no name, so no crash can leave it behind, no more
    open than the store (mode `store_mode`) and at most its owner's; None if none can be made.
    Where the file system has no `O_TMPFILE`, a file is created under a leftover name and
    unlinked at once: a crash in between leaves a file the next run removes."""
    mode = fs.private_mode(store_mode) & 0o600
    flag = getattr(os, "O_TMPFILE", None)
    if flag is not None:
        try:
            return os.open(beside.parent, flag | os.O_RDWR | os.O_CLOEXEC, mode)
        except OSError:
            pass
    name = leftover_name(beside)
    try:
        with signals.critical_section(deliver=True):
            fd = fs.create_file(name, store_mode, mode, read=True)
            os.unlink(name)
    except OSError:
        return None
    return fd


def remove_leftovers(store: Path) -> list[Path]:
    """Remove temporary files killed runs left beside `store`; call only while holding the lock.

    Only those that are provably stale: the process named in the name is gone, and nobody
    holds the flock a writer keeps on its temporary file (a run of another lock file, or in
    another pid namespace, may be writing one beside the same store). One that cannot be
    removed (a read-only folder) stays; the run then fails clearly where it first needs to write.
    """
    pattern = leftover_pattern(store)
    removed = []
    for entry in os.scandir(store.parent):
        match = pattern.fullmatch(entry.name)
        if (
            match
            and entry.is_file(follow_symlinks=False)
            and _remove_if_stale(Path(entry.path), int(match[1]))
        ):
            removed.append(Path(entry.path))
    return removed


def _remove_if_stale(path: Path, pid: int) -> bool:
    if _alive(pid):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # its writer's, while it writes
        if not _same_file(os.stat(path), os.fstat(fd)):
            return False
        os.unlink(path)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def _alive(pid: int) -> bool:
    """Whether a process `pid` runs (in this pid namespace): kill(pid, 0) finds it."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except (OverflowError, OSError):
        return False
    return True


class AtomicReplace:
    """A temporary file beside `store` that either replaces it whole or disappears.

    `open()` creates it; `commit()` syncs and swaps it in, refusing if the store is no longer
    the file described by `snapshot`; `rollback()` removes it and never raises.
    """

    def __init__(
        self, store: Path, snapshot: Snapshot, backup: Path | None = None, made: str = "cleaned"
    ) -> None:
        self.store = store
        self.made = made  # what the new store is, for messages: "cleaned", "restored"
        self.snapshot = snapshot
        self.backup = backup
        self.temp = leftover_name(store)
        self.fd: int | None = None
        self._temp_exists = False  # the temporary name holds our file, which rollback removes
        self._ours: os.stat_result | None = None  # our file as it was swapped in

    def open(self) -> int:
        # A signal between creating the file and noting that it exists would leave it behind.
        with signals.critical_section(deliver=True):
            try:
                # its mode and owner at commit
                # readable too: the archive's header names it by its SHA-256 (`archive.digest`)
                fd = fs.create_file(self.temp, self.snapshot.mode, 0o600, read=True)
            except OSError as exc:
                raise StoreFileError(
                    f"cannot create the new store beside the old one: {exc.strerror}: {self.temp}",
                    "the store's folder must be writable by this user",
                ) from None
            self.fd = fd
            self._temp_exists = True
        try:
            # no leftover while we write it (`remove_leftovers`)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pass  # no flock on this file system: the pid in its name still protects it
        return fd

    def commit(self) -> None:
        """Sync the new store and swap it in; on any failure the old store stays in place."""
        assert self.fd is not None
        fd, self.fd = self.fd, None
        try:
            try:
                # once: after a failed fsync the data may be gone, a retry proves nothing
                fs.fsync(fd)
                os.fchmod(fd, stat.S_IMODE(self.snapshot.mode))
                self._keep_owner(fd)
                self._ours = os.fstat(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise WriteError(
                f"cannot finish writing the new store {self.temp}: {exc.strerror}",
                f"{_UNCHANGED}; check the disk and run again",
            ) from None
        self._check_unchanged()
        self._swap()

    def _keep_owner(self, fd: int) -> None:
        if (self.snapshot.uid, self.snapshot.gid) == (os.geteuid(), os.getegid()):
            return
        try:
            os.fchown(fd, self.snapshot.uid, self.snapshot.gid)
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

    # -- with renameat2(RENAME_EXCHANGE) ---------------------------------------------------------

    def _swap(self) -> None:
        try:
            fs.exchange(str(self.temp), str(self.store))
        except OSError as exc:
            if exc.errno not in fs.exchange_supported_errors():
                raise WriteError(
                    f"cannot swap in the new store: {exc.strerror}: {self.store}", _UNCHANGED
                ) from None
            self._replace()
            return
        # The store path holds ours now, the temporary name what it replaced: not ours to
        # delete until we know it is the store we read.
        self._temp_exists = False
        try:
            verified = self.snapshot.matches(os.stat(self.temp))
        except OSError:
            verified = False
        if not verified:
            self._undo(_changed(self.store))
        try:
            fs.fsync_dir(str(self.store.parent))
        except OSError as exc:
            self._undo(
                WriteError(
                    f"cannot sync the store's folder {self.store.parent}: {exc.strerror}",
                    f"{_UNCHANGED}; check the disk",
                )
            )
        if self.backup is not None:
            try:
                fs.replace(str(self.temp), str(self.backup))
            except OSError as exc:
                self._undo(
                    WriteError(
                        f"cannot keep the old store as {self.backup}: {exc.strerror}", _UNCHANGED
                    )
                )
        else:
            # The store we read, replaced: if it cannot go now, the next run removes it.
            _unlink_quietly(self.temp)
        signals.swapped(self.made)

    def _undo(self, error: StreamcleanError) -> NoReturn:
        """Swap back what we swapped out, then raise `error`; if that fails, say where things are."""
        try:
            self._swap_back()
        except _KeptChanging:
            kept = self._move_aside(self.temp)
            raise WriteError(
                f"{error.message}, and it kept being replaced while the swap was undone: "
                f"{self.store} holds one of the versions written meanwhile and {kept} another",
                "keep the newer of the two",
            ) from None
        except OSError as exc:
            kept = self._move_aside(self.temp)
            raise SwapNotUndoneError(
                f"{error.message}, and undoing the swap failed: {exc.strerror}: {self.store} now "
                f"holds the {self.made} store and {kept} the file it replaced",
                f"check the disk; to restore the old store: mv {kept} {self.store}",
            ) from None
        raise error

    def _swap_back(self) -> None:
        """Put the file we swapped out back at the store path; ours returns to the temp name.

        If someone replaced ours at the store path in the meantime, what comes back is their
        newer store: swap again so the path has it, until what comes back is the file we had
        put there. A store that comes back and is not ours is kept under a `displaced` name,
        never deleted.
        """
        expected = self._ours  # what the store path should hold: ours
        for _ in range(_MAX_SWAPS_BACK):
            put = os.stat(self.temp)
            fs.exchange(str(self.temp), str(self.store))
            pulled = os.stat(self.temp)
            if _same_file(pulled, expected):
                break
            expected = put  # a newer store had replaced it: that one is at the path now
        else:
            raise _KeptChanging()
        if _same_file(pulled, self._ours):
            self._temp_exists = True  # ours again: the rollback removes it
        else:
            self._move_aside(self.temp)

    def _move_aside(self, path: Path) -> Path:
        """Rename a file that may be someone's store out of the leftover pattern; the new name."""
        displaced = self.store.with_name(
            f"{self.store.name}.streamclean-displaced-{secrets.token_hex(4)}"
        )
        try:
            fs.replace(str(path), str(displaced))
        except OSError:
            return path
        return displaced

    # -- without it ----------------------------------------------------------------------------

    def _replace(self) -> None:
        """The swap where renameat2 cannot exchange: keep the old store under a second name (a
        hard link: no space, no time), check once more, rename. Between that last check and
        the rename a concurrent replace would be lost; the README says so."""
        keep: Path | None = leftover_name(self.store)
        try:
            fs.link(str(self.store), str(keep))
        except OSError as exc:
            if self.backup is not None or exc.errno not in _NO_HARD_LINKS:
                raise WriteError(
                    f"cannot keep the old store under a second name: {exc.strerror}: {keep}",
                    _UNCHANGED,
                ) from None
            keep = None  # no hard links here: a failed folder sync cannot be undone then
        try:
            if keep is not None and not self.snapshot.matches(os.stat(keep)):
                raise _changed(self.store)
            self._check_unchanged()
            try:
                fs.replace(str(self.temp), str(self.store))
            except OSError as exc:
                raise WriteError(
                    f"cannot rename the new store into place: {exc.strerror}: {self.store}",
                    _UNCHANGED,
                ) from None
        except BaseException:
            if keep is not None:
                _unlink_quietly(keep)
            raise
        self._temp_exists = False
        try:
            fs.fsync_dir(str(self.store.parent))
        except OSError as exc:
            self._restore(
                keep, f"cannot sync the store's folder {self.store.parent}: {exc.strerror}"
            )
        if self.backup is not None:
            try:
                fs.replace(str(keep), str(self.backup))
            except OSError as exc:
                self._restore(keep, f"cannot keep the old store as {self.backup}: {exc.strerror}")
        elif keep is not None:
            _unlink_quietly(keep)  # the old store's last name; if it stays, the next run removes it
        signals.swapped(self.made)

    def _restore(self, keep: Path | None, problem: str) -> NoReturn:
        """Put the old store back after a failure that followed the rename; raise."""
        if keep is None:
            raise SwapNotUndoneError(
                f"{problem}; the {self.made} store is in place, but after a crash the old one may return",
                "check the disk",
            )
        try:
            if not _same_file(os.stat(self.store), self._ours):
                _unlink_quietly(keep)  # someone replaced ours meanwhile: their write stands
                raise _changed(self.store)
            fs.replace(str(keep), str(self.store))
        except OSError as exc:
            raise SwapNotUndoneError(
                f"{problem}, and restoring the old store failed: {exc.strerror}: {self.store} now "
                f"holds the {self.made} store and {keep} the old one",
                f"check the disk; to restore the old store: mv {keep} {self.store}",
            ) from None
        raise WriteError(problem, f"{_UNCHANGED}; check the disk")

    def holds_ours(self) -> bool:
        """Whether the store path holds the file this run swapped in (after a failed undo)."""
        try:
            return _same_file(os.stat(self.store), self._ours)
        except OSError:
            return False

    def rollback(self) -> None:
        with signals.critical_section():  # a second signal must not stop the cleanup half-way
            if self.fd is not None:
                try:
                    os.close(self.fd)
                except OSError:
                    pass
                self.fd = None
            if self._temp_exists:
                _unlink_quietly(self.temp)
                self._temp_exists = False


class _KeptChanging(Exception):
    """Swapping back met a new write every time: the path and the temp name hold two of them."""


def _same_file(a: os.stat_result, b: os.stat_result | None) -> bool:
    # Not the inode number alone: a file the service unlinked may lend its number to a new one.
    return b is not None and (a.st_dev, a.st_ino, a.st_size, a.st_mtime_ns) == (
        b.st_dev,
        b.st_ino,
        b.st_size,
        b.st_mtime_ns,
    )


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

"""One cleanup at a time: an flock on a file beside the store.

flock locks die with their process, so a killed run never leaves a stale lock behind. The file
itself stays (removing it would let two runs lock two different files); it holds the pid of
the current holder for the error message.

The lock's folder is often one the service's user can write, and the run may be root's. So
the lock is opened without following a symbolic link (`O_NOFOLLOW`), must be a regular file
owned by the running user or by root, and is created no more open than the store. The pid is
written only into a file this run created, or into one that is plainly a lock file of this
user's (one name, nothing in it but a pid): any other file is locked as it is, never truncated.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
from pathlib import Path
from typing import Self

from . import fs
from .errors import LockedError, StoreFileError

_OPEN = os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK  # O_NONBLOCK: a FIFO must not hang the open
_PID_TEXT = re.compile(rb"[0-9]*\n?")
_MAX_PID_TEXT = 21
_MOVE = "remove it if it is not needed, or give the lock a file of its own with --lock-file"


class StoreLock:
    def __init__(self, path: Path, store_mode: int = 0o600) -> None:
        self.path = path
        self.store_mode = store_mode  # a lock file it creates is no more open than this
        self._fd: int | None = None

    def acquire(self) -> None:
        fd, created = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise LockedError(
                f"another cleanup{holder} holds the lock {self.path}",
                "it is still running; try again later",
            ) from None
        self._fd = fd
        if created or _ours_to_rewrite(fd):
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            except OSError:
                pass  # the pid only names the holder in a message; a full disk must not stop the run

    def _open(self) -> tuple[int, bool]:
        """The lock file's descriptor, and whether this call created the file."""
        for _ in range(3):  # removed or created by someone else between two attempts: look again
            try:
                return fs.create_file(self.path, self.store_mode, read=True), True
            except FileExistsError:
                pass
            except OSError as exc:
                raise StoreFileError(
                    f"cannot create the lock file {self.path}: {exc.strerror}",
                    "the store's folder must be writable, or move the lock with --lock-file",
                ) from None
            try:
                self._check(os.lstat(self.path))  # a device or a FIFO is not even opened
                fd = self._open_existing()
            except FileNotFoundError:
                continue
            try:
                self._check(os.fstat(fd))
            except BaseException:
                os.close(fd)
                raise
            return fd, False
        raise StoreFileError(f"the lock file {self.path} keeps appearing and disappearing", _MOVE)

    def _open_existing(self) -> int:
        try:
            try:
                return os.open(self.path, os.O_RDWR | _OPEN)
            except PermissionError:  # not writable for us (root's lock, say): flock needs only reading
                return os.open(self.path, os.O_RDONLY | _OPEN)
        except FileNotFoundError:
            raise
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StoreFileError(f"the lock file {self.path} is a symbolic link", _MOVE) from None
            raise StoreFileError(f"cannot open the lock file {self.path}: {exc.strerror}", _MOVE) from None

    def _check(self, st: os.stat_result) -> None:
        if stat.S_ISLNK(st.st_mode):
            raise StoreFileError(f"the lock file {self.path} is a symbolic link", _MOVE)
        if not stat.S_ISREG(st.st_mode):
            raise StoreFileError(f"the lock file {self.path} is not a regular file", _MOVE)
        if st.st_uid not in (os.geteuid(), 0):
            raise StoreFileError(
                f"the lock file {self.path} belongs to another user (uid {st.st_uid})", _MOVE
            )

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _ours_to_rewrite(fd: int) -> bool:
    """A lock file a run of this user left: ours, one name, nothing in it but a pid."""
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or st.st_nlink != 1 or st.st_size > _MAX_PID_TEXT:
        return False
    try:
        return _PID_TEXT.fullmatch(os.pread(fd, _MAX_PID_TEXT + 1, 0)) is not None
    except OSError:
        return False


def _read_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""

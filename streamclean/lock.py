"""One cleanup at a time: an flock on a file beside the store.

flock locks die with their process, so a killed run never leaves a stale lock behind. The file
itself stays (removing it would let two runs lock two different files); it holds the pid of
the current holder for the error message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import LockedError, StoreFileError


class StoreLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreFileError(
                f"cannot create the lock file {self.path}: {exc.strerror}",
                "the store's folder must be writable, or move the lock with --lock-file",
            ) from None
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
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the pid only names the holder in a message; a full disk must not stop the run

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> "StoreLock":
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""

"""Every write, fsync and rename streamclean makes goes through these few functions.

Keeping them in one place makes the failure paths testable: a test replaces `fs.call` with
one that fails on its Nth call (ENOSPC, EIO, ...), which reaches every operation here, unlike
patching `os.write`. A failed fsync is final: the kernel may have dropped the dirty pages, so
a retry could report success for data that never reached the disk.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from typing import Callable

_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def call(op: str, func: Callable, *args):
    """Run one file-system operation. Tests wrap this to inject failures by `op` and count."""
    return func(*args)


def private_mode(store_mode: int) -> int:
    """The most a file streamclean creates may allow, given the store's mode: no permission
    bit the store lacks, and no execute or special bit at all."""
    return stat.S_IMODE(store_mode) & 0o666


def create_file(path: str | os.PathLike, store_mode: int, mode: int = 0o666, *, read: bool = False) -> int:
    """Create `path` as a new file, no more open than a store of mode `store_mode` (and the
    umask) allows, before any byte is written: never an existing file, never through a symbolic
    link. Its descriptor, for writing (and reading, with `read`); OSError if it cannot be made."""
    flags = (os.O_RDWR if read else os.O_WRONLY) | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(path, flags, mode & private_mode(store_mode))


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = call("write", os.write, fd, view)
        view = view[written:]


def fsync(fd: int) -> None:
    call("fsync", os.fsync, fd)


def replace(src: str, dst: str) -> None:
    call("rename", os.replace, src, dst)


def link(src: str, dst: str) -> None:
    """A second name for a file (the old store, kept while the new one is renamed in)."""
    call("link", os.link, src, dst)


def unlink_at(name: str, dir_fd: int) -> None:
    """Remove the entry `name` of the folder open as `dir_fd` (a symlink itself, never its target)."""
    call("unlink", lambda entry: os.unlink(entry, dir_fd=dir_fd), name)


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        call("fsync_dir", os.fsync, fd)
    finally:
        os.close(fd)


def _libc_function(name: str, argtypes: list):
    """A function of the C library the interpreter is linked with, or None; `find_library`
    would spawn ldconfig."""
    for library in (None, "libc.so.6"):
        try:
            func = getattr(ctypes.CDLL(library, use_errno=True), name)
        except (OSError, AttributeError):
            continue
        func.argtypes = argtypes
        func.restype = ctypes.c_int
        return func
    return None


_renameat2 = _libc_function("renameat2", [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint])
_sync_file_range = _libc_function("sync_file_range", [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint])
_SYNC_FILE_RANGE_WRITE = 2  # start writing dirty pages back, do not wait (linux/fs.h)


def start_writeback(fd: int) -> None:
    """Ask the kernel to start writing a file's dirty pages to disk now, without waiting for
    them (Linux `sync_file_range`), so that the final fsync has less left to wait for. A hint,
    not a promise: it reports nothing and may do nothing; only `fsync` makes data durable, which
    is why it does not go through `call` (a failure injected here would prove nothing)."""
    if _sync_file_range is not None:
        _sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


def _exchange(a: str, b: str) -> None:
    if _renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), a)


def exchange(a: str, b: str) -> None:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); OSError where unsupported."""
    call("exchange", _exchange, a, b)


def exchange_supported_errors() -> tuple[int, ...]:
    """errnos meaning "this kernel or file system cannot exchange": fall back to a rename."""
    return (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP)


def copy_range(src_fd: int, dst_fd: int, nbytes: int, start: int = 0) -> None:
    """Copy `nbytes` of `src_fd` from offset `start` to `dst_fd`'s position, in the kernel
    where it can."""
    offset, end = start, start + nbytes
    while offset < end:
        try:
            copied = call("write", os.copy_file_range, src_fd, dst_fd, end - offset, offset)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            copied = 0
        if copied == 0:  # no kernel copy here (or a short file): plain reads and writes
            chunk = os.pread(src_fd, min(1 << 20, end - offset), offset)
            if not chunk:
                raise OSError(errno.EIO, "the file ended early while copying it")
            write_all(dst_fd, chunk)
            copied = len(chunk)
        offset += copied

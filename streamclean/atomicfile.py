"""Small files replaced whole: the report (`--output-json`) and the metrics file.

A reader of the target (a dashboard, node_exporter) sees the old file or the new one, never a
part. The store is not written this way: its swap (`swap.py`) also checks that nobody replaced
the store meanwhile, which a report does not need. The steps: docs/design.md.

    >>> write_atomically("artifacts/report.json", b"{}\n")
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from . import fs


class AtomicWriter:
    """Replace `path` with what is written to the file `open()` yields, or leave it as it was.

    `new_file_mode` is the mode of a file that did not exist before (default: 0666 less the
    umask, as `open()` would make it); a file that existed keeps its mode. With `store_mode`,
    either is held to what a file about a store of that mode may allow (`fs.private_mode`):
    the report of a private store is private too.
    """

    def __init__(self, path: str | os.PathLike, new_file_mode: int | None = None,
                 store_mode: int | None = None) -> None:
        self.path = Path(path)
        self.new_file_mode = new_file_mode
        self.store_mode = store_mode
        self.temp: Path | None = None

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        success = False
        f = self.get_fileobject()
        try:
            yield f
            self.sync(f)
            f.close()
            self.commit(f)
            success = True
        finally:
            if not success:
                self.rollback(f)

    def get_fileobject(self) -> IO[bytes]:
        mode = self._mode()
        for _ in range(64):
            temp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
            try:
                fd = fs.create_file(temp, mode, mode)
            except FileExistsError:
                continue
            self.temp = temp
            return os.fdopen(fd, "wb")
        raise FileExistsError(errno.EEXIST, "no free temporary name", str(self.path))

    def sync(self, f: IO[bytes]) -> None:
        f.flush()
        os.fsync(f.fileno())

    def commit(self, f: IO[bytes]) -> None:
        assert self.temp is not None
        os.chmod(self.temp, self._mode())
        os.replace(self.temp, self.path)
        fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def rollback(self, f: IO[bytes]) -> None:
        try:
            f.close()
        except OSError:
            pass
        try:
            if self.temp is not None:
                os.unlink(self.temp)
        except OSError:
            pass  # already renamed, or never there: nothing of ours is left either way

    def _mode(self) -> int:
        limit = 0o7777 if self.store_mode is None else fs.private_mode(self.store_mode)
        try:
            return stat.S_IMODE(os.stat(self.path).st_mode) & limit
        except FileNotFoundError:
            pass
        if self.new_file_mode is not None:
            return self.new_file_mode & limit
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask & limit


def write_atomically(path: str | os.PathLike, data: bytes, new_file_mode: int | None = None,
                     store_mode: int | None = None) -> None:
    """Replace the file at `path` with `data`, atomically; raises OSError, leaving `path` as
    it was and no temporary file behind. `store_mode`: see AtomicWriter."""
    with AtomicWriter(path, new_file_mode, store_mode).open() as f:
        f.write(data)


def check_writable(path: str | os.PathLike, create_folders: bool = False, store_mode: int | None = None) -> None:
    """Raise OSError, worded for a person, unless `path` can be written by `write_atomically`
    (after creating its missing folders, with `create_folders`).

    `path` must not be a folder, and its folder must exist (or, with `create_folders`, its
    nearest existing ancestor must be a folder). Whether a file can be created there is found
    out by creating one and removing it again, not with `os.access`, which says yes to root
    on a read-only mount, for instance. Nothing is left behind; the probe is no more open
    than a store of mode `store_mode`.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "it is a folder; give a file name")
    folder = path.parent
    while True:
        try:
            st = os.stat(folder)
            break
        except (FileNotFoundError, NotADirectoryError):
            if folder.parent == folder:
                raise
            folder = folder.parent
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, f"{folder} is a file, not a folder")
    if folder != path.parent and not create_folders:
        raise FileNotFoundError(errno.ENOENT, f"the folder {path.parent} does not exist")
    for _ in range(64):
        probe = folder / f".streamclean-probe-{secrets.token_hex(4)}.tmp"
        try:
            os.close(fs.create_file(probe, 0o600 if store_mode is None else store_mode, 0o600))  # empty, its owner's
        except FileExistsError:
            continue
        except OSError as exc:
            raise OSError(exc.errno, f"cannot create a file in {folder}: {exc.strerror}") from None
        os.unlink(probe)
        return
    raise FileExistsError(errno.EEXIST, f"no free name for a probe in {folder}")

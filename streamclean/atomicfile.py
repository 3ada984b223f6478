"""Small files replaced whole: the report (`--output-json`) and the metrics file.

A reader of the target (a dashboard, node_exporter) sees the old file or the new one, never a
part. The store is not written this way: its swap (`swap.py`) also checks that nobody replaced
the store meanwhile, which a report does not need. The steps: docs/design.md.

    >>> write_atomically("artifacts/report.json", b"{}\n")
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


class AtomicWriter:
    """Replace `path` with what is written to the file `open()` yields, or leave it as it was.

    `new_file_mode` is the mode of a file that did not exist before (default: 0666 less the
    umask, as `open()` would make it); a file that existed keeps its mode.
    """

    def __init__(self, path: str | os.PathLike, new_file_mode: int | None = None) -> None:
        self.path = Path(path)
        self.new_file_mode = new_file_mode

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
        return tempfile.NamedTemporaryFile(
            "wb", dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp", delete=False
        )

    def sync(self, f: IO[bytes]) -> None:
        f.flush()
        os.fsync(f.fileno())

    def commit(self, f: IO[bytes]) -> None:
        os.chmod(f.name, self._mode())
        os.replace(f.name, self.path)
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
            os.unlink(f.name)
        except OSError:
            pass  # already renamed, or never there: nothing of ours is left either way

    def _mode(self) -> int:
        try:
            return stat.S_IMODE(os.stat(self.path).st_mode)
        except FileNotFoundError:
            pass
        if self.new_file_mode is not None:
            return self.new_file_mode
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomically(path: str | os.PathLike, data: bytes, new_file_mode: int | None = None) -> None:
    """Replace the file at `path` with `data`, atomically; raises OSError, leaving `path` as
    it was and no temporary file behind."""
    with AtomicWriter(path, new_file_mode).open() as f:
        f.write(data)


def check_writable(path: str | os.PathLike, create_folders: bool = False) -> None:
    """Raise OSError, worded for a person, unless `path` can be written by `write_atomically`
    (after creating its missing folders, with `create_folders`).

    `path` must not be a folder, and its folder must exist (or, with `create_folders`, its
    nearest existing ancestor must be a folder). Whether a file can be created there is found
    out by creating one and removing it again, not with `os.access`, which says yes to root
    on a read-only mount, for instance. Nothing is left behind.
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
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".streamclean-probe-", suffix=".tmp")
    except OSError as exc:
        raise OSError(exc.errno, f"cannot create a file in {folder}: {exc.strerror}") from None
    os.close(fd)
    os.unlink(probe)

"""atomicfile: the report and the metrics file replaced whole, or not at all — judged by what a
user sees: the content, the mode, and the folder's listing."""

import errno
import os
import stat

import pytest

from conftest import listing
from streamclean import atomicfile
from streamclean.atomicfile import AtomicWriter, check_writable, write_atomically


def test_a_new_file_holds_the_data_and_the_folder_nothing_else(tmp_path):
    target = tmp_path / "report.json"
    write_atomically(target, b"{}\n")
    assert target.read_bytes() == b"{}\n" and listing(tmp_path) == ["report.json"]


def test_a_new_file_gets_the_mode_asked_for_or_the_umask_default(tmp_path):
    write_atomically(tmp_path / "a.prom", b"x", new_file_mode=0o644)
    old = os.umask(0o027)
    try:
        write_atomically(tmp_path / "b.json", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a.prom").st_mode) == 0o644  # not mkstemp's 0600
    assert stat.S_IMODE(os.stat(tmp_path / "b.json").st_mode) == 0o640


def test_a_replaced_file_keeps_its_mode(tmp_path):
    target = tmp_path / "streamclean.prom"
    target.write_bytes(b"old")
    target.chmod(0o604)
    write_atomically(target, b"new", new_file_mode=0o644)
    assert target.read_bytes() == b"new" and stat.S_IMODE(target.stat().st_mode) == 0o604


def test_an_error_while_writing_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "report.json"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="half way"):
        with AtomicWriter(target).open() as f:
            f.write(b"new, but only ")
            raise RuntimeError("half way")
    assert target.read_bytes() == b"old" and listing(tmp_path) == ["report.json"]


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_a_failed_sync_or_rename_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch, step):
    target = tmp_path / "report.json"
    target.write_bytes(b"old")

    def failing(*args):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(atomicfile.os, step, failing)
    with pytest.raises(OSError, match="Input/output error"):
        write_atomically(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old" and listing(tmp_path) == ["report.json"]


def test_a_failing_rollback_never_masks_the_original_error(tmp_path, monkeypatch):
    def no_space(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def no_unlink(*args):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(atomicfile.os, "replace", no_space)
    monkeypatch.setattr(atomicfile.os, "unlink", no_unlink)
    with pytest.raises(OSError) as caught:
        write_atomically(tmp_path / "report.json", b"new")
    assert caught.value.errno == errno.ENOSPC


def test_the_rename_is_followed_by_an_fsync_of_the_folder(tmp_path, monkeypatch):
    synced, real_fsync = [], os.fsync

    def spy(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(atomicfile.os, "fsync", spy)
    write_atomically(tmp_path / "report.json", b"{}")
    assert synced == [False, True]  # the file, then its folder


# -- check_writable: the outputs checked before a run reads the store ---------------------------


def test_check_writable_accepts_a_writable_folder_and_leaves_nothing(tmp_path):
    check_writable(tmp_path / "report.json")
    check_writable(tmp_path / "new" / "deeper" / "report.json", create_folders=True)
    assert listing(tmp_path) == []


@pytest.mark.parametrize("where, create_folders, problem", [
    ("afile/x.json", True, "{tmp}/afile is a file, not a folder"),
    ("afile/sub/x.json", True, "{tmp}/afile is a file, not a folder"),
    ("missing/x.json", False, "the folder {tmp}/missing does not exist"),
    ("folder", False, "it is a folder; give a file name"),
])
def test_check_writable_says_what_is_wrong(tmp_path, where, create_folders, problem):
    (tmp_path / "afile").write_bytes(b"")
    (tmp_path / "folder").mkdir()
    with pytest.raises(OSError) as caught:
        check_writable(tmp_path / where, create_folders)
    assert caught.value.strerror == problem.format(tmp=tmp_path)
    assert listing(tmp_path) == ["afile", "folder"]


def test_check_writable_tries_for_real_where_access_would_say_yes(tmp_path, monkeypatch):
    """As root, os.access says yes to a read-only mount; the probe asks the file system."""
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(atomicfile.fs, "create_file", read_only)
    assert os.access(tmp_path, os.W_OK)
    with pytest.raises(OSError) as caught:
        check_writable(tmp_path / "report.json")
    assert caught.value.strerror == f"cannot create a file in {tmp_path}: Read-only file system"

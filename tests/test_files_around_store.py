"""The files around the store (issue 17): the lock, the report, the metrics file and the archive.

One rule for every file a run writes or locks: none may be the store, its backup, its
temporary files, the archive, or one another — after resolving symbolic links, and by device
and inode where the file exists — checked before the store is read, refused with exit 1 and
one line. The lock is never followed through a symbolic link, must be a regular file of the
running user's (or root's), and is never truncated when it is not a lock file of ours.

Each test keeps a fingerprint of every file it protects and of the folder's listing: a refusal
leaves them all as they were (not even a lock file appears: the store was never opened).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import NOW, NOW_ISO, listing

from streamclean import cleanup
from streamclean.errors import OutputError, StoreFileError
from streamclean.policy import RetentionPolicy

POLICY = RetentionPolicy.build(NOW, 604800, 259200)
NOBODY = 65534


def fingerprint(*paths: Path) -> list[tuple[str, bytes | None, int | None]]:
    """Each path's bytes and modification time (None where there is no file), and the listing
    of each folder they are in."""
    seen = []
    for path in paths:
        try:
            seen.append((str(path), path.read_bytes(), os.stat(path).st_mtime_ns))
        except FileNotFoundError:
            seen.append((str(path), None, None))
    for folder in sorted({path.parent for path in paths}):
        seen.append((str(folder), None, hash(tuple(listing(folder)))))
    return seen


def refused(result, line: str) -> None:
    """Exit 1, nothing on stdout, exactly the one line on stderr."""
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"streamclean: error: {line}\n")


@pytest.fixture
def archived(store, invoke):
    """The store cleaned with an archive beside it: (store, archive)."""
    archive = store.with_name("archive.jsonl.gz")
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--archive-file", archive)
    assert result.exit_code == 0, result.stderr
    return store, archive


# -- 1. --lock-file naming the store, its backup or the archive ---------------------------------


def test_a_lock_file_that_is_the_store_is_refused_before_the_store_is_read(store, invoke):
    before = fingerprint(store)
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--lock-file", store)
    refused(result, f"--lock-file {store} is the store itself; the store was left unchanged; write the lock elsewhere")
    assert fingerprint(store) == before


def test_a_lock_file_that_is_the_backup_is_refused_and_the_backup_kept(store, invoke):
    assert invoke("clean", "--store-file", store, "--now", NOW_ISO, "--backup").exit_code == 0
    backup = store.with_name("store.v1.json.bak")
    before = fingerprint(store, backup)
    for _ in range(2):  # the case needed two runs: the second truncated the backup
        result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--backup", "--lock-file", backup)
        refused(result, f"--lock-file {backup} is the store's backup (--backup); the store was left unchanged; "
                        "write the lock elsewhere")
    assert fingerprint(store, backup) == before


@pytest.mark.parametrize("option, what", [("--lock-file", "the lock"), ("--output-json", "the report")])
@pytest.mark.parametrize("target", ["store", "archive"])
def test_a_restore_whose_lock_or_report_is_the_store_or_the_archive_is_refused(archived, invoke, option, what, target):
    """Cases 1 and 2: `restore --lock-file archive.gz` left a 6-byte archive, `restore
    --output-json store.v1.json` made the store the report."""
    store, archive = archived
    before = fingerprint(store, archive)
    result = invoke("restore", "--store-file", store, "--archive-file", archive, option, archived[target == "archive"])
    problem = "the store itself" if target == "store" else f"--archive-file {archive}, which the run reads"
    refused(result, f"{option} {archived[target == 'archive']} is {problem}; the store was left unchanged; "
                    f"write {what} elsewhere")
    assert fingerprint(store, archive) == before


@pytest.mark.parametrize("how", ["symlink", "hard link", "relative path"])
def test_a_lock_file_that_is_the_store_under_another_name_is_refused(store, invoke, tmp_path, how, monkeypatch):
    other = tmp_path / "elsewhere.lock"
    if how == "symlink":
        other.symlink_to(store)
    elif how == "hard link":
        os.link(store, other)
    else:
        monkeypatch.chdir(tmp_path)
        other = Path("async_jobs/../async_jobs/store.v1.json")
    before = fingerprint(store)
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--lock-file", other)
    refused(result, f"--lock-file {other} is the store itself; the store was left unchanged; write the lock elsewhere")
    assert fingerprint(store) == before


def test_the_library_refuses_a_lock_file_that_is_the_store(store):
    before = fingerprint(store)
    with pytest.raises(OutputError, match="is the store itself"):
        cleanup.clean(store, POLICY, lock_file=store)
    assert fingerprint(store) == before


def test_a_lock_file_with_someone_elses_content_is_locked_but_never_truncated(store, invoke, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"not a lock file\n")
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--lock-file", notes)
    assert result.exit_code == 0, result.stderr
    assert notes.read_bytes() == b"not a lock file\n"


def test_a_lock_file_of_ours_gets_the_pid(store, invoke):
    lock = store.with_name("store.v1.json.lock")
    lock.write_bytes(b"1\n")  # a run of ours left it
    assert invoke("clean", "--store-file", store, "--now", NOW_ISO).exit_code == 0
    assert lock.read_bytes() == f"{os.getpid()}\n".encode()  # the in-process run's pid


def test_a_hard_linked_lock_file_is_never_truncated(store, invoke, tmp_path):
    """A second name for a file of ours (where fs.protected_hardlinks is off, anyone may make
    one): it may be locked, never emptied."""
    precious = tmp_path / "precious"
    precious.write_bytes(b"12\n")  # looks like a pid, but it has two names
    os.link(precious, store.with_name("store.v1.json.lock"))
    assert invoke("clean", "--store-file", store, "--now", NOW_ISO).exit_code == 0
    assert precious.read_bytes() == b"12\n"


def test_a_fifo_as_the_lock_file_is_refused_at_once(store, invoke):
    lock = store.with_name("store.v1.json.lock")
    os.mkfifo(lock)
    before = fingerprint(store)
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert f"the lock file {lock} is not a regular file" in result.stderr
    assert fingerprint(store) == before


def test_a_new_lock_file_is_no_more_open_than_the_store(store, invoke):
    store.chmod(0o600)
    assert invoke("clean", "--store-file", store, "--now", NOW_ISO).exit_code == 0
    assert stat.S_IMODE(os.stat(store.with_name("store.v1.json.lock")).st_mode) == 0o600


def test_a_held_lock_still_names_its_holder(store, invoke):
    lock = store.with_name("store.v1.json.lock")
    lock.write_bytes(b"4242\n")
    fd = os.open(lock, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        result = invoke("clean", "--store-file", store, "--now", NOW_ISO)
    finally:
        os.close(fd)
    assert result.exit_code == 75 and "another cleanup (pid 4242) holds the lock" in result.stderr
    assert lock.read_bytes() == b"4242\n"


# -- 3. the report or the metrics over the archive, and the outputs among themselves ------------


@pytest.mark.parametrize("option", ["--output-json", "--metrics-textfile"])
def test_the_report_or_the_metrics_over_the_archive_is_refused_before_the_store_is_read(store, invoke, option):
    archive = store.with_name("a.jsonl.gz")
    before = fingerprint(store, archive)
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--archive-file", archive, option, archive)
    refused(result, f"--archive-file and {option} name the same file: {archive}; the store was left unchanged; "
                    "give each its own file")
    assert fingerprint(store, archive) == before


@pytest.mark.parametrize("option", ["--output-json", "--metrics-textfile"])
def test_an_output_that_is_the_lock_file_is_refused(store, invoke, tmp_path, option):
    lock = tmp_path / "the.lock"
    before = fingerprint(store, lock)
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--lock-file", lock, option, lock)
    refused(result, f"--lock-file and {option} name the same file: {lock}; the store was left unchanged; "
                    "give each its own file")
    assert fingerprint(store, lock) == before


def test_an_output_hard_linked_to_the_store_is_refused(store, invoke, tmp_path):
    other = tmp_path / "report.json"
    os.link(store, other)
    before = fingerprint(store)
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--output-json", other)
    refused(result, f"--output-json {other} is the store itself; the store was left unchanged; "
                    "write the report elsewhere")
    assert fingerprint(store) == before


@pytest.mark.parametrize("name", [
    "store.v1.json.0123456789abcdef0123456789abcdef.tmp",  # the service's
    "store.v1.json.streamclean-4242-0123abcd.partial",  # ours, a killed run's
    "store.v1.json.streamclean-displaced-0123abcd",  # someone's store, moved aside
])
def test_an_output_that_is_one_of_the_stores_temporary_files_is_refused(store, invoke, name):
    temporary = store.with_name(name)
    temporary.write_bytes(b"the service is writing this")
    before = fingerprint(store, temporary)
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--output-json", temporary)
    refused(result, f"--output-json {temporary} is one of the store's temporary files; "
                    "the store was left unchanged; write the report elsewhere")
    assert fingerprint(store, temporary) == before


def test_a_dry_run_may_not_write_over_the_lock_either(store, invoke):
    lock = store.with_name("store.v1.json.lock")
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--dry-run", "--output-json", lock)
    refused(result, f"--output-json {lock} is the store's lock file; the store was left unchanged; "
                    "write the report elsewhere")
    assert not lock.exists()


# -- 5. a symlink at the default lock path, planted by the store folder's owner -----------------


@pytest.fixture
def nobodys_folder() -> Iterator[Path]:
    """A store in a folder owned by nobody (the service's user), run on as root."""
    if os.geteuid() != 0:
        pytest.skip("an unprivileged owner of the store's folder needs root to set up")
    base = Path(tempfile.mkdtemp(prefix="streamclean-17-"))
    try:
        base.chmod(0o755)
        folder = base / "async_jobs"
        folder.mkdir()
        from conftest import service_bytes, small_state

        store = folder / "store.v1.json"
        store.write_bytes(service_bytes(small_state()))
        os.chown(store, NOBODY, NOBODY)
        os.chown(folder, NOBODY, NOBODY)
        yield store
    finally:
        shutil.rmtree(base)


def _plant(link: Path, target: Path) -> None:
    """What nobody can do in its own folder: a symbolic link, owned by nobody."""
    link.symlink_to(target)
    os.lchown(link, NOBODY, NOBODY)


def test_a_symlink_at_the_default_lock_path_never_makes_root_write_its_target(nobodys_folder, invoke, tmp_path):
    store = nobodys_folder
    target = tmp_path / "etc-shadow"
    target.write_bytes(b"root:$6$secret:19000:0:99999:7:::\n")
    target.chmod(0o640)
    lock = store.with_name("store.v1.json.lock")
    _plant(lock, target)
    before = fingerprint(store, target)
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO)
    refused(result, f"the lock file {lock} is a symbolic link; remove it if it is not needed, or give the lock "
                    "a file of its own with --lock-file")
    assert fingerprint(store, target) == before


def test_a_dangling_symlink_at_the_default_lock_path_creates_nothing(nobodys_folder, invoke, tmp_path):
    store = nobodys_folder
    target = tmp_path / "cron.d" / "evil"
    target.parent.mkdir()
    _plant(store.with_name("store.v1.json.lock"), target)
    before = fingerprint(store)
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO)
    assert result.exit_code == 1 and "is a symbolic link" in result.stderr
    assert listing(target.parent) == [] and fingerprint(store) == before


def test_a_lock_file_planted_by_another_user_is_refused(nobodys_folder, invoke):
    store = nobodys_folder
    lock = store.with_name("store.v1.json.lock")
    lock.write_bytes(b"123\n")
    os.chown(lock, NOBODY, NOBODY)
    before = fingerprint(store, lock)
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO)
    refused(result, f"the lock file {lock} belongs to another user (uid {NOBODY}); remove it if it is not "
                    "needed, or give the lock a file of its own with --lock-file")
    assert fingerprint(store, lock) == before


def test_a_lock_file_of_root_is_used_by_the_service_user(nobodys_folder, invoke):
    """The other way round: root made the lock (a root cron run), the service's user runs
    next: root's file is trusted, and locked read-only if it cannot be written."""
    store = nobodys_folder
    lock = store.with_name("store.v1.json.lock")
    lock.write_bytes(b"1\n")
    lock.chmod(0o644)
    os.seteuid(NOBODY)
    try:
        result = invoke("clean", "--store-file", store, "--now", NOW_ISO)
    finally:
        os.seteuid(0)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["rewritten"] is True and lock.read_bytes() == b"1\n"


def test_the_library_refuses_a_symlinked_lock(store, tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"keep")
    store.with_name("store.v1.json.lock").symlink_to(target)
    with pytest.raises(StoreFileError, match="is a symbolic link"):
        cleanup.clean(store, POLICY)
    assert target.read_bytes() == b"keep"

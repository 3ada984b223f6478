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
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import processes
import pytest
from conftest import NOW, NOW_ISO, ROOT, listing, service_bytes, small_state

from streamclean import cleanup, cli, fs, outcome
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


# -- 6. every file a run creates is no more open than the store, from its first byte -------------


@pytest.fixture
def no_umask():
    """With no umask, a file shows the mode it was created with."""
    old = os.umask(0)
    yield
    os.umask(old)


class Creations:
    """Every file created through os.open (the temporary files, the lock, the archive, the
    report's and the metrics' temporary files, the unnamed ones): its name and the mode asked."""

    def __init__(self, monkeypatch) -> None:
        self.modes: list[tuple[str, int]] = []
        real = os.open

        def spy(path, flags, mode=0o777, *args, **kwargs):
            if flags & os.O_CREAT or flags & getattr(os, "O_TMPFILE", 0) == getattr(os, "O_TMPFILE", -1):
                self.modes.append((os.fsdecode(path), mode))
            return real(path, flags, mode, *args, **kwargs)

        monkeypatch.setattr(os, "open", spy)


@pytest.mark.parametrize("workers, mode", [("1", 0o600), ("2", 0o600), ("1", 0o440)])
def test_every_file_of_a_private_store_is_private_from_its_creation(store, invoke, tmp_path, monkeypatch, no_umask,
                                                                   workers, mode):
    """Case 6: the archive of a 0600 store was created 0644."""
    store.chmod(mode)
    archive, report, prom = store.with_name("a.jsonl.gz"), tmp_path / "r.json", tmp_path / "s.prom"
    created = Creations(monkeypatch)
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--archive-file", archive,
                    "--output-json", report, "--metrics-textfile", prom, env={"STREAMCLEAN_WORKERS": workers})
    assert result.exit_code == 0, result.stderr
    monkeypatch.undo()
    assert created.modes and all(asked & ~mode == 0 for _, asked in created.modes), created.modes
    for path in (store, archive, report, prom, store.with_name("store.v1.json.lock")):
        assert stat.S_IMODE(os.stat(path).st_mode) == mode, path
    assert len(created.modes) >= 5  # lock, new store, archive, report, metrics at least


def test_a_restore_of_a_private_store_creates_nothing_more_open(archived, invoke, tmp_path, monkeypatch, no_umask):
    store, archive = archived
    store.chmod(0o640)
    created = Creations(monkeypatch)
    result = invoke("restore", "--store-file", store, "--archive-file", archive, "--output-json", tmp_path / "r.json")
    assert result.exit_code == 0, result.stderr
    monkeypatch.undo()
    assert created.modes and all(mode & ~0o640 == 0 for _, mode in created.modes), created.modes
    assert stat.S_IMODE(os.stat(tmp_path / "r.json").st_mode) == 0o640


# -- 8. after the swap, every failure exits 74 with one line ------------------------------------


def _no_space(*args, **kwargs):
    raise OSError(28, "No space left on device")


def test_a_restore_whose_report_fails_after_its_swap_exits_74(archived, invoke, tmp_path, monkeypatch):
    store, archive = archived
    cleaned = store.read_bytes()
    monkeypatch.setattr(outcome, "write_atomically", _no_space)
    target = tmp_path / "r.json"
    result = invoke("restore", "--store-file", store, "--archive-file", archive, "--output-json", target)
    assert result.exit_code == 74 and json.loads(result.stdout)["rewritten"] is True
    assert result.stderr == (f"streamclean: error: the store was restored, but cannot write the report to {target}: "
                             "No space left on device; the report is on stdout\n")
    assert len(store.read_bytes()) > len(cleaned)


@pytest.mark.parametrize("command", ["clean", "restore"])
def test_a_signal_just_after_the_report_is_printed_exits_74(archived, invoke, monkeypatch, handlers_restored, command):
    """Case 8: SIGTERM just after the report was printed ended the process with 143 and no line."""
    store, archive = archived
    if command == "clean":
        store.write_bytes(_original())
        args = ["clean", "--store-file", store, "--now", NOW_ISO]
    else:
        args = ["restore", "--store-file", store, "--archive-file", archive]
    real_echo = cli.click.echo

    def echo_then_signal(message=None, *args, err=False, **kwargs):
        real_echo(message, *args, err=err, **kwargs)
        if not err:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(cli.click, "echo", echo_then_signal)
    result = invoke(*args)
    verb = "cleaned" if command == "clean" else "restored"
    assert result.exit_code == 74 and json.loads(result.stdout)["rewritten"] is True
    assert result.stderr == (f"streamclean: error: the store was {verb}, but the run was interrupted by SIGTERM; "
                             "the report is on stdout\n")


def _original() -> bytes:
    return service_bytes(small_state())


def _run(args: list, timeout: float = 60, **popen) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamclean", *map(str, args)], cwd=ROOT, stderr=subprocess.PIPE,
                          check=False, text=True, timeout=timeout, **popen)


def _closed_pipe() -> int:
    """The writing end of a pipe nobody reads (`… | head -c0` once head has gone)."""
    read, write = os.pipe()
    os.close(read)
    return write


@pytest.mark.parametrize("how", ["broken pipe", "closed"])
def test_a_clean_whose_stdout_is_closed_exits_74_and_the_metrics_say_so(store, tmp_path, how):
    """Case 8: `clean … | head -c0` exited 1 with nothing on stderr, the metrics recording 0."""
    old = store.read_bytes()
    prom = tmp_path / "s.prom"
    args = ["clean", "--store-file", store, "--now", NOW_ISO, "--metrics-textfile", prom]
    if how == "broken pipe":
        pipe = _closed_pipe()
        done = _run(args, stdout=pipe)
        os.close(pipe)
    else:
        done = _run(args, stdout=subprocess.DEVNULL, preexec_fn=lambda: os.close(1))
    assert done.returncode == 74
    assert done.stderr == ("streamclean: error: the store was cleaned, but the report could not be printed: "
                           "stdout is closed; there is no report\n")
    assert len(store.read_bytes()) < len(old)
    assert "streamclean_last_run_exit_status 74\n" in prom.read_text()


def test_a_restore_whose_stdout_is_closed_exits_74_and_names_its_report_file(archived, tmp_path):
    store, archive = archived
    cleaned = store.read_bytes()
    report = tmp_path / "r.json"
    pipe = _closed_pipe()
    done = _run(["restore", "--store-file", store, "--archive-file", archive, "--output-json", report], stdout=pipe)
    os.close(pipe)
    assert done.returncode == 74
    assert done.stderr == ("streamclean: error: the store was restored, but the report could not be printed: "
                           f"stdout is closed; the report is in {report}\n")
    assert json.loads(report.read_text())["rewritten"] is True and len(store.read_bytes()) > len(cleaned)


def test_a_dry_run_whose_stdout_is_closed_exits_1(store):
    before = fingerprint(store)
    pipe = _closed_pipe()
    done = _run(["clean", "--store-file", store, "--now", NOW_ISO, "--dry-run"], stdout=pipe)
    os.close(pipe)
    assert done.returncode == 1
    assert done.stderr == "streamclean: error: the report could not be printed: stdout is closed\n"
    assert fingerprint(store) == before


def test_a_signal_after_the_report_never_ends_the_process_without_a_word(store):
    """However late SIGTERM comes once the report is out, the status is 0 or 74, with the
    summary or one line; never 143 (Python's own handler, put back as it exits)."""
    for _ in range(5):
        store.write_bytes(_original())
        proc = subprocess.Popen([sys.executable, "-m", "streamclean", "clean", "--store-file", str(store), "--now",
                                 NOW_ISO], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        report = proc.stdout.readline()  # the report's first line: the run is concluding
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        assert report == b"{\n"
        assert proc.returncode in (0, 74), (proc.returncode, stderr)
        assert stderr.count(b"\n") == 1, stderr


def test_an_archive_that_cannot_be_named_after_the_swap_is_one_clear_line(store, invoke, monkeypatch):
    """Case 9: "the store was cleaned, but the store is cleaned, but …"."""
    archive = store.with_name("a.jsonl")
    real_link = fs.link

    def someone_took_the_name(src, dst):
        if dst == str(archive):
            archive.write_bytes(b"theirs")
        real_link(src, dst)

    monkeypatch.setattr(fs, "link", someone_took_the_name)
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--archive-file", archive)
    (temp,) = [name for name in listing(store.parent) if name.startswith("a.jsonl.streamclean-")]
    assert result.exit_code == 74 and archive.read_bytes() == b"theirs"
    assert result.stderr == (f"streamclean: error: the store was cleaned, but the archive could not be named {archive} "
                             f"(it exists now); keep it: it is {store.with_name(temp)}; there is no report\n")


# -- 9. the smaller points ---------------------------------------------------------------------


@pytest.mark.parametrize("command", ["clean", "inspect", "restore"])
def test_a_fifo_as_the_store_is_refused_at_once(archived, tmp_path, command):
    """It hung in open(), waiting for a writer that never comes."""
    store = tmp_path / "fifo" / "store.v1.json"
    store.parent.mkdir()
    os.mkfifo(store)
    args = {"clean": ["clean", "--now", NOW_ISO], "inspect": ["inspect", "--now", NOW_ISO],
            "restore": ["restore", "--archive-file", archived[1]]}[command]
    try:
        done = _run([*args, "--store-file", store], stdout=subprocess.PIPE, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("the run waited on the FIFO")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == f"streamclean: error: store file is not a regular file: {store}\n"
    assert listing(store.parent) == ["store.v1.json"]


def test_a_store_path_that_is_not_utf8_is_archived_and_restored(tmp_path):
    """It failed with "internal error: TypeError" when archiving."""
    folder = os.fsencode(tmp_path) + b"/st\xffre"
    os.mkdir(folder)
    store, archive, report = (os.fsdecode(folder + name) for name in (b"/store.v1.json", b"/a.jsonl.gz", b"/r.json"))
    original = _original()
    Path(store).write_bytes(original)
    done = _run(["clean", "--store-file", store, "--now", NOW_ISO, "--archive-file", archive, "--output-json", report],
                stdout=subprocess.PIPE)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["store_file"] == store == json.loads(Path(report).read_bytes())["store_file"]
    done = _run(["restore", "--store-file", store, "--archive-file", archive], stdout=subprocess.PIPE)
    assert done.returncode == 0, done.stderr
    assert Path(store).read_bytes() == original


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_temporary_file_of_a_live_run_is_never_removed(store, invoke):
    """Another run (of another --lock-file) writing beside the same store: its file stays."""
    sleeper = _sleeper()
    try:
        theirs = store.with_name(f"store.v1.json.streamclean-{sleeper.pid}-0123abcd.partial")
        theirs.write_bytes(b"another run is writing this")
        assert invoke("clean", "--store-file", store, "--now", NOW_ISO, "--lock-file", store.with_name("b.lock")
                      ).exit_code == 0
        assert theirs.read_bytes() == b"another run is writing this"
    finally:
        sleeper.kill()
        sleeper.wait()
    assert invoke("clean", "--store-file", store, "--now", NOW_ISO).exit_code == 0
    assert not theirs.exists()  # its writer is gone: a leftover now


def test_a_temporary_file_whose_writer_holds_its_flock_is_never_removed(store, invoke):
    """A writer in another pid namespace (a container sharing the folder): the pid in the name
    says nothing here, the flock on the file does."""
    theirs = store.with_name(f"store.v1.json.streamclean-{processes.dead_pid()}-0123abcd.partial")
    theirs.write_bytes(b"written in another container")
    hold = ("import fcntl, sys, time; f = open(sys.argv[1], 'rb'); fcntl.flock(f, fcntl.LOCK_EX); "
            "print(flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(theirs)], stdout=subprocess.PIPE)
    try:
        holder.stdout.readline()
        assert invoke("clean", "--store-file", store, "--now", NOW_ISO).exit_code == 0
        assert theirs.read_bytes() == b"written in another container"
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_two_runs_with_different_lock_files_keep_each_others_temporary_file(tmp_path):
    """Two restores with different --lock-files deleted each other's temporary file. Run A
    is stopped while it writes; run B, of another lock, cleans meanwhile and must leave A's
    file; A then finds the store changed and gives way (75), removing its own file."""
    store = tmp_path / "store.v1.json"
    processes.generate(store, 6 << 20)
    proc = processes.start(processes.clean_command(store, "--lock-file", str(tmp_path / "a.lock")))
    watch = processes.Watch(proc, store)
    try:
        sight = watch.stop_when(lambda s: s.temp_size is not None and s.temp_size > 0)
        assert sight is not None, "run A ended before it was caught writing"
        (theirs,) = processes.leftovers(tmp_path, store.name)
        b = subprocess.run(processes.clean_command(store, "--lock-file", str(tmp_path / "b.lock")), cwd=ROOT,
                           capture_output=True, text=True, timeout=120, check=False)
        assert b.returncode == 0, b.stderr
        assert theirs.exists(), "run B removed run A's temporary file"
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    code, _, stderr = processes.finish(proc, timeout=120)
    assert code == 75 and "changed by someone else" in stderr, stderr
    assert processes.leftovers(tmp_path, store.name) == []

"""A whole run against real files: what an operator can see afterwards."""

import fcntl
import os
import stat

import pytest

import processes
from conftest import NOW, listing, service_bytes, small_state
from streamclean import cleanup, fs
from streamclean.errors import LockedError, StoreChangedError, StoreFileError
from streamclean.policy import RetentionPolicy

POLICY = RetentionPolicy.build(NOW, 604800.0, 259200.0)


def test_run_deletes_and_leaves_only_the_store_and_its_lock(store):
    before = listing(store.parent)
    report = cleanup.clean(store, POLICY)
    assert report.rewritten and report.delete_count == 3
    assert listing(store.parent) == sorted(before + ["store.v1.json.lock"])
    assert report.bytes_after == store.stat().st_size < report.bytes_before


def test_mode_and_owner_survive_the_swap(store):
    os.chmod(store, 0o640)
    if os.geteuid() == 0:
        os.chown(store, 1234, 4321)
    cleanup.clean(store, POLICY)
    st = store.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (1234, 4321)


def test_second_run_does_not_touch_the_file(store):
    cleanup.clean(store, POLICY)
    before = store.stat()
    report = cleanup.clean(store, POLICY)
    after = store.stat()
    assert report.delete_count == 0 and not report.rewritten
    assert (after.st_ino, after.st_mtime_ns, after.st_ctime_ns) == (before.st_ino, before.st_mtime_ns, before.st_ctime_ns)


def test_dry_run_writes_nothing_at_all(store):
    data, before = store.read_bytes(), listing(store.parent)
    stamp = store.stat().st_mtime_ns
    report = cleanup.clean(store, POLICY, dry_run=True)
    assert report.delete_count == 3 and not report.rewritten
    assert report.bytes_after == len(service_bytes(_cleaned()))
    assert store.read_bytes() == data and listing(store.parent) == before
    assert store.stat().st_mtime_ns == stamp


def _cleaned():
    state = small_state()
    del state["results"]["r1"]
    state["events"]["j1"].pop(0)
    state["events"]["j3"].clear()
    return state


def test_symlinked_store_is_cleaned_through_the_link(store, tmp_path):
    link = tmp_path / "link.json"
    link.symlink_to(store)
    report = cleanup.clean(link, POLICY)
    assert report.store_file == str(link)
    assert link.is_symlink() and os.readlink(link) == str(store)
    assert store.read_bytes() == service_bytes(_cleaned())


def test_empty_file_is_an_empty_store(tmp_path):
    path = tmp_path / "store.v1.json"
    path.write_bytes(b"")
    report = cleanup.clean(path, POLICY)
    assert (report.terminal_job_count, report.results.total, report.events.total, report.rewritten) == (0, 0, 0, False)
    assert path.read_bytes() == b""


def test_missing_store_and_directory_are_refused(tmp_path):
    with pytest.raises(StoreFileError, match="store file not found"):
        cleanup.clean(tmp_path / "nope.json", POLICY)
    with pytest.raises(StoreFileError, match="is a directory"):
        cleanup.clean(tmp_path, POLICY)


def test_leftovers_of_killed_runs_go_but_the_services_temp_files_stay(store):
    ours = store.with_name(store.name + f".streamclean-{processes.dead_pid()}-0123abcd.partial")
    theirs = store.with_name(store.name + ".0123456789abcdef0123456789abcdef.tmp")
    other = store.with_name("other.json.streamclean-4242-0123abcd.partial")
    for path in (ours, theirs, other):
        path.write_text("x")
    cleanup.clean(store, POLICY, dry_run=True)
    assert ours.exists()  # a dry run writes (and removes) nothing
    cleanup.clean(store, POLICY)
    assert not ours.exists() and theirs.exists() and other.exists()


def test_held_lock_means_exit_75_and_names_the_holder(store):
    lock = store.with_name(store.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    os.write(fd, b"31337\n")
    fcntl.flock(fd, fcntl.LOCK_EX)
    data = store.read_bytes()
    try:
        with pytest.raises(LockedError, match=r"another cleanup \(pid 31337\) holds the lock") as caught:
            cleanup.clean(store, POLICY)
    finally:
        os.close(fd)
    assert caught.value.exit_code == 75 and store.read_bytes() == data


def test_a_write_during_the_run_is_never_overwritten(store):
    """The service replaces the store while we filter: we must notice and write nothing."""
    theirs = service_bytes({**small_state(), "schema_version": 6})

    def service_writes(name, done, total):
        if name == "filter":
            temp = store.with_name(store.name + ".feedfacefeedfacefeedfacefeedface.tmp")
            temp.write_bytes(theirs)
            os.replace(temp, store)

    with pytest.raises(StoreChangedError) as caught:
        cleanup.clean(store, POLICY, progress=service_writes)
    assert caught.value.exit_code == 75
    assert store.read_bytes() == theirs
    assert listing(store.parent) == ["store.v1.json", "store.v1.json.lock"]


def test_a_write_between_the_last_check_and_the_swap_is_swapped_back(store, monkeypatch):
    """Past every check, right before renameat2: the exchange shows it and undoes itself."""
    theirs = service_bytes({**small_state(), "schema_version": 6})
    real_call = fs.call

    def racing_call(op, func, *args):
        if op == "exchange" and not racing_call.done:
            racing_call.done = True
            temp = store.with_name(store.name + ".feedfacefeedfacefeedfacefeedface.tmp")
            temp.write_bytes(theirs)
            os.replace(temp, store)
        return real_call(op, func, *args)

    racing_call.done = False
    monkeypatch.setattr(fs, "call", racing_call)
    with pytest.raises(StoreChangedError):
        cleanup.clean(store, POLICY)
    assert store.read_bytes() == theirs
    assert listing(store.parent) == ["store.v1.json", "store.v1.json.lock"]


def test_backup_keeps_the_replaced_store(store):
    original = store.read_bytes()
    cleanup.clean(store, POLICY, backup=True)
    assert store.with_name(store.name + ".bak").read_bytes() == original
    assert store.read_bytes() == service_bytes(_cleaned())

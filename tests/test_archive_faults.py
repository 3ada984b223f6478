"""The archive's write and `restore` under faults, SIGKILL and signals (issue 13, SPEC §5).

The sweeps of test_faults.py, test_crash.py and test_signals.py, run on `clean
--archive-file` and on `restore`: every file operation (`fs.call`) of a successful run is
failed (ENOSPC, EIO; once and for good), preceded and followed by a SIGKILL, or preceded by
a SIGTERM. What must hold each time:

- clean with an archive: the store is the old one and no archive exists, not even under its
  temporary name (a failure or a signal); or the store is the cleaned one and an archive
  exists (named, or under its temporary name when the run could not name it) that restores
  it to the old store byte for byte. A SIGKILL before the swap may leave the temporary
  archive of a store that was never swapped in (documented); never a cleaned store without
  an archive.
- restore: the store is the cleaned one or the restored one, whole; nothing else is left but
  our own `.partial` leftover, which the next run removes; a failed restore exits 1 in one line.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

import processes
from processes import NOW
from streamclean import fs
from streamclean.cli import main
from test_crash import DRIVER
from test_faults import Faults, _fresh

pytestmark = pytest.mark.slow

ARCHIVE = "archive.jsonl.gz"
_TEMP = re.compile(re.escape(ARCHIVE) + r"\.streamclean-\d+-[0-9a-f]{8}\.partial")


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """About 2.5 MB in the service's layout, its version cleaned with job retention, and
    the archive of that cleanup."""
    folder = tmp_path_factory.mktemp("archived")
    old = processes.generate(folder / "old.json", 2_500_000, seed=23)
    store = folder / "store.v1.json"
    store.write_bytes(old)
    result = _clean(store, folder / ARCHIVE)
    assert result.exit_code == 0, result.stderr
    return old, store.read_bytes(), (folder / ARCHIVE).read_bytes()


def _clean_args(store: Path, archive: Path, now: str = NOW) -> list[str]:
    return [
        "clean",
        "--store-file",
        str(store),
        "--now",
        now,
        "--jobs-ttl-seconds",
        "10d",
        "--archive-file",
        str(archive),
    ]


def _restore_args(store: Path, archive: Path) -> list[str]:
    # the archives here were made from a store in another folder (the `stores` fixture's)
    return [
        "restore",
        "--store-file",
        str(store),
        "--archive-file",
        str(archive),
        "--any-store-path",
    ]


def _clean(store: Path, archive: Path, now: str = NOW):
    return CliRunner().invoke(main, _clean_args(store, archive, now), catch_exceptions=False)


def _restore(store: Path, archive: Path):
    return CliRunner().invoke(main, _restore_args(store, archive), catch_exceptions=False)


def _archives(folder: Path) -> list[Path]:
    return sorted(
        path for path in folder.iterdir() if path.name == ARCHIVE or _TEMP.fullmatch(path.name)
    )


def _assert_old_without_or_new_with_archive(
    folder: Path, store: Path, stores, case: str, monkeypatch
) -> str:
    old, new, _ = stores
    data = store.read_bytes()
    archives = _archives(folder)
    if data == old:
        return "old"
    assert data == new, f"{case}: the store is neither old nor new"
    # one archive: after a kill between the link and the unlink, under both names (one file)
    assert len({path.stat().st_ino for path in archives}) == 1, (
        f"{case}: a cleaned store without its archive ({archives})"
    )
    copy = folder / "check" / "store.v1.json"
    copy.parent.mkdir()
    copy.write_bytes(new)
    with monkeypatch.context() as patch:
        patch.setattr(fs, "call", _REAL_CALL)
        result = _restore(copy, archives[0])
    assert result.exit_code == 0, (case, result.stderr)
    assert copy.read_bytes() == old, f"{case}: the archive left does not restore the old store"
    shutil.rmtree(copy.parent)
    return "new"


_REAL_CALL = fs.call


def _operations(run, monkeypatch) -> list[str]:
    counting = Faults(_REAL_CALL)
    monkeypatch.setattr(fs, "call", counting)
    result = run()
    monkeypatch.setattr(fs, "call", _REAL_CALL)
    assert result.exit_code == 0, result.stderr
    return counting.calls


# -- faults ----------------------------------------------------------------------------------


def _fault_cases(operations: list[str]):
    """(n, op, errno, for good, a name for the case) for every way of failing the operations."""
    for code in (errno.ENOSPC, errno.EIO):
        for for_good in (False, True):
            for n, op in enumerate(operations):
                yield (
                    n,
                    op,
                    code,
                    for_good,
                    f"{op} #{n} fails with {errno.errorcode[code]}{' for good' if for_good else ''}",
                )


def test_failing_any_operation_of_a_clean_with_an_archive(tmp_path, stores, monkeypatch):
    old, _new, _ = stores
    store = _fresh(tmp_path, old)
    operations = _operations(lambda: _clean(store, tmp_path / ARCHIVE), monkeypatch)
    assert (
        operations.count("fsync") == 2 and operations.count("link") == 1
    )  # the archive's and the store's
    assert operations.index("fsync") < operations.index("exchange") < operations.index("link")
    outcomes = set()
    for n, _op, code, for_good, case in _fault_cases(operations):
        store = _fresh(tmp_path, old)
        monkeypatch.setattr(fs, "call", Faults(_REAL_CALL, n, code, for_good))
        result = _clean(store, tmp_path / ARCHIVE)
        monkeypatch.setattr(fs, "call", _REAL_CALL)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("streamclean: error: "), (
            case,
            result.stderr,
        )
        assert os.strerror(code) in lines[0] and "internal error" not in lines[0], case
        state = _assert_old_without_or_new_with_archive(tmp_path, store, stores, case, monkeypatch)
        outcomes.add(state)
        # 1 promises the store as it was; a cleaned store left in place is 74
        assert result.exit_code == (1 if state == "old" else 74), case
        if state == "old":
            assert sorted(os.listdir(tmp_path)) == ["store.v1.json", "store.v1.json.lock"], case
        else:
            assert any(
                words in lines[0]
                for words in (
                    "the store is cleaned",
                    "the store was cleaned",
                    "now holds the cleaned store",
                )
            ), case
        assert not _writer_threads(), case
    assert outcomes == {"old", "new"}  # faults after the swap were reached too


def test_failing_any_operation_of_a_restore(tmp_path, stores, monkeypatch):
    old, new, archive = stores
    store = _fresh(tmp_path, new)
    (tmp_path / ARCHIVE).write_bytes(archive)
    operations = _operations(lambda: _restore(store, tmp_path / ARCHIVE), monkeypatch)
    assert store.read_bytes() == old and operations.count("fsync") == 1
    swap = operations.index("exchange")
    for n, _op, code, for_good, case in _fault_cases(operations):
        store = _fresh(tmp_path, new)
        (tmp_path / ARCHIVE).write_bytes(archive)
        monkeypatch.setattr(fs, "call", Faults(_REAL_CALL, n, code, for_good))
        result = _restore(store, tmp_path / ARCHIVE)
        monkeypatch.setattr(fs, "call", _REAL_CALL)
        undone = not (for_good and n > swap)
        assert result.exit_code == (1 if undone else 74), (
            case
        )  # 74: a swap that could not be undone
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and os.strerror(code) in lines[0], (case, result.stderr)
        assert result.stdout == "", case
        if for_good and n > swap:  # the swap could not be undone: said, and both files whole
            match = re.search(
                r"(\S+) now holds the restored store and (\S+) the file it replaced", lines[0]
            )
            assert (
                match and store.read_bytes() == old and Path(match.group(2)).read_bytes() == new
            ), case
            continue
        assert store.read_bytes() == new, case
        assert sorted(os.listdir(tmp_path)) == [ARCHIVE, "store.v1.json", "store.v1.json.lock"], (
            case
        )


# -- SIGKILL ---------------------------------------------------------------------------------


# Killed at the k-th operation of a name: the store's writer thread and the archive's both write,
# so how their writes interleave, and how many of them there are, varies from run to run; the
# k-th of a name is still a well-defined instant of every run that has one.
NAMED_DRIVER = (
    DRIVER.replace(
        "    calls.append(op)\n    if len(calls) - 1 == target",
        "    calls.append(op)\n    if calls.count(name) - 1 == target and op == name",
    )
    .replace(
        "        if len(calls) - 1 == target",
        "        if op == name and calls.count(name) - 1 == target",
    )
    .replace(
        "target, when, exchange = int(sys.argv[1]), sys.argv[2], sys.argv[3]",
        "name, target = sys.argv[1].split(':')[0], int(sys.argv[1].split(':')[1]); "
        "when, exchange = sys.argv[2], sys.argv[3]",
    )
)


def _kill_sweep(tmp_path, monkeypatch, prepare, check):
    operations = _operations(lambda: CliRunner().invoke(main, prepare()), monkeypatch)
    states = {}
    for position, op in enumerate(operations):
        nth = operations[:position].count(op)
        for when in ("before", "after"):
            argv = [
                processes.PYTHON,
                "-c",
                NAMED_DRIVER,
                f"{op}:{nth}",
                when,
                "renameat2",
                *prepare(),
            ]
            code, _, stderr = processes.finish(processes.start(argv), timeout=60)
            case = f"{when} {op} #{nth}"
            if code == 0 and op == "write":
                # this run wrote in fewer pieces, and so finished: it must be the cleaned store
                assert check(case) == "new", case
                continue
            assert code == -signal.SIGKILL, f"{case}: {stderr}"
            states[(when, op, nth)] = check(case)
    return operations, states


def test_killed_at_every_operation_of_a_clean_with_an_archive(tmp_path, stores, monkeypatch):
    old, _new, _ = stores
    store, archive = tmp_path / "store.v1.json", tmp_path / ARCHIVE

    def prepare():
        for path in list(tmp_path.iterdir()):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        store.write_bytes(old)
        return _clean_args(store, archive)

    def check(case):
        state = _assert_old_without_or_new_with_archive(tmp_path, store, stores, case, monkeypatch)
        if state == "old":
            assert not archive.exists(), f"{case}: an archive named for a store never swapped in"
        return state

    _, states = _kill_sweep(tmp_path, monkeypatch, prepare, check)
    assert {"old", "new"} <= set(states.values())
    # Killed between the swap and the naming: the archive stays under its temporary name.
    assert states[("before", "link", 0)] == "new"


def test_killed_at_every_operation_of_a_restore(tmp_path, stores, monkeypatch):
    old, new, archive_bytes = stores
    store, archive = tmp_path / "store.v1.json", tmp_path / ARCHIVE

    def prepare():
        for path in list(tmp_path.iterdir()):
            path.unlink()
        store.write_bytes(new)
        archive.write_bytes(archive_bytes)
        return _restore_args(store, archive)

    def check(case):
        data = store.read_bytes()
        assert data in (old, new), f"{case}: the store is neither the cleaned nor the restored one"
        left = [
            name
            for name in os.listdir(tmp_path)
            if name not in (ARCHIVE, "store.v1.json", "store.v1.json.lock")
        ]
        assert len(left) <= 1 and all(name.endswith(".partial") for name in left), (case, left)
        result = _restore(store, archive)  # the next run removes the leftover and finishes
        assert result.exit_code == 0, (case, result.stderr)
        assert store.read_bytes() == old
        assert sorted(os.listdir(tmp_path)) == [ARCHIVE, "store.v1.json", "store.v1.json.lock"], (
            case
        )
        return "restored" if data == old else "cleaned"

    _, states = _kill_sweep(tmp_path, monkeypatch, prepare, check)
    assert {"restored", "cleaned"} <= set(states.values())


# -- SIGTERM -----------------------------------------------------------------------------------


def _signalled_at(n: int):
    calls = []

    def call(op, func, *args):
        calls.append(op)
        if len(calls) - 1 == n:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, before the operation
        return _REAL_CALL(op, func, *args)

    return call


def test_a_signal_at_any_operation_of_a_clean_with_an_archive(
    tmp_path, stores, monkeypatch, handlers_restored
):
    old, _new, _ = stores
    store = _fresh(tmp_path, old)
    operations = _operations(lambda: _clean(store, tmp_path / ARCHIVE), monkeypatch)
    states = set()
    for n, op in enumerate(operations):
        store = _fresh(tmp_path, old)
        monkeypatch.setattr(fs, "call", _signalled_at(n))
        result = _clean(store, tmp_path / ARCHIVE)
        monkeypatch.setattr(fs, "call", _REAL_CALL)
        case = f"SIGTERM before {op} #{n}"
        state = _assert_old_without_or_new_with_archive(tmp_path, store, stores, case, monkeypatch)
        states.add(state)
        if state == "old":
            assert result.exit_code == 1 and result.stderr == (
                "streamclean: error: interrupted by SIGTERM; the store was left unchanged\n"
            ), case
            assert sorted(os.listdir(tmp_path)) == ["store.v1.json", "store.v1.json.lock"], case
        else:  # inside the swap and the naming the signal waits: the run completes
            assert result.exit_code == 0, (case, result.stderr)
            assert (tmp_path / ARCHIVE).exists(), case
        assert not _writer_threads(), case
    assert states == {"old", "new"}


def _writer_threads() -> list:
    """Writer threads still running (the store's, the archive's): each run must stop its own."""
    return [
        thread
        for thread in threading.enumerate()
        if thread.name == "streamclean-writer" and thread.is_alive()
    ]


def test_a_signal_at_any_operation_of_a_restore(tmp_path, stores, monkeypatch, handlers_restored):
    old, new, archive = stores
    store = _fresh(tmp_path, new)
    (tmp_path / ARCHIVE).write_bytes(archive)
    operations = _operations(lambda: _restore(store, tmp_path / ARCHIVE), monkeypatch)
    for n, op in enumerate(operations):
        store = _fresh(tmp_path, new)
        (tmp_path / ARCHIVE).write_bytes(archive)
        monkeypatch.setattr(fs, "call", _signalled_at(n))
        result = _restore(store, tmp_path / ARCHIVE)
        monkeypatch.setattr(fs, "call", _REAL_CALL)
        case = f"SIGTERM before {op} #{n}"
        if n >= operations.index(
            "fsync"
        ):  # the commit (sync, swap): the signal waits and the run completes
            assert result.exit_code == 0 and store.read_bytes() == old, case
        else:
            assert result.exit_code == 1, case
            assert (
                result.stderr
                == "streamclean: error: interrupted by SIGTERM; the store was left unchanged\n"
            ), case
            assert store.read_bytes() == new, case
        assert sorted(os.listdir(tmp_path)) == [ARCHIVE, "store.v1.json", "store.v1.json.lock"], (
            case
        )
        assert not _writer_threads(), case


# -- a restore of several archives onto a changed store (issue 18) -------------------------------


@pytest.fixture(scope="module")
def changed(tmp_path_factory):
    """Two cleanups with the service in between: the store as it is now, the folder of both
    archives, and the store a restore of both gives."""
    import json
    from datetime import datetime, timedelta

    from conftest import service_bytes

    folder = tmp_path_factory.mktemp("changed")
    archives = folder / "archives"
    archives.mkdir()
    store = folder / "store.v1.json"
    store.write_bytes(processes.generate(folder / "old.json", 2_500_000, seed=29))
    earlier = (datetime.fromisoformat(NOW) - timedelta(days=4)).isoformat()
    for now, name in ((earlier, "first.jsonl.gz"), (NOW, "second.jsonl")):
        result = _clean(store, archives / name, now)
        assert result.exit_code == 0, result.stderr
        if name.startswith("first"):  # the service takes a job and changes another
            state = json.loads(store.read_bytes())
            state["jobs"]["zz-new"] = {"job_id": "zz-new", "status": "running", "created_at": NOW}
            state["events"]["zz-new"] = [{"occurred_at": NOW, "message": "started"}]
            first = sorted(state["results"])[0]
            state["results"][first] = dict(state["results"][first], changed=True)
            store.write_bytes(service_bytes(state))
    today = store.read_bytes()
    result = _restore_all(store, archives)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["store_matches_archive"] is True
    return today, archives, store.read_bytes()


def _restore_all(store: Path, archives: Path):
    return CliRunner().invoke(
        main,
        ["restore", "--store-file", str(store), "--archive-dir", str(archives), "--any-store-path"],
        catch_exceptions=False,
    )


def test_failing_any_operation_of_a_restore_of_several_archives(tmp_path, changed, monkeypatch):
    today, archives, restored = changed
    store = _fresh(tmp_path, today)
    operations = _operations(lambda: _restore_all(store, archives), monkeypatch)
    assert store.read_bytes() == restored and operations.count("fsync") == 1
    swap = operations.index("exchange")
    for n, _op, code, for_good, case in _fault_cases(operations):
        store = _fresh(tmp_path, today)
        monkeypatch.setattr(fs, "call", Faults(_REAL_CALL, n, code, for_good))
        result = _restore_all(store, archives)
        monkeypatch.setattr(fs, "call", _REAL_CALL)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and os.strerror(code) in lines[0], (case, result.stderr)
        if for_good and n > swap:
            assert result.exit_code == 74 and store.read_bytes() == restored, case
            continue
        assert result.exit_code == 1 and store.read_bytes() == today, case
        assert sorted(os.listdir(tmp_path)) == ["store.v1.json", "store.v1.json.lock"], case
        assert not _writer_threads(), case


def test_killed_at_every_operation_of_a_restore_of_several_archives(tmp_path, changed, monkeypatch):
    today, archives, restored = changed
    store = tmp_path / "store.v1.json"

    def prepare():
        for path in list(tmp_path.iterdir()):
            path.unlink()
        store.write_bytes(today)
        return [
            "restore",
            "--store-file",
            str(store),
            "--archive-dir",
            str(archives),
            "--any-store-path",
        ]

    def check(case):
        data = store.read_bytes()
        assert data in (today, restored), (
            f"{case}: the store is neither today's nor the restored one"
        )
        left = [
            name
            for name in os.listdir(tmp_path)
            if name not in ("store.v1.json", "store.v1.json.lock")
        ]
        assert len(left) <= 1 and all(name.endswith(".partial") for name in left), (case, left)
        result = _restore_all(store, archives)  # the next run removes the leftover and finishes
        assert result.exit_code == 0, (case, result.stderr)
        assert store.read_bytes() == restored, case
        assert sorted(os.listdir(tmp_path)) == ["store.v1.json", "store.v1.json.lock"], case
        return "restored" if data == restored else "today"

    _, states = _kill_sweep(tmp_path, monkeypatch, prepare, check)
    assert {"restored", "today"} <= set(states.values())


def test_a_signal_at_any_operation_of_a_restore_of_several_archives(
    tmp_path, changed, monkeypatch, handlers_restored
):
    today, archives, restored = changed
    store = _fresh(tmp_path, today)
    operations = _operations(lambda: _restore_all(store, archives), monkeypatch)
    for n, op in enumerate(operations):
        store = _fresh(tmp_path, today)
        monkeypatch.setattr(fs, "call", _signalled_at(n))
        result = _restore_all(store, archives)
        monkeypatch.setattr(fs, "call", _REAL_CALL)
        case = f"SIGTERM before {op} #{n}"
        if n >= operations.index("fsync"):
            assert result.exit_code == 0 and store.read_bytes() == restored, case
        else:
            assert result.exit_code == 1, case
            assert (
                result.stderr
                == "streamclean: error: interrupted by SIGTERM; the store was left unchanged\n"
            ), case
            assert store.read_bytes() == today, case
        assert sorted(os.listdir(tmp_path)) == ["store.v1.json", "store.v1.json.lock"], case
        assert not _writer_threads(), case

"""SIGKILL at any point of a run (SPEC §5, issue 3 point 1).

A killed run cannot clean up after itself. What must hold anyway: at every instant the store
path holds the whole old store or the whole new one, byte for byte; a killed run leaves at
most its own temporary file (`<store>.streamclean-<pid>-<hex>.partial`) beside it; and the next
run removes that — never the service's `*.tmp` files — and finishes the job.

Two ways to kill, both real processes killed by a real SIGKILL:

* from outside, while the child reads, filters, writes and swaps: the test watches the child's
  read position (/proc/<pid>/fdinfo) and its temporary file, stops it (SIGSTOP) at a chosen
  point, notes where it was, and kills it;
* from inside, at every file-system operation of a run, just before it and just after it: a
  tiny driver runs the real command line with `fs.call` wrapped to kill its own process on the
  Nth call. This reaches the instants around the swap that are too short to hit from outside.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

import processes
from processes import NOW, Watch, leftovers
from streamclean import fs
from streamclean.cli import main

pytestmark = pytest.mark.slow

SERVICE_TMP = "store.v1.json.0123456789abcdef0123456789abcdef.tmp"


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """The old store (about 6 MB, service layout) and what a successful run makes of it."""
    folder = tmp_path_factory.mktemp("stores")
    old = processes.generate(folder / "old.json", 6_000_000, seed=11)
    new = processes.cleaned(folder, old)
    assert len(new) < len(old) * 0.8  # a real share is deleted, so there is a lot to write
    return old, new


@pytest.fixture
def store(tmp_path, stores):
    folder = tmp_path / "async_jobs"
    folder.mkdir()
    path = folder / "store.v1.json"
    path.write_bytes(stores[0])
    return path


def assert_old_or_new(store: Path, stores) -> str:
    data = store.read_bytes()
    if data == stores[0]:
        return "old"
    assert data == stores[1], f"the store is neither the old nor the new one ({len(data)} bytes)"
    return "new"


def assert_next_run_recovers(store: Path, stores) -> None:
    """The next run removes what the killed one left, spares the service's temp file, and
    leaves exactly the new store."""
    service_tmp = store.with_name(SERVICE_TMP)
    service_tmp.write_bytes(b'{"written": "by the service"}')
    result = CliRunner().invoke(
        main, ["clean", "--store-file", str(store), "--now", NOW], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    assert store.read_bytes() == stores[1]
    assert sorted(os.listdir(store.parent)) == sorted(
        [store.name, store.name + ".lock", SERVICE_TMP]
    )
    assert service_tmp.read_bytes() == b'{"written": "by the service"}'


def assert_only_our_leftover(store: Path, most: int = 1) -> list[Path]:
    """Nothing beside the store and its lock but our own leftovers: the temporary file, and
    where renameat2 is missing, the second name the old store gets before the rename."""
    left = leftovers(store.parent, store.name)
    assert len(left) <= most
    others = (
        set(os.listdir(store.parent)) - {store.name, store.name + ".lock"} - {p.name for p in left}
    )
    assert not others, f"a killed run left {others}"
    return left


# -- from outside --------------------------------------------------------------------------------


def _points(new_size: int):
    """Where to stop the child: (name, condition on a Sight)."""

    def first_pass(s):
        return s.passes == 1 and s.temp_size is None

    return [
        ("started reading", lambda s: s.position is not None and s.position > 0),
        ("mid pass 1", lambda s: first_pass(s) and (s.position or 0) >= 2_000_000),
        ("late pass 1", lambda s: first_pass(s) and (s.position or 0) >= 4_000_000),
        ("pass 2 began", lambda s: s.passes >= 2),
        ("temp file created", lambda s: s.temp_size is not None),
        ("writing, 1 MB", lambda s: (s.temp_size or 0) >= 1_000_000),
        ("writing, half", lambda s: (s.temp_size or 0) >= new_size // 2),
        ("written whole", lambda s: s.temp_size == new_size),
        ("swapped in", lambda s: s.store_size == new_size),
    ] + [
        (f"{ms} ms after opening the store", lambda s, ms=ms: s.elapsed >= ms / 1000)
        for ms in (0, 25, 50, 80, 120, 170)
    ]


def test_killed_from_outside_at_many_points_the_store_is_old_or_new(tmp_path, stores):
    old, new = stores
    phases = []
    for number, (name, condition) in enumerate(_points(len(new))):
        folder = tmp_path / f"run{number}"
        folder.mkdir()
        store = folder / "store.v1.json"
        store.write_bytes(old)
        proc = processes.start(processes.clean_command(store))
        watch = Watch(proc, store)
        try:
            sight = watch.stop_when(condition)
        finally:
            proc.kill()  # SIGKILL, stopped or not
            proc.communicate(timeout=20)
        # At every instant we looked, the path held the old store or the complete new one.
        for seen in watch.sights:
            assert (seen.store_ino, seen.store_size) == (
                watch.original.st_ino,
                len(old),
            ) or seen.store_size == len(new)
        state = assert_old_or_new(store, stores)
        left = assert_only_our_leftover(store)
        if sight is None:
            phases.append("finished")
        elif state == "new":
            phases.append("swapped")
        elif sight.temp_size is None:
            phases.append("reading")
        else:
            phases.append("writing")
            assert left, f"{name}: killed while writing, yet no temporary file is left"
        assert_next_run_recovers(store, stores)
    # The watch really caught the child before and during writing, not only after it was done.
    assert {"reading", "writing"} <= set(phases), phases


# -- from inside, at every file-system operation ----------------------------------------------

DRIVER = r"""
import os, signal, sys
from streamclean import fs
from streamclean.cli import main

target, when, exchange = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if exchange == "none":
    fs._renameat2 = None  # a kernel or file system without RENAME_EXCHANGE
real_call, calls = fs.call, []

def call(op, func, *args):
    calls.append(op)
    if len(calls) - 1 == target and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    try:
        return real_call(op, func, *args)
    finally:  # also after an operation that failed (the exchange, where unsupported)
        if len(calls) - 1 == target and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)

fs.call = call
main(sys.argv[4:], prog_name="streamclean")
"""


def _count_operations(
    store: Path, old: bytes, extra: list[str], monkeypatch, exchange: str
) -> list[str]:
    """The fs operations of a whole successful run, in order (in-process, same code path)."""
    store.write_bytes(old)
    calls = []
    real_call = fs.call

    def counting(op, func, *args):
        calls.append(op)
        return real_call(op, func, *args)

    with monkeypatch.context() as patch:
        patch.setattr(fs, "call", counting)
        if exchange == "none":
            patch.setattr(fs, "_renameat2", None)
        result = CliRunner().invoke(
            main, ["clean", "--store-file", str(store), "--now", NOW, *extra]
        )
    assert result.exit_code == 0, result.stderr
    shutil.rmtree(store.parent)
    store.parent.mkdir()
    return calls


@pytest.mark.parametrize(
    "exchange, extra",
    [("renameat2", []), ("none", []), ("renameat2", ["--backup"])],
    ids=["exchange", "rename-fallback", "exchange-backup"],
)
def test_killed_before_and_after_every_file_operation(store, stores, monkeypatch, exchange, extra):
    old, _ = stores
    operations = _count_operations(store, old, extra, monkeypatch, exchange)
    assert operations.count("fsync") == 1 and operations[-1] in ("fsync_dir", "rename")
    outcomes = {}
    for target, op in enumerate(operations):
        for when in ("before", "after"):
            if (
                when == "before"
                and op == "write"
                and target > 0
                and operations[target - 1] == "write"
            ):
                continue  # the same instant as after the previous write
            store.write_bytes(old)
            argv = [
                processes.PYTHON,
                "-c",
                DRIVER,
                str(target),
                when,
                exchange,
                "clean",
                "--store-file",
                str(store),
                "--now",
                NOW,
                *extra,
            ]
            proc = processes.start(argv)
            code, _, stderr = processes.finish(proc)
            assert code == -signal.SIGKILL, f"{when} {op} #{target}: {stderr}"
            state = assert_old_or_new(store, stores)
            outcomes[(target, when)] = (op, state)
            left = (
                assert_only_our_leftover(store, 2 if exchange == "none" else 1)
                if not extra
                else leftovers(store.parent, store.name)
            )
            if extra:  # --backup: a backup may only ever hold the old store
                backup = store.with_name(store.name + ".bak")
                assert not backup.exists() or backup.read_bytes() == old
            if state == "new" and exchange == "renameat2":
                # killed after the exchange and before the old store was retired: it is the
                # leftover now, whole, and the next run removes it
                assert [p.read_bytes() for p in left] in ([], [old])
            assert_next_run_recovers_with(store, stores, extra)
            shutil.rmtree(store.parent)
            store.parent.mkdir()
    # The swap is the only step that changes the store: old before it, new after it.
    swap_index = _swap_index(operations, exchange)
    for (target, when), (op, state) in outcomes.items():
        after_swap = target > swap_index or (target == swap_index and when == "after")
        assert state == ("new" if after_swap else "old"), (target, when, op, state)


def _swap_index(operations: list[str], exchange: str) -> int:
    if exchange == "none":
        return operations.index("rename")  # link, then rename over the store
    return operations.index("exchange")


def assert_next_run_recovers_with(store: Path, stores, extra: list[str]) -> None:
    if not extra:
        assert_next_run_recovers(store, stores)
        return
    result = CliRunner().invoke(main, ["clean", "--store-file", str(store), "--now", NOW, *extra])
    assert result.exit_code == 0, result.stderr
    assert store.read_bytes() == stores[1]
    assert not leftovers(store.parent, store.name)

"""Pass 2 on two processes: the store's tail filtered by a forked worker (streamclean/second_core.py).

The worker only runs for stores of 32 MiB and more; here it is forced on small generated stores
(`STREAMCLEAN_WORKERS=2`), in this process or in a child started with RUNNER. Whatever
happens to either process, the store is old or new, never anything else, no worker outlives
its run, and the run's result is the one-process run's, byte for byte.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import processes
from processes import NOW
from streamclean import cleanup, fs, splice
from streamclean import second_core as worker
from streamclean.cli import main

# A cleanup in a child process with the workers forced on; one of them ("index": pass 1's,
# "tail": pass 2's) sleeps before it starts, so that it can be caught at work.
RUNNER = r"""
import sys, time
from streamclean import pass1, pass2
from streamclean.cli import main

module, name = {"index": (pass1, "index_from"), "tail": (pass2, "filter_tail")}[sys.argv[1]]
work = getattr(module, name)
def slow_work(*args, **kwargs):
    time.sleep(60)
    return work(*args, **kwargs)
setattr(module, name, slow_work)
main(sys.argv[2:], prog_name="streamclean")
"""
WORKERS = {"index": "indexing the jobs", "tail": "filtering the store's tail"}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A generated 2 MB store, and what a one-process run makes of it (bytes and report)."""
    folder = tmp_path_factory.mktemp("split")
    old = processes.generate(folder / "store.v1.json", 2_000_000, seed=5)
    result = _invoke(folder / "store.v1.json", split=False)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["reader"] == "layout"
    return old, (folder / "store.v1.json").read_bytes(), _counts(result.stdout)


def _invoke(store: Path, *extra: str, split: bool = True):
    """A run in this process, with the workers forced on (also on a machine with one CPU)."""
    env = {"STREAMCLEAN_WORKERS": "2" if split else "1"}
    return CliRunner().invoke(
        main, ["clean", "-q", "--store-file", str(store), "--now", NOW, *extra], env=env
    )


def _counts(stdout: str) -> dict:
    report = json.loads(stdout)
    return {
        key: report[key]
        for key in (
            "results",
            "events",
            "terminal_job_count",
            "active_job_count",
            "store_bytes_after",
            "rewritten",
            "reader",
        )
    }


def _fresh(folder: Path, data: bytes) -> Path:
    for path in folder.iterdir():
        path.unlink()
    store = folder / "store.v1.json"
    store.write_bytes(data)
    return store


def children_of(pid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(name))
    return found


class Spy:
    """Counts the workers started, to know the split really happened."""

    def __init__(self, monkeypatch):
        self.started = 0
        real = worker.TailWorker.__init__

        def init(this, *args, **kwargs):
            self.started += 1
            real(this, *args, **kwargs)

        monkeypatch.setattr(worker.TailWorker, "__init__", init)


def test_two_processes_write_what_one_writes(tmp_path, stores, monkeypatch):
    old, new, counts = stores
    spy = Spy(monkeypatch)
    store = _fresh(tmp_path, old)
    result = _invoke(store)
    assert result.exit_code == 0, result.stderr
    assert spy.started == 1
    assert store.read_bytes() == new
    assert _counts(result.stdout) == counts
    assert sorted(os.listdir(tmp_path)) == ["store.v1.json", "store.v1.json.lock"]
    assert children_of(os.getpid()) == []


@pytest.mark.parametrize("slow", ["answer", "writes"])
def test_the_output_forwarded_while_the_worker_works_is_the_output(
    tmp_path, stores, monkeypatch, slow
):
    """The worker's output is copied behind ours while it works (`TailWorker.forward_to`):
    with its answer held back after its last write ("answer"), all of it is forwarded before
    `copy_output`; with every write slowed ("writes"), it is forwarded in pieces as it grows.
    Either way the new store is the one-process run's, byte for byte."""
    old, new, counts = stores
    forwarded = []
    real_forward, real_filter, real_write = (
        worker.TailWorker._forward,
        worker.pass2.filter_tail,
        worker.RangeWriter,
    )

    def forward(self):
        before = self._forwarded
        real_forward(self)
        if self._forwarded > before:
            forwarded.append(self._forwarded - before)

    monkeypatch.setattr(worker.TailWorker, "_forward", forward)
    if slow == "answer":

        def filter_tail(*args, **kwargs):  # runs in the worker, which the fork gives this patch
            done = real_filter(*args, **kwargs)
            time.sleep(0.5)
            return done

        monkeypatch.setattr(worker.pass2, "filter_tail", filter_tail)
    else:

        def writer(*args, **kwargs):
            out = real_write(*args, **kwargs)
            emit = out._write
            out._write = lambda fd, data: (time.sleep(0.02), emit(fd, data))[1]
            return out

        monkeypatch.setattr(worker, "RangeWriter", writer)
        monkeypatch.setattr(splice, "WRITE_CHUNK", 1 << 14)  # many small writes
    store = _fresh(tmp_path, old)
    result = _invoke(store)
    assert result.exit_code == 0, result.stderr
    assert store.read_bytes() == new
    assert _counts(result.stdout) == counts
    assert forwarded, "nothing was forwarded while the worker worked"
    if slow == "writes":
        assert len(forwarded) > 1, forwarded


def test_a_dry_run_on_two_processes_counts_the_same_and_writes_nothing(
    tmp_path, stores, monkeypatch
):
    old, _, counts = stores
    spy = Spy(monkeypatch)
    store = _fresh(tmp_path, old)
    result = _invoke(store, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert spy.started == 1
    assert store.read_bytes() == old
    expected = dict(counts, store_bytes_after=counts["store_bytes_after"], rewritten=False)
    assert _counts(result.stdout) == expected


def test_a_tail_only_the_general_path_reads_falls_back_to_it(tmp_path, stores, monkeypatch):
    """The worker's LayoutMismatch reaches this process, which starts over on the general path."""
    old, _, _ = stores
    state = json.loads(old)
    compact_tail = json.dumps(
        {"results": state["results"], "schema_version": 5}, ensure_ascii=False
    )
    data = (
        old[: old.index(b'\n  "notifications": ')] + b"\n  " + compact_tail[1:-1].encode() + b"\n}"
    )
    assert json.loads(data)["results"] == state["results"]
    reference = tmp_path / "reference.json"
    reference.write_bytes(data)
    monkeypatch.setenv("STREAMCLEAN_READER", "general")
    assert _invoke(reference).exit_code == 0
    monkeypatch.delenv("STREAMCLEAN_READER")

    spy = Spy(monkeypatch)
    store = tmp_path / "store.v1.json"
    store.write_bytes(data)
    result = _invoke(store)
    assert result.exit_code == 0 and result.stderr == "", result.stderr
    assert spy.started == 1 and json.loads(result.stdout)["reader"] == "general"
    assert store.read_bytes() == reference.read_bytes() != data
    assert children_of(os.getpid()) == []


def test_without_o_tmpfile_the_worker_file_is_named_and_unlinked_at_once(
    tmp_path, stores, monkeypatch
):
    old, new, _ = stores
    monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    spy = Spy(monkeypatch)
    store = _fresh(tmp_path, old)
    result = _invoke(store)
    assert result.exit_code == 0 and store.read_bytes() == new and spy.started == 1
    assert sorted(os.listdir(tmp_path)) == ["store.v1.json", "store.v1.json.lock"]


def test_no_worker_without_a_file_for_it_or_room_for_it(tmp_path, stores, monkeypatch):
    old, new, _ = stores
    spy = Spy(monkeypatch)
    with monkeypatch.context() as patch:
        patch.setattr(cleanup, "unnamed_file", lambda beside, store_mode: None)
        store = _fresh(tmp_path, old)
        result = _invoke(store)
    assert result.exit_code == 0 and store.read_bytes() == new and spy.started == 0

    real_statvfs = os.statvfs

    def roomy_but_not_enough(path):  # the old store's size is free, not that plus the tail's
        vfs = real_statvfs(path)
        blocks = (len(old) + len(old) // 10) // vfs.f_frsize
        return os.statvfs_result(
            (
                vfs.f_bsize,
                vfs.f_frsize,
                vfs.f_blocks,
                blocks,
                blocks,
                vfs.f_files,
                vfs.f_ffree,
                vfs.f_favail,
                vfs.f_flag,
                vfs.f_namemax,
            )
        )

    monkeypatch.setattr(os, "statvfs", roomy_but_not_enough)
    store = _fresh(tmp_path, old)
    result = _invoke(store)
    assert result.exit_code == 0 and store.read_bytes() == new and spy.started == 0


# -- failures in either process ---------------------------------------------------------------


class RoleFaults:
    """An `fs.call` that logs each operation with the process it ran in (the forked worker's
    memory is its own, so the log is a file) and fails the `fail_at`th operation named `name`
    of `role` (and, `for_good`, every operation of `role` after it), logging "failed" then.

    Operations are counted by name: how many kernel copies the parent makes varies from run to
    run (it forwards the worker's output as it grows), so a position in the whole sequence
    would name different operations in different runs."""

    def __init__(
        self,
        real,
        log: Path,
        parent: int,
        role: str = "",
        name: str = "",
        fail_at: int = -1,
        code: int = errno.ENOSPC,
        for_good: bool = False,
    ):
        self.real, self.log, self.parent = real, log, parent
        self.role, self.name, self.fail_at, self.code, self.for_good = (
            role,
            name,
            fail_at,
            code,
            for_good,
        )
        self.count = 0
        self.failing = False

    def __call__(self, op, func, *args):
        role = "parent" if os.getpid() == self.parent else "worker"
        with open(self.log, "a") as log:
            log.write(f"{role} {op}\n")
            if role == self.role:
                hit = False
                if op == self.name:
                    hit = self.count == self.fail_at
                    self.count += 1
                if hit or (self.for_good and self.failing):
                    self.failing = True
                    log.write(f"{role} failed\n")
                    raise OSError(self.code, os.strerror(self.code))
        return self.real(op, func, *args)

    def operations(self) -> list[tuple[str, str]]:
        return [tuple(line.split()) for line in self.log.read_text().splitlines()]


def _operations_by_role(tmp_path: Path, old: bytes, monkeypatch, *extra: str):
    """A successful run on a copy of `old` in `tmp_path/store`: the folder, the real fs.call and
    the (role, operation) pairs the run made."""
    folder = tmp_path / "store"
    folder.mkdir()
    real_call = fs.call
    counting = RoleFaults(real_call, tmp_path / "count.log", os.getpid())
    monkeypatch.setattr(fs, "call", counting)
    store = _fresh(folder, old)
    assert _invoke(store, *extra).exit_code == 0
    return folder, real_call, counting.operations()


def test_failing_any_file_operation_of_either_process_leaves_the_store(
    tmp_path, stores, monkeypatch
):
    old, new, _ = stores
    folder, real_call, operations = _operations_by_role(tmp_path, old, monkeypatch)
    assert (folder / "store.v1.json").read_bytes() == new
    by_role = {role: [op for r, op in operations if r == role] for role in ("parent", "worker")}
    assert by_role["worker"], "the worker wrote nothing: it did not run"
    swap = by_role["parent"].index("exchange")

    checked = 0
    for role, ops in by_role.items():
        for for_good in (False, True):
            for n, op in enumerate(ops):
                if role == "parent" and n > swap:
                    continue  # after the swap: test_faults covers it, the worker is long gone
                k = ops[:n].count(op)  # the k-th operation of its name
                log = tmp_path / f"{role}-{n}-{for_good}.log"
                monkeypatch.setattr(
                    fs,
                    "call",
                    RoleFaults(real_call, log, os.getpid(), role, op, k, for_good=for_good),
                )
                store = _fresh(folder, old)
                result = _invoke(store)
                case = f"{role} {op} #{k}{' for good' if for_good else ''}"
                lines = result.stderr.splitlines()
                if f"{role} failed" not in log.read_text().splitlines():
                    # This run made fewer such operations (fewer, larger copies): nothing failed.
                    assert result.exit_code == 0 and store.read_bytes() == new, (
                        case,
                        result.stderr,
                    )
                    continue
                assert result.exit_code == 1, (case, result.stderr)
                assert len(lines) == 1 and lines[0].startswith("streamclean: error: "), (
                    case,
                    result.stderr,
                )
                assert os.strerror(errno.ENOSPC) in lines[0], case
                assert store.read_bytes() == old, case
                assert sorted(os.listdir(folder)) == ["store.v1.json", "store.v1.json.lock"], case
                assert children_of(os.getpid()) == [], case
                checked += 1
    assert checked >= 2 * len(by_role["worker"]) + 2


# -- signals and kills, from outside ------------------------------------------------------------


def _start_slow(store: Path, slow: str) -> processes.subprocess.Popen:
    argv = [processes.PYTHON, "-c", RUNNER, slow, "clean", "--store-file", str(store), "--now", NOW]
    return processes.start(
        argv, start_new_session=True, env={**os.environ, "STREAMCLEAN_WORKERS": "2"}
    )


def _cmdline(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read()
    except OSError:
        return None


def _worker_of(proc, timeout: float = 20.0) -> int:
    """The run's slow worker: a child with the run's own command line (a fork, not a program)
    that is still there half a second later (the other worker takes milliseconds)."""
    deadline = time.monotonic() + timeout
    seen: set[int] = set()
    while time.monotonic() < deadline:
        found = {pid for pid in children_of(proc.pid) if _cmdline(pid) == _cmdline(proc.pid)}
        if found & seen:
            return min(found & seen)
        seen = found
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.5)
    raise AssertionError("no worker appeared")


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.01)
    return False


def _assert_untouched_and_recovers(store: Path, old: bytes, new: bytes) -> None:
    assert store.read_bytes() == old
    proc = processes.start(processes.clean_command(store))
    code, _, stderr = processes.finish(proc)
    assert code == 0, stderr
    assert store.read_bytes() == new
    assert processes.leftovers(store.parent, store.name) == []


@pytest.mark.parametrize("slow", sorted(WORKERS))
def test_a_killed_worker_fails_the_run_in_one_line(tmp_path, stores, slow):
    old, new, _ = stores
    store = _fresh(tmp_path, old)
    proc = _start_slow(store, slow)
    os.kill(_worker_of(proc), signal.SIGKILL)
    code, stdout, stderr = processes.finish(proc)
    assert code == 1 and stdout == ""
    assert stderr == (
        f"streamclean: error: the process {WORKERS[slow]} ended without an answer "
        "(killed by SIGKILL); the store was left unchanged; run again\n"
    ), stderr
    _assert_untouched_and_recovers(store, old, new)


@pytest.mark.parametrize("slow", sorted(WORKERS))
def test_a_killed_run_takes_its_worker_with_it(tmp_path, stores, slow):
    old, new, _ = stores
    store = _fresh(tmp_path, old)
    proc = _start_slow(store, slow)
    helper = _worker_of(proc)
    os.kill(proc.pid, signal.SIGKILL)
    assert processes.finish(proc)[0] == -signal.SIGKILL
    assert _gone(helper), "the worker outlived the run it served"
    _assert_untouched_and_recovers(store, old, new)  # the lock is free again


@pytest.mark.parametrize("slow", sorted(WORKERS))
@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT-to-group"])
def test_an_interrupted_run_stops_its_worker(tmp_path, stores, how, slow):
    old, new, _ = stores
    store = _fresh(tmp_path, old)
    proc = _start_slow(store, slow)
    helper = _worker_of(proc)
    if how == "SIGTERM":
        os.kill(proc.pid, signal.SIGTERM)
    else:  # Ctrl-C on a terminal: the whole foreground group, worker included
        os.killpg(proc.pid, signal.SIGINT)
    code, stdout, stderr = processes.finish(proc)
    signame = how.split("-")[0]
    assert code == 1 and stdout == ""
    assert (
        stderr == f"streamclean: error: interrupted by {signame}; the store was left unchanged\n"
    ), stderr
    assert _gone(helper)
    _assert_untouched_and_recovers(store, old, new)


def test_no_worker_is_forked_from_a_process_with_other_threads(tmp_path, stores, monkeypatch):
    import threading

    old, new, _ = stores
    spy = Spy(monkeypatch)
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        store = _fresh(tmp_path, old)
        result = _invoke(store)
    finally:
        release.set()
        other.join()
    assert result.exit_code == 0 and store.read_bytes() == new and spy.started == 0


# -- the archive on two processes (issue 13) ------------------------------------------------------


def _archive_lines(path: Path) -> list[bytes]:
    import gzip

    return gzip.decompress(path.read_bytes()).split(b"\n")


def _gzip_members(data: bytes) -> int:
    import zlib

    members = 0
    while data:
        inflate = zlib.decompressobj(31)
        inflate.decompress(data)
        data = inflate.unused_data
        members += 1
    return members


def test_two_processes_archive_what_one_archives(tmp_path, stores, monkeypatch):
    """The worker archives its part into a file of its own, appended behind the main
    process's part as a gzip member of its own: the same lines, in store order."""
    old, new, _ = stores
    archives = {}
    for split in (False, True):
        folder = tmp_path / f"split-{split}"
        folder.mkdir()
        store = _fresh(folder, old)
        spy = Spy(monkeypatch)
        result = _invoke(store, "--archive-file", str(folder / "a.jsonl.gz"), split=split)
        monkeypatch.undo()
        assert result.exit_code == 0, result.stderr
        assert spy.started == int(split) and store.read_bytes() == new
        archives[split] = folder / "a.jsonl.gz"
    one, two = (_archive_lines(archives[split]) for split in (False, True))
    assert json.loads(one[0])["after"] == json.loads(two[0])["after"]
    assert one[1:] == two[1:] and len(one) > 100
    assert _gzip_members(archives[False].read_bytes()) == 2  # the header, the body
    assert _gzip_members(archives[True].read_bytes()) == 3  # the header, ours, the worker's


def test_failing_any_file_operation_of_the_worker_while_archiving_leaves_no_archive(
    tmp_path, stores, monkeypatch
):
    old, _new, _ = stores
    folder, real_call, operations = _operations_by_role(
        tmp_path, old, monkeypatch, "--archive-file", str(tmp_path / "store" / "a.jsonl.gz")
    )
    ops = [op for role, op in operations if role == "worker"]
    assert ops.count("write") >= 2, ops  # the worker's new store and its part of the archive
    for n, op in enumerate(ops):
        k = ops[:n].count(op)
        monkeypatch.setattr(
            fs, "call", RoleFaults(real_call, tmp_path / f"{n}.log", os.getpid(), "worker", op, k)
        )
        store = _fresh(folder, old)
        result = _invoke(store, "--archive-file", str(folder / "a.jsonl.gz"))
        case = f"worker {op} #{k}"
        assert result.exit_code == 1 and os.strerror(errno.ENOSPC) in result.stderr, (
            case,
            result.stderr,
        )
        assert store.read_bytes() == old, case
        assert sorted(os.listdir(folder)) == ["store.v1.json", "store.v1.json.lock"], case
        assert children_of(os.getpid()) == [], case


def test_a_killed_worker_while_archiving_leaves_no_archive(tmp_path, stores):
    old, _new, _ = stores
    store = _fresh(tmp_path, old)
    argv = [
        processes.PYTHON,
        "-c",
        RUNNER,
        "tail",
        "clean",
        "--store-file",
        str(store),
        "--now",
        NOW,
        "--archive-file",
        str(tmp_path / "a.jsonl.gz"),
    ]
    proc = processes.start(
        argv, start_new_session=True, env={**os.environ, "STREAMCLEAN_WORKERS": "2"}
    )
    os.kill(_worker_of(proc), signal.SIGKILL)
    code, _, stderr = processes.finish(proc)
    assert code == 1 and "ended without an answer (killed by SIGKILL)" in stderr, stderr
    assert store.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["store.v1.json", "store.v1.json.lock"]


def test_the_positioned_reader_reads_as_the_file_does(tmp_path):
    """The worker's stand-in for the store's file (`layout.File`): `read`, `readinto`, `seek`
    from the start, the current offset and the end, and `tell` give what the file gives, and
    the descriptor's own position stays where it was."""
    data = bytes(range(256)) * 40
    path = tmp_path / "store"
    path.write_bytes(data)
    with open(path, "rb") as file:
        fd = file.fileno()
        reader = worker._PositionedReader(fd, 10)
        assert reader.tell() == 10
        assert reader.read(5) == data[10:15]
        buffer = bytearray(7)
        assert reader.readinto(memoryview(buffer)) == 7 and bytes(buffer) == data[15:22]
        assert reader.tell() == 22
        assert reader.seek(-3, os.SEEK_END) == len(data) - 3 == file.seek(-3, os.SEEK_END)
        assert reader.readinto(memoryview(buffer)) == 3 and bytes(buffer[:3]) == data[-3:]
        assert reader.readinto(memoryview(buffer)) == 0 and reader.read(4) == b""
        assert reader.seek(-10, os.SEEK_CUR) == len(data) - 10
        assert reader.seek(4) == 4 and reader.read(2) == data[4:6]
        assert os.lseek(fd, 0, os.SEEK_CUR) == len(data) - 3  # where `file.seek` left it

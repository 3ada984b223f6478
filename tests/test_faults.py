"""Full disks and I/O errors (SPEC §5, issue 3 points 5 and 6).

Every write, fsync, rename, link, exchange and folder fsync of a run goes through `fs.call`.
The sweep counts them in a successful run, then fails the Nth one — once, and for good (the
Nth and every later one) — with ENOSPC and with EIO, for every N: the command exits 1 with
one line naming the error, the store is byte for byte as it was, and nothing is left beside
it. A failed fsync is final: nothing is synced, swapped or retried after it.

One case cannot end with the store as it was: the disk fails *for good* after the swap (the
folder fsync, or naming the backup), so undoing the swap fails too. Then the run says exactly
that, names where the old store is, and both files are whole.

Around the sweep: a real `RLIMIT_FSIZE` in a child process (the kernel's EFBIG), a read-only
folder, and the free-space check before pass 2.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import resource
import signal
import subprocess
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

import processes
from processes import NOW
from streamclean import fs
from streamclean.cli import main
from streamclean.units import megabytes

ERRNOS = [errno.ENOSPC, errno.EIO]


@pytest.fixture(scope="module")
def service_store(tmp_path_factory):
    """About 2.5 MB in the service's layout (the fast path), and its cleaned version."""
    folder = tmp_path_factory.mktemp("service")
    old = processes.generate(folder / "old.json", 2_500_000, seed=21)
    return old, processes.cleaned(folder, old)


@pytest.fixture(scope="module")
def compact_store(service_store, tmp_path_factory):
    """The same state as one compact line (the general path, many smaller writes)."""
    folder = tmp_path_factory.mktemp("compact")
    old = json.dumps(json.loads(service_store[0]), ensure_ascii=False).encode()
    return old, processes.cleaned(folder, old)


def _invoke(store: Path, *extra: str):
    return CliRunner().invoke(
        main, ["clean", "--store-file", str(store), "--now", NOW, *extra], catch_exceptions=False
    )


def _fresh(folder: Path, data: bytes, backup: bytes | None = None) -> Path:
    for path in folder.iterdir():
        path.unlink()
    store = folder / "store.v1.json"
    store.write_bytes(data)
    if backup is not None:
        store.with_name(store.name + ".bak").write_bytes(backup)
    return store


class Faults:
    """An `fs.call` that records every operation and fails the `fail_at`th (0-based)."""

    def __init__(self, real, fail_at: int = -1, code: int = errno.EIO, for_good: bool = False):
        self.real, self.fail_at, self.code, self.for_good = real, fail_at, code, for_good
        self.calls: list[str] = []

    def __call__(self, op, func, *args):
        index = len(self.calls)
        self.calls.append(op)
        if index == self.fail_at or (self.for_good and 0 <= self.fail_at < index):
            raise OSError(self.code, os.strerror(self.code))
        return self.real(op, func, *args)


VARIANTS = {
    # name: (store fixture, extra options, renameat2 available); the store's own layout is read
    # by the layout reader, other layouts (and "/general") by the general reader
    "service-layout": ("service_store", [], True),
    "service-layout/general": ("service_store", [], True),
    "compact": ("compact_store", [], True),
    "backup": ("service_store", ["--backup"], True),
    "no-renameat2": ("service_store", [], False),
    "no-renameat2-backup": ("service_store", ["--backup"], False),
}

OLDER_BACKUP = b'{"an": "older backup"}'


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_failing_any_file_operation_leaves_the_store_as_it_was(
    variant, request, tmp_path, monkeypatch
):
    fixture, extra, exchange = VARIANTS[variant]
    old, new = request.getfixturevalue(fixture)
    reader = "general" if variant.endswith("/general") or fixture == "compact_store" else "layout"
    monkeypatch.setenv("STREAMCLEAN_READER", reader)
    backup = OLDER_BACKUP if "--backup" in extra else None
    if not exchange:
        monkeypatch.setattr(fs, "_renameat2", None)
    real_call = fs.call

    counting = Faults(real_call)
    store = _fresh(tmp_path, old, backup)
    monkeypatch.setattr(fs, "call", counting)
    result = _invoke(store, *extra)
    assert result.exit_code == 0 and json.loads(result.stdout)["reader"] == reader
    assert store.read_bytes() == new
    operations = counting.calls
    assert operations.count("fsync") == 1 and "fsync_dir" in operations
    first_after_swap = operations.index("fsync_dir")  # the swap itself came just before

    checked = 0
    for code in ERRNOS:
        for for_good in (False, True):
            for n, op in enumerate(operations):
                faults = Faults(real_call, n, code, for_good)
                monkeypatch.setattr(fs, "call", faults)
                store = _fresh(tmp_path, old, backup)
                result = _invoke(store, *extra)
                case = f"{variant}: {op} #{n} fails with {errno.errorcode[code]}{' for good' if for_good else ''}"
                double_fault = for_good and n >= first_after_swap
                # 1 promises the store as it was; a swap that could not be undone is 74.
                assert result.exit_code == (74 if double_fault else 1), case
                lines = result.stderr.splitlines()
                assert len(lines) == 1 and lines[0].startswith("streamclean: error: "), (
                    case,
                    result.stderr,
                )
                assert os.strerror(code) in lines[0], case
                assert "internal error" not in lines[0] and "Traceback" not in result.stderr, case
                assert result.stdout == "", case
                if op == "fsync":  # final: nothing is synced, swapped or retried after it
                    assert faults.calls[n + 1 :] == [], (case, faults.calls)
                if double_fault:
                    _assert_double_fault_is_reported(store, old, new, lines[0], case)
                else:
                    assert store.read_bytes() == old, case
                    expected = ["store.v1.json", "store.v1.json.lock"]
                    if backup is not None:
                        assert store.with_name("store.v1.json.bak").read_bytes() == backup, case
                        expected.append("store.v1.json.bak")
                    assert sorted(os.listdir(tmp_path)) == sorted(expected), case
                checked += 1
    assert checked == 4 * len(operations)


def _assert_double_fault_is_reported(
    store: Path, old: bytes, new: bytes, line: str, case: str
) -> None:
    """The swap happened and could not be undone: the line says so and where the old store is."""
    match = re.search(
        r"(\S+) now holds the cleaned store and (\S+) (?:the file it replaced|the old one)", line
    )
    assert match, (case, line)
    assert match.group(1) == str(store), case
    assert store.read_bytes() == new, case
    assert Path(match.group(2)).read_bytes() == old, case


def test_a_failed_fsync_is_never_retried(tmp_path, monkeypatch, service_store):
    old, _ = service_store
    faults = Faults(fs.call)
    monkeypatch.setattr(fs, "call", faults)
    store = _fresh(tmp_path, old)
    assert _invoke(store).exit_code == 0
    fsync_at = faults.calls.index("fsync")
    faults = Faults(faults.real, fsync_at, errno.EIO)
    monkeypatch.setattr(fs, "call", faults)
    store = _fresh(tmp_path, old)
    result = _invoke(store)
    assert result.exit_code == 1
    assert faults.calls.count("fsync") == 1 and faults.calls[-1] == "fsync"
    assert re.fullmatch(
        r"streamclean: error: cannot finish writing the new store \S+\.partial: Input/output error; "
        r"the store was left unchanged; check the disk and run again\n",
        result.stderr,
    )
    assert store.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["store.v1.json", "store.v1.json.lock"]


def test_folder_sync_failing_once_undoes_the_swap(tmp_path, monkeypatch, service_store):
    old, _ = service_store
    faults = Faults(fs.call, code=errno.EIO)
    monkeypatch.setattr(fs, "call", faults)
    store = _fresh(tmp_path, old)
    assert _invoke(store).exit_code == 0
    faults.fail_at, faults.calls = faults.calls.index("fsync_dir"), []
    store = _fresh(tmp_path, old)
    result = _invoke(store)
    assert result.stderr == (
        f"streamclean: error: cannot sync the store's folder {tmp_path}: Input/output error; "
        "the store was left unchanged; check the disk\n"
    )
    assert faults.calls[-2:] == ["fsync_dir", "exchange"]  # the swap back
    assert store.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["store.v1.json", "store.v1.json.lock"]


# -- a real file size limit ----------------------------------------------------------------


def _limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["service_store", "compact_store"])
def test_a_real_file_size_limit_fails_the_run_and_leaves_the_store(fixture, request, tmp_path):
    old, new = request.getfixturevalue(fixture)
    assert len(new) > 300_000
    store = _fresh(tmp_path, old)
    proc = subprocess.run(
        processes.clean_command(store),
        cwd=processes.ROOT,
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == (
        "streamclean: error: cannot write the new store: File too large; "
        "the store was left unchanged; free space beside it and run again\n"
    )
    assert proc.stdout == ""
    assert store.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["store.v1.json", "store.v1.json.lock"]


# -- a read-only folder ------------------------------------------------------------------------

_PR_CAPBSET_DROP = 24
_DAC_CAPABILITIES = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
_libc = ctypes.CDLL(None, use_errno=True)


def _honour_permissions():
    """In the child: as root, give up the capabilities that let root ignore permissions, so a
    read-only folder is read-only for it too (root stays root for everything else)."""
    if os.geteuid() == 0:
        for capability in _DAC_CAPABILITIES:
            if _libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
                os._exit(97)


def _run_honouring_permissions(argv):
    return subprocess.run(
        argv,
        cwd=processes.ROOT,
        capture_output=True,
        text=True,
        preexec_fn=_honour_permissions,
        timeout=60,
    )


@pytest.fixture
def read_only_store(tmp_path, service_store):
    folder = tmp_path / "ro"
    folder.mkdir()
    store = folder / "store.v1.json"
    store.write_bytes(service_store[0])
    leftover = folder / "store.v1.json.streamclean-4242-0123abcd.partial"
    leftover.write_bytes(b"a killed run's leftover")
    folder.chmod(0o555)
    probe = _run_honouring_permissions(
        [processes.PYTHON, "-c", f"open({str(folder / 'probe')!r}, 'w')"]
    )
    if probe.returncode == 0:
        folder.chmod(0o755)
        pytest.skip("permissions are not enforced for this user here")
    yield store
    folder.chmod(0o755)


@pytest.mark.slow
def test_a_read_only_folder_is_refused_clearly(read_only_store, tmp_path, service_store):
    store, folder = read_only_store, read_only_store.parent
    before = sorted(os.listdir(folder))

    proc = _run_honouring_permissions(processes.clean_command(store))
    assert proc.returncode == 1
    assert proc.stderr == (
        f"streamclean: error: cannot create the lock file {store}.lock: Permission denied; "
        "the store's folder must be writable, or move the lock with --lock-file\n"
    )

    lock = tmp_path / "locks" / "store.lock"
    lock.parent.mkdir()
    proc = _run_honouring_permissions(processes.clean_command(store, "--lock-file", str(lock)))
    assert proc.returncode == 1
    assert re.fullmatch(
        rf"streamclean: error: cannot create the new store beside the old one: Permission denied: "
        rf"{re.escape(str(store))}\.streamclean-\d+-[0-9a-f]{{8}}\.partial; "
        r"the store's folder must be writable by this user\n",
        proc.stderr,
    ), proc.stderr

    proc = _run_honouring_permissions(processes.clean_command(store, "--dry-run"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rewritten"] is False

    assert store.read_bytes() == service_store[0]
    assert sorted(os.listdir(folder)) == before


# -- free space ----------------------------------------------------------------------------------


def _free_space(monkeypatch, folder: Path, free: int | None) -> list[int]:
    """Make statvfs report `free` bytes for `folder` (None: statvfs fails); returns a list that
    records each query."""
    real, asked = os.statvfs, []

    def statvfs(path):
        if Path(path) != folder:
            return real(path)
        asked.append(free)
        if free is None:
            raise OSError(errno.ENOSYS, "no statvfs here")
        return types.SimpleNamespace(f_bavail=free // 512, f_frsize=512, f_bsize=512)

    monkeypatch.setattr(os, "statvfs", statvfs)
    return asked


def _round_down(n: int) -> int:
    return n - n % 512


@pytest.mark.parametrize("fixture", ["service_store", "compact_store"])
def test_refused_before_writing_when_the_new_store_cannot_fit(
    fixture, request, tmp_path, monkeypatch
):
    old, new = request.getfixturevalue(fixture)
    store = _fresh(tmp_path, old)
    free = _round_down(len(new) - 1)
    asked = _free_space(monkeypatch, tmp_path, free)
    faults = Faults(fs.call)
    monkeypatch.setattr(fs, "call", faults)
    result = _invoke(store)
    assert result.exit_code == 1
    assert result.stderr == (
        f"streamclean: error: not enough free space for the new store in {tmp_path}: "
        f"{megabytes(free)} free, {megabytes(len(new))} needed; "
        "the store was left unchanged; free space there and run again\n"
    )
    assert asked and faults.calls == []  # refused before a single byte was written
    assert store.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["store.v1.json", "store.v1.json.lock"]


@pytest.mark.parametrize("fixture", ["service_store", "compact_store"])
def test_a_nearly_full_disk_is_cleaned_when_the_new_store_fits(
    fixture, request, tmp_path, monkeypatch
):
    """Less free than the old store's size, but enough for the new one: exactly when a
    cleanup matters most, it must not be refused."""
    old, new = request.getfixturevalue(fixture)
    store = _fresh(tmp_path, old)
    _free_space(monkeypatch, tmp_path, _round_down(len(new)) + 512)
    assert len(new) + 512 < len(old)
    result = _invoke(store)
    assert result.exit_code == 0, result.stderr
    assert store.read_bytes() == new


def test_nothing_to_delete_needs_no_space(tmp_path, monkeypatch, service_store):
    _, new = service_store
    store = _fresh(tmp_path, new)  # already clean: nothing will be written
    stamp = store.stat().st_mtime_ns
    _free_space(monkeypatch, tmp_path, 0)
    result = _invoke(store)
    assert result.exit_code == 0, result.stderr
    assert store.read_bytes() == new and store.stat().st_mtime_ns == stamp


def test_without_a_free_space_answer_the_run_goes_ahead(tmp_path, monkeypatch, service_store):
    old, new = service_store
    store = _fresh(tmp_path, old)
    asked = _free_space(monkeypatch, tmp_path, None)
    result = _invoke(store)
    assert result.exit_code == 0, result.stderr
    assert asked and store.read_bytes() == new


def test_plenty_of_space_costs_no_extra_pass(tmp_path, monkeypatch, service_store):
    """The exact count is paid for only on a tight disk: with the old store's size free, the
    store is read once for the index and once for the filter, as before."""
    from streamclean import cleanup
    from streamclean.policy import RetentionPolicy

    old, new = service_store
    policy = RetentionPolicy.build(processes.GENERATOR_NOW, 604800, 259200)
    for free, passes in (
        (len(old) + 512, ["index", "filter"]),
        (len(new) + 4096, ["index", "space", "filter"]),
    ):
        store = _fresh(tmp_path, old)
        _free_space(monkeypatch, tmp_path, free)
        seen = []
        cleanup.clean(
            store,
            policy,
            progress=lambda name, done, total, seen=seen: (
                seen.append(name) if name not in seen else None
            ),
        )
        assert seen == passes
        assert store.read_bytes() == new

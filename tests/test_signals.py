"""SIGINT and SIGTERM (SPEC §5, issue 3 point 2).

A cleanup stopped by Ctrl-C, `timeout`, systemd or cron's kill ends at once with status 1 and
one line on stderr, removes its temporary file, and leaves the store as it was. Inside the swap
a signal waits (stopping there could only lose the file just swapped out), so the run
completes; around the temporary file's creation and removal it waits just long enough not to
leave the file behind.
"""

from __future__ import annotations

import errno
import gc
import hashlib
import inspect
import os
import signal
import sys
import threading
import time
import warnings

import pytest
from click.testing import CliRunner

import processes
from processes import NOW, Watch
from streamclean import archive, fs, signals, splice, swap
from streamclean.cli import main
from streamclean.errors import InterruptedRunError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stores")
    old = processes.generate(folder / "old.json", 6_000_000, seed=5)
    return old, processes.cleaned(folder, old)


@pytest.fixture
def store(tmp_path, stores):
    path = tmp_path / "async_jobs" / "store.v1.json"
    path.parent.mkdir()
    path.write_bytes(stores[0])
    return path


# -- a real process, signalled from outside ---------------------------------------------------

POINTS = {
    # pass 1: reading, nothing written yet
    "reading": lambda s, new: (
        s.passes == 1 and (s.position or 0) >= 1_000_000 and s.temp_size is None
    ),
    # pass 2: the temporary file was just created (on the fast path its writer thread starts now)
    "writing-begins": lambda s, new: s.temp_size is not None and s.temp_size < 1_000_000,
    # pass 2, well into writing and not yet complete, so the swap is still ahead
    "writing": lambda s, new: (
        s.temp_size is not None and 1_100_000 < s.temp_size < len(new) and s.store_size != len(new)
    ),
}

THREAD_START_BUG = (
    "splice.py starts its writer thread where a signal can interrupt Thread.start(); the thread "
    "is then never stopped and may print a traceback at exit (reported)"
)


@pytest.mark.parametrize(
    "point",
    ["reading", "writing-begins", "writing"],
)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_the_run_with_one_line_and_the_store_untouched(store, stores, point, signum):
    old, new = stores
    condition = POINTS[point]
    for _ in range(3):  # the child may outrun the watch; it then simply finished: try again
        store.write_bytes(old)
        proc = processes.start(processes.clean_command(store))
        sight = Watch(proc, store).stop_when(lambda s: condition(s, new))
        if sight is not None and condition(sight, new):
            break
        proc.kill()
        processes.finish(proc)
        for path in store.parent.iterdir():
            path.unlink()
    else:
        pytest.fail(f"could not stop the child while {point}")
    os.kill(proc.pid, signum)  # pending while it is stopped
    resumed = time.monotonic()
    os.kill(proc.pid, signal.SIGCONT)
    code, stdout, stderr = processes.finish(proc)
    took = time.monotonic() - resumed
    name = signal.Signals(signum).name
    assert code == 1
    assert stderr == f"streamclean: error: interrupted by {name}; the store was left unchanged\n"
    assert "Traceback" not in stderr and stdout == ""
    assert took < 2.0, f"it took {took:.2f} s to stop"
    assert store.read_bytes() == old
    assert sorted(os.listdir(store.parent)) == ["store.v1.json", "store.v1.json.lock"]


# -- in-process, signalled at the instants that are too short to hit from outside ------------


def _invoke(store, *extra):
    return CliRunner().invoke(
        main, ["clean", "--store-file", str(store), "--now", NOW, *extra], catch_exceptions=False
    )


def test_a_signal_during_the_swap_waits_and_the_run_completes(
    store, stores, monkeypatch, handlers_restored
):
    real_call = fs.call

    def signalled_exchange(op, func, *args):
        if op == "exchange":
            os.kill(os.getpid(), signal.SIGTERM)  # its handler runs right here, inside the swap
        return real_call(op, func, *args)

    monkeypatch.setattr(fs, "call", signalled_exchange)
    result = _invoke(store)
    assert result.exit_code == 0, result.stderr
    assert store.read_bytes() == stores[1]
    assert sorted(os.listdir(store.parent)) == ["store.v1.json", "store.v1.json.lock"]


def test_a_signal_right_after_the_temporary_file_is_created_does_not_leave_it(
    store, stores, monkeypatch, handlers_restored
):
    real_open = os.open

    def open_then_signal(path, *args, **kwargs):
        fd = real_open(path, *args, **kwargs)
        if str(path).endswith(".partial"):
            os.kill(os.getpid(), signal.SIGTERM)  # arrives before the caller has noted the file
        return fd

    monkeypatch.setattr(swap.os, "open", open_then_signal)
    result = _invoke(store)
    assert result.exit_code == 1
    assert (
        result.stderr
        == "streamclean: error: interrupted by SIGTERM; the store was left unchanged\n"
    )
    assert store.read_bytes() == stores[0]
    assert sorted(os.listdir(store.parent)) == ["store.v1.json", "store.v1.json.lock"]


def test_a_signal_as_the_writer_thread_starts_leaves_no_thread_behind(
    store, stores, monkeypatch, handlers_restored
):
    real_start = threading.Thread.start

    def start_then_signal(self):
        real_start(self)
        os.kill(os.getpid(), signal.SIGTERM)  # lands in the last instructions of start()

    monkeypatch.setattr(threading.Thread, "start", start_then_signal)
    result = _invoke(store)
    monkeypatch.undo()
    assert result.exit_code == 1
    assert (
        result.stderr
        == "streamclean: error: interrupted by SIGTERM; the store was left unchanged\n"
    )
    assert store.read_bytes() == stores[0]
    assert sorted(os.listdir(store.parent)) == ["store.v1.json", "store.v1.json.lock"]
    # A thread still alive holds the closed descriptor of the removed temporary file.
    assert not [t for t in threading.enumerate() if t.name == "streamclean-writer" and t.is_alive()]


def test_a_signal_during_the_rollback_does_not_stop_it(
    store, stores, monkeypatch, handlers_restored
):
    """A full disk, and while the run cleans up, SIGTERM: the temp file still goes, and the
    message is the disk's, not the signal's."""
    real_call, real_unlink = fs.call, swap._unlink_quietly

    def full_disk(op, func, *args):
        if op == "write":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_call(op, func, *args)

    def signalled_unlink(path):
        os.kill(os.getpid(), signal.SIGTERM)
        real_unlink(path)

    monkeypatch.setattr(fs, "call", full_disk)
    monkeypatch.setattr(swap, "_unlink_quietly", signalled_unlink)
    result = _invoke(store)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "streamclean: error: cannot write the new store: No space left on device;"
    )
    assert result.stderr.count("\n") == 1
    assert store.read_bytes() == stores[0]
    assert sorted(os.listdir(store.parent)) == ["store.v1.json", "store.v1.json.lock"]


def test_after_the_swap_an_interruption_does_not_claim_the_store_is_unchanged(handlers_restored):
    signals.install()
    with pytest.raises(InterruptedRunError) as before:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler raises long before this ends
    assert str(before.value) == "interrupted by SIGTERM; the store was left unchanged"
    signals.swapped()
    with pytest.raises(InterruptedRunError) as after:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
    assert str(after.value) == (
        "interrupted by SIGTERM after the cleaned store was swapped in; "
        "the store is cleaned; only the report is missing"
    )


# -- the writer thread's queue and join ---------------------------------------------------------
# A handler that raises may run between any two instructions of the main thread, also inside
# `queue` and `threading` code. These tests put the signal at the worst such point, by a trace
# function, and bound every wait with a timeout: without the critical sections in `_DiskWriter`
# the first leaves the queue's lock taken (the writer thread, then `abandon`, wait for it
# forever), the second has a thread still writing reported as ended.


def _signal_at(code, event: str, line: int | None = None, only=lambda frame: True):
    """A trace function that raises SIGTERM once, at `event` ("return", "line") of `code`."""
    fired = []

    def local(frame, what, arg):
        if what == event and not fired and (line is None or frame.f_lineno == line):
            fired.append(frame.f_lineno)
            signal.raise_signal(signal.SIGTERM)  # the handler runs here, in this frame
        return local

    def tracer(frame, what, arg):
        if what == "call" and frame.f_code is code and only(frame):
            return local
        return None

    return tracer, fired


def _abandoned_in_time(writer) -> bool:
    """`abandon` (as `close()` calls it, after a failure) returns within seconds."""
    done = threading.Thread(target=writer.abandon, daemon=True)
    done.start()
    done.join(10)
    return not done.is_alive()


@pytest.mark.parametrize("step", ["put", "close"])
def test_a_signal_as_the_writer_queue_is_locked_does_not_leave_it_locked(step, handlers_restored):
    read_end, write_end = os.pipe()
    signals.install()
    writer = splice._DiskWriter(lambda fd, data: os.write(fd, data), write_end)
    try:
        queue = writer._chunks
        tracer, fired = _signal_at(
            threading.Condition.__enter__.__code__,
            "return",  # the queue's lock is taken, its `with` block not yet entered
            only=lambda frame: frame.f_locals.get("self") in (queue.not_full, queue.not_empty),
        )
        previous = sys.gettrace()
        sys.settrace(tracer)
        try:
            with pytest.raises(InterruptedRunError):
                writer.put(b"chunk") if step == "put" else writer.close()
        finally:
            sys.settrace(previous)
        assert fired
        assert _abandoned_in_time(writer), (
            "the queue's lock was left taken: abandon() waits forever"
        )
        assert not queue.mutex.locked()
        assert not writer._thread.is_alive()
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.skipif(
    not hasattr(threading.Thread, "_wait_for_tstate_lock"), reason="join is not Python code here"
)
def test_a_signal_while_close_waits_for_the_thread_does_not_pass_a_thread_still_writing(
    handlers_restored,
):
    read_end, write_end = os.pipe()
    writing, may_finish, finished = threading.Event(), threading.Event(), threading.Event()

    def slow_write(fd: int, data: bytes) -> None:
        writing.set()
        may_finish.wait(10)
        os.write(fd, data)
        finished.set()

    signals.install()
    writer = splice._DiskWriter(slow_write, write_end)
    try:
        writer.put(b"chunk")
        assert writing.wait(10)
        wait = threading.Thread._wait_for_tstate_lock
        lines, first = inspect.getsourcelines(wait)
        acquire = first + next(
            i for i, text in enumerate(lines) if text.strip().startswith("if lock.acquire(")
        )
        tracer, fired = _signal_at(
            wait.__code__,
            "line",
            acquire,
            only=lambda frame: frame.f_locals.get("self") is writer._thread,
        )
        threading.Timer(0.5, may_finish.set).start()
        previous = sys.gettrace()
        sys.settrace(tracer)
        try:
            with pytest.raises(InterruptedRunError):
                writer.close()
        finally:
            sys.settrace(previous)
        assert fired
        with signals.critical_section():  # as `RangeWriter.close` and `_Body.close` call it
            writer.abandon()
        # abandon() returned: the thread wrote its last byte (a closed descriptor may be reused)
        assert finished.is_set()
    finally:
        may_finish.set()
        os.close(read_end)
        os.close(write_end)


def test_a_signal_at_any_instruction_of_the_digest_leaves_no_file_open(tmp_path, handlers_restored):
    # the new store's SHA-256, for the archive's header: a signal raised between opening a file
    # and entering its `with` block leaves the file to the garbage collector (a ResourceWarning)
    path = tmp_path / "store.v1.json"
    path.write_bytes(os.urandom(2_500_000))  # three blocks
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    signals.install()
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        at = 0
        while True:
            seen = []

            def local(frame, event, arg, at=at, seen=seen):
                if event == "opcode":
                    seen.append(frame.f_lasti)
                    if len(seen) - 1 == at:
                        signal.raise_signal(signal.SIGTERM)  # the handler runs at this instruction
                return local

            def tracer(frame, event, arg, local=local):
                if event == "call" and frame.f_code is archive.digest.__code__:
                    frame.f_trace_opcodes = True
                    return local
                return None

            previous = sys.gettrace()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                sys.settrace(tracer)
                try:
                    result = archive.digest(fd)
                except InterruptedRunError:
                    result = None
                finally:
                    sys.settrace(previous)
                gc.collect()
            assert not [w for w in caught if issubclass(w.category, ResourceWarning)], at
            if len(seen) <= at:  # the digest ended before the signal's turn: every instruction done
                assert result == expected
                break
            assert result is None, at
            at += 1
        assert at > 10
    finally:
        os.close(fd)

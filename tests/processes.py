"""Real cleanups in child processes, watched from outside and stopped at chosen points.

No hook in the product: where a child is in its run is read from what anyone can see — its
open file descriptors and their positions in /proc, and the files in the store's folder.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
GENERATOR_NOW = datetime(2026, 11, 28, tzinfo=UTC)
NOW = GENERATOR_NOW.isoformat()  # the generator's clock: a cleanup deletes a good share


def generate(path: Path, size: int, seed: int = 1) -> bytes:
    """A service-written store of about `size` bytes (scripts/generate_store.py); its bytes."""
    spec = importlib.util.spec_from_file_location(
        "generate_store", ROOT / "scripts" / "generate_store.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate_store(path, size, seed=seed, now=GENERATOR_NOW, workers=1)
    return Path(path).read_bytes()


def cleaned(folder: Path, old: bytes) -> bytes:
    """What a successful run makes of the store `old`: a copy of it in `folder`, cleaned."""
    copy = folder / "copy.json"
    copy.write_bytes(old)
    done = subprocess.run(
        clean_command(copy), cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    new = copy.read_bytes()
    assert len(new) < len(old), "the run deleted nothing"
    return new


def clean_command(store: Path, *extra: str) -> list[str]:
    return [PYTHON, "-m", "streamclean", "clean", "--store-file", str(store), "--now", NOW, *extra]


def start(argv: list[str], **popen) -> subprocess.Popen:
    # a child that hangs can be made to print every thread's stack (`finish`)
    popen["env"] = {**(popen.get("env") or os.environ), "PYTHONFAULTHANDLER": "1"}
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def leftovers(folder: Path, store_name: str) -> list[Path]:
    pattern = re.compile(re.escape(store_name) + r"\.streamclean-\d+-[0-9a-f]{8}\.partial")
    return sorted(folder / name for name in os.listdir(folder) if pattern.fullmatch(name))


@dataclass(frozen=True)
class Sight:
    """One look at a running cleanup."""

    elapsed: float  # seconds since the child first had the store open
    position: int | None  # offset of the child's descriptor on the store we gave it
    passes: int  # read passes begun so far (a position going back means a new pass)
    temp_size: int | None  # size of its temporary file, None while there is none
    store_ino: int
    store_size: int


class Watch:
    """Watches a cleanup child working on `store` (a plain file, not a link)."""

    def __init__(self, proc: subprocess.Popen, store: Path) -> None:
        self.proc = proc
        self.store = store
        self.original = os.stat(store)
        self._fd: str | None = None
        self._first_seen: float | None = None
        self._last_position = -1
        self._passes = 0
        self.sights: list[Sight] = []

    def _find_fd(self) -> str | None:
        base = f"/proc/{self.proc.pid}/fd"
        try:
            names = os.listdir(base)
        except OSError:
            return None
        for name in names:
            try:
                if os.readlink(f"{base}/{name}") == str(self.store):
                    return name
            except OSError:
                continue
        return None

    def _position(self) -> int | None:
        try:
            with open(f"/proc/{self.proc.pid}/fdinfo/{self._fd}") as info:
                return int(info.readline().split()[1])  # "pos:\t<offset>"
        except (OSError, IndexError, ValueError):
            return None

    def look(self) -> Sight | None:
        """The child's state now; None until it has the store open (or after it ended)."""
        if self._fd is None:
            self._fd = self._find_fd()
            if self._fd is None:
                return None
            self._first_seen = time.monotonic()
        position = self._position()
        if position is not None:
            if position < self._last_position or self._passes == 0:
                self._passes += 1
            self._last_position = position
        temp_size = None
        for path in leftovers(self.store.parent, self.store.name):
            try:
                temp_size = os.stat(path).st_size
            except FileNotFoundError:
                pass
        st = os.stat(self.store)
        sight = Sight(
            time.monotonic() - self._first_seen,
            position,
            self._passes,
            temp_size,
            st.st_ino,
            st.st_size,
        )
        self.sights.append(sight)
        return sight

    def stop_when(self, condition, timeout: float = 20.0) -> Sight | None:
        """Poll until `condition(sight)`; then SIGSTOP the child and return a fresh look at it
        (None if the child ended first)."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError("the cleanup child did not reach the point in time")
            sight = self.look()
            if sight is not None and condition(sight):
                os.kill(self.proc.pid, signal.SIGSTOP)
                if self.proc.poll() is not None:
                    return None
                return self.look()
        return None


def finish(proc: subprocess.Popen, timeout: float = 20.0) -> tuple[int, str, str]:
    """The child's exit status, stdout and stderr; a child still running after `timeout`
    seconds fails the test with the stack of each of its threads (SIGABRT, to its
    faulthandler), and is killed."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        try:
            _, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
        stacks = stderr.decode(errors="replace")
        raise AssertionError(
            f"the child still ran after {timeout} s; its threads:\n{stacks}"
        ) from None
    return proc.returncode, stdout.decode(), stderr.decode()


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped): what a killed run's name holds."""
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid

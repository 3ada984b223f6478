"""The benchmark harness: tools as child processes, timed without any sampler, checked every run.

Driven by the pytest-benchmark suite in this folder (`python -m pytest benchmarks`, see
conftest.py); pytest-benchmark keeps the statistics, the machine and commit info, the JSON and
the saved runs. What is this project's own is here:

- `Launch`: a tool's process, started through a tiny exec'ing launcher that waits for "go",
  times spawn to exit and reads the tool's rusage with `os.wait4`. A timed run carries NO
  memory sampler (`sampler="none"`): sampling /proc while a tool runs slows it (reading
  smaps_rollup every 10 ms slowed the in-memory peers about 1.7x). Memory is measured in runs
  of their own (`sampler="tree"`).
- `TOOLS`: the contenders (streamclean, its general reader, the in-memory peers, the floor,
  `clean --dry-run` and `inspect --json`).
- `Reference`: what a correct cleanup of a store produces (the `json` peer's output, the
  service's own serialisation, or streamclean's general reader for stores too big to load),
  computed once per store and rule and cached by the store's SHA-256.
- `Bench`: runs tools on one store, each run on a fresh, fsynced copy made outside the timing,
  and checks every run (exit 0, output byte for byte, the report's counts, the reader that did
  the work).
- `Pair` and `pair_round`: one round of a pair benchmark (the floor, then the subject and its
  peer in alternating order), and `subject_seconds`, the timer that makes pytest-benchmark
  record the subject's own launcher-measured seconds.
- `pair_summary`, `ratio_entries`, `ratio_gate`, `memory_record`, `memory_bound_failures`: what
  a round's records mean (ratios pair by pair, MB/s, multiples of the floor), the
  github-action-benchmark list of ratios and the gate on it, and the memory runs' bounds.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "benchmarks" / "peers.py"
GENERATOR = ROOT / "scripts" / "generate_store.py"

NOW = datetime(2026, 11, 28, tzinfo=UTC)
# Given explicitly to every tool, so that an ASYNC_JOB_* variable in the environment changes nothing.
RULE_ARGS = [
    "--now",
    NOW.isoformat(),
    "--results-ttl-seconds",
    "604800",
    "--events-ttl-seconds",
    "259200",
]
REPORT_KEYS = ("terminal_job_count", "active_job_count", "results", "events")
MIB = 1 << 20
SAMPLERS = ("none", "statm", "tree", "direct")


class BenchError(Exception):
    """A run that failed or produced a wrong result: no figure is recorded for it."""


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("streamclean_bench_generate_store", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------------
# The launcher
# --------------------------------------------------------------------------------------------

# Why a launcher. On Linux a child's ru_maxrss is at least the RSS high-water mark of the address
# space it was forked (or vforked) from, recorded at exec: a tool spawned straight from this
# script would report our peak, not its own. So each tool is spawned by this tiny interpreter
# (python -I -S: ~8 MiB, less than any tool), which posix_spawns the tool and reports its rusage
# from os.wait4. It is started untimed and waits for one byte on stdin; the timed part is "go"
# to exit. ru_maxrss is one process's peak (with its waited-for children, the largest of them),
# and is kept by the kernel: reading it costs the tool nothing.
#
# Samplers, every 10 ms, over the tool and all its descendants (streamclean forks a worker):
#   none   no thread at all: the timed runs.
#   statm  the sum of resident sizes (/proc/PID/statm): cheap; shown not to slow the peers.
#   tree   statm, plus the PSS sum (/proc/PID/smaps_rollup, which walks the page tables and
#          slows a big process markedly: what the old harness did to every run) and each
#          process's VmHWM: streamclean's memory runs only.
#   direct no launcher: the tool is spawned straight from this script and timed here (its
#          ru_maxrss is then not its own). Only to show that the launcher costs a tool nothing.
LAUNCHER = r"""
import os, sys, threading, time
if os.read(0, 1) != b"g":
    sys.exit(111)
mode, result_file, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
null = os.open(os.devnull, os.O_RDONLY)
page = os.sysconf("SC_PAGE_SIZE")
rss_peak = pss_peak = 0
hwm = {}
ended = threading.Event()

def field_kib(path, name):
    with open(path) as fh:
        for line in fh:
            if line.startswith(name):
                return int(line.split()[1]) * 1024
    return 0

def tree(root):
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    todo += [int(child) for child in fh.read().split()]
        except (OSError, ValueError):
            pass
    return pids

def sample(root, deep):
    global rss_peak, pss_peak
    while not ended.wait(0.01):
        rss = pss = 0
        for pid in tree(root):
            try:
                with open(f"/proc/{pid}/statm") as fh:
                    rss += int(fh.read().split()[1]) * page
                if deep:
                    pss += field_kib(f"/proc/{pid}/smaps_rollup", "Pss:")
                    hwm[pid] = max(hwm.get(pid, 0), field_kib(f"/proc/{pid}/status", "VmHWM:"))
            except (OSError, ValueError):
                pass
        rss_peak, pss_peak = max(rss_peak, rss), max(pss_peak, pss)

started = time.perf_counter()
pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, null, 0)])
if mode != "none":
    sampler = threading.Thread(target=sample, args=(pid, mode != "statm"), daemon=True)
    sampler.start()
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
ended.set()
if mode != "none":
    sampler.join()
with open(result_file, "w") as fh:
    fh.write(repr((os.waitstatus_to_exitcode(status), seconds, usage.ru_maxrss * 1024,
                   usage.ru_utime + usage.ru_stime, rss_peak, pss_peak, sum(hwm.values()))))
"""


@dataclass
class Run:
    """One run of one tool. Memory fields other than maxrss are 0 unless a sampler ran."""

    tool: str
    returncode: int
    seconds: float  # wall time of the tool, spawn to exit
    cpu_seconds: float  # user + system of the tool and its waited-for children
    maxrss_bytes: int  # ru_maxrss: the largest single process of the tree, kernel-kept
    rss_sum_peak_bytes: int  # sampled: the peak of the tree's summed RSS
    pss_sum_peak_bytes: int  # sampled (tree): the peak of the tree's summed PSS
    hwm_sum_bytes: int  # sampled (tree): each process's own peak (VmHWM), summed: an upper bound
    sampler: str
    stdout: bytes = b""
    stderr: bytes = b""

    def record(self) -> dict[str, Any]:
        out = {key: value for key, value in asdict(self).items() if key not in ("stdout", "stderr")}
        out["seconds"] = round(self.seconds, 4)
        out["cpu_seconds"] = round(self.cpu_seconds, 4)
        return out


def child_env(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ASYNC_JOB", "STREAMCLEAN_"))
    }
    # Installed tools run from compiled bytecode; without it every run would compile its
    # modules again (~50 ms for streamclean). The untimed reference runs write it.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


class Launch:
    """A tool's process, ready to start: `go()` runs it to completion and returns its Run."""

    def __init__(
        self, tool: str, argv: list[str], cwd: Path, env: dict[str, Any], sampler: str = "none"
    ) -> None:
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}")
        self._tool, self._sampler = tool, sampler
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()
        fd, self._result = tempfile.mkstemp(prefix="rusage-", dir=cwd)
        os.close(fd)
        argv = [shutil.which(argv[0]) or argv[0], *argv[1:]]
        self._direct = (argv, cwd, env)
        if sampler == "direct":
            self._proc = None
            return
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", LAUNCHER, sampler, self._result, *argv],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=self._out,
            stderr=self._err,
            bufsize=0,
        )

    def go(self) -> Run:
        if self._proc is None:
            return self._go_direct()
        stdin = self._proc.stdin
        assert stdin is not None  # Popen(stdin=PIPE)
        try:
            stdin.write(b"g")
            stdin.close()
            launcher_status = self._proc.wait()
            self._out.seek(0)
            self._err.seek(0)
            stdout, stderr = self._out.read(), self._err.read()
            with open(self._result, encoding="utf-8") as fh:
                text = fh.read()
            if launcher_status != 0 or not text:
                raise BenchError(f"the launcher failed ({launcher_status}): {stderr[-2000:]!r}")
            code, seconds, maxrss, cpu, rss_sum, pss_sum, hwm_sum = ast.literal_eval(text)
            return Run(
                self._tool,
                code,
                seconds,
                cpu,
                maxrss,
                max(rss_sum, maxrss) if self._sampler != "none" else 0,
                pss_sum,
                hwm_sum,
                self._sampler,
                stdout,
                stderr,
            )
        finally:
            self.close()

    def _go_direct(self) -> Run:
        argv, cwd, env = self._direct
        try:
            started = time.perf_counter()
            proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err
            )
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - started
            proc.returncode = os.waitstatus_to_exitcode(status)
            self._out.seek(0)
            self._err.seek(0)
            return Run(
                self._tool,
                proc.returncode,
                seconds,
                usage.ru_utime + usage.ru_stime,
                0,
                0,
                0,
                0,
                "direct",
                self._out.read(),
                self._err.read(),
            )
        finally:
            self.close()

    def close(self) -> None:
        """Idempotent; a launcher that never got its "go" exits on the closed pipe."""
        if self._proc is not None and self._proc.returncode is None:
            if self._proc.stdin is not None and not self._proc.stdin.closed:
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._out.close()
        self._err.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._result)


# --------------------------------------------------------------------------------------------
# The tools
# --------------------------------------------------------------------------------------------

# The floor: read the store, write and fsync a file of the result's size. Run like every tool
# (spawn to exit), by the leanest interpreter (-I -S), so it is the physical cost of the job's
# I/O on this machine and page cache, not of Python.
FLOOR = r"""
import os, sys
source, target, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
buf = bytearray(1 << 20)
view = memoryview(buf)
left = size
with open(source, "rb", buffering=0) as src, open(target, "wb", buffering=0) as dst:
    while n := src.readinto(buf):
        if left > 0:
            left -= dst.write(view[:min(n, left)])
    os.fsync(dst.fileno())
"""


@dataclass(frozen=True)
class Tool:
    """One contender. Every run gets a fresh copy of the store, COPY; `output` says where the
    result is: "copy" (cleaned in place), "out" (a new file), "none" (reads only)."""

    name: str
    output: str
    reader: str | None = None  # the reader its report must name, when it is streamclean's
    env: tuple[tuple[str, str], ...] = ()
    description: str = ""

    def argv(self, copy: Path, out: Path, result_bytes: int) -> list[str]:
        py = sys.executable
        if (
            self.name == "streamclean-before"
        ):  # another checkout's streamclean, for before/after tables
            root = os.environ.get("BENCH_BEFORE_ROOT")
            if not root or not (Path(root) / "streamclean").is_dir():
                raise BenchError(
                    "streamclean-before needs BENCH_BEFORE_ROOT: a checkout of the commit to compare with"
                )
            code = (
                f"import sys; sys.path.insert(0, {root!r}); "
                "from streamclean.cli import main; main(prog_name='streamclean')"
            )
            return [py, "-c", code, "clean", "--store-file", str(copy), *RULE_ARGS]
        if self.name.startswith("streamclean"):
            return [py, "-m", "streamclean", "clean", "--store-file", str(copy), *RULE_ARGS]
        if self.name == "dry-run":
            return [
                py,
                "-m",
                "streamclean",
                "clean",
                "--dry-run",
                "--store-file",
                str(copy),
                *RULE_ARGS,
            ]
        if self.name == "inspect":
            return [
                py,
                "-m",
                "streamclean",
                "inspect",
                "--json",
                "--store-file",
                str(copy),
                *RULE_ARGS,
            ]
        if self.name == "floor":
            return [py, "-I", "-S", "-c", FLOOR, str(copy), str(out), str(result_bytes)]
        return [py, str(PEERS), self.name, str(copy), str(out), *RULE_ARGS]


TOOLS = {
    tool.name: tool
    for tool in (
        Tool("streamclean", "copy", "layout", description="`streamclean clean` (reader auto)"),
        Tool(
            "streamclean-general",
            "copy",
            "general",
            (("STREAMCLEAN_READER", "general"),),
            "`streamclean clean`, `STREAMCLEAN_READER=general`",
        ),
        Tool(
            "streamclean-before",
            "copy",
            "layout",
            description="`streamclean clean` of the checkout in BENCH_BEFORE_ROOT (`git worktree add`)",
        ),
        Tool("orjson", "out", description="`orjson` in-memory peer"),
        Tool("json", "out", description="`json` in-memory peer (the service's serialisation)"),
        Tool("floor", "out", description="floor: read the store, write + fsync the result's size"),
        Tool("dry-run", "none", "layout", description="`streamclean clean --dry-run`"),
        Tool("inspect", "none", description="`streamclean inspect --json`"),
    )
}


def tool_spec(text: str) -> tuple[Tool, str]:
    """ "NAME" or "NAME:SAMPLER" (e.g. "orjson:statm", "streamclean:tree")."""
    name, _, sampler = text.partition(":")
    if name not in TOOLS:
        raise BenchError(f"unknown tool {name!r}; choose from {', '.join(TOOLS)}")
    sampler = sampler or "none"
    if sampler not in SAMPLERS:
        raise BenchError(
            f"unknown sampler {sampler!r} in {text!r}; choose from {', '.join(SAMPLERS)}"
        )
    return TOOLS[name], sampler


# --------------------------------------------------------------------------------------------
# Stores, copies, digests
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    path: Path
    bytes: int
    sha256: str
    jobs: int | None = None
    events: int | None = None
    results: int | None = None

    def info(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "bytes": self.bytes,
            "mb": round(self.bytes / 1e6, 1),
            "sha256": self.sha256,
            "jobs": self.jobs,
            "events": self.events,
            "results": self.results,
        }


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def generated_store(folder: Path, size: int, seed: int = 0) -> Store:
    stats = load_generator().generate_store(folder / "store.v1.json", size, seed=seed, now=NOW)
    path = Path(stats.path)
    return Store(path, stats.bytes, file_digest(path), stats.jobs, stats.events, stats.results)


def existing_store(path: Path) -> Store:
    return Store(path, path.stat().st_size, file_digest(path))


def fresh_copy(source: Path, target: Path) -> None:
    """A copy flushed to disk: what a timed run reads is in the page cache and clean, as the
    store of a real run is; nothing of the copy is written back during the timing."""
    with open(source, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()
        os.fsync(dst.fileno())


def fsync_path(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def report_of(run: Run) -> dict[str, Any]:
    try:
        report: dict[str, Any] = json.loads(run.stdout)
        return report
    except ValueError:
        raise BenchError(f"{run.tool}: no JSON report on stdout: {run.stdout[:500]!r}") from None


def counts_of(report: dict[str, Any]) -> dict[str, Any]:
    return {key: report[key] for key in REPORT_KEYS}


# --------------------------------------------------------------------------------------------
# The reference result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    tool: str
    bytes: int
    sha256: str
    counts: dict[str, Any]
    seconds: float  # the reference's own run, untimed in the comparison

    @classmethod
    def cache_file(cls, store: Store, tool: str) -> Path:
        """Keyed by the store's SHA-256, the rule, the Python, and the code that computes the
        result (the peers, the oracle, streamclean): a change to any of them computes it anew."""
        code = hashlib.sha256()
        for path in sorted(
            [PEERS, ROOT / "tests" / "oracle.py", *(ROOT / "streamclean").glob("*.py")]
        ):
            code.update(path.read_bytes())
        parts = [store.sha256, tool, RULE_ARGS, sys.version, code.hexdigest()]
        key = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]
        return Path(tempfile.gettempdir()) / "streamclean-bench-reference" / f"{key}.json"

    @classmethod
    def of(cls, store: Store, tool: str, workdir: Path) -> Reference:
        """The reference tool's result on this store, from the cache when it was computed before
        (for this store's SHA-256 and these rule arguments)."""
        cached = cls.cache_file(store, tool)
        with contextlib.suppress(OSError, ValueError, TypeError):
            return cls(**json.loads(cached.read_text(encoding="utf-8")))
        spec = TOOLS[tool]
        copy, out = workdir / "store.v1.json", workdir / "out.json"
        fresh_copy(store.path, copy)
        run = Launch(tool, spec.argv(copy, out, 0), workdir, child_env(dict(spec.env))).go()
        result = out if spec.output == "out" else copy
        if run.returncode != 0:
            raise BenchError(
                f"the reference {tool} failed:\n{run.stderr.decode(errors='replace')[-4000:]}"
            )
        ref = cls(
            tool,
            result.stat().st_size,
            file_digest(result),
            counts_of(report_of(run)),
            round(run.seconds, 3),
        )
        for path in (copy, out):
            path.unlink(missing_ok=True)
        # A store where nothing expires would time streamclean's "nothing to do" shortcut.
        if not (ref.counts["results"]["delete_count"] and ref.counts["events"]["delete_count"]):
            raise BenchError("the store has nothing to delete: not a cleanup benchmark")
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(asdict(ref)), encoding="utf-8")
        return ref


# --------------------------------------------------------------------------------------------
# Rounds
# --------------------------------------------------------------------------------------------


@dataclass
class Bench:
    """Runs tools on one store, each run on a fresh copy, and checks every run."""

    store: Store
    reference: Reference
    workdir: Path
    cpus: str | None = None  # "0": every tool under `taskset -c 0`
    workers: str | None = None  # STREAMCLEAN_WORKERS for streamclean's runs; None: unset (auto)

    def run(self, spec: str, round_no: int) -> dict[str, Any]:
        tool, sampler = tool_spec(spec)
        copy, out = self.workdir / "store.v1.json", self.workdir / "out.json"
        for path in (copy, out):
            path.unlink(missing_ok=True)
        fresh_copy(self.store.path, copy)
        env = dict(tool.env)
        if self.workers is not None and tool.name != "floor":
            env["STREAMCLEAN_WORKERS"] = self.workers
        argv = tool.argv(copy, out, self.reference.bytes)
        if self.cpus is not None:
            argv = ["taskset", "-c", self.cpus, *argv]
        launch = Launch(spec, argv, self.workdir, child_env(env), sampler)
        os.sync()  # nothing of anyone's earlier runs is written back during this one
        load = os.getloadavg()[0]  # the machine is shared: how busy it was, for the record
        run = launch.go()
        record = {
            "round": round_no,
            **run.record(),
            "tool": tool.name,
            "spec": spec,
            "loadavg_1m": load,
            "cpus": self.cpus,
            "workers": env.get("STREAMCLEAN_WORKERS", "auto")
            if tool.name not in ("floor", "orjson", "json")
            else None,
        }
        record.update(self.check(tool, run, copy, out))
        for path in (copy, out):
            path.unlink(missing_ok=True)
        return record

    def check(self, tool: Tool, run: Run, copy: Path, out: Path) -> dict[str, Any]:
        """Untimed: exit 0, the expected bytes, the expected counts, the expected reader."""
        what = f"{tool.name} on the {self.store.bytes / 1e6:.0f} MB store"
        ref = f"the {self.reference.tool} reference's"
        if run.returncode != 0:
            raise BenchError(
                f"{what} exited {run.returncode}:\n{run.stderr.decode(errors='replace')[-4000:]}"
            )
        if tool.name == "floor":
            if out.stat().st_size != self.reference.bytes:
                raise BenchError(
                    f"{what}: wrote {out.stat().st_size} bytes, not {self.reference.bytes}"
                )
            return {"verified": "size"}
        report = report_of(run)
        counts = counts_of(report)
        if counts != self.reference.counts:
            raise BenchError(
                f"{what}: the report's counts differ from {ref}:\n{json.dumps(counts)}\n"
                f"expected\n{json.dumps(self.reference.counts)}"
            )
        checked = {"reader": report.get("reader")}
        if tool.reader is not None and report.get("reader") != tool.reader:
            checked["reader_warning"] = (
                f"expected the {tool.reader} reader, the report says {report.get('reader')!r}"
            )
            if tool.name == "streamclean-general":
                raise BenchError(f"{what}: {checked['reader_warning']}")
        if tool.output == "none":
            if copy.stat().st_size != self.store.bytes or file_digest(copy) != self.store.sha256:
                raise BenchError(f"{what}: a read-only run changed the store")
            return {**checked, "verified": "counts, store untouched"}
        result = out if tool.output == "out" else copy
        fsync_path(result)  # a peer's unflushed output is not written back in the next timed run
        size = result.stat().st_size
        if size != self.reference.bytes:
            raise BenchError(f"{what}: the output has {size} bytes, {ref} {self.reference.bytes}")
        if file_digest(result) != self.reference.sha256:
            raise BenchError(f"{what}: the output differs from {ref} (same size, other bytes)")
        return {**checked, "verified": f"bytes and counts against {self.reference.tool}"}


# --------------------------------------------------------------------------------------------
# Pairs: what one pytest-benchmark round runs, and what its records mean
# --------------------------------------------------------------------------------------------

TIMED_SAMPLERS = ("none", "direct")  # a pair's runs are timed: no sampler thread in them
_SUBJECT_CLOCK = [0.0]


def subject_seconds() -> float:
    """pytest-benchmark's timer for the pair benchmarks (`@pytest.mark.benchmark(timer=...)`).

    It reads a clock that only `pair_round` moves, by the subject's own seconds as its launcher
    measured them (spawn to exit, `wait4`). pytest-benchmark reads the timer before and after
    each round, so what it records for a round is exactly the subject's time, although the round
    also runs the floor and the peer, makes fresh copies and checks every output byte for byte."""
    return _SUBJECT_CLOCK[0]


@dataclass(frozen=True)
class Pair:
    """A benchmark: SUBJECT timed against PEER in the same rounds."""

    subject: str
    peer: str

    @property
    def id(self) -> str:
        return f"{self.subject}-vs-{self.peer}"

    def order(self, round_no: int) -> list[str]:
        """The floor, then the two in alternating order: subject first in odd rounds, the peer
        first in even ones, so a drift over the rounds touches both alike."""
        both = [self.subject, self.peer] if round_no % 2 else [self.peer, self.subject]
        return ["floor", *(spec for spec in both if spec != "floor")]


def parse_pairs(text: str) -> list[Pair]:
    """--peers: comma-separated "PEER" (timed against streamclean) or "SUBJECT/PEER"; a tool may
    be "NAME:direct" (spawned without the launcher). E.g. "orjson,json,inspect/dry-run"."""
    pairs: list[Pair] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        subject, _, peer = item.rpartition("/")
        pair = Pair(subject or "streamclean", peer)
        for spec in (pair.subject, pair.peer):
            _, sampler = tool_spec(spec)
            if sampler not in TIMED_SAMPLERS:
                raise BenchError(
                    f"{spec!r}: a pair is timed, so no sampler runs in it (memory runs are "
                    "separate: --memory-tools)"
                )
        if pair.subject == pair.peer or pair.subject == "floor":
            raise BenchError(
                f"{item!r}: the subject must be a tool other than the floor and its peer"
            )
        if pair in pairs:
            raise BenchError(f"{item!r} is given twice")
        pairs.append(pair)
    if not pairs:
        raise BenchError("no pair to run")
    return pairs


def parse_percent(text: str) -> float:
    """--ratios-fail: "25%" or "25"."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*%?\s*", text)
    if not match:
        raise BenchError(f"{text!r} is not a percentage (e.g. 25%)")
    return float(match.group(1))


def pair_round(bench: Bench, pair: Pair, round_no: int) -> dict[str, Any]:
    """One round: the floor, then the pair in this round's order, every run on a fresh synced
    copy and checked. The subject clock moves by the subject's seconds only."""
    runs = {}
    for spec in pair.order(round_no):
        runs[spec] = record = bench.run(spec, round_no)
        if spec == pair.subject:
            _SUBJECT_CLOCK[0] += record["seconds"]
    return {"round": round_no, "order": pair.order(round_no), "runs": runs}


def spread(values: Sequence[float], digits: int = 4) -> dict[str, Any]:
    return {
        "min": round(min(values), digits),
        "median": round(statistics.median(values), digits),
        "max": round(max(values), digits),
    }


def pair_summary(pair: Pair, rounds: list[dict[str, Any]], store_bytes: int) -> dict[str, Any]:
    """What pytest-benchmark's extra_info holds for a pair: each round's runs, and over the
    rounds the ratio subject / peer taken within each round, seconds, MB/s, multiples of the
    floor of the same round, the readers, the load average, what was verified."""
    specs = list(dict.fromkeys(spec for r in rounds for spec in r["runs"]))
    by_spec = {spec: [r["runs"][spec] for r in rounds if spec in r["runs"]] for spec in specs}
    seconds = {spec: [run["seconds"] for run in runs] for spec, runs in by_spec.items()}
    ratios = [r["runs"][pair.subject]["seconds"] / r["runs"][pair.peer]["seconds"] for r in rounds]
    multiples = {
        spec: [r["runs"][spec]["seconds"] / r["runs"]["floor"]["seconds"] for r in rounds]
        for spec in specs
        if spec != "floor"
    }
    loads = [run["loadavg_1m"] for runs in by_spec.values() for run in runs]
    keep = ("seconds", "cpu_seconds", "maxrss_bytes", "loadavg_1m", "reader", "verified", "workers")
    return {
        "subject": pair.subject,
        "peer": pair.peer,
        "store_bytes": store_bytes,
        "rounds": [
            {
                "round": r["round"],
                "order": r["order"],
                "runs": {
                    spec: {key: run.get(key) for key in keep} for spec, run in r["runs"].items()
                },
            }
            for r in rounds
        ],
        "ratio": {**spread(ratios), "pairs": [round(value, 4) for value in ratios]},
        "seconds": {spec: spread(values) for spec, values in seconds.items()},
        "mb_per_s": {
            spec: round(store_bytes / 1e6 / statistics.median(values), 1)
            for spec, values in seconds.items()
        },
        "floor_multiple": {spec: spread(values, 3) for spec, values in multiples.items()},
        "maxrss_mib": {
            spec: round(max(run["maxrss_bytes"] for run in runs) / MIB, 1)
            for spec, runs in by_spec.items()
        },
        "reader": {
            spec: sorted({str(run["reader"]) for run in runs if run.get("reader")})
            for spec, runs in by_spec.items()
            if any(run.get("reader") for run in runs)
        },
        "reader_warnings": sorted(
            {
                run["reader_warning"]
                for runs in by_spec.values()
                for run in runs
                if run.get("reader_warning")
            }
        ),
        "loadavg_1m": spread(loads, 2),
        "verified": {
            spec: sorted({run["verified"] for run in runs}) for spec, runs in by_spec.items()
        },
    }


def ratio_entries(summaries: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """github-action-benchmark's customSmallerIsBetter list: one entry per pair, its value the
    median ratio subject / peer over the rounds, its range min-max."""
    return [
        {
            "name": name,
            "unit": "x",
            "value": summary["ratio"]["median"],
            "range": f"{summary['ratio']['min']:.4f}-{summary['ratio']['max']:.4f}",
            "extra": f"{len(summary['ratio']['pairs'])} rounds; subject {summary['subject']} "
            f"{summary['seconds'][summary['subject']]['median']} s, peer {summary['peer']} "
            f"{summary['seconds'][summary['peer']]['median']} s (medians)",
        }
        for name, summary in summaries
    ]


def ratio_gate(
    current: Sequence[dict[str, Any]], baseline: Sequence[dict[str, Any]], percent: float
) -> tuple[list[str], list[str]]:
    """(failures, notes): a failure for every ratio whose median is worse (greater) than the
    baseline's by more than `percent`; a baseline that shares no ratio with this run fails too,
    since then nothing was gated."""
    base = {entry["name"]: float(entry["value"]) for entry in baseline}
    failures: list[str] = []
    notes: list[str] = []
    for entry in current:
        if entry["name"] not in base:
            notes.append(f"{entry['name']}: not in the baseline, not gated")
            continue
        limit = base[entry["name"]] * (1 + percent / 100)
        verdict = (
            f"{entry['name']}: {entry['value']:.4f} against the baseline's {base[entry['name']]:.4f} "
            f"(limit {limit:.4f}, +{percent:g}%)"
        )
        (failures if entry["value"] > limit else notes).append(verdict)
    if not any(entry["name"] in base for entry in current):
        failures.append(
            f"the baseline has none of this run's ratios ({', '.join(sorted(base)) or 'it is empty'})"
        )
    return failures, notes


def memory_record(record: dict[str, Any], store: Store) -> dict[str, Any]:
    """A memory run (sampler "tree") as the JSON reports it."""
    return {
        "tool": record["tool"],
        "store_bytes": store.bytes,
        "cpus": record["cpus"],
        "workers": record["workers"],
        "reader": record.get("reader"),
        "rss_sum_peak_mib": round(record["rss_sum_peak_bytes"] / MIB, 1),
        "pss_sum_peak_mib": round(record["pss_sum_peak_bytes"] / MIB, 1),
        "hwm_sum_mib": round(record["hwm_sum_bytes"] / MIB, 1),
        "maxrss_mib": round(record["maxrss_bytes"] / MIB, 1),
        "sampled_seconds": record["seconds"],
        "verified": record["verified"],
    }


MEMORY_LIMIT_MIB = 64.0  # the RSS sum at 80 MB (issue 2)
MEMORY_MAX_GROWTH = 1.25  # from 20 to 80 MB


def memory_bound_failures(
    low: dict[str, Any],
    high: dict[str, Any],
    limit_mib: float = MEMORY_LIMIT_MIB,
    max_growth: float = MEMORY_MAX_GROWTH,
) -> list[str]:
    """The bounds on streamclean's RSS sum: at most `limit_mib` on the bigger store, and at most
    `max_growth` times the smaller store's."""
    failures = []
    tool, small, big = high["tool"], low["rss_sum_peak_mib"], high["rss_sum_peak_mib"]
    if big > limit_mib:
        failures.append(
            f"{tool}: RSS sum {big} MiB on the {high['store_bytes'] / 1e6:.0f} MB store "
            f"exceeds {limit_mib:g} MiB"
        )
    if big > max_growth * small:
        failures.append(
            f"{tool}: RSS sum grew {big / small:.2f}x from {small} MiB "
            f"({low['store_bytes'] / 1e6:.0f} MB) to {big} MiB ({high['store_bytes'] / 1e6:.0f} MB), "
            f"more than {max_growth}x"
        )
    return failures

"""Shared machinery of the benchmarks: generated stores, child processes, peak RSS, verification.

Run explicitly (the default `pytest` collects only tests/):

    python -m pytest benchmarks/ --benchmark-only                       # 20 MB, 3 rounds (CI)
    python -m pytest benchmarks/ --benchmark-only --store-size 500MB --bench-rounds 2 \\
        --memory-sizes 100MB,400MB --benchmark-json artifacts/bench-500MB.json
    python scripts/benchmark_table.py artifacts/bench-500MB.json        # the README table

Every tool runs as a child process of its own; its time is the wall time from start to exit
(interpreter start-up included, as for a cron job) and its peak RSS is the child's own
`ru_maxrss`, read with `os.wait4` by a tiny launcher (see LAUNCHER for why not from pytest),
or the sampled sum over the child and its worker process, whichever is larger.
All tools read a store that is in the page cache; an in-place tool gets a fresh copy each
round, made (and fsynced) before the clock starts. Every run is checked — exit status 0, the
output file equal byte for byte to the `json` peer's (the service's own serialisation), the
same counts in the report — so no figure is ever recorded for a wrong result. Timing is never
asserted.

Stores too big for the in-memory peers (they need ~5-7x the store in RAM: a 5 GB store does not
fit in 24 GB) are checked against streamclean's general path instead, and the peers left out:

    python -m pytest benchmarks/test_cleanup_bench.py --benchmark-only -k streamclean \
        --store-size 5GB --bench-rounds 1 --bench-reference streamclean-general --benchmark-json ...

Scratch space (TMPDIR) needs about three times the store size: the store, a copy, the output.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.util
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the fast-path probe imports streamclean here, as the children do
    sys.path.insert(0, str(ROOT))
PEERS = ROOT / "benchmarks" / "peers.py"
GENERATOR = ROOT / "scripts" / "generate_store.py"

NOW = datetime(2026, 11, 28, tzinfo=timezone.utc)
NOW_ISO = NOW.isoformat()
# Given explicitly to every tool, so that an ASYNC_JOB_* variable in the environment changes nothing.
RULE_ARGS = ["--now", NOW_ISO, "--results-ttl-seconds", "604800", "--events-ttl-seconds", "259200"]

ENV_SIZE = "STREAMCLEAN_BENCH_SIZE"
ENV_ROUNDS = "STREAMCLEAN_BENCH_ROUNDS"
ENV_MEMORY_SIZES = "STREAMCLEAN_BENCH_MEMORY_SIZES"
ENV_REFERENCE = "STREAMCLEAN_BENCH_REFERENCE"
DEFAULT_SIZE = "20MB"
DEFAULT_ROUNDS = 3
DEFAULT_MEMORY_SIZES = "20MB,80MB"
REFERENCES = ("json", "streamclean-general")
MIB = 1 << 20  # peak RSS is reported in MiB: ru_maxrss (and /usr/bin/time %M) count KiB

# streamclean with the service-layout fast path switched off: the general (any JSON) path.
GENERAL_PATH_RUNNER = (
    "import sys, streamclean.cleanup as c; c.FAST_PATH = False; "
    "from streamclean.cli import main; main(sys.argv[1:], prog_name='streamclean')"
)


def _load_generator():
    spec = importlib.util.spec_from_file_location("streamclean_bench_generate_store", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate_store = _load_generator()


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


def pytest_addoption(parser):
    group = parser.getgroup("streamclean benchmarks")
    group.addoption(
        "--store-size",
        metavar="SIZE",
        default=None,
        help=f"size of the generated store for the speed comparison, e.g. 20MB, 500MB, 5GB "
        f"[env {ENV_SIZE}; default {DEFAULT_SIZE}]",
    )
    group.addoption(
        "--bench-rounds",
        metavar="N",
        type=int,
        default=None,
        help=f"timed runs of each tool [env {ENV_ROUNDS}; default {DEFAULT_ROUNDS}]",
    )
    group.addoption(
        "--memory-sizes",
        metavar="SMALL,LARGE",
        default=None,
        help=f"the two store sizes of the memory benchmark; issue 2's figures are 100MB,400MB "
        f"[env {ENV_MEMORY_SIZES}; default {DEFAULT_MEMORY_SIZES}]",
    )
    group.addoption(
        "--bench-reference",
        choices=REFERENCES,
        default=None,
        help=f"what every output is checked against: the json peer (the service's own "
        f"serialisation; needs ~7x the store in RAM) or, for stores too big to load, streamclean's "
        f"general path [env {ENV_REFERENCE}; default json]",
    )


def _setting(config, option: str, env: str, default):
    value = config.getoption(option)
    if value is None:
        value = os.environ.get(env) or default
    return value


def _size(text: str, what: str) -> int:
    try:
        return generate_store.parse_size(str(text))
    except Exception as exc:
        raise pytest.UsageError(f"{what}: {exc}") from None


@dataclass(frozen=True)
class Settings:
    store_size: int
    rounds: int
    memory_sizes: tuple[int, int]
    reference: str


SETTINGS = pytest.StashKey[Settings]()


def pytest_configure(config):
    """Options are checked before anything runs: a bad size is a usage error, not six test errors."""
    size = _size(_setting(config, "--store-size", ENV_SIZE, DEFAULT_SIZE), "--store-size")
    try:
        rounds = int(_setting(config, "--bench-rounds", ENV_ROUNDS, DEFAULT_ROUNDS))
    except ValueError:
        raise pytest.UsageError(f"{ENV_ROUNDS} must be a whole number") from None
    if rounds < 1:
        raise pytest.UsageError("--bench-rounds must be at least 1")
    parts = str(_setting(config, "--memory-sizes", ENV_MEMORY_SIZES, DEFAULT_MEMORY_SIZES)).split(",")
    if len(parts) != 2:
        raise pytest.UsageError("--memory-sizes takes two sizes, SMALL,LARGE (e.g. 100MB,400MB)")
    small, large = (_size(part, "--memory-sizes") for part in parts)
    if not small < large:
        raise pytest.UsageError("--memory-sizes: the first size must be the smaller one")
    reference = _setting(config, "--bench-reference", ENV_REFERENCE, "json")
    if reference not in REFERENCES:
        raise pytest.UsageError(f"{ENV_REFERENCE} must be one of {', '.join(REFERENCES)}")
    config.stash[SETTINGS] = Settings(size, rounds, (small, large), reference)


@pytest.fixture(scope="session")
def settings(pytestconfig) -> Settings:
    return pytestconfig.stash[SETTINGS]


# --------------------------------------------------------------------------------------------
# Generated stores (once per session and size, in a temporary folder deleted afterwards)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    path: Path
    bytes: int
    jobs: int
    events: int
    results: int

    @property
    def label(self) -> str:
        return megabytes_label(self.bytes)

    def info(self) -> dict:
        return {"store_bytes": self.bytes, "store_mb": round(self.bytes / 1e6, 1), "jobs": self.jobs,
                "events": self.events, "results": self.results}


def megabytes_label(size: int) -> str:
    return f"{size / 1e9:.3g} GB" if size >= 1e9 else f"{size / 1e6:.3g} MB"


@pytest.fixture(scope="session")
def bench_dir():
    """Scratch space for the whole session (honours TMPDIR); removed at the end, even on failure."""
    path = Path(tempfile.mkdtemp(prefix="streamclean-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def make_store(bench_dir):
    """`make_store(size_bytes)`: the generated store of that size, generated once per session."""
    cache: dict[int, Store] = {}

    def get(size_bytes: int) -> Store:
        if size_bytes not in cache:
            folder = bench_dir / f"store-{size_bytes}"
            folder.mkdir()
            stats = generate_store.generate_store(folder / "store.v1.json", size_bytes, seed=0, now=NOW)
            cache[size_bytes] = Store(Path(stats.path), stats.bytes, stats.jobs, stats.events, stats.results)
        return cache[size_bytes]

    return get


# --------------------------------------------------------------------------------------------
# Running a tool as a child process
# --------------------------------------------------------------------------------------------


@dataclass
class Run:
    returncode: int
    seconds: float  # wall time of the tool, spawn to exit
    cpu_seconds: float  # user + system of the tool
    peak_rss_bytes: int  # the larger of the tool's ru_maxrss and its process tree's sampled sum
    peak_pss_bytes: int  # the sampled peak of its process tree's summed PSS (shared pages split)
    stdout: bytes
    stderr: bytes


# Why a launcher. On Linux a child's ru_maxrss is at least the RSS high-water mark of the address
# space it was forked (or vforked) from, recorded at exec: a tool spawned straight from pytest
# would report pytest's peak, not its own. So each tool is spawned by this tiny interpreter
# (python -I -S: ~8 MiB, less than any tool, which are full interpreters), which reports the
# tool's rusage from os.wait4. It is started untimed and waits for one byte on stdin; the timed
# part is "go" to exit.
#
# ru_maxrss is one process's peak (with waited-for children, the largest of them), and
# streamclean forks a worker for pass 2. So the launcher also samples, every 10 ms, the sum of
# the resident sizes of the tool and all its descendants; a run's peak RSS is the larger of the
# two. The sum counts pages the worker shares with its parent twice: it errs on the high side.
# The summed PSS (proportional set size: a page shared by two processes counts half in each)
# is sampled beside it, as the fairer figure for memory a run takes from the machine.
LAUNCHER = """
import os, sys, threading, time
if os.read(0, 1) != b"g":
    sys.exit(111)
null = os.open(os.devnull, os.O_RDONLY)
page = os.sysconf("SC_PAGE_SIZE")
tree_peak = tree_pss_peak = 0
ended = threading.Event()

def pss(pid):
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0

def tree_memory(root):
    rss = proportional = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm") as fh:
                rss += int(fh.read().split()[1]) * page
            proportional += pss(pid)
            with open(f"/proc/{pid}/task/{pid}/children") as fh:
                todo += [int(child) for child in fh.read().split()]
        except (OSError, ValueError):
            pass
    return rss, proportional

def sample(root):
    global tree_peak, tree_pss_peak
    while not ended.wait(0.01):
        rss, proportional = tree_memory(root)
        tree_peak = max(tree_peak, rss)
        tree_pss_peak = max(tree_pss_peak, proportional)

started = time.perf_counter()
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, null, 0)])
sampler = threading.Thread(target=sample, args=(pid,), daemon=True)
sampler.start()
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
ended.set()
sampler.join()
with open(sys.argv[1], "w") as fh:
    fh.write(repr((os.waitstatus_to_exitcode(status), seconds, usage.ru_maxrss, usage.ru_utime + usage.ru_stime, tree_peak, tree_pss_peak)))
"""


def child_env() -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ASYNC_JOB")}
    # Installed tools run from compiled bytecode; without it every run would compile its
    # modules again (~50 ms for streamclean). The untimed reference runs write it.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


class Launch:
    """A tool's process, ready to start: `go()` runs it to completion and returns its Run."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()
        fd, self._result = tempfile.mkstemp(prefix="rusage-", dir=cwd)
        os.close(fd)
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", LAUNCHER, self._result, *argv],
            cwd=cwd, env=child_env(), stdin=subprocess.PIPE, stdout=self._out, stderr=self._err, bufsize=0,
        )

    def go(self) -> Run:
        try:
            self._proc.stdin.write(b"g")
            self._proc.stdin.close()
            launcher_status = self._proc.wait()
            self._out.seek(0)
            self._err.seek(0)
            stdout, stderr = self._out.read(), self._err.read()
            with open(self._result, encoding="utf-8") as fh:
                text = fh.read()
            assert launcher_status == 0 and text, f"the launcher failed ({launcher_status}): {stderr[-2000:]!r}"
            returncode, seconds, maxrss_kib, cpu_seconds, tree_peak, pss_peak = ast.literal_eval(text)
            return Run(returncode, seconds, cpu_seconds, max(maxrss_kib * 1024, tree_peak), pss_peak, stdout, stderr)
        finally:
            self.close()

    def close(self) -> None:
        """Idempotent; a launcher that never got its "go" exits on the closed pipe."""
        if self._proc.returncode is None:
            if not self._proc.stdin.closed:
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


def run_child(argv: list[str], cwd: Path) -> Run:
    """Run argv to completion (untimed use: references, probes)."""
    return Launch(argv, cwd).go()


@dataclass(frozen=True)
class Tool:
    """One contender. streamclean tools clean a fresh copy in place; peers write OUT."""

    name: str
    in_place: bool

    def argv(self, source: Path, target: Path) -> list[str]:
        py = sys.executable
        if self.name == "streamclean":
            return [py, "-m", "streamclean", "clean", "--store-file", str(target), *RULE_ARGS]
        if self.name == "streamclean-general":
            return [py, "-c", GENERAL_PATH_RUNNER, "clean", "--store-file", str(target), *RULE_ARGS]
        return [py, str(PEERS), self.name, str(source), str(target), *RULE_ARGS]


TOOLS = {
    "streamclean": Tool("streamclean", in_place=True),
    "streamclean-general": Tool("streamclean-general", in_place=True),
    "orjson": Tool("orjson", in_place=False),
    "json": Tool("json", in_place=False),
}


# --------------------------------------------------------------------------------------------
# The expected result, and checking every run against it
# --------------------------------------------------------------------------------------------

REPORT_KEYS = ("terminal_job_count", "active_job_count", "results", "events")


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def report_counts(stdout: bytes) -> dict:
    report = json.loads(stdout)
    return {key: report[key] for key in REPORT_KEYS}


@dataclass(frozen=True)
class Expected:
    """The reference's result; by default the `json` peer's, the service's own serialisation."""

    reference: str
    bytes: int
    sha256: str
    counts: dict


@pytest.fixture(scope="session")
def expected(settings):
    """`expected(store)`: what a correct cleanup of that store produces (untimed, once per store)."""
    cache: dict[Path, Expected] = {}
    tool = TOOLS[settings.reference]

    def get(store: Store) -> Expected:
        if store.path not in cache:
            target = store.path.with_name("expected.json")
            if tool.in_place:
                shutil.copyfile(store.path, target)
            run = run_child(tool.argv(store.path, target), cwd=store.path.parent)
            assert run.returncode == 0, f"the reference {tool.name} failed:\n{run.stderr.decode(errors='replace')}"
            result = Expected(tool.name, target.stat().st_size, file_digest(target), report_counts(run.stdout))
            target.unlink()
            # A store where nothing expires would time streamclean's "nothing to do" shortcut.
            assert result.counts["results"]["delete_count"] and result.counts["events"]["delete_count"]
            assert result.bytes < store.bytes
            cache[store.path] = result
        return cache[store.path]

    return get


@pytest.fixture(scope="session")
def fast_path_taken():
    """`fast_path_taken(store)`: does `streamclean clean` take the fast path on it? (a dry run)

    Informational: recorded beside the figures, so that a fast path that silently falls back
    to the general path shows up in the table instead of hiding in the timings.
    """
    cache: dict[Path, str] = {}

    def get(store: Store) -> str:
        if store.path not in cache:
            import streamclean
            import streamclean.cleanup as cleanup

            general = getattr(cleanup, "_general_passes", None)
            if general is None or not getattr(cleanup, "FAST_PATH", False):
                cache[store.path] = "unknown" if general is None else "off"
                return cache[store.path]
            calls = []

            def spy(*args, **kwargs):
                calls.append(1)
                return general(*args, **kwargs)

            cleanup._general_passes = spy
            try:
                policy = streamclean.RetentionPolicy.build(NOW, 604800.0, 259200.0)
                streamclean.clean(store.path, policy, dry_run=True)
            except Exception as exc:  # the probe is informational; the timed runs are checked
                cache[store.path] = f"unknown (probe failed: {type(exc).__name__})"
            else:
                cache[store.path] = "general (fell back)" if calls else "fast"
            finally:
                cleanup._general_passes = general
        return cache[store.path]

    return get


@dataclass
class Measurement:
    """Runs one tool on one store, round after round, checking each result."""

    tool: Tool
    store: Store
    expected: Expected
    workdir: Path
    runs: list[Run] = field(default_factory=list)
    checked: int = 0
    _launch: Launch | None = None

    @property
    def target(self) -> Path:
        return self.workdir / "store.v1.json"

    def setup(self) -> None:
        """Untimed: a fresh copy of the store (flushed to disk) for an in-place tool; the tool's
        process made ready to start."""
        self.target.unlink(missing_ok=True)
        if self.tool.in_place:
            with open(self.store.path, "rb") as src, open(self.target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
                dst.flush()
                os.fsync(dst.fileno())
        self.close()
        self._launch = Launch(self.tool.argv(self.store.path, self.target), cwd=self.workdir)

    def run(self) -> Run:
        """Timed: the tool, start to exit."""
        launch, self._launch = self._launch, None
        run = launch.go()
        self.runs.append(run)
        return run

    def close(self) -> None:
        if self._launch is not None:
            self._launch.close()
            self._launch = None

    def check(self) -> None:
        """Untimed: the last run exited 0, wrote the expected bytes and reported the expected counts.

        Its output is then fsynced, so that a peer's unflushed output (peers do not fsync; the
        service does not either) is not written back during the next tool's timed run.
        """
        run = self.runs[-1]
        what = f"{self.tool.name} on the {self.store.label} store"
        ref = f"the {self.expected.reference} reference's"
        if run.returncode != 0:
            pytest.fail(f"{what} exited {run.returncode}:\n{run.stderr.decode(errors='replace')[-4000:]}")
        with open(self.target, "rb") as fh:
            os.fsync(fh.fileno())
        size = self.target.stat().st_size
        if size != self.expected.bytes:
            pytest.fail(f"{what}: the output has {size} bytes, {ref} {self.expected.bytes}")
        if file_digest(self.target) != self.expected.sha256:
            pytest.fail(f"{what}: the output differs from {ref} (same size, other bytes)")
        counts = report_counts(run.stdout)
        if counts != self.expected.counts:
            pytest.fail(f"{what}: the report's counts differ from {ref}:\n"
                        f"{json.dumps(counts, indent=1)}\nexpected\n{json.dumps(self.expected.counts, indent=1)}")
        self.checked = len(self.runs)

    def measure(self, benchmark, rounds: int) -> None:
        benchmark.pedantic(self.run, setup=self.setup, teardown=lambda: self.check(), rounds=rounds)
        if self.checked < len(self.runs):  # --benchmark-disable runs once, without teardown
            self.check()

    def info(self, benchmark) -> dict:
        """What goes into the benchmark's extra_info (and from there into --benchmark-json)."""
        stats = getattr(getattr(benchmark, "stats", None), "stats", None)
        seconds = stats.median if stats is not None else statistics.median(r.seconds for r in self.runs)
        peak = max(r.peak_rss_bytes for r in self.runs)
        return {
            "tool": self.tool.name,
            **self.store.info(),
            "rounds": len(self.runs),
            "seconds": round(seconds, 4),
            "mb_per_s": round(self.store.bytes / 1e6 / seconds, 2),
            "cpu_seconds": round(statistics.median(r.cpu_seconds for r in self.runs), 4),
            "peak_rss_mb": round(peak / 1e6, 1),
            "peak_rss_mib": round(peak / MIB, 1),
            "peak_rss_mib_rounds": [round(r.peak_rss_bytes / MIB, 1) for r in self.runs],
            "peak_pss_mib": round(max(r.peak_pss_bytes for r in self.runs) / MIB, 1),
            "output_bytes": self.expected.bytes,
            "output_sha256": self.expected.sha256,
            "verified_against": self.expected.reference,
        }


@pytest.fixture
def measurement(expected):
    """`measurement(tool_name, store)`: a Measurement in a work folder of its own, removed after the test."""
    folders: list[Path] = []
    made: list[Measurement] = []

    def make(tool_name: str, store: Store) -> Measurement:
        folders.append(Path(tempfile.mkdtemp(prefix=f"work-{tool_name}-", dir=store.path.parent)))
        made.append(Measurement(TOOLS[tool_name], store, expected(store), folders[-1]))
        return made[-1]

    yield make
    for measured in made:
        measured.close()
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# What the JSON report records about the machine and the command
# --------------------------------------------------------------------------------------------


def machine_summary() -> dict:
    cpu_model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_total_gb = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    mem_total_gb = round(int(line.split()[1]) * 1024 / 2**30, 1)
                    break
    except OSError:
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "mem_total_gib": mem_total_gb,
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "kernel": platform.release(),
    }


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["streamclean"] = machine_summary()


def pytest_benchmark_update_json(config, benchmarks, output_json):
    env = [f"{key}={shlex.quote(os.environ[key])}" for key in (ENV_SIZE, ENV_ROUNDS, ENV_MEMORY_SIZES)
           if os.environ.get(key)]
    args = [str(arg) for arg in config.invocation_params.args]
    output_json["streamclean_command"] = " ".join([*env, "python -m pytest", shlex.join(args)])

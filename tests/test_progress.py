"""The progress line: drawn in place on a terminal, a few times a second, and never anywhere else."""

import io
import os
import select
import subprocess
import sys

import pytest

from conftest import NOW_ISO, ROOT
from streamclean.progress import ProgressLine, progress_on_stderr, render

MB = 1_000_000


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_line_names_the_pass_and_shows_bytes_share_rate_and_eta():
    assert (
        render("filter", 25 * MB, 100 * MB, elapsed=5.0)
        == "filter   25.0 of 100.0 MB   25.0 %  5.0 MB/s  ETA 0:15"
    )
    # too early for a rate
    assert render("index", 3 * MB, 100 * MB, elapsed=0.1) == "index     3.0 of 100.0 MB    3.0 %"
    assert render("filter", 2_000 * MB, 3_000 * MB, elapsed=100.0).endswith("20.0 MB/s  ETA 0:50")
    assert render("filter", 1 * MB, 80_000 * MB, elapsed=1.0).endswith("ETA 22:13:19")


def test_redraws_at_most_five_times_a_second_but_always_a_new_pass_and_the_end():
    stream, clock = io.StringIO(), FakeClock()
    line = ProgressLine(stream, now=clock)
    for step in range(1, 11):  # ten chunks in 0.1 s: one draw
        clock.now += 0.01
        line("index", step * MB, 100 * MB)
    assert stream.getvalue().count("\r") == 1
    clock.now += 0.25
    line("index", 20 * MB, 100 * MB)  # 0.25 s later: drawn
    line("filter", 1 * MB, 100 * MB)  # a new pass: drawn at once
    line("filter", 2 * MB, 100 * MB)  # too soon: not drawn
    line("filter", 100 * MB, 100 * MB)  # the end of a pass: drawn
    frames = stream.getvalue().split("\r")[1:]
    assert [frame.split()[0] for frame in frames] == ["index", "index", "filter", "filter"]
    assert frames[-1].startswith("filter  100.0 of 100.0 MB  100.0 %")


def test_a_new_pass_measures_its_own_rate():
    stream, clock = io.StringIO(), FakeClock()
    line = ProgressLine(stream, now=clock)
    clock.now += 10.0
    line("index", 100 * MB, 100 * MB)  # 10 MB/s
    clock.now += 1.0
    line("filter", 50 * MB, 100 * MB)  # 50 MB in 1 s since the index pass ended
    assert (
        stream.getvalue().split("\r")[-1]
        == "filter   50.0 of 100.0 MB   50.0 %  50.0 MB/s  ETA 0:01"
    )


def test_a_shorter_line_blanks_the_rest_and_clear_leaves_a_clean_line():
    stream, clock = io.StringIO(), FakeClock()
    line = ProgressLine(stream, now=clock)
    clock.now += 5.0
    line("filter", 50 * MB, 100 * MB)
    long_line = stream.getvalue()[1:]
    line("survey", 1 * MB, 100 * MB)
    assert stream.getvalue().split("\r")[-1] == render("survey", 1 * MB, 100 * MB, 0.0).ljust(
        len(long_line)
    )
    line.clear()
    assert stream.getvalue().endswith(
        "\r" + " " * len(render("survey", 1 * MB, 100 * MB, 0.0)) + "\r"
    )


def test_nothing_when_stderr_is_not_a_terminal_or_quiet(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with progress_on_stderr() as progress:
        assert progress is None

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    with progress_on_stderr(quiet=True) as progress:
        assert progress is None
    with progress_on_stderr() as progress:
        assert isinstance(progress, ProgressLine)


# -- a real terminal -------------------------------------------------------------------------


def _run_with_stderr_on_a_terminal(*args) -> str:
    """Run `python -m streamclean ARGS` with stderr on a pseudo-terminal; return what it showed."""
    master, slave = os.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamclean", *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=slave,
            cwd=ROOT,
            env=_env(),
        )
    finally:
        os.close(slave)  # the child holds it now; at its exit the master reads EOF (EIO on Linux)
    shown = bytearray()
    try:
        while select.select([master], [], [], 30)[0]:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            shown += data
    finally:
        os.close(master)
        process.wait(timeout=30)
    assert process.returncode == 0, shown.decode()
    return shown.decode().replace("\r\n", "\n")  # the terminal turns each newline into CR LF


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.mark.slow
def test_progress_shows_on_a_terminal_and_then_gives_way_to_the_summary(store):
    shown = _run_with_stderr_on_a_terminal(
        "clean", "--store-file", store, "--now", NOW_ISO, "--dry-run"
    )
    frames = shown.split("\r")
    assert any(frame.startswith("index ") and " %" in frame for frame in frames), shown
    assert any(frame.startswith("filter ") and "100.0 %" in frame for frame in frames), shown
    # The line is blanked before the summary, which stands on a line of its own.
    assert frames[-1].startswith("streamclean: dry run: would delete 1 result and 2 events")
    assert frames[-2].strip() == ""


@pytest.mark.slow
def test_inspect_shows_the_passes_it_shares_with_a_dry_run(store):
    shown = _run_with_stderr_on_a_terminal("inspect", "--store-file", store, "--now", NOW_ISO)
    frames = shown.split("\r")
    assert any(frame.startswith("filter ") and "100.0 %" in frame for frame in frames), shown
    assert not any(frame.startswith("survey ") for frame in frames), shown


@pytest.mark.slow
def test_quiet_on_a_terminal_shows_nothing(store):
    assert _run_with_stderr_on_a_terminal("clean", "--store-file", store, "--quiet") == ""


@pytest.mark.slow
def test_no_progress_when_stderr_is_a_pipe(store):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamclean",
            "clean",
            "--store-file",
            str(store),
            "--now",
            NOW_ISO,
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(),
    )
    assert result.returncode == 0
    assert "\r" not in result.stderr and "%" not in result.stderr and "index" not in result.stderr
    assert (
        result.stderr.startswith("streamclean: dry run: would delete")
        and result.stderr.count("\n") == 1
    )


def test_the_line_is_cut_to_the_terminal_width(monkeypatch):
    stream, clock = io.StringIO(), FakeClock()
    line = ProgressLine(stream, now=clock)
    monkeypatch.setattr(line, "_columns", lambda: 20)
    clock.now += 5.0
    line("filter", 50 * MB, 100 * MB)
    assert stream.getvalue() == "\r" + render("filter", 50 * MB, 100 * MB, 5.0)[:19]


def test_the_eta_counts_the_passes_still_to_come():
    """Issue 11, point 11: the ETA is for the whole run, not the current pass."""
    stream, clock = io.StringIO(), FakeClock()
    line = ProgressLine(stream, now=clock, passes=("index", "filter"))
    clock.now += 5.0
    line("index", 50 * MB, 100 * MB)  # 10 MB/s: 5 s left of this pass, 10 s for the filter pass
    assert stream.getvalue().split("\r")[-1].rstrip().endswith("10.0 MB/s  ETA 0:15")
    clock.now += 1.0
    # a pass not planned (20 MB/s): 4 s left, and 5 s of filter pass
    line("space", 20 * MB, 100 * MB)
    assert stream.getvalue().split("\r")[-1].rstrip().endswith("20.0 MB/s  ETA 0:09")
    clock.now += 2.0
    line("filter", 50 * MB, 100 * MB)  # the last pass (25 MB/s): its own rest only
    assert stream.getvalue().split("\r")[-1].rstrip().endswith("25.0 MB/s  ETA 0:02")


def test_render_adds_the_later_passes_to_the_eta():
    assert render("index", 25 * MB, 100 * MB, elapsed=5.0, later=100 * MB).endswith(
        "5.0 MB/s  ETA 0:35"
    )

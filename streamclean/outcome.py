"""How a run that may swap a new store in (`clean`, `restore`) ends: its outputs checked before
the store is read, its report file, its exit status, its one error line, and what its metrics
file records.

Exit 1 promises the store as it was; so once the new store is in place, every failure after it
(the report, the metrics file, stdout closed, a signal) ends the run with 74 and one line that
says so. The command line only parses, shows and exits. See docs/design.md.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import signals
from .atomicfile import check_writable, write_atomically
from .errors import (
    EXIT_CLEANED,
    EXIT_FAILED,
    InterruptedRunError,
    OutputError,
    StreamcleanError,
)
from .metrics import RunOutcome, write_textfile
from .outputs import check as check_outputs

Show = Callable[[str, bool], None]  # (text, to stderr): prints it whole or raises OSError
Files = Iterable[tuple[str, str | os.PathLike | None]]

_WHAT = {"--output-json": "the report", "--metrics-textfile": "the metrics"}
_FIX = {
    "--output-json": "give --output-json a file in a writable folder (missing folders are created)",
    "--metrics-textfile": "its folder must exist and be writable",
}


@dataclass
class Run:
    """What one run got to: its report once the library returned one, and how it failed."""

    runner: str  # the name its lines begin with
    verb: str  # what the swap made of the store: "cleaned", "restored"
    elapsed_clock: Callable[[], float]  # for durations
    wall_clock: Callable[[], float]  # for the metrics' timestamps
    started: float = field(init=False)
    store_file: str | None = None
    report: Any = None  # CleanupReport, RestoreReport
    document: str | None = None  # the report as printed
    error: StreamcleanError | None = None
    metrics_file: str | None = None  # None when not asked for or found unsafe
    report_file: str | None = None
    reported_in: str | None = None  # the report file, once written

    def __post_init__(self) -> None:
        self.started = self.elapsed_clock()

    @property
    def swapped(self) -> bool:
        """The new store is in place: from here on no failure may exit 1. (The library may
        fail after its swap, before it returns a report: the signal module knows.)"""
        return bool(self.report is not None and self.report.rewritten) or signals.store_swapped()

    @contextmanager
    def going(self) -> Iterator[None]:
        """The run itself: SIGINT and SIGTERM end it as an InterruptedRunError, and any
        failure, foreseen or not, is kept as the run's error for `conclude`."""
        try:
            with as_streamclean_errors():
                yield
        except StreamcleanError as exc:
            self.error = exc

    # -- before the store is read ------------------------------------------------------------------

    def check_metrics(self, store_file: str, path: str | None, run_files: Files) -> None:
        """The metrics file, checked first: once it is safe to write, it records whatever
        happens next, also a refusal of the other outputs."""
        if path:
            check_metrics_output(store_file, path, run_files)
            self.metrics_file = path
        self.store_file = store_file

    def check_report(self, store_file: str, path: str | None, run_files: Files, reads: Files = ()) -> None:
        """The report file and every other file of the run (the metrics file too), by the
        rule of `outputs.check`."""
        if path:
            check_outputs(store_file, [*run_files, ("--output-json", path), ("--metrics-textfile", self.metrics_file)],
                          reads)
            check_writable_output(path, "--output-json", store_file_mode(store_file))
            self.report_file = path
        self.store_file = store_file

    # -- after the library returned -------------------------------------------------------------

    def finished(self, report: Any, as_dict: dict) -> None:
        """The library's report: kept, printed as JSON, written to the report file if asked."""
        self.report = report
        self.document = json.dumps(as_dict, indent=2, ensure_ascii=False) + "\n"
        try:
            self.document.encode("utf-8")
        except UnicodeEncodeError:  # a path with a byte that is not UTF-8: its JSON escape
            self.document = json.dumps(as_dict, indent=2, ensure_ascii=True) + "\n"
        if self.report_file:
            write_report(Path(self.report_file), self.document, store_file_mode(self.store_file))
            self.reported_in = self.report_file

    def conclude(self, show: Show, summary: Callable[[Any, float], str] | None = None) -> int:
        """Write the metrics, print the report and then either one error line or the summary
        line (`summary`, on success); the exit status. Signals wait meanwhile; one that came
        is part of the account."""
        with signals.critical_section():
            problems = [self.error] if self.error is not None else []
            status = self._status_after(0 if self.error is None else self.error.exit_code, problems)
            recorded = self._metrics(status, problems)
            if recorded is None:
                status = self._status_after(status, problems)
            printed = False
            if status in (0, EXIT_CLEANED) and self.document is not None:
                try:
                    show(self.document, False)
                    printed = True
                except OSError as exc:
                    problems.append(OutputError(f"the report could not be printed: stdout {_why(exc)}"))
                    status = self._status_after(status, problems)
            late = signals.deferred()
            if late is not None and status in (0, EXIT_CLEANED):  # an interruption nothing else explains
                problems.append(InterruptedRunError(late, after_swap=self.swapped, made=self.verb))
                status = self._status_after(status, problems)
            if recorded is not None and recorded != status and self._metrics(status, problems) is None:
                status = self._status_after(status, problems)
            try:
                if problems:
                    show(f"{self.runner}: error: {self._line(problems, printed)}\n", True)
                elif status == 0 and summary is not None:
                    show(summary(self.report, self.elapsed_clock() - self.started) + "\n", True)
            except OSError:
                pass  # stderr closed: the exit status is all that is left to tell
        return status

    def _status_after(self, status: int, problems: list[StreamcleanError]) -> int:
        """The status once `problems` happened: 74 after the swap, else the first one's."""
        if not problems:
            return status
        if self.swapped:
            return EXIT_CLEANED
        return status or problems[0].exit_code or EXIT_FAILED

    def _metrics(self, status: int, problems: list[StreamcleanError]) -> int | None:
        """Write the metrics file recording `status`; the status recorded, or None if it
        could not be written (the failure is added to `problems`)."""
        if not self.metrics_file:
            return status
        outcome = RunOutcome(self.wall_clock(), self.elapsed_clock() - self.started, self.report, status)
        try:
            write_textfile(self.metrics_file, outcome, store_file_mode(self.store_file))
        except OutputError as exc:
            problems.append(exc)
            return None
        return status

    def _line(self, problems: list[StreamcleanError], printed: bool) -> str:
        """One line for every problem: after the swap it says so first, and where the report is."""
        if not self.swapped:
            first, *more = problems
            return "; also: ".join([str(first), *(problem.message for problem in more)])
        what = ", and ".join(_what_failed(problem) for problem in problems)
        if printed:
            where = "the report is on stdout"
        elif self.reported_in is not None:
            where = f"the report is in {self.reported_in}"
        else:
            where = "there is no report"
        return f"the store was {self.verb}, but {what}; {where}"


def _what_failed(error: StreamcleanError) -> str:
    if isinstance(error, InterruptedRunError):
        return f"the run was interrupted by {error.signame}"
    return error.message


def _why(exc: OSError) -> str:
    if exc.errno in (errno.EPIPE, errno.EBADF):
        return "is closed"
    return f"failed: {exc.strerror or exc}"


def store_file_mode(store_file: str | None) -> int | None:
    """The store's mode, which no file written about it may exceed; None without a store."""
    if store_file is None:
        return None
    try:
        return os.stat(store_file).st_mode
    except (OSError, ValueError):
        return None


def check_metrics_output(store_file: str, path: str, run_files: Files = ()) -> None:
    """A metrics file (`clean`'s, `inspect`'s), before the store is read: by the rule of
    `outputs.check` among the run's other files, and one that can be written."""
    check_outputs(store_file, [*run_files, ("--metrics-textfile", path)])
    check_writable_output(path, "--metrics-textfile", store_file_mode(store_file))


def check_writable_output(path: str, option: str, store_mode: int | None = None) -> None:
    """Refuse, before the store is read, an output path that cannot be written (missing
    folders of the report count as writable: they are created)."""
    try:
        check_writable(path, option == "--output-json", store_mode)
    except OSError as exc:
        raise OutputError(
            f"cannot write {_WHAT[option]} to {path}: {exc.strerror or exc}",
            f"the store was left unchanged; {_FIX[option]}",
        ) from None


def write_report(path: Path, document: str, store_mode: int | None = None) -> None:
    """The report file, replaced atomically, no more open than the store."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, document.encode("utf-8"), store_mode=store_mode)
    except OSError as exc:
        raise OutputError(f"cannot write the report to {path}: {exc.strerror or exc}", _FIX["--output-json"]) from None


@contextmanager
def as_streamclean_errors() -> Iterator[None]:
    """SIGINT and SIGTERM (from `timeout`, systemd, a Ctrl-C) end the block as a
    StreamcleanError, and so does anything unforeseen."""
    try:
        signals.install()
        yield
    except KeyboardInterrupt:  # a Ctrl-C before the handlers were in place
        raise InterruptedRunError("SIGINT") from None
    except StreamcleanError:
        raise
    except Exception as exc:  # a bug: still one line for the operator, and the store is safe
        raise StreamcleanError(
            f"internal error: {type(exc).__name__}: {exc}",
            "the store was left unchanged; please report this with the command line",
        ) from None

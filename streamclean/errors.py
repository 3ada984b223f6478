"""One exception family, so the command line can turn any failure into one line and an exit code."""

from __future__ import annotations

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CLEANED = 74  # BSD sysexits EX_IOERR: the cleaned store is in place, something after it failed
EXIT_TEMPFAIL = 75  # BSD sysexits EX_TEMPFAIL: cron and systemd read it as "try again later"


class StreamcleanError(Exception):
    """A run could not complete; the store is as it was (unless `exit_code` is EXIT_CLEANED)."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class UsageError(StreamcleanError):
    """A bad option or environment value, found before the store is read."""

    exit_code = EXIT_USAGE


class StoreFileError(StreamcleanError):
    """The store path is missing, not a regular file, or cannot be read or replaced."""


class InvalidStoreError(StreamcleanError):
    """The store is not something the service could have written."""

    def __init__(self, problem: str, offset: int | None = None) -> None:
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(
            f"invalid store: {problem}{where}",
            "the store was left unchanged; repair or restore it before cleaning",
        )
        self.problem = problem
        self.offset = offset


class WriteError(StreamcleanError):
    """Writing, syncing or swapping in the new store failed (full disk, I/O error, ...)."""


class SwapNotUndoneError(WriteError):
    """A step after the swap failed and so did undoing the swap: the cleaned store is in place."""

    exit_code = EXIT_CLEANED


class OutputError(StreamcleanError):
    """The report or the metrics file cannot be written where the options say."""


class StoreChangedError(StreamcleanError):
    """Someone else wrote the store while we worked; writing ours would lose their change."""

    exit_code = EXIT_TEMPFAIL


class LockedError(StreamcleanError):
    """Another cleanup holds the lock beside the store."""

    exit_code = EXIT_TEMPFAIL


class InterruptedRunError(StreamcleanError):
    """SIGINT or SIGTERM arrived; the run stopped (before the swap, unless `after_swap`)."""

    def __init__(self, signame: str, after_swap: bool = False, made: str = "cleaned") -> None:
        if after_swap:
            super().__init__(
                f"interrupted by {signame} after the {made} store was swapped in",
                f"the store is {made}; only the report is missing",
            )
        else:
            super().__init__(f"interrupted by {signame}", "the store was left unchanged")
        self.signame = signame
        self.after_swap = after_swap
        if after_swap:
            self.exit_code = EXIT_CLEANED

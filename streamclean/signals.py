"""SIGINT and SIGTERM end a run cleanly, except inside the swap, where they wait.

Stopping between the swap and its check could make the rollback delete the file just swapped
out, possibly someone else's newer store; so the swap, and creating and removing the temporary
file, are critical sections in which a signal is remembered. A signal after the swap ends the
run with status 74 (`errors.EXIT_CLEANED`); so does one while the run gives its account
(`outcome.Run.conclude`), after which they are ignored. See docs/design.md.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager

from .errors import InterruptedRunError

_critical = False
_deferred: int | None = None
_swapped = False  # the new store of the current run is in place
_made = "cleaned"  # what that store is: "cleaned", "restored"


def _handle(signum: int, frame) -> None:
    global _deferred
    if _critical:
        _deferred = signum
        return
    raise InterruptedRunError(signal.Signals(signum).name, after_swap=_swapped, made=_made)


def install() -> None:
    """Turn SIGINT and SIGTERM into InterruptedRunError (call from the main thread)."""
    run_started()
    signal.signal(signal.SIGINT, _handle)
    signal.signal(signal.SIGTERM, _handle)


def run_started() -> None:
    global _swapped, _deferred
    _swapped = False
    _deferred = None


def swapped(made: str = "cleaned") -> None:
    """The new store (`made`: "cleaned", "restored") is in place: from here on an
    interruption must not claim otherwise."""
    global _swapped, _made
    _swapped, _made = True, made


def store_swapped() -> bool:
    """Whether the current run's new store is in place (so a failure now cannot claim otherwise)."""
    return _swapped


def deferred() -> str | None:
    """The name of a signal that arrived inside the current critical section, which it then
    no longer holds back: for a block that accounts for it itself (the end of a run)."""
    global _deferred
    signum, _deferred = _deferred, None
    return None if signum is None else signal.Signals(signum).name


def ignore() -> None:
    """SIGINT and SIGTERM change nothing any more: the run has said how it ended. (Python's
    own handlers, which it puts back as the interpreter exits, would end the process with a
    status that says nothing about the run, and without a line.)"""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@contextmanager
def critical_section(deliver: bool = False):
    """Signals wait until the block ends. With `deliver`, one that arrived is raised then
    (unless an outer critical section is still running); otherwise it is dropped, because the
    block completed what the run set out to do (the swap) or is already failing (a rollback)."""
    global _critical, _deferred
    previous = _critical
    _critical = True
    try:
        yield
    finally:
        _critical = previous
    if not previous:
        signum, _deferred = _deferred, None
        if deliver and signum is not None:
            raise InterruptedRunError(signal.Signals(signum).name, after_swap=_swapped, made=_made)

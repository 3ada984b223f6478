"""SIGINT and SIGTERM end a run cleanly, except inside the swap, where they wait.

Stopping between the swap and its check could make the rollback delete the file just swapped
out, possibly someone else's newer store; so the swap, and creating and removing the temporary
file, are critical sections in which a signal is remembered. A signal after the swap ends the
run with status 74 (`errors.EXIT_CLEANED`). See docs/design.md.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager

from .errors import InterruptedRunError

_critical = False
_deferred: int | None = None
_swapped = False  # the new store of the current run is in place


def _handle(signum: int, frame) -> None:
    global _deferred
    if _critical:
        _deferred = signum
        return
    raise InterruptedRunError(signal.Signals(signum).name, after_swap=_swapped)


def install() -> None:
    """Turn SIGINT and SIGTERM into InterruptedRunError (call from the main thread)."""
    run_started()
    signal.signal(signal.SIGINT, _handle)
    signal.signal(signal.SIGTERM, _handle)


def run_started() -> None:
    global _swapped, _deferred
    _swapped = False
    _deferred = None


def swapped() -> None:
    """The new store is in place: from here on an interruption must not claim otherwise."""
    global _swapped
    _swapped = True


def store_swapped() -> bool:
    """Whether the current run's new store is in place (so a failure now cannot claim otherwise)."""
    return _swapped


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
            raise InterruptedRunError(signal.Signals(signum).name, after_swap=_swapped)

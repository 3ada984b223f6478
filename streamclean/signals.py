"""SIGINT and SIGTERM end a run cleanly, except inside the swap, where they wait.

A signal raised as an exception between the swap and its verification could make the rollback
delete the file we had just swapped out — possibly someone else's newer store. So the swap runs
as a critical section: a signal arriving there is remembered and the run completes; it was
already past the point where stopping would have saved anything.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager

from .errors import InterruptedRunError

_critical = False
_deferred: int | None = None


def _handle(signum: int, frame) -> None:
    global _deferred
    if _critical:
        _deferred = signum
        return
    raise InterruptedRunError(signal.Signals(signum).name)


def install() -> None:
    """Turn SIGINT and SIGTERM into InterruptedRunError (call from the main thread)."""
    signal.signal(signal.SIGINT, _handle)
    signal.signal(signal.SIGTERM, _handle)


@contextmanager
def critical_section():
    global _critical
    previous = _critical
    _critical = True
    try:
        yield
    finally:
        _critical = previous

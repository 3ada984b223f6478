"""The progress line on a terminal: which pass, bytes done of total, %, rate and ETA.

    filter   412.3 of 1,000.0 MB  41.2 %  85.3 MB/s  ETA 0:07

The ETA is for the whole run, at this pass's rate. It is drawn in place only when stderr is a
terminal, so captured stderr holds errors and nothing else; `cleanup.clean` calls it after every
chunk it reads, so a call that does not draw costs only a clock read and a comparison.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from .units import MB, clock, megabytes

DRAW_INTERVAL = 0.2  # seconds: at most ~5 redraws a second, calm to read, cheap to write
DEFAULT_COLUMNS = 80
_RATE_AFTER = 0.5  # seconds into a pass before a rate (and so an ETA) means anything

# (pass name, bytes done, bytes total), as cleanup.clean calls it
Progress = Callable[[str, int, int], None]


class ProgressLine:
    """A `progress` callable for `cleanup.clean` that draws one line on `stream`."""

    def __init__(
        self,
        stream: TextIO,
        *,
        now: Callable[[], float] = time.monotonic,
        interval: float = DRAW_INTERVAL,
        passes: tuple[str, ...] = (),
    ) -> None:
        self._stream = stream
        self._to_come = list(passes)  # the passes not yet started
        self._now = now
        self._interval = interval
        self._pass: str | None = None
        self._pass_started = self._last_call = now()
        self._last_draw = float("-inf")
        self._drawn = 0  # length of the line on screen, to blank out what a shorter one leaves

    def __call__(self, pass_name: str, done: int, total: int) -> None:
        moment = self._now()
        previous_call, self._last_call = self._last_call, moment
        if pass_name != self._pass:
            # A new pass restarts the rate: the passes read the same bytes at different speeds.
            # It began when the previous pass last reported, so its first chunk's time counts.
            if self._pass is not None:
                self._pass_started = previous_call
            self._pass = pass_name
            if pass_name in self._to_come:
                del self._to_come[: self._to_come.index(pass_name) + 1]
        elif done < total and moment - self._last_draw < self._interval:
            return
        self._last_draw = moment
        later = total * len(self._to_come)  # every pass reads the same store
        self._draw(render(pass_name, done, total, moment - self._pass_started, later))

    def clear(self) -> None:
        """Blank the line, so whatever is written next starts at column 0 on a clean line."""
        if self._drawn:
            self._write("\r" + " " * self._drawn + "\r")
            self._drawn = 0

    def _draw(self, line: str) -> None:
        # A line wider than the terminal would wrap, and the carriage return would then
        # redraw only its last row: cut it to fit.
        line = line[: self._columns() - 1]
        self._write("\r" + line.ljust(self._drawn))
        self._drawn = len(line)

    def _columns(self) -> int:
        try:
            return os.get_terminal_size(self._stream.fileno()).columns or DEFAULT_COLUMNS
        except (AttributeError, OSError, ValueError):  # not a real terminal (as in tests)
            return DEFAULT_COLUMNS

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()


def render(pass_name: str, done: int, total: int, elapsed: float, later: int = 0) -> str:
    """One progress line (no carriage return): pass, done of total, %, MB/s, and the ETA of
    the rest of this pass and of the `later` bytes the passes still to come will read."""
    share = f"{min(100.0, 100 * done / total):5.1f} %" if total else "    - %"
    of_total = megabytes(total)
    # done stands right-aligned under total: the line keeps still
    width = len(of_total) - len(" MB")
    line = f"{pass_name:<7} {done / MB:>{width},.1f} of {of_total}  {share}"
    if elapsed >= _RATE_AFTER and done:
        rate = done / elapsed
        eta = (max(0, total - done) + later) / rate
        line += f"  {rate / MB:,.1f} MB/s  ETA {clock(eta)}"
    return line


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


@contextmanager
def progress_on_stderr(
    quiet: bool = False, passes: tuple[str, ...] = ()
) -> Iterator[Progress | None]:
    """A progress callable drawing on stderr, or None when stderr is no terminal or `quiet`;
    `passes` as for ProgressLine.

    The line is blanked on the way out, also on an error, so the error message or the summary
    that follows stands on a line of its own.
    """
    stream = sys.stderr
    if quiet or not is_terminal(stream):
        yield None
        return
    line = ProgressLine(stream, passes=passes)
    try:
        yield line
    finally:
        line.clear()

"""The new store's text, written only once there is something to delete.

Until the first deletion the new store would equal the old one, so nothing is written: the
writer only counts the bytes that would have been. At the first deletion it opens the target
and copies that many bytes straight from the old store, then writes on. A run that deletes
nothing therefore never creates a file, and a dry run is a writer whose target never opens.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

from . import fs
from .errors import WriteError
from .reader import _utf8_len

FLUSH_SIZE = 1 << 18


class StoreWriter:
    """A `Sink` for `filter_store` that writes to a file descriptor opened on first need.

    `open_target` returns the descriptor to write to, or None to discard (dry run).
    `copy_prefix(fd, nbytes)` copies the first `nbytes` of the old store into it.
    """

    def __init__(
        self,
        open_target: Callable[[], int | None],
        copy_prefix: Callable[[int, int], None],
    ) -> None:
        self._open_target = open_target
        self._copy_prefix = copy_prefix
        self.diverged = False
        self.fd: int | None = None
        self.size = 0  # bytes of the new store so far, counted in a dry run too
        self._parts: list[str] = []
        self._pending = 0

    def write(self, text: str) -> None:
        self.size += _utf8_len(text)
        if self.fd is not None:
            self._parts.append(text)
            self._pending += len(text)
            if self._pending >= FLUSH_SIZE:
                self.flush()

    def diverge(self) -> None:
        """The new store differs from here on: open the target and copy the common start."""
        if self.diverged:
            return
        self.diverged = True
        self.fd = self._open_target()
        if self.fd is not None:
            with write_errors():
                self._copy_prefix(self.fd, self.size)

    def flush(self) -> None:
        if self.fd is None or not self._parts:
            return
        data = "".join(self._parts).encode("utf-8")
        self._parts.clear()
        self._pending = 0
        with write_errors():
            fs.write_all(self.fd, data)


@contextmanager
def write_errors():
    """An OSError while writing the new store, as the one-line error every writer gives."""
    try:
        yield
    except OSError as exc:
        raise WriteError(
            f"cannot write the new store: {exc.strerror or exc}",
            "the store was left unchanged; free space beside it and run again",
        ) from None

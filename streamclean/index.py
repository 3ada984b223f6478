"""Pass 1: the index of terminal jobs.

Only the `jobs` section is looked at; every other section is walked record by record so memory
stays flat. The index answers one question for pass 2: is this job id terminal?
"""

from __future__ import annotations

from typing import BinaryIO, Callable

from .policy import is_terminal
from .reader import Scanner, iter_elements, iter_members


class JobIndex:
    """Job ids by terminal state. A key seen twice counts once, its last occurrence wins."""

    def __init__(self) -> None:
        self.terminal: set[str] = set()
        self._active: set[str] = set()

    def add(self, job_id: str, terminal: bool) -> None:
        if terminal:
            self._active.discard(job_id)
            self.terminal.add(job_id)
        else:
            self.terminal.discard(job_id)
            self._active.add(job_id)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self.terminal

    @property
    def terminal_count(self) -> int:
        return len(self.terminal)

    @property
    def active_count(self) -> int:
        return len(self._active)


def build_index(stream: BinaryIO, on_progress: Callable[[int], None] | None = None) -> JobIndex:
    """Read a whole store and return its terminal-job index; raises InvalidStoreError."""
    index = JobIndex()
    sc = Scanner(stream, on_progress=on_progress)
    sc.whitespace()
    for section in iter_top_level(sc):
        if section.key == "jobs" and sc.peek() == "{":
            for job in iter_members(sc, "jobs"):
                record, _ = sc.value()
                index.add(job.key, is_terminal(record))
        else:
            skip_section(sc, section.key)
    sc.expect_end()
    return index


def iter_top_level(sc: Scanner):
    """The top-level members; refuses a repeated section name, which would shadow an earlier one.

    Returns, like `iter_members`, the whitespace before the closing brace.
    """
    seen: set[str] = set()
    members = iter_members(sc, "the top level")
    while True:
        try:
            member = next(members)
        except StopIteration as end:
            return end.value
        if member.key in seen:
            key_start = sc.pos - len(member.colon) - len(member.key_text)
            raise sc.error(f"duplicate top-level key {member.key_text}", key_start)
        seen.add(member.key)
        yield member


def skip_section(sc: Scanner, where: str) -> None:
    """Read past a section one record at a time, so a huge section never sits in memory."""
    char = sc.peek()
    if char == "{":
        for _ in iter_members(sc, where):
            sc.value()
    elif char == "[":
        for _ in iter_elements(sc, where):
            sc.value()
    else:
        sc.value()

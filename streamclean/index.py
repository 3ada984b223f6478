"""The job index: every job id of the store and whether it is terminal, compactly.

Pass 1 fills it; it answers pass 2's questions: is this job id terminal? And, with job
retention on, is the job removed (`flags_of`)? Each job has one flag byte: TERMINAL, REMOVED
(terminal, and finished at or before the jobs cutoff) and NO_FINISHED_AT (terminal, but its
`finished_at` does not parse: kept, and counted as skipped). A block of jobs is added, and a block
of ids looked up, in bulk (`add_many`, `flags_many`).
"""

from __future__ import annotations

import pickle
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from typing import BinaryIO, Protocol

_HEX_DIGITS = "0123456789abcdef"
_LOW64 = (1 << 64) - 1

TERMINAL = 1
REMOVED = 2
NO_FINISHED_AT = 4


class FlagsOf(Protocol):
    """What the judge asks of an index one record at a time (`JobIndex`, or the survey's
    `RememberingIndex` in front of it)."""

    def flags_of(self, job_id: object) -> int: ...

    def __contains__(self, job_id: object) -> bool: ...


class JobIndex:
    """Every job id and whether it is terminal; a key seen twice counts once, its last word wins.

    Compact, because a store can hold millions of jobs and a set of a million id strings takes
    about 100 MB. A job id in the canonical UUID form is exactly a 128-bit number, kept in two
    arrays of 64-bit halves with one flag byte: 17 bytes a job. The service writes keys
    sorted, which for canonical UUIDs is numeric order, so they are appended and looked up by
    bisection. Any other id, and a UUID that arrives out of order and is not yet known, goes
    to a plain dict: still exact, only larger.
    """

    def __init__(self) -> None:
        self._high = array("Q")
        self._low = array("Q")
        self._flags = array("B")  # TERMINAL, REMOVED, NO_FINISHED_AT
        self._others: dict[str, int] = {}

    def add(self, job_id: str, terminal: bool | int) -> None:
        """Record a job: `terminal` is a bool or the job's flags (TERMINAL | ...)."""
        terminal = int(terminal)
        number = _uuid_number(job_id)
        if number is None or not self._add_number(number, terminal):
            self._others[job_id] = terminal

    def add_many(self, job_ids: list[str], flags: Sequence[int]) -> None:
        """`add` for each job in turn, in bulk where the ids are canonical UUIDs that follow
        every id already here in ascending order (a store the service wrote)."""
        halves = _uuid_halves(job_ids)
        # canonical ids in ascending order as text are in ascending order as numbers
        if halves is not None and sorted(job_ids) == job_ids and len(set(job_ids)) == len(job_ids):
            high, low = halves
            if self._ends_before((high[0], low[0])):
                self._high.extend(high)
                self._low.extend(low)
                self._flags.extend(flags)
                return
        for job_id, flag in zip(job_ids, flags, strict=True):
            self.add(job_id, flag)

    def _add_number(self, number: int, flags: int) -> bool:
        """Record a canonical id and its job's flags in the arrays; False if it is out of order
        and not yet known."""
        high, low = number >> 64, number & _LOW64
        if not self._high or (high, low) > (self._high[-1], self._low[-1]):
            self._high.append(high)
            self._low.append(low)
            self._flags.append(flags)
            return True
        position = self._position(high, low)
        if position is None:
            return False
        self._flags[position] = flags
        return True

    def update(self, later: JobIndex) -> None:
        """Take in an index of the jobs that follow this one's in the same section: where both
        know a job, `later` has the last word, exactly as if its jobs had been added here.

        In a service-written store the later ids are all greater, and its arrays are simply
        appended: none of them can be known here, since a canonical id in `_others` is below
        the last in the arrays. Otherwise each of its jobs is added in turn (every id appears
        in just one place of an index, so the order they are taken in does not matter)."""
        if self._ends_before(later._first()):
            self._high.extend(later._high)
            self._low.extend(later._low)
            self._flags.extend(later._flags)
        else:
            for high, low, terminal in zip(later._high, later._low, later._flags, strict=True):
                number = high << 64 | low
                if not self._add_number(number, terminal):
                    self._others[_uuid_text(number)] = terminal
        for job_id, terminal in later._others.items():
            self.add(job_id, terminal)

    def _first(self) -> tuple[int, int] | None:
        """The smallest id in the arrays, as (high, low); None if they are empty."""
        return (self._high[0], self._low[0]) if self._high else None

    def _ends_before(self, first: tuple[int, int] | None) -> bool:
        """Whether arrays starting at `first` can simply be appended to these: they hold ids,
        and every one of them comes after every id here."""
        return first is not None and (not self._high or first > (self._high[-1], self._low[-1]))

    def send(self, out: BinaryIO) -> None:
        """Write this index to `out` for `update_from` in another process: a short head, then
        the arrays' own bytes, never copied (a part of a million jobs is 17 MB, and a copy of it
        on either side of a pipe is memory the run would hold twice)."""
        head = pickle.dumps(
            (len(self._flags), self._first(), self._others), protocol=pickle.HIGHEST_PROTOCOL
        )
        out.write(len(head).to_bytes(8, "little"))
        out.write(head)
        for part in (self._high, self._low, self._flags):
            with memoryview(part) as view, view.cast("B") as raw:
                out.write(raw)

    def update_from(self, source: BinaryIO) -> None:
        """`update` with the index another process `send`s through `source`. In the common case
        (its ids all follow this one's) its arrays are appended to these a slice at a time, as
        they arrive; raises EOFError if `source` ends early."""
        head = _read_exactly(source, int.from_bytes(_read_exactly(source, 8), "little"))
        count, first, others = pickle.loads(head)
        appended = self._ends_before(first)
        later = self if appended else JobIndex()
        for part in (later._high, later._low, later._flags):
            remaining = count * part.itemsize
            while remaining:
                chunk = _read_exactly(source, min(remaining, _SLICE))
                part.frombytes(chunk)
                remaining -= len(chunk)
        if not appended:
            self.update(later)
        for job_id, terminal in others.items():
            self.add(job_id, terminal)

    def __contains__(self, job_id: object) -> bool:
        """True when `job_id` is a terminal job's id."""
        return bool(self.flags_of(job_id) & TERMINAL)

    def flags_of(self, job_id: object) -> int:
        """The flags of `job_id` (0 for an unknown id)."""
        if type(job_id) is not str:
            return 0
        number = _uuid_number(job_id)
        if number is not None:
            position = self._position(number >> 64, number & _LOW64)
            if position is not None:
                return self._flags[position]
        return self._others.get(job_id, 0)

    def flags_many(self, job_ids: list[str]) -> list[int]:
        """`flags_of` each of `job_ids`, in bulk where they are all canonical UUIDs."""
        halves = _uuid_halves(job_ids)
        high, low, flags = self._high, self._low, self._flags
        if halves is None or not high:
            return [self.flags_of(job_id) for job_id in job_ids]
        uppers, lowers = halves[0].tolist(), halves[1].tolist()
        last = len(high) - 1
        positions = [bisect_left(high, upper, 0, last) for upper in uppers]
        if [high[position] for position in positions] == uppers and [
            low[position] for position in positions
        ] == lowers:
            return [flags[position] for position in positions]
        # some id is not in the arrays, or shares its upper half with another job: those one by one
        return [
            flags[position]
            if high[position] == upper and low[position] == lower
            else self.flags_of(job_id)
            for job_id, position, upper, lower in zip(
                job_ids, positions, uppers, lowers, strict=True
            )
        ]

    def count(self, flag: int) -> int:
        """How many jobs have `flag`."""
        # bytes.count runs at memory speed, array.count a Python compare a job
        flags = self._flags.tobytes()
        in_arrays = sum(flags.count(value) for value in range(8) if value & flag)
        return in_arrays + sum(1 for value in self._others.values() if value & flag)

    def __len__(self) -> int:
        return len(self._flags) + len(self._others)

    def _position(self, high: int, low: int) -> int | None:
        position = bisect_left(self._high, high)
        while position < len(self._high) and self._high[position] == high:
            if self._low[position] == low:
                return position
            position += 1
        return None

    @property
    def terminal_count(self) -> int:
        return self.count(TERMINAL)

    @property
    def active_count(self) -> int:
        return len(self._flags) + len(self._others) - self.terminal_count


_SLICE = 1 << 20  # bytes of an index part read at a time; a multiple of every item size


def _read_exactly(source: BinaryIO, size: int) -> bytes:
    data = source.read(size)
    if len(data) != size:
        raise EOFError(f"the index ended after {len(data)} of {size} bytes")
    return data


def _uuid_text(number: int) -> str:
    text = f"{number:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_HEX_ONLY = str.maketrans("", "", "-\n")
_NOT_HEX = str.maketrans("", "", _HEX_DIGITS)


def _uuid_halves(job_ids: Sequence[str]) -> tuple[array[int], array[int]] | None:
    """The upper and lower 64-bit halves of `job_ids` if every one is a canonical UUID, else
    None; all at once, in C: the ids' hex digits read as big-endian bytes."""
    count = len(job_ids)
    if not count:
        return None
    lines = "\n".join(job_ids) + "\n"
    # 37 characters a line, the hyphens and the newline in their places, and nothing but hex
    # digits beside them (a line of its own inside an id would make more lines than ids).
    if (
        len(lines) != 37 * count
        or not lines.isascii()
        or lines.translate(_NOT_HEX) != "----\n" * count
    ):
        return None
    hyphens = "-" * count
    if not (lines[8::37] == lines[13::37] == lines[18::37] == lines[23::37] == hyphens):
        return None
    words = array("Q", bytes.fromhex(lines.translate(_HEX_ONLY)))
    if words.itemsize != 8:
        return None
    if _LITTLE_ENDIAN:
        words.byteswap()
    return words[0::2], words[1::2]


_LITTLE_ENDIAN = array("H", b"\x01\x00")[0] == 1


def _uuid_number(job_id: str) -> int | None:
    """The 128-bit number of a canonical (lowercase, hyphenated) UUID, else None."""
    if len(job_id) == 36 and job_id[8] == job_id[13] == job_id[18] == job_id[23] == "-":
        digits = job_id.replace("-", "")
        if len(digits) == 32 and not digits.strip(_HEX_DIGITS):  # nothing but 0-9 and a-f
            return int(digits, 16)
    return None

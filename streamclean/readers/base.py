"""What every reader hands the pipeline, and the contract it keeps.

A reader walks the store once, front to back, and hands out its parts by exact byte offsets,
so that pass 2 can leave records out as byte ranges and copy everything kept undecoded:

- `sections(seen)`: the top-level members (`Member`s with `key` and `value_start`); keys go
  into `seen`, a repeated one is refused. The consumer reads each section's value with one of
  the methods below and sets the section's `value_end` to what it returns.
- `records(open_at, fields=)`: the members of a section object, each with `value` decoded; the
  walk's `close` is then the closing brace's offset. `fields` names the only fields the
  consumer reads (the judge's, `Judge.fields`): a reader may then hand out a dict of just
  those, as long as it holds the values the service's parser reads (`layout` does, with msgspec).
- `job_arrays(open_at, fields=)`: the members of `events`, one job's events each: `values` is the whole
  array decoded in one call (the batch the judge decides in bulk), or None, when `value` is
  `STREAM` for an array to stream with `elements(member)`, or else the non-array value.
- `elements(array)`: an array's elements, each decoded, the array's `value_end` set after.
- `check(section)`: validate a section kept as it is; its end and entry count.
- `known_section(section, span, out)`: the `jobs` object, which pass 1 read already (at `span`;
  None if pass 1 found none, which the `layout` reader takes as a mismatch).
- `find_jobs()`: pass 1's way to the `jobs` section (None if there is none).
- `window`: the byte window kept bytes are copied from, or None (then the kernel copies them).
- `moved(what)`: the error for a section not where pass 1 read it (the store changed, or
  this reader cannot tell), to raise.
- `powers`: what else a reader can do, each a typed capability or None (`Powers`): split
  points for the second core (`SplitPoints`), and the block path (`BlockPath`). The readers'
  classes say whether pass 2 can be split (`tail_split`, a `TailSplit` or None).

`Reader` below is this contract as a `typing.Protocol`.

Values are decoded as the service reads them (the stdlib's parser, or orjson where it gives
the same value). Invalid input raises `InvalidStoreError` with its byte offset (`general`) or
`LayoutMismatch` (`layout`, which the run then hands to `general`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    BinaryIO,
    Generic,
    Protocol,
    TypeVar,
)

if TYPE_CHECKING:
    from ..splice import RangeWriter


STREAM = object()  # a member's `value` when its array is to be read with `elements`
_Step = TypeVar("_Step", covariant=True)


class LayoutMismatch(Exception):
    """This store (or this part of it) is not in the service's layout."""


class Member:
    """One member of an object (or element of an array), by its byte offsets in the store.

    `comma_at` is the offset of the comma before it (None for the first); `value` is the
    decoded value where the reader decoded it. Both readers hand out these.
    """

    __slots__ = ("comma_at", "key", "start", "value", "value_end", "value_start", "values")

    def __init__(
        self,
        key: str | None,
        start: int,
        value_start: int,
        value_end: int,
        comma_at: int | None = None,
    ) -> None:
        self.key = key
        self.start = start  # the first byte of the member's line after its indentation
        self.value_start = value_start
        self.value_end = value_end
        self.comma_at = comma_at
        self.value: object = None
        self.values: list[object] | None = None


class Walk(Generic[_Step]):
    """An iteration over a container whose `close` (the offset of its closing bracket) is
    known once the iteration is over. `steps(walk)` is a generator function that sets it."""

    def __init__(self, steps: Callable[[Walk[_Step]], Iterator[_Step]]) -> None:
        self.close: int = -1  # set once the iteration is over
        self._steps = steps(self)

    def __iter__(self) -> Iterator[_Step]:
        return self._steps


@dataclass(slots=True)
class Block:
    """Members of a section object found by one scan and decoded one call each (`blocks`).

    Offsets are kept relative to `base` (absolute = base + relative): `lines` are the newlines
    that begin the members' lines, `value_starts` and `value_ends` their values (a value ends at
    the comma after it, or at the section's closing line). `values` are the decoded deciding
    fields (structs; a list of them for a job's events). `comma_at` is the comma before the
    first member (None for the first of the section); `closed`, whether the section's closing
    line follows the last member."""

    base: int
    keys: list[str]
    lines: list[int]
    value_starts: list[int]
    value_ends: list[int]
    values: list[Any]  # structs of msgspec.defstruct's making
    comma_at: int | None
    closed: bool

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def end(self) -> int:
        """Where the last member's value ends."""
        return self.base + self.value_ends[-1]

    def value_end(self, position: int) -> int:
        return self.base + self.value_ends[position]

    def member(self, position: int) -> Member:
        """The member at `position`, as a walk would have handed it out (without `value`)."""
        base = self.base
        comma = self.comma_at if position == 0 else base + self.value_ends[position - 1]
        return Member(
            self.keys[position],
            base + self.lines[position] + 5,
            base + self.value_starts[position],
            base + self.value_ends[position],
            comma,
        )


Span = tuple[int, int]
TailSplit = Callable[[Callable[[int, int], bytes], int, Span, "Span | None"], "tuple[int, bool]"]


class SplitPoints(Protocol):
    """A reader's power to split both passes over two cores (`second_core.py`)."""

    events_span: Span | None  # the events section's value, found by `find_jobs` (if before `jobs`)

    def jobs_split(self, jobs: Member) -> Span | None:
        """Where a job near the middle of `jobs` begins and where the section ends; None if
        no such place is found."""
        ...


class BlockPath(Protocol):
    """A reader's power to hand out a section's members a block at a time (`Block`), and one
    `Member` at a time wherever it cannot prove a block."""

    careful_blocks: int  # how many times the block path handed over to the record-by-record one

    def blocks(
        self,
        open_at: int | None,
        fields: tuple[str, ...],
        array: bool = False,
        exact: str | None = None,
        resume_after: int | None = None,
        stop_at: int | None = None,
        told_apart: tuple[str, ...] = (),
    ) -> Walk[Block | Member]: ...

    def array_elements(self, array: Member) -> list[Member] | None:
        """The elements of an array already read whole, without decoding them again; None
        where they cannot be placed that way."""
        ...


@dataclass(frozen=True)
class Powers:
    """The optional powers of a reader; None where it has not got one."""

    splits: SplitPoints | None = None
    blocks: BlockPath | None = None


class Reader(Protocol):
    """The reader contract (see the top of this module)."""

    @property
    def name(self) -> str: ...

    @property
    def tail_split(self) -> TailSplit | None:
        """Where a second process can take over pass 2 (a function of the class), or None."""
        ...

    top_open: int
    window: Any  # the layout reader's byte window, or None
    powers: Powers

    def __init__(
        self, stream: BinaryIO, on_progress: Callable[[int], None] | None = None
    ) -> None: ...

    def sections(self, seen: set[str], resume_after: int | None = None) -> Iterable[Member]: ...

    def first_byte(self, member: Member) -> int: ...

    def check(self, member: Member) -> tuple[int, int]: ...

    def known_section(self, member: Member, span: Span | None, out: RangeWriter) -> int: ...

    def records(
        self,
        open_at: int | None,
        exact: str | None = None,
        resume_after: int | None = None,
        fields: tuple[str, ...] | None = None,
    ) -> Walk[Member]: ...

    def job_arrays(
        self,
        open_at: int | None,
        resume_after: int | None = None,
        fields: tuple[str, ...] | None = None,
    ) -> Walk[Member]: ...

    def elements(self, array: Member, count: int | None = None) -> Iterator[Member]: ...

    def find_jobs(self) -> Member | None: ...

    def moved(self, what: str) -> Exception: ...

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

Values are decoded as the service reads them (the stdlib's parser, or orjson where it gives
the same value). Invalid input raises `InvalidStoreError` with its byte offset (`general`) or
`LayoutMismatch` (`layout`, which the run then hands to `general`).
"""

from __future__ import annotations


STREAM = object()  # a member's `value` when its array is to be read with `elements`


class LayoutMismatch(Exception):
    """This store (or this part of it) is not in the service's layout."""


class Member:
    """One member of an object (or element of an array), by its byte offsets in the store.

    `comma_at` is the offset of the comma before it (None for the first); `value` is the
    decoded value where the reader decoded it. Both readers hand out these.
    """

    __slots__ = ("key", "start", "value_start", "value_end", "comma_at", "value", "values")

    def __init__(self, key: str | None, start: int, value_start: int, value_end: int, comma_at: int | None = None) -> None:
        self.key = key
        self.start = start  # the first byte of the member's line after its indentation
        self.value_start = value_start
        self.value_end = value_end
        self.comma_at = comma_at
        self.value = None
        self.values = None




class Walk:
    """An iteration over a container whose `close` (the offset of its closing bracket) is
    known once the iteration is over. `steps(walk)` is a generator function that sets it."""

    def __init__(self, steps) -> None:
        self.close: int | None = None
        self._steps = steps(self)

    def __iter__(self):
        return self._steps

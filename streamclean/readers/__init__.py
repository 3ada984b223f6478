"""The readers, chosen by name: one contract (`base.py`), two ways to read a store.

`layout` reads the service's own layout by bytes and can split both passes over two cores;
`general` reads any valid JSON through the stdlib's parser. `auto`, the default, takes `layout`
and starts over on `general` at any mismatch. See docs/design.md.
"""

from __future__ import annotations

from ..errors import UsageError
from .base import LayoutMismatch, Member
from .general import GeneralReader
from .layout import LayoutReader

READERS = ("auto", "layout", "general")
_BY_NAME = {"layout": LayoutReader, "general": GeneralReader}


def check_reader(name: str, what: str = "reader") -> str:
    """`name` if it names a reader choice, else a UsageError naming `what`."""
    if name not in READERS:
        raise UsageError(f"{what}: unknown reader {name!r}", "choose one of " + ", ".join(READERS))
    return name


def reader_class(name: str):
    """The reader class of a concrete name (`layout` or `general`)."""
    return _BY_NAME[name]


def candidates(choice: str) -> tuple[str, ...]:
    """The readers a run with this choice tries, in order."""
    return ("layout", "general") if choice == "auto" else (check_reader(choice),)


__all__ = [
    "READERS",
    "GeneralReader",
    "LayoutMismatch",
    "LayoutReader",
    "Member",
    "candidates",
    "check_reader",
    "reader_class",
]

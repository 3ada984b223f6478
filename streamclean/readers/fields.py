"""Decoding only the fields the judge reads, with msgspec, where the standard library agrees.

Decoding a record's one or two deciding fields (`Judge.fields`) into a small struct, while
msgspec still validates the whole record, is much faster than decoding all of it. msgspec is
not the service's parser, so a record is taken from it only where the two cannot disagree;
everywhere else it is decoded whole (`layout.load`). The cases: docs/design.md; the figures:
docs/performance.md; `tests/test_fields.py` holds it to the standard library.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

msgspec: ModuleType | None  # None without it (the tests also take it away)
try:
    import msgspec
except ImportError:  # without msgspec the layout reader decodes whole records (slower, same bytes)
    msgspec = None

AVAILABLE = msgspec is not None


def decoder(
    names: tuple[str, ...], array: bool, whole: Callable[[bytes], object]
) -> Callable[[bytes], object] | None:
    """A function from a record's bytes (or, with `array`, a job's events array's bytes) to a
    dict of the fields `names` (a list of such dicts), or None without msgspec. `whole(text)`
    decodes a record in full; it is used wherever msgspec could disagree with the stdlib."""
    if msgspec is None:
        return None
    fields: Any = msgspec.defstruct(
        "Fields", [(name, str | None, None) for name in names], gc=False
    )
    decode = msgspec.json.Decoder(list[fields] if array else fields).decode
    refused = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)
    asdict = msgspec.structs.asdict

    def fields_of(text: bytes) -> object:
        try:
            found = decode(text)
        except refused:
            return whole(text)
        if not text.isascii():
            try:
                text.decode("utf-8")
            except UnicodeDecodeError:
                return whole(text)  # which refuses it, as the service's parser does
        return [asdict(item) for item in found] if array else asdict(found)

    return fields_of


REFUSED = () if msgspec is None else (msgspec.DecodeError, msgspec.ValidationError, RecursionError)


def strict_decoder(
    names: tuple[str, ...], array: bool, told_apart: tuple[str, ...] = ()
) -> Callable[[Any], Any] | None:
    """A function from a record's bytes (with `array`, a job's events array's bytes) to a
    struct of just the fields `names` (a list of such structs), strings or None; it raises one
    of `REFUSED` wherever msgspec alone cannot say what the stdlib would read (see above; the
    UTF-8 of the skipped strings is for the caller to check). A missing field reads as None,
    but one of `told_apart` as `msgspec.UNSET`, no string nor None. None without msgspec."""
    if msgspec is None:
        return None
    fields: Any = msgspec.defstruct(
        "Fields",
        [
            (name, str | None | msgspec.UnsetType, msgspec.UNSET)
            if name in told_apart
            else (name, str | None, None)
            for name in names
        ],
        gc=False,
    )
    decode: Callable[[Any], Any] = msgspec.json.Decoder(list[fields] if array else fields).decode
    return decode


def raw_array_decoder() -> Callable[[Any], list[Any]] | None:
    """A function from an array's bytes to its elements as raw bytes (`msgspec.Raw`, whose
    lengths say where each one ends); None without msgspec."""
    if msgspec is None:
        return None
    raw: Any = msgspec.Raw  # a class of a module that may be missing: not a type to mypy
    decode: Callable[[Any], list[Any]] = msgspec.json.Decoder(list[raw]).decode
    return decode

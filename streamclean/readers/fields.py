"""Decoding only the fields the judge reads, with msgspec, where the standard library agrees.

The judge decides a record by one or two of its fields (a job by `status`, a result by `job_id`
and `created_at`, an event by `occurred_at`; see `Judge.fields`). Decoding just those into a
small struct, while msgspec still validates the whole record, is about 2.5 times as fast as
decoding the whole record with orjson (measured on the sections of a generated 500 MB store:
results 6.3 -> 2.5 us a record, jobs 6.8 -> 2.8 us, a job's events array 7.1 -> 3.2 us).

msgspec is not the service's parser, so a record is taken from it only where the two cannot
disagree; everywhere else the record is decoded whole, by orjson and then the standard library
(`layout.load`), which decides:

- msgspec refuses the record (NaN and Infinity, a lone surrogate escape, nesting too deep for
  it, anything invalid): the standard library may still accept it, so it decides.
- A deciding field that is neither a string nor null (an integer beyond 64 bits among them,
  which msgspec would read as a float): decoded whole, so the judge sees the service's value.
- Invalid UTF-8: msgspec checks the strings it decodes, not the ones it skips. A record with
  any byte beyond ASCII is therefore decoded as UTF-8 by Python too; if that fails, the
  whole-record decoder refuses the record as the service's parser would.
- A key written twice: msgspec keeps the last value, as the standard library does; a key
  written with escapes (`"job\\u005fid"`) is matched like the plain one.

A missing field and a null one both come back as None: the judge reads them alike (a record
without a parseable timestamp is kept and counted as skipped, a job without a string status is
not terminal). The records handed on are plain dicts of just the deciding fields.
`tests/test_fields.py` holds all of this to the standard library, case by case and on
hypothesis-generated records.
"""

from __future__ import annotations

from typing import Callable, Optional

try:
    import msgspec
except ImportError:  # without msgspec the layout reader decodes whole records (slower, same bytes)
    msgspec = None

AVAILABLE = msgspec is not None


def decoder(names: tuple[str, ...], array: bool, whole: Callable[[bytes], object]) -> Callable[[bytes], object] | None:
    """A function from a record's bytes (or, with `array`, a job's events array's bytes) to a
    dict of the fields `names` (a list of such dicts), or None without msgspec. `whole(text)`
    decodes a record in full; it is used wherever msgspec could disagree with the stdlib."""
    if msgspec is None:
        return None
    fields = msgspec.defstruct("Fields", [(name, Optional[str], None) for name in names], gc=False)
    decode = msgspec.json.Decoder(list[fields] if array else fields).decode
    refused = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)
    asdict = msgspec.structs.asdict

    def fields_of(text):
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


def strict_decoder(names: tuple[str, ...], array: bool) -> Callable[[object], object] | None:
    """A function from a record's bytes (with `array`, a job's events array's bytes) to a
    struct of just the fields `names` (a list of such structs), strings or None; it raises one
    of `REFUSED` wherever msgspec alone cannot say what the stdlib would read (see above; the
    UTF-8 of the skipped strings is for the caller to check). None without msgspec."""
    if msgspec is None:
        return None
    fields = msgspec.defstruct("Fields", [(name, Optional[str], None) for name in names], gc=False)
    return msgspec.json.Decoder(list[fields] if array else fields).decode


def raw_array_decoder() -> Callable[[object], list] | None:
    """A function from an array's bytes to its elements as raw bytes (`msgspec.Raw`, whose
    lengths say where each one ends); None without msgspec."""
    return None if msgspec is None else msgspec.json.Decoder(list[msgspec.Raw]).decode

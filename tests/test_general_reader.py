"""The general reader: exact text across chunk boundaries, and one clear error with a byte offset."""

import io
import json

import pytest

from conftest import service_bytes, small_state
from passes import run_passes
from streamclean.errors import InvalidStoreError
from streamclean.readers import general as reader
from streamclean.readers.general import Scanner


def _tokens(data: bytes) -> list[str]:
    """Every piece the scanner reads from a store, with the top two levels walked."""
    sc = Scanner(io.BytesIO(data))
    pieces = [sc.whitespace(), "{"]
    members = reader.iter_members(sc, "top")
    try:
        while True:
            member = next(members)
            pieces.append(member.head)
            if sc.peek() == "{":
                pieces.append("{")
                inner = reader.iter_members(sc, member.key)
                try:
                    while True:
                        pieces.append(next(inner).head)
                        pieces.append(sc.value()[1])
                except StopIteration as end:
                    pieces.append(end.value + "}")
            else:
                pieces.append(sc.value()[1])
    except StopIteration as end:
        pieces.append(end.value + "}")
    pieces.append(sc.expect_end())
    return pieces


ODD_STATE = {
    "events": {"j1": [{"occurred_at": "2026-03-01", "v": [1e-05, 1e16, 5e-324, -0.0, 2**70]}]},
    "jobs": {"j1": {"status": "completed", "text": 'Grüße \u2028 😀 \\ " \u0000 日本'}},
    "results": {},
    "schema_version": 5,
    "zz_unknown": [None, True, {"a": float("nan"), "b": float("inf"), "c": float("-inf")}],
}

LAYOUTS = {
    "service": lambda s: service_bytes(s),
    "ascii": lambda s: json.dumps(s, sort_keys=True, indent=2).encode(),
    "compact": lambda s: json.dumps(s, separators=(",", ":")).encode(),
    "spaced": lambda s: json.dumps(s, indent="\t", separators=(" , ", " : ")).encode() + b"\n\r\n",
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64])
def test_pieces_reassemble_the_input_for_any_chunk_size(monkeypatch, layout, chunk):
    data = LAYOUTS[layout](ODD_STATE)
    monkeypatch.setattr(reader, "CHUNK_SIZE", chunk)
    assert "".join(_tokens(data)).encode() == data


def test_a_number_split_by_a_chunk_is_read_whole(monkeypatch):
    monkeypatch.setattr(reader, "CHUNK_SIZE", 3)
    sc = Scanner(io.BytesIO(b"123456789 "))
    assert sc.value() == (123456789, "123456789")


def test_values_are_read_as_the_service_reads_them():
    sc = Scanner(
        io.BytesIO(
            b'{"a": NaN, "b": -Infinity, "c": 123456789012345678901234567890, "d": "\\ud800"}'
        )
    )
    value, text = sc.value()
    assert value["c"] == 123456789012345678901234567890 and value["d"] == "\ud800"
    assert value["a"] != value["a"] and value["b"] == float("-inf")
    assert text.endswith('"\\ud800"}')


def _error(data: bytes, chunk: int | None = None) -> InvalidStoreError:
    with pytest.raises(InvalidStoreError) as caught:
        run_passes(data, "general") if chunk is None else _index_with_chunk(data, chunk)
    return caught.value


def _index_with_chunk(data, chunk):
    original = reader.CHUNK_SIZE
    reader.CHUNK_SIZE = chunk
    try:
        run_passes(data, "general")
    finally:
        reader.CHUNK_SIZE = original


GOOD = service_bytes(small_state())


@pytest.mark.parametrize("chunk", [None, 7])
def test_invalid_utf8_is_refused_at_its_offset(chunk):
    at = GOOD.index(b"Gr") + 2
    bad = GOOD[:at] + b"\xff" + GOOD[at + 1 :]
    error = _error(bad, chunk)
    assert error.problem == "invalid UTF-8" and error.offset == at


def test_invalid_utf8_after_the_jobs_section_is_found():
    at = GOOD.index(b'"r3"')
    error = _error(GOOD[:at] + b"\xc3\x28" + GOOD[at + 2 :])
    assert error.offset == at


def test_every_truncation_is_refused():
    for cut in range(0, len(GOOD) - 1, 13):
        error = _error(GOOD[:cut])
        assert error.offset is not None and error.offset <= cut, cut


@pytest.mark.parametrize(
    "data, problem, offset",
    [
        (b'{"jobs": {}} x', "unexpected data after the top-level object", 13),
        (b"[1, 2]", "expected an object for the top level, found '['", 0),
        (b'{"jobs": {"a": tru}}', "expecting value", 15),
        (b'{"jobs": {"a": "x\ny"}}', "invalid control character", 17),
        (
            b'{"jobs": {"a": 1}',
            "expected ',' or '}' in the top level, found the end of the file (truncated?)",
            17,
        ),
        (b'{"jobs": {"a": "unterminated}}', "unterminated string starting", 15),
        (b'{"jobs": {}, "jobs": {}}', 'duplicate top-level key "jobs"', 13),
        (b'{"a": 1 "b": 2}', "expected ',' or '}' in the top level, found '\"'", 8),
        (
            b'{"a": ' + b"9" * 5000 + b"}",
            "exceeds the limit (4300 digits) for integer string conversion",
            6,
        ),
        (b"\xef\xbb\xbf{}", "expected an object for the top level, found '\\ufeff'", 0),
        (b"   ", "expected an object for the top level, found the end of the file (truncated?)", 3),
    ],
)
def test_bad_input_names_the_problem_and_its_offset(data, problem, offset):
    error = _error(data)
    assert (error.problem, error.offset) == (problem, offset)
    assert str(error) == (
        f"invalid store: {problem} at byte {offset}; "
        "the store was left unchanged; repair or restore it before cleaning"
    )


def test_offsets_count_bytes_not_characters():
    data = '{"notifications": {"n": "äöü日本"}, "jobs": {"a": tru}}'.encode()
    assert _error(data).offset == data.index(b"tru")

"""Where streamclean departs from its brief (issue 11, point 10), measured.

The brief named ijson for reading and orjson for writing. streamclean uses neither for a
user's data, for the reasons below; each test asserts one shortcoming of the real library on a
value the service writes, so it fails on the day the library handles that value faithfully,
and the choice (and the section "Where streamclean departs from its brief" of docs/design.md)
should then be revisited.
"""

import io
import json

import orjson
import pytest

ijson = pytest.importorskip("ijson", reason="ijson is in the test extras: pip install '.[test]'")


@pytest.fixture(scope="module")
def yajl2_c():
    try:
        return ijson.get_backend("yajl2_c")
    except ImportError:
        pytest.skip("ijson's C backend (yajl2_c), the one the brief's speed assumes, is not built here")


def _member(backend, document: str):
    """The value of the member "v" of a one-member object, streamed by ijson."""
    return next(backend.items(io.BytesIO(document.encode("utf-8")), "v", use_float=False))


def _service(value, ensure_ascii=False) -> str:
    return json.dumps({"v": value}, ensure_ascii=ensure_ascii, sort_keys=True, indent=2)


@pytest.mark.parametrize("value", [float("nan"), float("-inf"), float("inf")], ids=["NaN", "-Infinity", "Infinity"])
def test_ijson_refuses_the_non_finite_numbers_the_service_writes(yajl2_c, value):
    document = _service(value)
    assert json.loads(document)["v"] is not None  # the service reads its own file back
    with pytest.raises(ijson.JSONError):
        _member(yajl2_c, document)


def test_ijson_turns_a_lone_surrogate_escape_into_a_question_mark(yajl2_c):
    document = _service("\ud800", ensure_ascii=True)
    assert '"\\ud800"' in document and json.loads(document)["v"] == "\ud800"
    assert _member(yajl2_c, document) == "?"


def test_ijson_reads_integers_beyond_64_bits_exactly(yajl2_c):
    """Not a reason to avoid it (the README used to say otherwise)."""
    big = 2**200 + 1
    assert _member(yajl2_c, _service(big)) == big


def test_orjson_writes_nan_as_null():
    """The strongest reason: a store rewritten by orjson would silently lose every NaN."""
    assert json.dumps(float("nan")) == "NaN"
    assert orjson.dumps(float("nan")) == b"null"
    assert orjson.dumps(float("-inf")) == b"null"


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, "\ud800"], ids=["2**64", "-2**63-1", "lone-surrogate"])
def test_orjson_refuses_big_integers_and_lone_surrogates(value):
    json.dumps(value)  # the service writes them
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(value)


def test_orjson_formats_floats_unlike_the_service():
    assert json.dumps(1e-07) == "1e-07"
    assert orjson.dumps(1e-07) == b"1e-7"

"""The deciding fields alone, decoded by msgspec (streamclean/readers/fields.py), held to the
standard library: wherever the two could disagree, the record is decoded whole and the
standard library decides. Case by case, on hypothesis-generated and mutated records, and end
to end: a store cleaned with and without msgspec is the same store."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import passes
import processes
from streamclean.judge import Judge
from streamclean.policy import RetentionPolicy
from streamclean.readers import LayoutMismatch, fields, layout

pytestmark = [
    pytest.mark.skipif(not fields.AVAILABLE, reason="msgspec is not installed"),
    pytest.mark.filterwarnings("ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"),
]

RESULT = ("job_id", "created_at")
PROPERTY = dict(
    deadline=None,
    database=None,
    max_examples=400,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def service(text: bytes):
    """What the service's parser makes of a record's bytes, or None if it refuses them."""
    try:
        return json.loads(text.decode("utf-8"))
    except (ValueError, RecursionError):
        return None


def decoded(text: bytes, names=RESULT, array=False, exact=None):
    """The layout reader's decoder with `names`, or None where it refuses the record."""
    try:
        return layout.decoder(exact, fields=names, array=array)(bytearray(text))
    except LayoutMismatch:
        return None


def assert_agrees(text: bytes, names=RESULT) -> None:
    """The fast decoder refuses what the service refuses, and where it accepts, every deciding
    field is what the service reads: the same string or null, or else the value decoded whole
    (never a string or a missing field the service would not see). `job_id` is read exactly,
    as pass 2 reads it (its `str()` decides), so it must be the service's value, whatever it is."""
    expected, got = service(text), decoded(text, names, exact="job_id")
    if expected is None:
        assert got is None, (text, got)
        return
    assert got is not None, text
    if not isinstance(expected, dict):
        assert type(got) is type(expected), (text, got)
        return
    assert isinstance(got, dict)
    for name in names:
        want, have = expected.get(name), got.get(name)
        if want is None or type(want) is str or name == "job_id":
            assert type(have) is type(want) and str(have) == str(want), (text, name, have, want)
        else:
            assert have is not None and type(have) is not str, (text, name, have, want)


CASES = {
    "plain": b'{"job_id": "a", "created_at": "2026-03-01T00:00:00+00:00", "x": [1, {"y": null}]}',
    "missing": b'{"x": 1}',
    "null": b'{"job_id": null, "created_at": null}',
    "duplicate key, last wins": b'{"job_id": "a", "job_id": "b"}',
    "duplicate key, last not a string": b'{"job_id": "a", "job_id": 7}',
    "escaped key": b'{"job\\u005fid": "x"}',
    "escaped key after the plain one": b'{"job_id": "x", "job\\u005fid": "y"}',
    "escapes in the value": b'{"job_id": "a\\/b\\u0041\\n"}',
    "NaN elsewhere": b'{"job_id": "a", "x": NaN}',
    "-Infinity elsewhere": b'{"job_id": "a", "x": -Infinity}',
    "NaN deciding": b'{"created_at": NaN}',
    "lone surrogate elsewhere": b'{"job_id": "a", "x": "\\ud800"}',
    "lone surrogate deciding": b'{"job_id": "\\udc00"}',
    "surrogate pair deciding": b'{"job_id": "\\ud83d\\ude00"}',
    "big integer elsewhere": b'{"job_id": "a", "x": 123456789012345678901234567890}',
    "big integer deciding": b'{"job_id": 123456789012345678901234567890}',
    "big integer in a list deciding": b'{"job_id": [-9223372036854775809]}',
    "64-bit integer deciding": b'{"job_id": 9223372036854775807}',
    "float deciding": b'{"job_id": 1e-7}',
    "huge float elsewhere": b'{"job_id": "a", "x": 1e999}',
    "list deciding": b'{"job_id": ["a"]}',
    "bool deciding": b'{"job_id": true}',
    "invalid UTF-8 elsewhere": b'{"job_id": "a", "x": "\xff"}',
    "encoded surrogate elsewhere": b'{"job_id": "a", "x": "\xed\xa0\x80"}',
    "overlong encoding elsewhere": b'{"job_id": "a", "x": "\xc0\xaf"}',
    "truncated sequence elsewhere": b'{"job_id": "a", "x": "\xe2\x9c"}',
    "valid UTF-8 elsewhere": '{"job_id": "a", "x": "rendering \u2728 \U0001f600"}'.encode(),
    "raw control character": b'{"job_id": "a", "x": "\x01"}',
    "raw tab": b'{"job_id": "a\tb"}',
    "leading zero": b'{"job_id": "a", "x": 01}',
    "trailing comma": b'{"job_id": "a", "x": [1,]}',
    "bad escape": b'{"job_id": "\\x"}',
    "not an object": b'["job_id", "a"]',
    "a string": b'"job_id"',
}


@pytest.mark.parametrize("text", CASES.values(), ids=CASES.keys())
def test_each_case_agrees_with_the_standard_library(text):
    assert_agrees(text)


def test_invalid_utf8_in_a_skipped_field_is_refused():
    """msgspec itself accepts it (it does not check strings it skips); the guard must not."""
    import msgspec

    text = CASES["invalid UTF-8 elsewhere"]
    msgspec.json.decode(text, type=msgspec.defstruct("JobId", [("job_id", str)]))  # accepted there
    assert service(text) is None and decoded(text) is None


def test_values_msgspec_refuses_are_decoded_whole_as_the_service_reads_them():
    assert decoded(CASES["lone surrogate deciding"]) == {"job_id": "\udc00"}
    big = decoded(CASES["big integer deciding"])
    assert isinstance(big["job_id"], float)  # orjson's reading; `exact` re-reads it (below)
    exact = layout.decoder("job_id", RESULT)(bytearray(CASES["big integer deciding"]))
    assert exact == {"job_id": 123456789012345678901234567890}
    assert math.isnan(decoded(CASES["NaN deciding"])["created_at"])


def test_nesting_too_deep_for_msgspec_is_decoded_whole():
    # Too deep for msgspec on 3.11 to 3.13 alike (3.13 decodes 5000 levels, as its stdlib does).
    depth = 100_000
    text = b'{"job_id": "a", "x": ' + b"[" * depth + b"]" * depth + b"}"
    try:
        whole = layout.load(bytearray(text))
    except LayoutMismatch:
        whole = None  # how deep the stdlib goes depends on the stack it starts from
    got = decoded(text)
    if whole is None:
        assert got is None
    else:
        assert (
            set(got) == set(whole) == {"job_id", "x"} and got["job_id"] == "a"
        )  # whole, not just the fields


def test_a_deciding_record_comes_as_just_its_fields():
    assert decoded(CASES["plain"]) == {"job_id": "a", "created_at": "2026-03-01T00:00:00+00:00"}
    assert decoded(b'[{"occurred_at": "t", "x": 1}, {}]', ("occurred_at",), array=True) == [
        {"occurred_at": "t"},
        {"occurred_at": None},
    ]
    assert decoded(b'{"occurred_at": "t"}', ("occurred_at",), array=True) == {
        "occurred_at": "t"
    }  # whole


# -- hypothesis: generated records, serialised several ways, and mutated --------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["2026-03-01T00:00:00+00:00", "\ud800", "\u2728", "\x00", "job"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
keys = st.sampled_from(
    ["job_id", "created_at", "x", "job\u005fid", "Job_id", "created_at "]
) | st.text(max_size=6)
records = st.lists(st.tuples(keys, values), max_size=6)


def render(pairs, ascii_only: bool, escape_keys: bool) -> bytes:
    """An object with these members in order, duplicates kept, as json.dumps renders each part."""
    parts = []
    for key, value in pairs:
        rendered_key = json.dumps(key, ensure_ascii=ascii_only)
        if escape_keys and key == "job_id":
            rendered_key = '"job\\u005fid"'
        parts.append(rendered_key + ": " + json.dumps(value, ensure_ascii=ascii_only))
    return ("{" + ", ".join(parts) + "}").encode("utf-8", "surrogatepass")


@settings(**PROPERTY)
@given(records, st.booleans(), st.booleans())
def test_generated_records_agree(pairs, ascii_only, escape_keys):
    assert_agrees(render(pairs, ascii_only, escape_keys))


@settings(**PROPERTY)
@given(records, st.data())
def test_mutated_records_agree(pairs, data):
    text = bytearray(render(pairs, False, False))
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.integers(0, len(text)))
        how = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = data.draw(
            st.sampled_from(b'\x00\x01\t\n "\\,:[]{}0-.eE+nNaI\x80\xbf\xc0\xe2\xed\xf0\xff')
        )
        if how == "insert":
            text[where:where] = bytes([byte])
        elif where < len(text):
            if how == "delete":
                del text[where]
            else:
                text[where] = byte
    assert_agrees(bytes(text))


# -- the judge reads a missing field and a null one alike -------------------------------------


def test_the_judge_reads_missing_and_null_alike():
    judge_missing, judge_null = Judge(passes.POLICY), Judge(passes.POLICY)
    terminal = {"a"}
    assert judge_missing.result({"job_id": "a"}, terminal) == judge_null.result(
        {"job_id": "a", "created_at": None}, terminal
    )
    assert judge_missing.result({}, terminal) == judge_null.result(
        {"job_id": None, "created_at": None}, terminal
    )
    assert judge_missing.results == judge_null.results
    assert Judge.terminal({}) == Judge.terminal({"status": None}) is False
    assert judge_missing.event_batch([{}], True) == judge_null.event_batch(
        [{"occurred_at": None}], True
    )
    assert judge_missing.events == judge_null.events


# -- end to end: with and without msgspec, the same store ---------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return processes.generate(
        tmp_path_factory.mktemp("fields") / "store.v1.json", 1_000_000, seed=11
    )


def test_a_store_cleaned_with_and_without_msgspec_is_the_same(generated, monkeypatch):
    policy = RetentionPolicy.build(processes.GENERATOR_NOW, 604800.0, 259200.0)
    with_msgspec = passes.run_passes(generated, "layout", policy)
    monkeypatch.setattr(fields, "msgspec", None)
    assert layout.decoder(fields=RESULT) is layout.load  # decoded whole now
    without = passes.run_passes(generated, "layout", policy)
    assert with_msgspec[0] == without[0] != generated
    assert with_msgspec[2] == without[2] and with_msgspec[2].delete_count
    assert with_msgspec[3] == without[3] and with_msgspec[3].delete_count
    assert with_msgspec[0] == passes.run_passes(generated, "general", policy)[0]

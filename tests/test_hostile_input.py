"""Input the service could not have written is refused; input it could have written survives
(SPEC §5 last rule, issue 3 points 7 and 8).

Refused means: exit 1, one line `streamclean: error: invalid store: <problem> at byte N; ...`
where N is the real byte offset (held to the standard library's own parser: the offset of its
JSONDecodeError, or of the first byte that is not UTF-8), the store byte for byte as it was,
and nothing left beside it. Survives means: the cleaned store loads (`json.loads`) to exactly
the state the oracle (tests/oracle.py) computes from what `json.loads` reads, and for the
service's layout is byte for byte what the service would write.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import processes
from conftest import NOW, NOW_ISO, service_bytes, small_state
from oracle import clean_state, dump_like_service
from streamclean import swap
from streamclean.cli import main

REFUSED = re.compile(
    r"streamclean: error: invalid store: (?P<problem>.+) at byte (?P<offset>\d+); "
    r"the store was left unchanged; repair or restore it before cleaning\n"
)
TTLS = {"results_ttl": 604800.0, "events_ttl": 259200.0}


def _run(store: Path, now: str = NOW_ISO):
    return CliRunner().invoke(
        main, ["clean", "--store-file", str(store), "--now", now], catch_exceptions=False
    )


def stdlib_offset(data: bytes) -> int | None:
    """Where the standard library finds `data` not to be a JSON text, as a byte offset."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return len(text[: exc.pos].encode("utf-8", "surrogatepass"))
    return None


def assert_refused(folder: Path, data: bytes, offset: int | None = None, now: str = NOW_ISO) -> str:
    """Run on `data`; it must be refused at `offset` (default: where the stdlib finds the
    problem). Returns the problem as worded."""
    for path in folder.iterdir():
        path.unlink()
    store = folder / "store.v1.json"
    store.write_bytes(data)
    result = _run(store, now)
    assert result.exit_code == 1, (result.stderr, data[-60:])
    match = REFUSED.fullmatch(result.stderr)
    assert match, result.stderr
    expected = stdlib_offset(data) if offset is None else offset
    assert int(match["offset"]) == expected, (result.stderr, expected)
    assert result.stdout == ""
    assert store.read_bytes() == data
    assert sorted(os.listdir(folder)) == ["store.v1.json", "store.v1.json.lock"]
    return match["problem"]


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "async_jobs"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A store in the service's layout big enough to take the fast path through many blocks."""
    return processes.generate(tmp_path_factory.mktemp("gen") / "store.json", 1_500_000, seed=9)


GOOD = service_bytes(small_state())


# -- truncated -------------------------------------------------------------------------------


def test_truncated_at_every_byte_is_refused_where_it_ends(folder):
    for cut in range(1, len(GOOD)):
        problem = assert_refused(folder, GOOD[:cut])
        assert (
            problem.endswith("found the end of the file (truncated?)")
            or problem.startswith("unterminated string")
            or problem == "invalid UTF-8"  # cut inside a multi-byte character
        ), (cut, problem)


def test_truncated_service_store_is_refused_at_many_points(folder, generated):
    jobs = generated.index(b'\n  "jobs": ')
    results = generated.index(b'\n  "results": ')
    cuts = [
        1,
        1000,
        300_000,
        jobs - 1,
        jobs + 20,
        results - 5,
        results + 5000,
        len(generated) - 2,
        len(generated) - 1,
    ]
    cuts += list(range(jobs + 100_000, len(generated), 97_001))
    for cut in cuts:
        assert_refused(folder, generated[:cut], now=processes.NOW)


# -- not one JSON object -----------------------------------------------------------------------


@pytest.mark.parametrize("tail", [b"x", b"\n{}", b" \n\t garbage", b"\x00", b"}", b"\n\n,"])
def test_trailing_bytes_after_the_top_level_object(folder, generated, tail):
    for data, now in ((GOOD, NOW_ISO), (generated, processes.NOW)):
        problem = assert_refused(
            folder, data + tail, len(data) + len(tail) - len(tail.lstrip(b" \t\n\r")), now
        )
        assert problem == "unexpected data after the top-level object"


@pytest.mark.parametrize(
    "data", [b"[]", b'[{"jobs": {}}]', b'"store"', b"5", b"null", b"  \n [1]", b"true"]
)
def test_top_level_not_an_object(folder, data):
    problem = assert_refused(folder, data, len(data) - len(data.lstrip()))
    assert problem.startswith("expected an object for the top level, found ")


# -- invalid UTF-8 ---------------------------------------------------------------------------


def test_invalid_utf8_at_every_position(folder):
    for at in range(len(GOOD)):
        data = GOOD[:at] + b"\xff" + GOOD[at + 1 :]
        # at `at`, or where the character it cut short begins
        assert at - 3 <= stdlib_offset(data) <= at
        assert assert_refused(folder, data) == "invalid UTF-8"


@pytest.mark.parametrize(
    "bad",
    [
        b"\xc3\x28",
        b"\xc0\xaf",
        b"\xf0\x9f\x98",
        b"\x80",
        b"\xf8\x88\x80\x80\x80",
        b"\xf4\x90\x80\x80",
    ],
    ids=[
        "bad-continuation",
        "overlong",
        "cut-4-byte",
        "lone-continuation",
        "5-byte",
        "above-U+10FFFF",
    ],
)
def test_invalid_utf8_sequences_in_every_section(folder, bad):
    for anchor in ANCHORS:
        at = GOOD.index(anchor) + 1
        assert_refused(folder, GOOD[:at] + bad + GOOD[at:], at)


ANCHORS = (b'"e2"', b'"j2": {', b"Gr\xc3\xbc", b'"r3"', b'"schema_version"')


@pytest.mark.parametrize(
    "fast_path",
    [
        False,
        True,
    ],
    ids=["general-path", "fast-path"],
)
def test_utf8_encoded_surrogates_are_invalid_utf8(folder, monkeypatch, fast_path):
    """ED A0 80 would be U+D800, which UTF-8 may not encode: Python's strict decoder, and so
    the service reading its store as UTF-8 text, refuses it."""
    monkeypatch.setenv("STREAMCLEAN_READER", "auto" if fast_path else "general")
    for anchor in ANCHORS:
        at = GOOD.index(anchor) + 1
        assert_refused(folder, GOOD[:at] + b"\xed\xa0\x80" + GOOD[at:], at)


def test_invalid_utf8_after_the_jobs_section_is_found_by_pass_2_and_its_temp_file_removed(
    folder, generated, monkeypatch
):
    """On the service's layout pass 1 reads only up to the end of `jobs`, so it succeeds; pass
    2 has begun writing the new store when it meets the bad bytes in `results`."""
    opened = []
    real_open = swap.AtomicReplace.open

    def recording_open(self):
        opened.append(self.temp)
        return real_open(self)

    monkeypatch.setattr(swap.AtomicReplace, "open", recording_open)
    at = generated.index(b'\n  "results": ') + 20_000
    at = generated.index(b'"job_id": "', at) + 12
    data = generated[:at] + b"\xfe" + generated[at + 1 :]
    assert assert_refused(folder, data, at, processes.NOW) == "invalid UTF-8"
    assert opened, "the new store was never begun: pass 1 found the problem after all"
    assert not any(path.exists() for path in opened)


# -- invalid JSON, late, and unterminated strings ---------------------------------------------------


@pytest.mark.parametrize(
    "old, new",
    [
        (b'"schema_version": 5', b'"schema_version": 5x'),
        (b'"schema_version": 5', b'"schema_version" 5'),
        (b'"schema_version": 5', b'"schema_version": 05'),
        (b'"result_id": "r3"', b'"result_id": "r3",'),
        (b'"result_id": "r3"', b"'result_id': 'r3'"),
        (b'"result_id": "r3"', b'"result_id": r3'),
        (b'"result_id": "r3"\n    }', b'"result_id": "r3"\n    ]'),
        (b'"job_id": "j3"', b'"job_id": "j3\x01"'),
        (b'"job_id": "j3"', b'"job_id": "j3\\x"'),
    ],
)
def test_invalid_json_late_in_the_file(folder, old, new):
    assert GOOD.count(old) >= 1
    at = GOOD.rindex(old)
    assert_refused(folder, GOOD[:at] + new + GOOD[at + len(old) :])


def test_invalid_json_late_in_a_service_store(folder, generated):
    for old, new in (
        (b'"result_kind": "final"', b'"result_kind": final'),
        (b'"schema_version": 5', b'"schema_version": +5'),
    ):
        at = generated.rindex(old)
        assert_refused(folder, generated[:at] + new + generated[at + len(old) :], now=processes.NOW)


def test_unterminated_strings(folder, generated):
    for data, now in ((GOOD, NOW_ISO), (generated, processes.NOW)):
        at = data.rindex(b'"schema_version"')
        problem = assert_refused(folder, data[:at] + b'"schema_version', now=now)
        assert problem.startswith("unterminated string")
        problem = assert_refused(folder, data[:at] + b'"schema_version\n": 5\n}', now=now)
        assert problem.startswith("invalid control character")


def test_the_problem_reads_as_one_clean_sentence(folder):
    problem = assert_refused(folder, GOOD[:10])
    assert not problem.endswith(" at"), problem


# -- duplicate keys --------------------------------------------------------------------------


def test_a_repeated_top_level_key_is_refused_at_the_repeat(folder):
    data = GOOD[:-2] + b',\n  "jobs": {}\n}'
    at = data.rindex(b'"jobs"')
    assert assert_refused(folder, data, at) == 'duplicate top-level key "jobs"'


def test_a_repeated_job_id_counts_as_json_loads_reads_it_last_wins(folder):
    """j1 is first completed, then running (active: its old result and events stay); j2 is
    first running, then completed (terminal: its old result and event go)."""
    text = GOOD.decode()
    jobs = text[text.index('  "jobs": {') : text.index('  "notifications"')]
    repeated = (
        '  "jobs": {\n'
        '    "j1": {\n      "job_id": "j1",\n      "status": "completed"\n    },\n'
        '    "j2": {\n      "job_id": "j2",\n      "status": "running"\n    },\n'
        '    "j3": {\n      "job_id": "j3",\n      "status": "failed"\n    },\n'
        '    "j1": {\n      "job_id": "j1",\n      "status": "running"\n    },\n'
        '    "j2": {\n      "job_id": "j2",\n      "status": "completed"\n    }\n'
        "  },\n"
    )
    data = text.replace(jobs, repeated).encode()
    assert json.loads(data)["jobs"] == {
        "j1": {"job_id": "j1", "status": "running"},
        "j2": {"job_id": "j2", "status": "completed"},
        "j3": {"job_id": "j3", "status": "failed"},
    }
    cleaned = _assert_cleaned_like_the_oracle(folder, data)
    assert "r1" in cleaned["results"] and "r2" not in cleaned["results"]
    assert cleaned["events"]["j2"] == [] and len(cleaned["events"]["j1"]) == 2
    assert store_text(folder).count('"j1": {') == 2  # the section itself is kept as it was


def store_text(folder: Path) -> str:
    return (folder / "store.v1.json").read_text(encoding="utf-8")


# -- values the service writes survive ----------------------------------------------------------


def _assert_cleaned_like_the_oracle(folder: Path, data: bytes, exact: bytes | None = None) -> dict:
    for path in folder.iterdir():
        path.unlink()
    store = folder / "store.v1.json"
    store.write_bytes(data)
    result = _run(store)
    assert result.exit_code == 0, result.stderr
    expected_state, expected_report = clean_state(json.loads(data), now=NOW, **TTLS)
    out = store.read_bytes()
    assert _same(json.loads(out), expected_state)
    report = json.loads(result.stdout)
    for kind in ("results", "events"):
        assert report[kind] == expected_report[kind]
    assert (
        report["rewritten"]
        and report["results"]["delete_count"] + report["events"]["delete_count"] > 0
    )
    if exact is not None:
        assert out == exact
    assert sorted(os.listdir(folder)) == ["store.v1.json", "store.v1.json.lock"]
    return json.loads(out)


def _same(a, b) -> bool:
    """Equal as JSON values, NaN equal to NaN, and with objects in the same key order."""
    return json.dumps(a, ensure_ascii=True) == json.dumps(b, ensure_ascii=True)


def _nested(depth: int):
    value: object = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"d": value}
    return value


def _special_values() -> dict:
    return {
        "nan": float("nan"),
        "inf": float("inf"),
        "ninf": float("-inf"),
        "big": 10**200,
        "negative_huge": -(10**4000),  # 4,001 digits: within what Python's int <-> str allows
        "float": 1e308,
        "tiny": 5e-324,
        "deep": _nested(600),
        "unicode": "Grüße ✓ 𝄞 \u2028 \x7f",
    }


def test_nan_infinity_huge_integers_and_deep_nesting_survive_byte_for_byte(folder):
    state = small_state()
    state["results"]["r3"]["result_payload"] = _special_values()  # kept (not expired)
    state["results"]["r1"]["result_payload"] = _special_values()  # deleted
    state["events"]["j1"][1]["payload_json"] = _special_values()  # kept
    state["notifications"]["n1"]["data"] = _special_values()
    state["extra_top_level"] = {"kept": _special_values()}
    data = dump_like_service(state)
    expected_state, _ = clean_state(json.loads(data), now=NOW, **TTLS)
    _assert_cleaned_like_the_oracle(folder, data, exact=dump_like_service(expected_state))


def test_jobs_after_events_and_results_in_a_store_not_sorted_by_key(folder):
    base = small_state()
    state = {key: base[key] for key in ("results", "notifications", "events", "schema_version")}
    state["unknown"] = [1, {"x": None}]
    state["jobs"] = base["jobs"]
    data = json.dumps(state, ensure_ascii=False, indent=2).encode()
    expected_state, _ = clean_state(json.loads(data), now=NOW, **TTLS)
    cleaned = _assert_cleaned_like_the_oracle(
        folder, data, exact=json.dumps(expected_state, ensure_ascii=False, indent=2).encode()
    )
    assert list(cleaned) == [
        "results",
        "notifications",
        "events",
        "schema_version",
        "unknown",
        "jobs",
    ]


@pytest.mark.parametrize("separators", [None, (",", ":")], ids=["default", "tightest"])
def test_a_compact_one_line_store(folder, separators):
    state = small_state()
    state["results"]["r3"]["result_payload"] = {
        "nan": float("nan"),
        "big": 10**30,
        "deep": _nested(50),
    }
    data = json.dumps(state, separators=separators).encode()
    assert b"\n" not in data
    _assert_cleaned_like_the_oracle(folder, data)


def test_an_ascii_escaped_store_with_lone_and_mismatched_surrogates_is_preserved_exactly(folder):
    state = small_state()
    state["results"]["r3"]["result_payload"] = {
        "lone": "\ud800",
        "mismatched": "\ud800A",
        "low": "\udc00x",
        "pair": "𝄞",
    }
    state["events"]["j1"][1]["payload_json"] = {"\udbff": "key too"}
    state["results"]["r1"]["result_payload"] = {"lone": "\ud800"}  # in a record that is deleted
    text = json.dumps(state, ensure_ascii=True, sort_keys=True, indent=2)
    # json.dumps writes "\ud800A"; a store can as well hold the A escaped: yajl would fuse
    # that pair into U+10041, the service's json.loads reads "\ud800" + "A".
    text = text.replace('"\\ud800A"', '"\\ud800\\u0041"')
    assert '"\\ud800\\u0041"' in text and '"\\ud800"' in text
    data = text.encode("ascii")
    expected_state, _ = clean_state(json.loads(data), now=NOW, **TTLS)
    exact = (
        json.dumps(expected_state, ensure_ascii=True, sort_keys=True, indent=2)
        .replace('"\\ud800A"', '"\\ud800\\u0041"')
        .encode("ascii")
    )
    cleaned = _assert_cleaned_like_the_oracle(folder, data, exact=exact)
    assert cleaned["results"]["r3"]["result_payload"]["mismatched"] == "\ud800A"


# -- fuzz ------------------------------------------------------------------------------------


def _service_would_read(data: bytes):
    """(True, state) when json.loads reads `data` as one object without a repeated top-level
    key (what streamclean accepts); (False, None) otherwise."""
    top_keys = []

    def pairs(items):
        top_keys[:] = [key for key, _ in items]  # the outermost object is built last
        return dict(items)

    try:
        state = json.loads(data.decode("utf-8"), object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return False, None
    if not isinstance(state, dict) or len(top_keys) != len(set(top_keys)):
        return False, None
    return True, state


def _utf8_error(data: bytes) -> int | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return None


def _expected_offset(data: bytes) -> int | None:
    """Where a refusal must point: the first byte that is not UTF-8; else, when the text does
    not begin with an object, that beginning (the stdlib would parse a lone `"events"` and
    complain after it); else where the stdlib's parser stops."""
    if _utf8_error(data) is not None:
        return _utf8_error(data)
    body = data.lstrip(b" \t\n\r")
    if not body.startswith(b"{"):
        return len(data) - len(body)
    return stdlib_offset(data)


FUZZ_BASE = service_bytes(
    {
        **small_state(),
        "extra": {"nan": float("nan"), "n": -12.5e-3, "s": '\u00e9\\"', "l": [True, False, None]},
    }
)

mutations = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "delete", "replace", "append"]),
        st.integers(0, len(FUZZ_BASE) - 1),
        st.sampled_from(
            list(b'{}[]",:\\ \n0123456789-.eEtrufalsnNI\xff\xc3\x80 x') + list(range(256))
        ),
    ),
    min_size=1,
    max_size=4,
)


def _mutate(data: bytes, steps) -> bytes:
    out = bytearray(data)
    for kind, at, byte in steps:
        if kind in ("insert", "append"):
            out.insert(min(at, len(out)) if kind == "insert" else len(out), byte)
            continue
        at = min(at, max(len(out) - 1, 0))
        if kind == "flip" and out:
            out[at] ^= 1 << (byte % 8)
        elif kind == "delete" and out:
            del out[at]
        elif out:
            out[at] = byte
    return bytes(out)


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(mutations)
def test_fuzzed_stores_never_crash_and_never_change_a_store_they_refuse(steps):
    _check_mutated(_mutate(FUZZ_BASE, steps), NOW_ISO, NOW)


@pytest.fixture(scope="module")
def small_generated(tmp_path_factory):
    return processes.generate(tmp_path_factory.mktemp("small") / "store.json", 40_000, seed=4)


fuzz_positions = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "replace", "append"]),
    st.integers(0, 41_000),
    st.sampled_from(list(b'{}[]",:\\ \n0123456789-.eEtrufalsnNI\xff\xc3\x80 x')),
)


@pytest.mark.slow
@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(fuzz_positions, min_size=1, max_size=3))
def test_fuzzed_service_layout_stores_take_either_path_safely(small_generated, steps):
    """The same on a store in the service's layout, where the fast path reads it first and
    must hand anything unusual to the general path."""
    _check_mutated(_mutate(small_generated, steps), processes.NOW, processes.GENERATOR_NOW)


def _check_mutated(data: bytes, now_iso: str, now) -> None:
    readable, state = _service_would_read(data)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store.v1.json"
        store.write_bytes(data)
        result = _run(store, now_iso)
        event(f"exit {result.exit_code}")
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr, (
            result.stderr
        )
        assert result.exit_code in (0, 1), result.stderr
        if result.exit_code == 1:
            assert readable is False or not data, (data, result.stderr)
            match = REFUSED.fullmatch(result.stderr)
            assert match, result.stderr
            offset, expected = int(match["offset"]), _expected_offset(data)
            if match["problem"] != "invalid UTF-8" and _utf8_error(data) is not None:
                # a problem met before the bad bytes (a character cut short at the very end
                # is only known to be bad at the end)
                assert offset < _utf8_error(data), result.stderr
            elif expected is not None:
                assert offset == expected, (result.stderr, expected)
            assert store.read_bytes() == data
            assert sorted(os.listdir(tmp)) == ["store.v1.json", "store.v1.json.lock"]
            return
        if not data:
            assert store.read_bytes() == b""
            return
        assert readable, (data, "accepted although json.loads refuses it")
        expected_state, _ = clean_state(state, now=now, **TTLS)
        assert _same(json.loads(store.read_bytes().decode("utf-8")), expected_state)
        assert set(os.listdir(tmp)) == {"store.v1.json", "store.v1.json.lock"}

"""The layout reader's block path: a section's members found by one scan, each proven by its own
decode, judged in bulk. Wherever the scan could lie, the block goes to the record-by-record path
(`LayoutReader.careful_blocks` counts each hand-over), and the bytes are those of the general
reader, which reads with the standard library; where the store is in the service's layout,
they are also the oracle's.
"""

import importlib.util
import io
import json
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import oracle
import passes
from conftest import NOW, ROOT, service_bytes
from passes import POLICY, general
from streamclean import judge as judge_module
from streamclean import pass1, pass2
from streamclean.errors import InvalidStoreError
from streamclean.index import NO_FINISHED_AT, REMOVED, TERMINAL, JobIndex
from streamclean.judge import Judge
from streamclean.policy import RetentionPolicy
from streamclean.readers import LayoutMismatch, LayoutReader, layout
from streamclean.splice import RangeWriter

JOBS_POLICY = RetentionPolicy.build(NOW, 604800.0, 259200.0, 864000.0)


def many_jobs(count: int = 40) -> dict:
    """A store of `count` jobs, each with events and a result, old and new, terminal or not."""
    state = {"events": {}, "jobs": {}, "results": {}, "notifications": {}, "schema_version": 5}
    for number in range(count):
        job = f"j{number:03d}"
        days = 1 + number % 9
        stamp = (NOW - timedelta(days=days)).isoformat()
        state["jobs"][job] = {
            "job_id": job,
            "status": ("completed", "running", "failed")[number % 3],
            "finished_at": stamp,
            "note": "Grüße ✓" * (number % 2),
        }
        state["events"][job] = [
            {
                "event_id": f"e{number}-{k}",
                "occurred_at": (NOW - timedelta(days=days, hours=k)).isoformat(),
                "payload": {"n": k},
            }
            for k in range(number % 4)
        ]
        state["results"][f"r{number:03d}"] = {
            "job_id": job,
            "created_at": stamp,
            "text": "李" * (number % 3),
        }
        state["notifications"][f"n{number:03d}"] = {"job_id": job}
    return state


def layout_passes(data: bytes, policy=POLICY):
    """Both passes on the layout reader (`passes.run_passes`): the new bytes, the tallies, and
    how many times the readers handed a block to the record-by-record path."""
    readers = []

    class Counting(LayoutReader):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            readers.append(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passes, "reader_class", lambda name: Counting)
        new, _, results, events = passes.run_passes(data, "layout", policy)
    return new, (results, events), sum(reader.careful_blocks for reader in readers)


def careful_count_of_refusal(data: bytes, policy=POLICY) -> int:
    """How many hand-overs a layout run made before it refused `data` (LayoutMismatch)."""
    readers = []

    class Counting(LayoutReader):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            readers.append(self)

    first = Counting(io.BytesIO(data))
    with pytest.raises(LayoutMismatch):
        index, jobs_span = pass1.index_jobs(first, Judge(policy))
        second = Counting(io.BytesIO(data))
        out = RangeWriter(second.window, lambda: None, lambda *a: None, lambda *a: None)
        try:
            context = pass2.Context(index, jobs_span, Judge(policy), len(data))
            pass2.filter_store(second, out, context)
        finally:
            out.close()
    return sum(reader.careful_blocks for reader in readers)


def oracle_state(data: bytes, jobs_ttl=None) -> dict:
    return oracle.clean_state(
        json.loads(data), results_ttl=604800.0, events_ttl=259200.0, now=NOW, jobs_ttl=jobs_ttl
    )[0]


def oracle_bytes(data: bytes, policy=POLICY, jobs_ttl=None) -> bytes:
    return oracle.dump_like_service(oracle_state(data, jobs_ttl))


def same_data(new: bytes, data: bytes) -> bool:
    """The new store holds what the oracle keeps (compared as the stdlib writes them with
    escapes, so that NaN and a lone surrogate compare too)."""
    return json.dumps(json.loads(new), sort_keys=True) == json.dumps(
        oracle_state(data), sort_keys=True
    )


@pytest.fixture(params=[None, 1024], ids=["one-block", "small-blocks"])
def blocks_of(request, monkeypatch):
    if request.param is not None:
        monkeypatch.setattr(layout, "BLOCK_SIZE", request.param)
        monkeypatch.setattr(layout, "_BLOCK_SLACK", request.param // 2)


def same_as_general(data: bytes, policy=POLICY):
    new, tallies, careful = layout_passes(data, policy)
    expected = general(data, policy)
    assert new == expected[0]
    assert tallies == (expected[2], expected[3])
    return new, careful


@pytest.mark.parametrize("policy", [POLICY, JOBS_POLICY], ids=["plain", "job-retention"])
def test_a_service_store_is_read_in_blocks_alone(blocks_of, policy):
    data = service_bytes(many_jobs())
    new, careful = same_as_general(data, policy)
    assert careful == 0
    assert new == oracle_bytes(data, policy, jobs_ttl=policy.jobs.ttl_seconds)


def test_a_member_line_inside_a_value_is_proven_not_a_member(blocks_of):
    # `\n    "b": ` inside a result: the scan takes it for a member; only the decode of each
    # range between cut points shows that it is not one
    data = service_bytes(many_jobs()).replace(
        b'"r011": {\n      "created_at"',
        b'"r011": {\n      "k1": {\n        "a": 1,\n    "b": 2\n      },\n      "created_at"',
        1,
    )
    assert b'\n    "b": 2' in data
    new, careful = same_as_general(data)
    assert careful >= 1
    assert same_data(new, data)


def test_the_nested_member_line_of_the_issue_sends_the_run_to_the_general_reader():
    state = many_jobs()
    data = service_bytes(state).replace(
        b'"r011": {\n', b'"r011": {"k1": {"a": 1,\n    "b": 2}, "k2": 3,\n', 1
    )
    json.loads(data)  # valid JSON, not the service's layout
    assert careful_count_of_refusal(data) >= 1
    assert same_data(general(data)[0], data)


def test_a_repeated_key_takes_the_record_by_record_path(blocks_of):
    data = service_bytes(many_jobs()).replace(b'\n    "r012": {', b'\n    "r011": {', 1)
    _, careful = same_as_general(data)
    assert careful >= 1


@pytest.mark.parametrize(
    "odd",
    [
        (b'},\n    "r012"', b'},\r\n    "r012"'),  # CRLF
        (b'},\n    "r012"', b'},\n     "r012"'),  # another indent
        (b'},\n    "r012"', b'},\n\t"r012"'),  # a tab
        (b'},\n    "r012"', b'}\n    "r012"'),  # no comma: not even JSON
        (b'},\n    "r012"', b'} \n    "r012"'),  # a space for the comma: each range still decodes
        (b'},\n    "r012"', b'} ,\n    "r012"'),  # a space before the comma
    ],
    ids=["crlf", "indent", "tab", "no-comma", "space-for-comma", "space-before-comma"],
)
def test_other_separators_step_aside_after_the_careful_path(odd):
    data = service_bytes(many_jobs()).replace(*odd, 1)
    assert careful_count_of_refusal(data) >= 1


def test_nan_and_a_lone_surrogate_among_valid_records_are_read_by_the_stdlib(blocks_of):
    data = service_bytes(many_jobs())
    data = data.replace(
        b'"r013": {\n      "created_at"', b'"r013": {\n      "score": NaN,\n      "created_at"', 1
    )
    data = data.replace(
        b'"r020": {\n      "created_at"', b'"r020": {\n      "x": "\\ud800",\n      "created_at"', 1
    )
    data = data.replace(b'"e14-1",\n', b'"e14-1",\n        "inf": -Infinity,\n', 1)
    new, careful = same_as_general(data)
    assert careful >= 3
    assert same_data(new, data)


def test_a_deciding_field_that_is_not_a_string_is_read_by_the_stdlib(blocks_of):
    data = service_bytes(many_jobs())
    result = data.index(b'"r014": {')
    data = data[:result] + data[result:].replace(
        b'"job_id": "j014"', b'"job_id": 14', 1
    )  # an int job id
    result = data.index(b'"r016": {')
    data = data[:result] + data[result:].replace(
        b'"created_at": "', b'"created_at": 1' + b"0" * 30 + b', "x": "', 1
    )
    new, careful = same_as_general(data)
    assert careful >= 2
    assert same_data(new, data)


def test_invalid_utf8_in_a_skipped_field_is_refused(blocks_of):
    data = service_bytes(many_jobs()).replace("李李".encode(), b"\xff\xfe", 1)
    assert careful_count_of_refusal(data) >= 1
    with pytest.raises(InvalidStoreError):
        general(data)


def test_timestamps_without_microseconds_and_unusual_ones(monkeypatch, blocks_of):
    state = many_jobs()
    cutoff = NOW - timedelta(seconds=259200)
    moments = [
        cutoff,
        cutoff + timedelta(microseconds=1),
        cutoff - timedelta(microseconds=1),
        cutoff + timedelta(seconds=1),
    ]
    assert cutoff.isoformat().endswith("+00:00") and "." not in cutoff.isoformat()
    for job, events in state["events"].items():
        for position, event in enumerate(events):
            event["occurred_at"] = moments[(position + int(job[1:])) % 4].isoformat()
    new, careful = same_as_general(service_bytes(state))
    assert careful == 0 and new == oracle_bytes(service_bytes(state))
    # one that fromisoformat cannot read in bulk: the policy's own parser decides
    state["events"]["j006"][0]["occurred_at"] = (
        " " + cutoff.isoformat().replace("+00:00", "Z") + " "
    )
    state["events"]["j003"][0]["occurred_at"] = cutoff.replace(
        tzinfo=None
    ).isoformat()  # naive: UTC
    calls = []
    parse = judge_module.parse_timestamp
    monkeypatch.setattr(
        judge_module, "parse_timestamp", lambda value: calls.append(value) or parse(value)
    )
    new, careful = same_as_general(service_bytes(state))
    assert calls and new == oracle_bytes(service_bytes(state))


# -- the batch forms against the plain ones ------------------------------------------------------

stamps = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "2026-03-07T12:00:00+00:00",
            "2026-03-07T12:00:00.000001+00:00",
            "2026-03-07T11:59:59.999999+00:00",
            "2026-03-01T00:00:00",
            "2026-03-09T00:00:00Z",
            " 2026-03-01T00:00:00Z ",
            "yesterday",
            "",
            "2026-03-02T00:00:00+05:00",
            "2026-02-30T00:00:00+00:00",
        ]
    ),
)
job_ids = st.sampled_from(
    [
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000002",
        "00000000-0000-4000-8000-000000000003",
        "j1",
        "",
        "unknown",
    ]
)
policies = st.sampled_from([POLICY, JOBS_POLICY, RetentionPolicy.build(NOW, None, None, 0.0)])


def an_index() -> JobIndex:
    index = JobIndex()
    for job_id, flags in [
        ("00000000-0000-4000-8000-000000000001", TERMINAL),
        ("00000000-0000-4000-8000-000000000002", TERMINAL | REMOVED),
        ("00000000-0000-4000-8000-000000000003", 0),
        ("j1", TERMINAL | NO_FINISHED_AT),
        ("", TERMINAL),
    ]:
        index.add(job_id, flags)
    return index


class Fields:
    def __init__(self, **fields):
        self.__dict__.update(fields)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(job_ids, stamps), max_size=12), policies)
def test_results_block_is_result_record_by_record(results, policy):
    index = an_index()
    plain, batch = Judge(policy), Judge(policy)
    judged = plain.result_of_jobs if policy.jobs.enabled else plain.result
    expected = [
        position
        for position, (job_id, stamp) in enumerate(results)
        if judged({"job_id": job_id, "created_at": stamp}, index)
    ]
    flags = index.flags_many([j for j, _ in results])
    assert batch.results_block(flags, [s for _, s in results]) == expected
    assert (batch.results, batch.with_jobs) == (plain.results, plain.with_jobs)
    plain, batch = Judge(policy), Judge(policy)
    expected = [
        position
        for position, (job_id, _) in enumerate(results)
        if plain.notification({"job_id": job_id}, index)
    ]
    assert batch.notifications_block(flags) == expected
    assert batch.with_jobs == plain.with_jobs


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.lists(stamps, max_size=5)), max_size=6), policies)
def test_event_arrays_is_event_record_by_record(arrays, policy):
    plain, batch = Judge(policy), Judge(policy)
    expected = []
    for position, (terminal, values) in enumerate(arrays):
        verdicts = [plain.event({"occurred_at": value}, terminal) for value in values]
        if any(verdicts):
            expected.append((position, None if all(verdicts) else verdicts))
    assert (
        batch.event_arrays([values for _, values in arrays], [terminal for terminal, _ in arrays])
        == expected
    )
    assert batch.events == plain.events


zoned_stamps = st.sampled_from(
    [
        "2026-03-07T12:00:00+00:00",
        "2026-03-07T12:00:00.000001+00:00",
        "2026-03-07T11:59:59.999999+00:00",
        "2026-03-09T00:00:00Z",
        "2026-03-02T00:00:00+05:00",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.lists(zoned_stamps, max_size=5)), max_size=6), policies)
def test_event_arrays_parsed_is_event_arrays(arrays, policy):
    """Judged by the moments `inspect`'s survey parsed already: the same verdicts and counts."""
    plain, parsed = Judge(policy), Judge(policy)
    stamps = [values for _, values in arrays]
    terminal = [flag for flag, _ in arrays]
    moments = [datetime.fromisoformat(stamp) for values in stamps for stamp in values]
    assert parsed.event_arrays_parsed(
        [len(values) for values in stamps], moments, terminal
    ) == plain.event_arrays(stamps, terminal)
    assert parsed.events == plain.events


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["completed", "failed", "canceled", "running", "Completed"])
            | st.none(),
            stamps,
        ),
        max_size=10,
    ),
    policies,
)
def test_job_flags_block_is_job_flags_record_by_record(jobs, policy):
    judge = Judge(policy)
    plain = judge.job_flags if policy.jobs.enabled else judge.terminal
    expected = [int(plain({"status": status, "finished_at": stamp})) for status, stamp in jobs]
    assert judge.job_flags_block([s for s, _ in jobs], [f for _, f in jobs]) == expected


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 40), max_size=30),
    st.lists(st.integers(0, 45), max_size=30),
    st.randoms(),
)
def test_the_index_in_bulk_is_the_index_one_by_one(added, queried, rng):
    def uuid(number: int) -> str:
        text = f"{number * 0x0123456789ABCDEF0123456789:032x}"[-32:]
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    ids = (
        sorted({uuid(number) for number in added})
        if rng.random() < 0.5
        else [uuid(n) for n in added]
    )
    ids += ["Not-A-UUID"] if rng.random() < 0.2 else []
    flags = [rng.choice([0, TERMINAL, TERMINAL | REMOVED]) for _ in ids]
    one, bulk = JobIndex(), JobIndex()
    for job_id, flag in zip(ids, flags, strict=True):
        one.add(job_id, flag)
    bulk.add_many(ids, flags)
    queries = [uuid(number) for number in queried] + ["", "x" * 36, uuid(3).upper()]
    rng.shuffle(queries)
    assert bulk.flags_many(queries) == [one.flags_of(job_id) for job_id in queries]
    assert (len(bulk), bulk.terminal_count) == (len(one), one.terminal_count)


def test_a_generated_store_in_blocks_is_the_general_readers(tmp_path, blocks_of):
    spec = importlib.util.spec_from_file_location(
        "generate_store", ROOT / "scripts" / "generate_store.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = tmp_path / "store.json"
    module.generate_store(path, 400_000, seed=3, now=NOW, workers=1)
    data = path.read_bytes()
    new, careful = same_as_general(data)
    assert new != data
    if (
        layout.BLOCK_SIZE > 1 << 16
    ):  # with small blocks, a record larger than one goes record by record
        assert careful == 0


@pytest.mark.parametrize(
    "array, placed",
    [
        (b'[\n      {"a": 1},\n      {"b": [1,\n      2]},\n      3\n    ]', True),
        (b"[]", True),
        (b'[\n       {"a": 1}\n    ]', False),  # another indent
        (b'[\n      {"a": 1}, {"b": 2}\n    ]', False),  # two on one line
        (b'[\n      {"a": 1}\n   ]', False),
    ],
)
def test_array_elements_are_placed_by_their_raw_lengths_or_not_at_all(array, placed):
    data = b'{\n  "events": {\n    "j1": ' + array + b"\n  }\n}"
    reader = LayoutReader(io.BytesIO(data))
    reader.window.need(len(data))
    start = data.index(b'"j1": ') + 6
    member = layout.Member("j1", start, start, start + len(array))
    elements = reader.array_elements(member)
    if not placed:
        assert elements is None
        return
    assert [json.loads(data[e.value_start : e.value_end]) for e in elements] == json.loads(array)
    assert [e.comma_at for e in elements] == [None, *(e.value_end for e in elements)][
        : len(elements)
    ]

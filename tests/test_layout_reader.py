"""The `layout` reader must give exactly what the `general` reader gives, or step aside for it.

Both run through the same passes (`pass1`, `pass2`) in this process; a split over two cores is
played here too, the worker's part run in this process and spliced in as the worker's is.
"""

import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import NOW, ROOT, service_bytes, small_state
from passes import POLICY, fast_path, general, merged_as_sent, split_points
from streamclean import cleanup
from streamclean.readers import LayoutMismatch, layout


def assert_same(data: bytes, policy=POLICY):
    expected = general(data, policy)
    for split in [None, *split_points(data)]:
        actual = fast_path(data, policy, split)
        assert actual[0] == expected[0], f"split={split}"
        assert (actual[1].terminal_count, actual[1].active_count) == (
            expected[1].terminal_count,
            expected[1].active_count,
        )
        assert actual[2:] == expected[2:], f"split={split}"
    return actual


def test_small_store_same_on_both_paths():
    _new, _, results, events = assert_same(service_bytes(small_state()))
    assert results.delete_count == 1 and events.delete_count == 2


@pytest.mark.parametrize("block", [1, 7, 64, 4096])
def test_window_refills_do_not_change_the_result(monkeypatch, block):
    monkeypatch.setattr(layout, "BLOCK_SIZE", block)
    assert_same(service_bytes(small_state()))


def _generate(tmp_path, size):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "generate_store", ROOT / "scripts" / "generate_store.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = tmp_path / "generated.json"
    module.generate_store(path, size, seed=7, now=NOW, workers=1)
    return path.read_bytes()


def test_generated_store_same_on_both_paths(tmp_path, monkeypatch):
    data = _generate(tmp_path, 1_500_000)
    new, _, results, events = assert_same(data)
    assert results.delete_count > 0 and events.delete_count > 0
    monkeypatch.setattr(layout, "BLOCK_SIZE", 1000)  # records straddle every block edge
    assert fast_path(data)[0] == new


MIXED = {
    "events": {
        "a": [
            {"occurred_at": t}
            for t in ["2026-01-01", "2026-03-10", "2026-01-02", "x", "2026-03-10"]
        ],
        "b": [{"occurred_at": "2026-01-01"}, {"occurred_at": "2026-01-01"}],
        "c": [],
        "d": [1, "two", None, {"occurred_at": "2026-01-01"}],
        "e": "not an array",
        "f": [{"occurred_at": "2026-01-01"}],
    },
    "jobs": {k: {"status": "completed"} for k in "abcdef"},
    "notifications": {"n": [1, {"x": 2}]},
    "results": {"r": {"job_id": "a", "created_at": "2026-01-01"}, "s": "x", "t": {"job_id": "a"}},
    "schema_version": 5,
    "unknown": {"deep": {"er": [[[]]]}, "v": float("nan")},
    "zz": [1, 2],
}


@pytest.mark.parametrize("block", [3, 1 << 20])
@pytest.mark.parametrize("whole_array_limit", [8, 1 << 22])
def test_mixed_arrays_and_odd_rows_same_on_both_paths(monkeypatch, block, whole_array_limit):
    monkeypatch.setattr(layout, "BLOCK_SIZE", block)
    monkeypatch.setattr(
        layout, "WHOLE_ARRAY_LIMIT", whole_array_limit
    )  # huge arrays go element-wise
    new, *_ = assert_same(service_bytes(MIXED))
    assert json.loads(new)["events"]["a"] == [
        {"occurred_at": "2026-03-10"},
        {"occurred_at": "x"},
        {"occurred_at": "2026-03-10"},
    ]
    assert json.loads(new)["events"]["b"] == []


def test_values_orjson_misreads_are_read_exactly():
    """orjson reads integers beyond 64 bits as floats: a job_id like that must still match."""
    big = 2**70
    state = {
        "jobs": {str(big): {"status": "completed"}},
        "results": {"r": {"job_id": big, "created_at": "2026-01-01", "v": float("inf")}},
    }
    _, _, results, _ = assert_same(service_bytes(state))
    assert results.delete_count == 1


@pytest.mark.parametrize(
    "layout",
    [
        lambda s: json.dumps(s, separators=(",", ":")).encode(),
        lambda s: json.dumps(s, indent=4).encode(),
        lambda s: json.dumps(s, indent=2).encode() + b"\n",
        lambda s: service_bytes(s).replace(b'"j1": [\n      {', b'"j1": [{', 1),
        lambda s: service_bytes(s).replace(b'},\n    "r2"', b'} ,\n    "r2"', 1),
        lambda s: service_bytes(s).replace(b'\n  "jobs"', b'\n   "jobs"', 1),
    ],
)
def test_other_layouts_step_aside(layout):
    data = layout(small_state())
    for split in [None, *split_points(data)]:
        with pytest.raises(LayoutMismatch):
            fast_path(data, split=split)


def test_inside_a_record_any_valid_layout_is_copied_exactly():
    data = service_bytes(small_state()).replace(
        b'"status": "completed"\n', b'"status":"completed"  \n', 1
    )
    assert_same(data)


def test_unsorted_sections_in_the_service_layout_stay_on_the_fast_path():
    state = small_state()
    unsorted = {
        "zzz": 1,
        "results": state["results"],
        "jobs": state["jobs"],
        "events": state["events"],
    }
    new, _, results, events = assert_same(
        json.dumps(unsorted, indent=2, ensure_ascii=False).encode()
    )
    assert list(json.loads(new)) == ["zzz", "results", "jobs", "events"]
    assert (results.delete_count, events.delete_count) == (1, 2)


def test_a_whole_run_on_another_layout_still_cleans(tmp_path):
    path = tmp_path / "store.json"
    path.write_bytes(json.dumps(small_state(), separators=(",", ":")).encode())
    report = cleanup.clean(path, POLICY)
    assert report.delete_count == 3 and json.loads(path.read_bytes())["results"].keys() == {
        "r2",
        "r3",
    }


def test_service_stores_take_the_layout_reader(tmp_path):
    path = tmp_path / "store.json"
    path.write_bytes(service_bytes(small_state()))
    report = cleanup.clean(path, POLICY)
    assert report.delete_count == 3 and report.reader == "layout"


def test_duplicate_job_ids_last_one_wins_on_both_paths():
    data = service_bytes(small_state()).replace(
        b'  "jobs": {\n', b'  "jobs": {\n    "j2": {\n      "status": "completed"\n    },\n', 1
    )
    _, index, _results, _ = assert_same(data)
    assert index.terminal_count == 2 and index.active_count == 1  # the later "running" wins


records = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=True)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
stamps = st.sampled_from(
    ["2026-01-01T00:00:00+00:00", "2026-03-10T00:00:00Z", "2026-03-03T12:00:00", "bad", "", None, 5]
)
ids = st.sampled_from(["j1", "j2", "j3", "7"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    jobs=st.dictionaries(
        ids,
        st.fixed_dictionaries(
            {"status": st.sampled_from(["completed", "failed", "running", "Completed"])}
        )
        | records,
    ),
    events=st.dictionaries(
        ids,
        st.lists(st.fixed_dictionaries({"occurred_at": stamps, "p": records}) | records, max_size=4)
        | records,
    ),
    results=st.dictionaries(
        st.text(max_size=4),
        st.fixed_dictionaries({"job_id": ids | st.just(7), "created_at": stamps}) | records,
        max_size=5,
    ),
    block=st.sampled_from([5, 1 << 20]),
)
def test_both_paths_agree_on_generated_states(jobs, events, results, block):
    original = layout.BLOCK_SIZE
    layout.BLOCK_SIZE = block
    try:
        assert_same(
            service_bytes({"events": events, "jobs": jobs, "results": results, "schema_version": 5})
        )
    finally:
        layout.BLOCK_SIZE = original


uuids = st.integers(0, 2**128 - 1).map(
    lambda n: (
        "%08x-%04x-%04x-%04x-%012x"
        % (n >> 96, (n >> 80) & 0xFFFF, (n >> 64) & 0xFFFF, (n >> 48) & 0xFFFF, n & (2**48 - 1))
    )
)
job_ids = uuids | st.sampled_from(
    ["j1", "7", "", "ABCDEF01-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000001"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(job_ids, st.booleans()), max_size=40),
    st.booleans(),
    st.lists(job_ids, max_size=10),
)
def test_job_index_is_exact_in_any_order(entries, ascending, probes):
    """The compact index answers exactly as a dict with last-wins would."""
    from streamclean.index import JobIndex

    if ascending:
        entries = sorted(entries, key=lambda e: e[0])
    index, reference = JobIndex(), {}
    for job_id, terminal in entries:
        index.add(job_id, terminal)
        reference[job_id] = terminal
    for job_id in [e[0] for e in entries] + probes:
        assert (job_id in index) == reference.get(job_id, False)
    assert index.terminal_count == sum(reference.values())
    assert index.active_count == len(reference) - sum(reference.values())


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(job_ids, st.booleans()), max_size=40),
    st.integers(0, 40),
    st.booleans(),
    st.lists(job_ids, max_size=10),
    st.booleans(),
)
def test_an_index_built_in_two_halves_is_the_index_built_whole(
    entries, cut, ascending, probes, sent
):
    """Pass 1 on two processes: the second half's word wins, exactly as if added in one go,
    whether merged here or sent as the worker sends it."""
    from streamclean.index import JobIndex

    if ascending:
        entries = sorted(entries, key=lambda e: e[0])
    whole, first, second = JobIndex(), JobIndex(), JobIndex()
    for job_id, terminal in entries:
        whole.add(job_id, terminal)
    for job_id, terminal in entries[:cut]:
        first.add(job_id, terminal)
    for job_id, terminal in entries[cut:]:
        second.add(job_id, terminal)
    if sent:
        assert merged_as_sent(first, second) == b"", "update_from left part of what was sent"
    else:
        first.update(second)
    for job_id in [e[0] for e in entries] + probes:
        assert (job_id in first) == (job_id in whole)
    assert (first.terminal_count, first.active_count) == (whole.terminal_count, whole.active_count)


def test_an_index_cut_short_in_transit_is_refused():
    """A worker that dies halfway through its answer: never taken for a smaller index."""
    from streamclean.index import JobIndex

    part = JobIndex()
    for number in range(1000):
        part.add("%08x-0000-0000-0000-000000000000" % number, number % 2 == 0)
    pipe = io.BytesIO()
    part.send(pipe)
    sent = pipe.getvalue()
    for length in (0, 7, 8, 40, len(sent) // 2, len(sent) - 1):
        with pytest.raises(EOFError):
            JobIndex().update_from(io.BytesIO(sent[:length]))
    whole = JobIndex()
    whole.update_from(io.BytesIO(sent))
    assert (whole.terminal_count, whole.active_count) == (500, 500)


def test_a_key_with_invalid_utf8_sends_the_run_to_the_general_path(tmp_path):
    path = tmp_path / "store.json"
    path.write_bytes(service_bytes(small_state()).replace(b'"r2": {', b'"r\xff2": {', 1))
    with pytest.raises(LayoutMismatch):
        fast_path(path.read_bytes())
    from streamclean.errors import InvalidStoreError

    with pytest.raises(InvalidStoreError, match="invalid UTF-8 at byte"):
        cleanup.clean(path, POLICY)


@pytest.mark.parametrize(
    "change",
    [
        # a section before `jobs` repeated after it: each part alone has no duplicate
        lambda data: data.replace(
            b'\n  "schema_version"', b'\n  "events": {},\n  "schema_version"', 1
        ),
        lambda data: data + b"\n{}",
        lambda data: data[:-1] + b"  }",
    ],
)
def test_the_split_tail_is_judged_with_the_rest_of_the_store(change):
    data = change(service_bytes(small_state()))
    for split in [None, *split_points(data)]:
        with pytest.raises(LayoutMismatch):
            fast_path(data, split=split)


def test_a_tail_with_nothing_to_delete_is_copied_from_the_old_store():
    state = small_state()
    state["results"] = {"r2": state["results"]["r2"]}  # j2's: not terminal
    data = service_bytes(state)
    new, _, results, events = assert_same(data)
    assert results.delete_count == 0 and events.delete_count == 2
    assert new.endswith(data[data.index(b'\n  "notifications"') :])


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_workers_started_anywhere_give_the_same_bytes_or_step_aside(data):
    """Where the workers start comes from a guess at the layout; a wrong guess must never
    reach the output. Pass 2's worker starts near a real split point or anywhere; pass 1's
    at the middle job or anywhere, with the section's end found or made up."""
    store = service_bytes(MIXED if data.draw(st.booleans()) else small_state())
    expected = general(store)
    if data.draw(st.booleans()):  # near a real split point, where a wrong guess is likeliest
        offset, in_events = data.draw(st.sampled_from(split_points(store)))
        split = (
            offset + data.draw(st.integers(-6, 6)),
            data.draw(st.sampled_from([in_events, not in_events])),
        )
    else:
        split = (data.draw(st.integers(0, len(store))), data.draw(st.booleans()))
    real_middle_job = layout._middle_job
    if data.draw(st.booleans()):
        boundary = store.index(b'"jobs": ') + data.draw(st.integers(0, 300))
        made_up_end = data.draw(st.sampled_from([None, len(store) - 40]))

        def middle_job(stream, start):
            found = real_middle_job(stream, start)
            end = made_up_end or (found[1] if found else start + 2)
            return boundary, end

        layout._middle_job = middle_job
    try:
        actual = fast_path(store, split=split)
    except LayoutMismatch:
        return
    finally:
        layout._middle_job = real_middle_job
    assert actual[0] == expected[0] and actual[2:] == expected[2:]


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=120),
    st.sampled_from([b'\n  "', b"ab", b"a"]),
    st.integers(0, 130),
    st.sampled_from([1, 3, 8, 1 << 20]),
    st.none() | st.integers(0, 130),
)
def test_scan_finds_what_bytes_find_finds(data, pattern, start, block, limit):
    data = data.replace(b"\n", b'\n  "', 3)
    original, layout.SCAN_BLOCK = layout.SCAN_BLOCK, block  # patterns straddle every block edge
    try:
        expected = data.find(pattern, start) if limit is None else data.find(pattern, start, limit)
        assert layout.scan(io.BytesIO(data), start, pattern, limit) == expected
    finally:
        layout.SCAN_BLOCK = original


@pytest.mark.parametrize("block", [1, 5, 64])
def test_pass_1_scans_straddling_blocks_change_nothing(monkeypatch, block):
    monkeypatch.setattr(layout, "SCAN_BLOCK", block)
    assert_same(service_bytes(MIXED))


def _jobs_stores():
    """Stores in the service's layout whose sections mislead the bisection for the jobs line
    in every way they can: it must still find the line a scan from the start finds."""
    base = small_state()
    events = base["events"]
    huge = {"j1": [{"occurred_at": NOW.isoformat(), "payload": "x" * 300} for _ in range(40)]}
    yield "service", base
    yield "no events", {k: v for k, v in base.items() if k != "events"}
    yield "empty events", {**base, "events": {}}
    yield "no jobs", {k: v for k, v in base.items() if k != "jobs"}
    yield "events holding objects", {**base, "events": {key: {"a": 1} for key in events}}
    yield "results holding arrays", {**base, "results": {"r1": [1, 2], "r2": [3]}}
    yield "a huge events array", {**base, "events": {**events, **huge}}
    yield "jobs sorted first", {"aaa": {"x": [1]}, **base}


@pytest.mark.parametrize(
    "name, state", list(_jobs_stores()), ids=[name for name, _ in _jobs_stores()]
)
@pytest.mark.parametrize("block, probe", [(64, 64), (256, 1 << 18), (1 << 22, 1 << 18)])
def test_the_jobs_line_is_found_where_a_scan_finds_it(monkeypatch, name, state, block, probe):
    """The bisection (`layout._jobs_line`) ends in the line a scan from the start finds,
    with blocks and probes small enough to make it bisect these small stores."""
    data = service_bytes(state)
    monkeypatch.setattr(layout, "SCAN_BLOCK", block)
    monkeypatch.setattr(layout, "_PROBE", probe)
    assert layout._jobs_line(io.BytesIO(data)) == data.find(b'\n  "jobs": ')
    if "jobs" in state:  # (split points are taken at the jobs section)
        assert_same(data)

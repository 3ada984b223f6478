"""The judge: the retention rule written once. Its batch form for a job's whole events array
must give exactly the plain form's verdicts and counts, whatever the events hold."""

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from streamclean.index import JobIndex
from streamclean.judge import Judge
from streamclean.policy import RetentionPolicy

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=3)

moments = st.datetimes(min_value=datetime(2026, 3, 1), max_value=datetime(2026, 3, 12))
timestamps = st.one_of(
    moments.map(lambda m: m.replace(tzinfo=UTC).isoformat()),  # the service's own form
    moments.map(lambda m: m.replace(tzinfo=timezone(timedelta(hours=5))).isoformat()),
    moments.map(lambda m: m.isoformat()),  # naive: read as UTC
    moments.map(lambda m: m.strftime("%Y-%m-%dT%H:%M:%SZ")),
    st.just(CUTOFF.isoformat()),  # the cutoff itself goes (<=)
    st.sampled_from(
        ["", "  ", "yesterday", " 2026-03-01T00:00:00+00:00 ", "2026-03-01T00:00:00+00:00Z"]
    ),
    st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.booleans()),
)
events = st.one_of(
    st.fixed_dictionaries({"occurred_at": timestamps}),
    st.fixed_dictionaries({"event_id": st.text(max_size=3)}),  # no timestamp at all
    st.one_of(st.integers(), st.text(max_size=3), st.none(), st.lists(st.integers(), max_size=2)),
)


def _tallies(judge: Judge) -> tuple:
    t = judge.events
    return t.total, t.eligible_terminal, t.delete_count, t.skipped_missing_timestamp


@given(st.lists(events, max_size=12), st.booleans(), st.booleans())
def test_the_batch_form_judges_as_the_plain_form(records, terminal, enabled):
    policy = RetentionPolicy.build(NOW, 604800.0, 259200.0 if enabled else None)
    batch, plain = Judge(policy), Judge(policy)
    verdicts = batch.event_batch(records, terminal)
    one_by_one = [plain.event(record, terminal) for record in records]
    assert (verdicts or [False] * len(records)) == one_by_one
    assert verdicts is None or any(verdicts)  # None exactly when nothing goes
    assert _tallies(batch) == _tallies(plain)


def test_the_usual_arrays_take_the_bulk_path_and_keep_its_edges():
    judge = Judge(RetentionPolicy.build(NOW, 604800.0, 259200.0))
    old = {"occurred_at": (CUTOFF - timedelta(seconds=1)).isoformat()}
    at_cutoff = {"occurred_at": CUTOFF.isoformat()}
    new = {"occurred_at": (CUTOFF + timedelta(microseconds=1)).isoformat()}
    assert judge.event_batch([old, at_cutoff], True) == [True, True]
    assert judge.event_batch([new, new], True) is None
    assert judge.event_batch([old, new, at_cutoff], True) == [True, False, True]
    assert judge.event_batch([old], False) is None  # not a terminal job: counted, never judged
    assert _tallies(judge) == (8, 7, 4, 0)


def test_a_result_belongs_to_its_job_by_the_index():
    judge = Judge(RetentionPolicy.build(NOW, 604800.0, 259200.0))
    index = JobIndex()
    index.add("j1", True)
    index.add("j2", False)
    old = "2026-03-01T00:00:00+00:00"
    assert judge.result({"job_id": "j1", "created_at": old}, index)
    assert not judge.result({"job_id": "j2", "created_at": old}, index)
    assert not judge.result({"job_id": "j1"}, index)  # no timestamp: kept and counted as skipped
    assert not judge.result(["not", "a", "result"], index)  # not counted at all
    results = judge.results
    assert (
        results.total,
        results.eligible_terminal,
        results.delete_count,
        results.skipped_missing_timestamp,
    ) == (
        3,
        2,
        1,
        1,
    )

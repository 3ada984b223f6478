import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamclean.errors import UsageError
from streamclean.policy import (
    RetentionPolicy,
    is_terminal,
    parse_duration,
    parse_now,
    parse_timestamp,
    parse_timestamps,
)

UTC = UTC


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("604800", 604800.0),
        ("0.5", 0.5),
        ("0", 0.0),
        ("7d", 604800.0),
        ("7D", 604800.0),
        ("24h", 86400.0),
        ("15m", 900.0),
        ("30s", 30.0),
        ("1.5h", 5400.0),
        (" 3d ", 259200.0),
        ("1e3", 1000.0),
        ("-0", 0.0),
    ],
)
def test_parse_duration_accepts(text, seconds):
    value = parse_duration(text)
    assert value == seconds and math.copysign(1, value) == 1


@pytest.mark.parametrize(
    "text, problem",
    [
        ("-1", "is negative"),
        ("-7d", "is negative"),
        ("1e400", "is not a finite duration"),
        ("inf", "is not a duration"),
        ("nan", "is not a duration"),
        ("7w", "is not a duration"),
        ("", "is not a duration"),
        ("1_000", "is not a duration"),
        ("d", "is not a duration"),
    ],
)
def test_parse_duration_refuses(text, problem):
    with pytest.raises(UsageError, match=problem) as caught:
        parse_duration(text, "--events-ttl-seconds")
    assert str(caught.value).startswith("--events-ttl-seconds: ")


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-03-01T12:00:00+00:00", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("2026-03-01T12:00:00Z", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("2026-03-01T12:00:00", datetime(2026, 3, 1, 12, tzinfo=UTC)),  # naive is UTC
        ("2026-03-01T14:00:00+02:00", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("20260301T120000", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("  2026-03-01T12:00:00.123456+00:00 ", datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_parse_timestamp_forms(value, expected):
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize(
    "value", [None, "", "   ", 0, False, "yesterday", 1700000000, True, [], {}, "2026-13-01"]
)
def test_parse_timestamp_missing(value):
    assert parse_timestamp(value) is None


def test_terminal_rule_is_exact():
    assert is_terminal({"status": "completed"}) and is_terminal({"status": "canceled"})
    assert is_terminal({"status": "failed"})
    for status in ["Completed", "FAILED", "cancelled", "running", "partial", "queued", None]:
        assert not is_terminal({"status": status})
    assert not is_terminal("completed") and not is_terminal(["completed"])


def test_cutoff_boundary_is_inclusive():
    now = datetime(2026, 3, 10, tzinfo=UTC)
    policy = RetentionPolicy.build(now, results_ttl=60, events_ttl=None)
    cutoff = now - timedelta(seconds=60)
    assert policy.results.cutoff == cutoff
    assert policy.results.is_expired(cutoff)
    assert not policy.results.is_expired(cutoff + timedelta(microseconds=1))
    assert not policy.events.enabled and not policy.events.is_expired(
        datetime(1970, 1, 1, tzinfo=UTC)
    )


def test_ttl_reaching_before_year_one_is_refused():
    with pytest.raises(UsageError, match="before the year 1"):
        RetentionPolicy.build(datetime(2026, 1, 1, tzinfo=UTC), results_ttl=1e12, events_ttl=0)


def test_parse_now_naive_is_utc_and_bad_is_refused():
    assert parse_now("2026-03-10T12:00:00") == datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert parse_now("2026-03-10T13:00:00+01:00") == datetime(2026, 3, 10, 12, tzinfo=UTC)
    with pytest.raises(UsageError, match="--now"):
        parse_now("tomorrow")


_STAMPS = st.one_of(
    st.none(),
    st.integers(0, 30000000),
    st.sampled_from(
        [
            "2026-03-07T12:00:00+00:00",
            "2026-03-07T12:00:00.000001+02:00",
            "2026-03-01T00:00:00",
            "2026-03-09T00:00:00Z",
            " 2026-03-01T00:00:00Z ",
            "20260301",
            "yesterday",
            "",
        ]
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_STAMPS, max_size=8))
def test_parse_timestamps_is_parse_timestamp_of_each(values):
    """In one go or one by one, naive, zoned, mixed or broken: each value read as the service
    reads it, a naive time as UTC."""
    got = parse_timestamps(values)
    want = [parse_timestamp(value) for value in values]
    assert got == want
    assert [None if moment is None else moment.utcoffset() for moment in got] == [
        None if moment is None else moment.utcoffset() for moment in want
    ]

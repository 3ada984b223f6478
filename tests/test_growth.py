"""`inspect`'s growth, held to figures measured without it: by cleaning copies of generated
stores with `clean`, at shifted `--now` values, and measuring the files.

The stores have a known arrival rate: 90 days of uniform arrivals (the generator's
`--uniform-days`), every job ending, or a tenth of them running for ever. The figures:

- what arrived within a window: clean everything terminal at its start and at its end (every
  TTL 0, jobs too); the difference is what is dated within it. Without the jobs TTL, the same
  difference is the results and events alone: the rest is what stays without job retention;
- where the store levels off: a store older than its longest TTL is already there, so it is the
  size of a copy cleaned now;
- what stays for ever: what a copy cleaned ten years on still holds, over a window that spans
  the whole history.
"""

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import service_bytes, small_state
from streamclean.growth import (
    BY_EVENTS,
    BY_JOBS,
    BY_RESULTS,
    NEVER_ENDING_JOBS,
    NO_JOB_RETENTION,
    NO_TIMESTAMP,
    Fate,
    GrowthTally,
    TTLs,
    project,
)
from streamclean.inspect import inspect_store
from streamclean.policy import RetentionPolicy
from test_generate_store import gen as GEN

NOW = datetime(2026, 11, 28, tzinfo=UTC)
DAY = 86400.0
HISTORY_DAYS = 90
ALL_ZERO = ("--results-ttl-seconds", "0", "--events-ttl-seconds", "0", "--jobs-ttl-seconds", "0")
RECORDS_ZERO = ("--results-ttl-seconds", "0", "--events-ttl-seconds", "0")
DEFAULTS = ("--results-ttl-seconds", "7d", "--events-ttl-seconds", "3d")
_copies = count()


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Two ~4 MB stores of 90 days of uniform arrivals: every job ends; a tenth run for ever."""
    folder = tmp_path_factory.mktemp("growth")
    made = {}
    for name, share, seed in (("ending", 0.0, 5), ("running", 0.1, 6)):
        path = folder / f"{name}.json"
        GEN.generate_store(
            path,
            4_000_000,
            seed=seed,
            now=NOW,
            workers=1,
            arrivals=GEN.Arrivals(HISTORY_DAYS, share),
        )
        made[name] = path
    return made


def _inspect(invoke, store, *args) -> dict:
    result = invoke("inspect", "--json", "--store-file", store, "--now", NOW.isoformat(), *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["growth"]


def _cleaned(invoke, store: Path, at: datetime, *ttls) -> int:
    """The size of a copy of `store` cleaned at `at` with `ttls`."""
    copy = store.parent / f"copy-{next(_copies)}.json"
    shutil.copyfile(store, copy)
    try:
        result = invoke("clean", "--store-file", copy, "--now", at.isoformat(), "--quiet", *ttls)
        assert result.exit_code == 0, result.stderr
        return copy.stat().st_size
    finally:
        copy.unlink()
        for leftover in store.parent.glob(f"{copy.name}*"):
            leftover.unlink()


def _skeleton_bytes(store: Path) -> int:
    """The store with every section emptied: the bytes no record holds."""
    state = json.loads(store.read_bytes())
    return len(
        service_bytes(
            {key: {} if isinstance(value, dict) else value for key, value in state.items()}
        )
    )


def _close(found: float, expected: float, within: float = 0.10) -> bool:
    return abs(found - expected) <= within * abs(expected)


def _arrived(invoke, store, days: float, *ttls) -> float:
    """Bytes a day of what `ttls` at 0 remove of the records dated within the last `days`."""
    start = NOW - timedelta(days=days)
    return (_cleaned(invoke, store, start, *ttls) - _cleaned(invoke, store, NOW, *ttls)) / days


# -- against clean ---------------------------------------------------------------------------------


def test_growth_and_what_stays_without_job_retention(stores, invoke, handlers_restored):
    store = stores["ending"]
    growth = _inspect(invoke, store)
    everything = _arrived(invoke, store, 14, *ALL_ZERO)
    records = _arrived(invoke, store, 14, *RECORDS_ZERO)  # results and events: jobs stay
    assert growth["window_days"] == 14
    assert _close(growth["bytes_per_day"], everything), (growth, everything)
    assert _close(growth["kept_bytes_per_day"], everything - records), (
        growth,
        everything - records,
    )
    assert growth["levels_off_bytes"] is None
    assert growth["kept_by_reason"].keys() == {NO_JOB_RETENTION}
    sections = growth["sections"]
    assert sections["jobs"]["kept_bytes_per_day"] == sections["jobs"]["bytes_per_day"] > 0
    assert (
        sections["results"]["kept_bytes_per_day"] == 0
        and sections["results"]["levels_off_bytes"] is not None
    )
    assert sum(section["bytes_per_day"] for section in sections.values()) == pytest.approx(
        growth["bytes_per_day"], abs=5
    )
    # The suggestion: with a jobs TTL of 30 days it levels off where a copy cleaned so does.
    suggestion = growth["suggestion"]
    assert suggestion["option"] == "--jobs-ttl-seconds" and suggestion["ttl_seconds"] == 30 * DAY
    level = _cleaned(invoke, store, NOW, *DEFAULTS, "--jobs-ttl-seconds", "30d")
    assert _close(suggestion["levels_off_bytes"], level), (suggestion, level)


@pytest.mark.parametrize(
    "ttls",
    [
        ("--jobs-ttl-seconds", "30d"),
        ("--jobs-ttl-seconds", "10d"),
        ("--jobs-ttl-seconds", "20d", "--disable-results-retention"),
        ("--results-ttl-seconds", "2d", "--events-ttl-seconds", "12h", "--jobs-ttl-seconds", "45d"),
    ],
)
def test_with_job_retention_it_levels_off_where_a_cleaned_copy_is(
    stores, invoke, handlers_restored, ttls
):
    store = stores["ending"]
    growth = _inspect(invoke, store, *ttls)
    level = _cleaned(invoke, store, NOW, *ttls)  # 90 days of history: past every TTL already
    assert growth["kept_bytes_per_day"] == 0 and growth["kept_by_reason"] == {}
    assert growth["levels_off_bytes"] is not None and _close(growth["levels_off_bytes"], level), (
        growth,
        level,
    )
    assert _close(growth["bytes_per_day"], _arrived(invoke, store, 14, *ALL_ZERO))
    assert growth["suggestion"] is None


@pytest.mark.parametrize("jobs_ttl", [(), ("--jobs-ttl-seconds", "30d")])
def test_with_a_tenth_of_jobs_running_for_ever(stores, invoke, handlers_restored, jobs_ttl):
    """Over a window of the whole history, what stays is what a copy cleaned ten years on holds."""
    store = stores["running"]
    skeleton = _skeleton_bytes(store)
    later = NOW + timedelta(days=3650)
    growth = _inspect(invoke, store, "--growth-window", f"{HISTORY_DAYS}d", *jobs_ttl)
    ended = (store.stat().st_size - _cleaned(invoke, store, NOW, *ALL_ZERO)) / HISTORY_DAYS
    never_ending = (_cleaned(invoke, store, later, *ALL_ZERO) - skeleton) / HISTORY_DAYS
    stays = (_cleaned(invoke, store, later, *DEFAULTS, *jobs_ttl) - skeleton) / HISTORY_DAYS
    assert never_ending > 0.05 * ended  # a tenth of the jobs, with their records
    assert _close(growth["bytes_per_day"], ended + never_ending), (growth, ended, never_ending)
    assert _close(growth["kept_bytes_per_day"], stays), (growth, stays)
    assert growth["levels_off_bytes"] is None
    if jobs_ttl:
        assert growth["kept_by_reason"].keys() == {NEVER_ENDING_JOBS}
        assert growth["suggestion"] is None
    else:
        assert growth["kept_by_reason"].keys() == {NEVER_ENDING_JOBS, NO_JOB_RETENTION}
        suggestion = growth["suggestion"]  # job retention would not be enough
        assert suggestion["levels_off_bytes"] is None and suggestion["kept_bytes_per_day"] > 0


def test_a_tenth_of_jobs_running_for_ever_shows_over_the_default_window(
    stores, invoke, handlers_restored
):
    growth = _inspect(invoke, stores["running"], "--jobs-ttl-seconds", "30d")
    assert growth["window_days"] == 14
    assert growth["levels_off_bytes"] is None
    assert (
        0.05 * growth["bytes_per_day"]
        < growth["kept_bytes_per_day"]
        < 0.2 * growth["bytes_per_day"]
    )


@pytest.mark.parametrize(
    ("store", "ttls", "levels_off"),
    [
        ("ending", ("--jobs-ttl-seconds", "30d"), True),
        (
            "ending",
            (
                "--jobs-ttl-seconds",
                "30d",
                "--disable-events-retention",
                "--disable-results-retention",
            ),
            True,
        ),
        ("ending", (), False),  # jobs are never removed
        ("ending", ("--disable-jobs-retention",), False),
        ("running", ("--jobs-ttl-seconds", "30d"), False),  # nor are those of jobs that never end
        ("running", ("--jobs-ttl-seconds", "1d", "--results-ttl-seconds", "1h"), False),
    ],
)
def test_levels_off_is_null_exactly_when_something_stays_for_ever(
    stores, invoke, store, ttls, levels_off
):
    growth = _inspect(invoke, stores[store], *ttls)
    assert (growth["levels_off_bytes"] is not None) is levels_off
    assert (growth["kept_bytes_per_day"] == 0) is levels_off
    for section in growth["sections"].values():
        assert (section["levels_off_bytes"] is None) is (section["kept_bytes_per_day"] > 0)


def test_both_readers_and_both_pipelines_agree(stores):
    policy = RetentionPolicy.build(NOW, 7 * DAY, 3 * DAY, 30 * DAY)
    figures = []
    for reader, workers in (("layout", 1), ("layout", 2), ("general", 1)):
        growth = inspect_store(stores["ending"], policy, reader=reader, workers=workers).growth
        figures.append((growth.bytes_per_day, growth.levels_off_bytes))
    for bytes_per_day, level in figures[1:]:
        assert bytes_per_day == pytest.approx(figures[0][0], rel=1e-3)
        assert level == pytest.approx(figures[0][1], rel=1e-3)


# -- the projection itself, on facts made by hand ----------------------------------------------------


def _tally(window_days: float = 10) -> GrowthTally:
    return GrowthTally(NOW, window_days * DAY)


def _ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def test_the_projection_by_hand():
    tally = _tally()
    for day in range(20):  # a 100-byte job a day, that ran an hour; a 50-byte result a day
        tally.add("jobs", _ago(day + 0.5), 100, Fate(BY_JOBS), offset=3600)
        tally.ran(3600)
        tally.add("results", _ago(day + 0.5), 50, Fate(BY_RESULTS | BY_JOBS))
    sections = {"jobs": 20 * 100 + 10, "results": 20 * 50 + 10}
    growth = project(tally, TTLs(2 * DAY, None, 5 * DAY), sections, sum(sections.values()) + 3)
    assert growth.bytes_per_day == pytest.approx(150)
    assert growth.kept_bytes_per_day == 0
    # jobs: 100 B a day for 5 days and an hour; results: 50 B a day for 2 days; and what no record holds.
    assert growth.levels_off_bytes == pytest.approx(100 * (5 + 1 / 24) + 50 * 2 + 20 + 3)
    without = project(tally, TTLs(2 * DAY, None, None), sections, sum(sections.values()) + 3)
    assert without.levels_off_bytes is None and without.kept_bytes_per_day == pytest.approx(100)
    assert without.kept_by_reason == {NO_JOB_RETENTION: pytest.approx(100)}
    assert without.suggestion.ttl_seconds == 30 * DAY
    assert without.suggestion.levels_off_bytes == pytest.approx(100 * (30 + 1 / 24) + 50 * 2 + 23)


def test_records_without_a_timestamp_arrive_as_the_jobs_do():
    tally = _tally()
    for day in range(40):  # a quarter of the jobs within the window
        tally.add("jobs", _ago(day + 0.5), 100, Fate(BY_JOBS))
    tally.add("events", None, 400, Fate(BY_JOBS))  # bare arrays of ended jobs: go with them
    tally.add("results", None, 80, Fate(0))  # no timestamp, and its job never finished: stays
    growth = project(
        tally, TTLs(None, None, 20 * DAY), {"jobs": 4000, "events": 400, "results": 80}, 4483
    )
    assert growth.sections["events"].bytes_per_day == pytest.approx(400 / 4 / 10)
    assert growth.sections["results"].kept_bytes_per_day == pytest.approx(80 / 4 / 10)
    assert growth.kept_by_reason == {NO_TIMESTAMP: pytest.approx(2)}
    # job retention is on already
    assert growth.levels_off_bytes is None and growth.suggestion is None


def test_a_job_still_going_counts_as_never_ending_once_older_than_jobs_take():
    tally = _tally()
    for day in range(10):
        tally.ran(3 * 3600)  # ended jobs took three hours
        tally.add("jobs", _ago(day + 0.5), 100, Fate(BY_JOBS), offset=3 * 3600)
    tally.add("jobs", NOW - timedelta(hours=2), 100, Fate(BY_JOBS, True))  # going: will end
    tally.add("events", NOW - timedelta(hours=2), 30, Fate(BY_EVENTS | BY_JOBS, True))
    ttls = TTLs(None, DAY, 10 * DAY)
    growth = project(tally, ttls, {"jobs": 1100, "events": 30}, 1130)
    assert growth.kept_bytes_per_day == 0 and growth.levels_off_bytes is not None
    # four days and still not ended: never will
    tally.add("jobs", _ago(4), 100, Fate(BY_JOBS, True))
    growth = project(tally, ttls, {"jobs": 1200, "events": 30}, 1230)
    assert growth.kept_bytes_per_day == pytest.approx(10) and growth.levels_off_bytes is None
    assert growth.kept_by_reason == {NEVER_ENDING_JOBS: pytest.approx(10)}


def test_worker_tallies_merge_to_the_whole():
    whole, first, second = _tally(), _tally(), _tally()
    facts = [("jobs", _ago(d), 10 + d, Fate(BY_JOBS, d % 3 == 0), d * 60.0) for d in range(30)]
    for number, fact in enumerate(facts):
        whole.add(*fact)
        whole.ran(fact[4])
        part = first if number % 2 else second
        part.add(*fact)
        part.ran(fact[4])
    first.merge(second)
    assert first.sums == whole.sums and first.run_hours == whole.run_hours


def test_the_survey_measures_each_record_s_bytes_and_timestamp(tmp_path):
    """On the small store, by hand: a record's bytes run from the comma before it to its end."""
    state = small_state()
    path = tmp_path / "store.v1.json"
    text = service_bytes(state).decode()
    path.write_text(text)
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    policy = RetentionPolicy.build(now, 7 * DAY, 3 * DAY, DAY)
    survey = inspect_store(path, policy, workers=1, growth_window=5 * DAY).survey

    def span(key: str) -> int:  # ",\n    "key": {...}"
        begin = text.index(f',\n    "{key}": {{')
        return len(text[begin : text.index("\n    }", begin) + 6].encode())

    dated = {
        section: sum(
            sums.window for (name, _), sums in survey.growth.sums.items() if name == section
        )
        for section in ("results", "events", "jobs")
    }
    assert dated["results"] == span("r3")  # r3 alone is of an ended job and dated within 5 days
    assert dated["jobs"] == 0  # the jobs have no queued_at
    assert survey.growth.record_bytes("notifications") == len(
        text[text.index('"n1"') : text.index('\n  },\n  "results')].encode()
    )
    assert survey.growth.record_bytes("results") + len('"results": {\n    ') + len(
        "\n  }"
    ) == survey.sections["results"].bytes - len(",\n  ")


# -- the command line and the metrics file -------------------------------------------------------------


def test_the_text_says_how_fast_it_grows_and_where_it_levels_off(stores, invoke):
    args = ["inspect", "--store-file", stores["ending"], "--now", NOW.isoformat()]
    text = invoke(*args).stdout
    block = text[text.index("growth over the last 14 d") :].split("\n\n")[0].splitlines()
    assert (
        block[1].startswith("  grows ")
        and "a day of it stays for ever: jobs are never removed" in block[1]
    )
    assert block[2].startswith("  with --jobs-ttl-seconds 30d it would level off at about ")
    assert text.index("growth over") < text.index("jobs by status")
    text = invoke(*args, "--jobs-ttl-seconds", "30d", "--growth-window", "30d").stdout
    assert (
        "growth over the last 30 d" in text
        and "none of it for ever: under these TTLs it levels off at about" in text
    )


@pytest.mark.parametrize("window", ["0", "-1d", "soon"])
def test_a_growth_window_that_is_no_duration_is_a_usage_error(store, invoke, window):
    result = invoke("inspect", "--store-file", store, "--growth-window", window)
    assert result.exit_code == 2 and result.stderr.startswith("streamclean: error: --growth-window")


def _families(text: str) -> dict:
    parser = pytest.importorskip("prometheus_client.parser", reason="pip install '.[test]'")
    return {family.name: family for family in parser.text_string_to_metric_families(text)}


def test_the_metrics_file_parses_with_prometheus_client_and_says_what_the_json_says(
    stores, invoke, tmp_path
):
    target = tmp_path / "store.prom"
    args = (
        "--store-file",
        stores["running"],
        "--now",
        NOW.isoformat(),
        "--jobs-ttl-seconds",
        "30d",
    )
    document = json.loads(invoke("inspect", "--json", "--metrics-textfile", target, *args).stdout)
    families = _families(target.read_text())
    assert all(family.type == "gauge" and family.documentation for family in families.values())

    def value(name, **labels):
        [sample] = [s for s in families[name].samples if s.labels == labels]
        return sample.value

    growth = document["growth"]
    assert value("streamclean_store_size_bytes") == document["bytes_total"]
    for name, section in document["sections"].items():
        assert value("streamclean_store_section_bytes", section=name) == section["bytes"]
        assert value("streamclean_store_section_records", section=name) == section["count"]
    for name, section in growth["sections"].items():
        assert (
            value("streamclean_store_section_growth_bytes_per_day", section=name)
            == section["bytes_per_day"]
        )
        assert (
            value("streamclean_store_section_kept_bytes_per_day", section=name)
            == section["kept_bytes_per_day"]
        )
    assert value("streamclean_store_growth_bytes_per_day") == growth["bytes_per_day"]
    assert value("streamclean_store_kept_bytes_per_day") == growth["kept_bytes_per_day"] > 0
    assert value("streamclean_store_growth_window_seconds") == 14 * 86400
    assert value("streamclean_store_inspected_timestamp_seconds") == NOW.timestamp()
    # it never does: no sample rather than a guess
    assert "streamclean_store_levels_off" not in families
    invoke("inspect", "--metrics-textfile", target, *args[:-2], "--jobs-ttl-seconds", "30d")
    ending = (
        "--store-file",
        stores["ending"],
        "--now",
        NOW.isoformat(),
        "--jobs-ttl-seconds",
        "30d",
    )
    document = json.loads(invoke("inspect", "--json", "--metrics-textfile", target, *ending).stdout)
    families = _families(target.read_text())
    assert value("streamclean_store_levels_off_bytes") == document["growth"]["levels_off_bytes"]
    assert value("streamclean_store_kept_bytes_per_day") == 0
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.prom"]  # no temporary file left


def test_section_labels_are_escaped(tmp_path, invoke):
    state = small_state()
    state['odd "key" \\ with\nnewline'] = 1
    path = tmp_path / "store.v1.json"
    path.write_bytes(service_bytes(state))
    target = tmp_path / "store.prom"
    assert invoke("inspect", "--store-file", path, "--metrics-textfile", target).exit_code == 0
    samples = _families(target.read_text())["streamclean_store_section_bytes"].samples
    assert {sample.labels["section"] for sample in samples} >= {
        'odd "key" \\ with\nnewline',
        "jobs",
    }


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_the_metrics_file_passes_promtool(stores, invoke, tmp_path):
    target = tmp_path / "store.prom"
    invoke(
        "inspect",
        "--store-file",
        stores["ending"],
        "--now",
        NOW.isoformat(),
        "--metrics-textfile",
        target,
    )
    checked = subprocess.run(
        ["promtool", "check", "metrics"],
        input=target.read_text(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("where", ["missing folder", "the store"])
def test_an_unwritable_metrics_file_is_refused_before_the_store_is_read(
    store, invoke, tmp_path, where
):
    target = tmp_path / "nowhere" / "store.prom" if where == "missing folder" else store
    before = store.read_bytes()
    missing_store = tmp_path / "no-such-store.json"
    result = invoke(
        "inspect",
        "--store-file",
        store if where == "the store" else missing_store,
        "--metrics-textfile",
        target,
    )
    assert result.exit_code == 1
    if where == "the store":
        assert result.stderr.startswith(
            f"streamclean: error: --metrics-textfile {store} is the store itself"
        )
    else:
        assert result.stderr.startswith(f"streamclean: error: cannot write the metrics to {target}")
    assert len(result.stderr.splitlines()) == 1 and result.stdout == ""
    assert store.read_bytes() == before


def test_the_metrics_file_is_no_more_open_than_the_store(store, invoke, tmp_path):
    store.chmod(0o600)
    target = tmp_path / "store.prom"
    assert invoke("inspect", "--store-file", store, "--metrics-textfile", target).exit_code == 0
    assert target.stat().st_mode & 0o777 == 0o600


def test_an_events_array_with_an_event_without_a_timestamp_is_measured_whole(tmp_path):
    state = small_state()
    state["events"]["j1"].append({"event_id": "e9", "job_id": "j1"})  # no occurred_at
    path = tmp_path / "store.v1.json"
    path.write_bytes(service_bytes(state))
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    survey = inspect_store(
        path, RetentionPolicy.build(now, 7 * DAY, 3 * DAY), workers=1, reader="layout"
    ).survey
    events = survey.growth.record_bytes("events")
    assert (
        events + len('\n  "events": {') + len("\n    ") + len("\n  }")
        == survey.sections["events"].bytes
    )
    undated = sum(
        sums.undated for (name, _), sums in survey.growth.sums.items() if name == "events"
    )
    assert undated > 0  # the event without a timestamp, and the bare arrays of the ended jobs


def test_the_tally_stays_small_whatever_the_timestamps():
    """Ages and run times are kept by the hour, up to ten years: a store of wild timestamps
    cannot make the tally grow with its records."""
    tally = _tally()
    for year in range(1, 9999, 7):
        moment = datetime(year, 1, 1, tzinfo=UTC)
        tally.add("jobs", moment, 10, Fate(BY_JOBS, True))
        tally.ran((NOW - moment).total_seconds())
    # 1,428 records, of which two lie within ten years of now (and one in the future)
    assert len(tally.run_hours) <= 4 and all(
        len(sums.by_age_hours) <= 4 for sums in tally.sums.values()
    )


_moments = st.none() | st.datetimes(
    min_value=datetime(2010, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)
_fates = st.sampled_from(
    [Fate(0), Fate(BY_JOBS), Fate(BY_JOBS, True), Fate(BY_RESULTS | BY_JOBS, True), Fate(BY_EVENTS)]
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(_moments, st.integers(0, 10**6), _fates, st.floats(0, 10**7)), max_size=40),
    st.booleans(),
)
def test_a_block_at_a_time_tallies_what_a_record_at_a_time_does(records, with_offsets):
    """`add_many` (and `add_pending` behind it), a fate at a time as the survey's blocks call
    it, against `add` one record at a time: the same sums, to the last bit of each float."""
    now = datetime(2026, 11, 28, tzinfo=UTC)
    one, many = GrowthTally(now, 14 * 86400.0), GrowthTally(now, 14 * 86400.0)
    for moment, nbytes, fate, offset in records:
        one.add("jobs", moment, nbytes, fate, offset if with_offsets else 0.0)
    for fate in dict.fromkeys(fate for _, _, fate, _ in records):
        mine = [record for record in records if record[2] == fate]
        many.add_many(
            "jobs",
            fate,
            [moment for moment, _, _, _ in mine],
            [nbytes for _, nbytes, _, _ in mine],
            [offset for *_, offset in mine] if with_offsets else None,
        )
    assert many.sums == one.sums


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-(10**9), 10**10), max_size=30))
def test_ran_many_counts_what_ran_counts(seconds):
    now = datetime(2026, 11, 28, tzinfo=UTC)
    one, many = GrowthTally(now, 86400.0), GrowthTally(now, 86400.0)
    for ran in seconds:
        one.ran(ran)
    many.ran_many(seconds)
    assert many.run_hours == one.run_hours

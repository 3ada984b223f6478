"""`streamclean inspect`: what is in a store, what a cleanup would free — read-only, streamed."""

import importlib.util
import json
import os
import tracemalloc
from datetime import datetime, timezone

import pytest

from conftest import NOW, NOW_ISO, ROOT, listing, service_bytes, small_state
from streamclean.errors import StoreChangedError
from streamclean.inspect import inspect_store
from streamclean.policy import RetentionPolicy

GENERATOR_NOW = datetime(2026, 11, 28, tzinfo=timezone.utc)
POLICY = RetentionPolicy.build(NOW, 604800.0, 259200.0)


def _generator():
    spec = importlib.util.spec_from_file_location("generate_store", ROOT / "scripts" / "generate_store.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated_store(tmp_path_factory):
    """A realistic ~5 MB store as the service writes it (in-process: no forked workers)."""
    path = tmp_path_factory.mktemp("generated") / "store.v1.json"
    _generator().generate_store(path, 5_000_000, seed=1, now=GENERATOR_NOW, workers=1)
    return path


def _json(invoke, *args, env=None):
    result = invoke("inspect", "--json", *args, env=env)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("ttls", [[], ["--results-ttl-seconds", "1d", "--events-ttl-seconds", "12h"],
                                  ["--disable-events-retention"]])
def test_counts_and_bytes_equal_those_of_clean_dry_run_on_a_generated_store(generated_store, invoke, ttls):
    args = ["--store-file", generated_store, "--now", GENERATOR_NOW.isoformat(), *ttls]
    inspection = _json(invoke, *args)
    dry_run = json.loads(invoke("clean", "--dry-run", *args).stdout)
    assert inspection["reclaimable"] == {
        "results": dry_run["results"]["delete_count"],
        "events": dry_run["events"]["delete_count"],
        "bytes": dry_run["store_bytes_before"] - dry_run["store_bytes_after"],
    }
    assert inspection["bytes_total"] == dry_run["store_bytes_before"] == generated_store.stat().st_size
    assert inspection["bytes_after_cleanup"] == dry_run["store_bytes_after"]
    assert (inspection["results"], inspection["events"]) == (dry_run["results"], dry_run["events"])
    assert inspection["reclaimable"]["results"] > 0 or "--disable-results-retention" in ttls


def test_sections_jobs_and_ages_add_up_on_a_generated_store(generated_store, invoke):
    inspection = _json(invoke, "--store-file", generated_store, "--now", GENERATOR_NOW.isoformat())
    sections = inspection["sections"]
    assert list(sections) == ["events", "jobs", "notifications", "results", "schema_version"]
    # Each section counts its key and the whitespace before it: only "{", "\n" and "}" are left.
    assert sum(section["bytes"] for section in sections.values()) == inspection["bytes_total"] - 3
    jobs = sum(inspection["jobs_by_status"].values())
    assert jobs == sections["jobs"]["count"] == inspection["terminal_job_count"] + inspection["active_job_count"]
    terminal = sum(inspection["jobs_by_status"].get(status, 0) for status in ("completed", "failed", "canceled"))
    assert terminal == inspection["terminal_job_count"]
    for kind in ("results", "events"):
        ages = inspection["age_days"][kind]
        assert sum(ages["per_day"].values()) + ages["future"] + ages["no_timestamp"] == inspection[kind]["total"]
        assert min(map(int, ages["per_day"])) >= 0 and max(map(int, ages["per_day"])) <= 31
    assert inspection["schema_version"] == 5


def test_small_store_in_detail(store, invoke):
    inspection = _json(invoke, "--store-file", store, "--now", NOW_ISO)
    assert inspection["jobs_by_status"] == {"running": 1, "completed": 1, "failed": 1}
    assert {name: section["count"] for name, section in inspection["sections"].items()} == {
        "events": 3, "jobs": 3, "notifications": 1, "results": 3, "schema_version": 1,
    }
    # r1 is 8 d 23:59:55 old, r3 23:59:55; e1, e3, e4 exactly 9 days, e2 one day.
    assert inspection["age_days"] == {
        "results": {"per_day": {"0": 1, "8": 2}, "future": 0, "no_timestamp": 0},
        "events": {"per_day": {"1": 1, "9": 3}, "future": 0, "no_timestamp": 0},
    }
    assert inspection["reclaimable"]["results"] == 1 and inspection["reclaimable"]["events"] == 2
    assert inspection["store_file"] == str(store) and inspection["now"] == NOW_ISO


def test_odd_records_are_counted_as_clean_counts_them(tmp_path, invoke):
    state = small_state()
    state["jobs"].update({"j4": "not a job", "j5": {"job_id": "j5"}, "j6": {"status": 7}, "j7": {"status": "paused"}})
    state["results"].update({
        "r4": "not a result",  # not counted, as in clean
        "r5": {"job_id": "j1", "created_at": "2026-03-11T12:00:00Z"},  # a day in the future
        "r6": {"job_id": "j1", "created_at": "yesterday"},
    })
    state["events"].update({"j4": {"not": "a list"}, "j5": ["not an object", {"occurred_at": None}]})
    path = tmp_path / "store.v1.json"
    path.write_bytes(service_bytes(state))
    inspection = _json(invoke, "--store-file", path, "--now", NOW_ISO)
    assert inspection["jobs_by_status"] == {
        "running": 1, "completed": 1, "failed": 1,
        "(no status)": 1, "(not an object)": 1, "(status not a string)": 1, "paused": 1,
    }
    assert inspection["age_days"]["results"] == {"per_day": {"0": 1, "8": 2}, "future": 1, "no_timestamp": 1}
    assert inspection["age_days"]["events"]["no_timestamp"] == 2
    assert inspection["results"]["total"] == 5 and inspection["events"]["total"] == 6


SMALL_STORE_TABLE = """\
store    {store}
size     1.2 kB (1,220 bytes), schema_version 5
now      2026-03-10T12:00:00+00:00

section               size    share      entries
events               543 B   44.5 %            3
jobs                 218 B   17.9 %            3
notifications         72 B    5.9 %            1
results              361 B   29.6 %            3
schema_version        23 B    1.9 %            1

growth over the last 14 d, from the records' own timestamps
  grows 60 B a day; 18 B a day of it stays for ever: records of jobs that never end
  no TTL removes that: the store never stops growing
  a day by section: events 36 B (10 B for ever), results 24 B (8 B for ever)

jobs by status (3; terminal 2, active 1)
  running              1   33.3 %
  completed            1   33.3 %
  failed               1   33.3 %

results by age in days before now (3; TTL 7 d: below the line, records of terminal jobs are deleted)
      0 d           1  ####################
      1 d           0
      2 d           0
      3 d           0
      4 d           0
      5 d           0
      6 d           0
  ------------------------------------------------------------- cutoff
      7 d           0
      8 d           2  ########################################

events by age in days before now (4; TTL 3 d: below the line, records of terminal jobs are deleted)
      0 d           0
      1 d           1  #############
      2 d           0
  ------------------------------------------------------------- cutoff
      3 d           0
      4 d           0
      5 d           0
      6 d           0
      7 d           0
      8 d           0
      9 d           3  ########################################

streamclean clean with these TTLs would delete (the counts of clean --dry-run)
  results            1 of           3   33.3 %  cutoff 2026-03-03T12:00:00+00:00
  events             2 of           4   50.0 %  cutoff 2026-03-07T12:00:00+00:00
  bytes          354 B of      1.2 kB   29.0 %  the store would shrink to 866 B
"""


def test_the_table_by_default(store, invoke):
    result = invoke("inspect", "--store-file", store, "--now", NOW_ISO)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == SMALL_STORE_TABLE.format(store=store)


def test_the_table_lumps_old_days_and_marks_disabled_retention(store, invoke):
    args = ["--store-file", store, "--now", "2026-06-01T00:00:00+00:00", "--disable-events-retention"]
    table = invoke("inspect", *args).stdout
    assert "     29 d           0\n   >=30 d           3  ####" in table
    assert "events by age in days before now (4; retention disabled)" in table
    assert "  events             0 of           4    0.0 %  retention disabled" in table


def test_inspect_writes_nothing_and_takes_no_lock(store, invoke):
    before, data, stamp = listing(store.parent), store.read_bytes(), store.stat().st_mtime_ns
    assert invoke("inspect", "--store-file", store).exit_code == 0
    assert listing(store.parent) == before and store.read_bytes() == data
    assert store.stat().st_mtime_ns == stamp


def test_environment_gives_the_store_and_ttls(store, invoke):
    env = {"ASYNC_JOBS_STORE_FILE": str(store), "ASYNC_JOB_RESULTS_RETENTION_SECONDS": "0"}
    inspection = _json(invoke, "--now", NOW_ISO, env=env)
    assert inspection["store_file"] == str(store) and inspection["ttl_seconds"]["results"] == 0.0
    assert inspection["reclaimable"]["results"] == 2


def test_an_empty_store_has_no_sections(tmp_path, invoke):
    path = tmp_path / "store.v1.json"
    path.write_bytes(b"")
    inspection = _json(invoke, "--store-file", path)
    assert (inspection["bytes_total"], inspection["sections"], inspection["reclaimable"]) == (
        0, {}, {"results": 0, "events": 0, "bytes": 0},
    )
    assert "(an empty store)" in invoke("inspect", "--store-file", path).stdout


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--store-file", "{missing}"], 1, "streamclean: error: store file not found: {missing}; check --store-file or ASYNC_JOBS_STORE_FILE\n"),
        (["--store-file", "{missing}", "--events-ttl-seconds", "-1"], 2, "streamclean: error: --events-ttl-seconds: '-1' is negative; a TTL counts back from now\n"),
    ],
)
def test_errors_are_one_line_with_the_exit_status_of_clean(tmp_path, invoke, args, code, message):
    missing = str(tmp_path / "nope.json")
    result = invoke("inspect", *[arg.format(missing=missing) for arg in args])
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", message.format(missing=missing))


def test_an_invalid_store_exits_1_naming_the_byte(store, invoke):
    store.write_bytes(b'{"jobs": {"j1": [}}')
    result = invoke("inspect", "--store-file", store)
    assert result.exit_code == 1 and result.stderr.startswith("streamclean: error: invalid store: ")
    assert " at byte " in result.stderr and result.stderr.count("\n") == 1


def test_a_store_replaced_during_the_inspection_is_reported_not_described(store):
    def service_writes(name, done, total):
        if name == "filter":
            temp = store.with_name(store.name + ".feedfacefeedfacefeedfacefeedface.tmp")
            temp.write_bytes(service_bytes({**small_state(), "schema_version": 6}))
            os.replace(temp, store)

    with pytest.raises(StoreChangedError, match="changed while it was inspected") as caught:
        inspect_store(store, POLICY, progress=service_writes)
    assert caught.value.exit_code == 75


def test_the_survey_is_gathered_on_the_dry_run_s_own_passes(store):
    """One read of the store: the passes of `clean --dry-run`, nothing after them."""
    passes = []
    inspect_store(store, POLICY, progress=lambda name, done, total: passes.append((name, total)))
    size = store.stat().st_size
    assert {name for name, _ in passes} == {"index", "filter"}
    assert {total for _, total in passes} == {size}


def test_the_survey_does_not_hold_the_store(generated_store, reader, monkeypatch):
    """Memory stays flat: the passes hold a read window and one job's records, never the store.
    (The layout reader's buffers are made small, so that they fit many times into this store.)"""
    from streamclean.readers import layout

    for name in ("BLOCK_SIZE", "SCAN_BLOCK", "WHOLE_ARRAY_LIMIT"):
        monkeypatch.setattr(layout, name, 1 << 16)
    tracemalloc.start()
    try:
        inspection = inspect_store(generated_store, POLICY, reader=reader, workers=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert inspection.survey.sections["events"].count > 500
    assert inspection.dry_run.reader == reader
    assert peak < generated_store.stat().st_size / 2


def test_unknown_option_exits_2(invoke):
    assert invoke("inspect", "--frobnicate").exit_code == 2


def test_a_job_s_events_surveyed_in_bulk_count_as_one_by_one():
    """The survey's bulk form for a whole events array gives the plain form's histogram."""
    from datetime import timedelta

    from streamclean.inspect import StoreSurvey

    at = GENERATOR_NOW
    arrays = [
        [{"occurred_at": (at - timedelta(days=d, seconds=1)).isoformat()} for d in (0, 1, 1, 9)],
        [{"occurred_at": (at + timedelta(hours=2)).isoformat()}, {"occurred_at": at.isoformat()}],
        [{"occurred_at": "2026-03-01T00:00:00"}, {"occurred_at": "nonsense"}, 5, {}],  # one by one
    ]
    bulk, plain = StoreSurvey(at), StoreSurvey(at)
    for events in arrays:
        bulk.events(events)
        for event in events:
            plain.event(event)
    assert bulk.event_ages == plain.event_ages
    assert bulk.event_ages.future == 1 and bulk.event_ages.per_day[1] == 2

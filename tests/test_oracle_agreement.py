"""Hold the real CLI (`streamclean clean`) to the independent oracle in tests/oracle.py.

Property tests run the CLI in-process on hypothesis-generated stores in three
serialisations (service format, ASCII-escaped, compact one-line) and compare the
rewritten store and the report with the oracle; check that nothing-to-delete runs
and second runs leave the file untouched, and that --dry-run writes nothing.  Example
tests pin the SPEC's tiny store, the `<=` boundary, TTL 0, disabled kinds,
empty/missing sections, every timestamp form, job_id coercion and duplicate job keys.

Only the SPEC-listed report keys are compared; SPEC §3 allows more keys beside them.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
import traceback
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from oracle import clean_state, dump_like_service
from strategies import (
    INVALID_STAMPS,
    JOB_ID_VALUES,
    JOB_KEYS,
    NON_STRING_STAMPS,
    NOW,
    NOW_ISO,
    ODD_VALID_STAMPS,
    Scenario,
    Ttl,
    renderings,
    scenarios,
)
from streamclean.cli import main

# pyproject turns warnings into errors; hypothesis's failure-patch writer imports libcst,
# whose mypy_extensions import warns, which would turn a plain test failure into an
# INTERNALERROR that hides the falsifying example.
pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)

STORE_NAME = "store.v1.json"
# Options must not depend on whatever the test process's environment holds.
CLEAN_ENV = {
    "ASYNC_JOBS_STORE_FILE": None,
    "ASYNC_JOB_RESULTS_RETENTION_SECONDS": None,
    "ASYNC_JOB_EVENTS_RETENTION_SECONDS": None,
}

PROPERTY = dict(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SERIALISERS = {
    "ascii": lambda s: json.dumps(s, ensure_ascii=True, sort_keys=True, indent=2),
    "compact": lambda s: json.dumps(s, sort_keys=True),
    "compact_tight": lambda s: json.dumps(s, sort_keys=True, separators=(",", ":")),
}


# --------------------------------------------------------------------------- helpers


def cli_args(path, results: Ttl, events: Ttl, now_arg: str, dry_run=False):
    args = ["clean", "--store-file", str(path), "--now", now_arg]
    for kind, ttl in (("results", results), ("events", events)):
        if ttl.arg is None:
            args.append(f"--disable-{kind}-retention")
        else:
            args += [f"--{kind}-ttl-seconds", ttl.arg]
    if dry_run:
        args.append("--dry-run")
    return args


def run_cli(args, env=None):
    result = CliRunner().invoke(main, args, env=CLEAN_ENV if env is None else env)
    tb = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
    assert result.exit_code == 0, (
        f"exit {result.exit_code} for {args}\n"
        f"stdout={result.stdout!r}\nstderr={result.stderr!r}\n{tb}"
    )
    return json.loads(result.stdout)


def expected_report(oracle_report, path, dry_run):
    return dict(oracle_report, runner="streamclean", dry_run=dry_run, store_file=str(path))


def assert_report(actual, oracle_report, *, path, dry_run):
    """Every SPEC §3 key must be present with the oracle's value.

    SPEC §3 allows further keys beside the listed ones, so only those are compared.
    """
    want = expected_report(oracle_report, path, dry_run)
    got = {key: actual.get(key, "<absent>") for key in want}
    for kind in ("results", "events", "ttl_seconds"):
        if isinstance(got[kind], dict):
            got[kind] = {key: got[kind].get(key, "<absent>") for key in want[kind]}
    assert got == want


def fingerprint(path):
    st_ = os.stat(path)
    return st_.st_ino, st_.st_mtime_ns, path.read_bytes()


def leftovers(folder, before):
    """New files left in the store's folder, other than a lock file (SPEC §5: lock beside
    the store); a finished run must not leave its temporary file behind."""
    return [name for name in set(os.listdir(folder)) - set(before) if "lock" not in name]


def deleted(report):
    return report["results"]["delete_count"] + report["events"]["delete_count"]


def oracle_for(text_or_bytes, sc: Scenario):
    return clean_state(
        json.loads(text_or_bytes),
        results_ttl=sc.results.seconds,
        events_ttl=sc.events.seconds,
        now=sc.now,
    )


def semantic(value) -> str:
    """Order-sensitive canonical text; NaN compares equal to NaN."""
    return json.dumps(value)


def store_bytes(sc, fmt):
    if fmt == "service":
        return dump_like_service(sc.state)
    return SERIALISERS[fmt](sc.state).encode("utf-8")


def now_arg_for(sc, form):
    return sc.now.replace(tzinfo=None).isoformat() if form == "naive" else sc.now.isoformat()


# --------------------------------------------------------------------------- properties


@settings(max_examples=300, **PROPERTY)
@given(sc=scenarios(surrogates=False), now_form=st.sampled_from(["aware", "naive"]))
def test_service_format_store_matches_oracle_byte_for_byte(sc, now_form, reader):
    data = dump_like_service(sc.state)
    new_state, oracle_report = oracle_for(data, sc)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / STORE_NAME
        path.write_bytes(data)
        listing = os.listdir(folder)
        ino, mtime, _ = fingerprint(path)

        report = run_cli(
            cli_args(path, sc.results, sc.events, now_arg_for(sc, now_form)),
            env={**CLEAN_ENV, "STREAMCLEAN_READER": reader},
        )

        assert (
            report["reader"] == reader
        )  # the service's own layout: the layout reader did the work
        assert_report(report, oracle_report, path=path, dry_run=False)
        assert path.read_bytes() == dump_like_service(new_state)
        if deleted(oracle_report) == 0:
            assert fingerprint(path) == (ino, mtime, data), "store touched although nothing deleted"
        assert not leftovers(folder, listing)


@settings(max_examples=200, **PROPERTY)
@given(sc=scenarios(surrogates=True), fmt=st.sampled_from(sorted(SERIALISERS)))
def test_ascii_and_compact_stores_match_oracle(sc, fmt, reader):
    text = SERIALISERS[fmt](sc.state)
    new_state, oracle_report = oracle_for(text, sc)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / STORE_NAME
        path.write_bytes(text.encode("utf-8"))
        listing = os.listdir(folder)
        before = fingerprint(path)
        args = cli_args(path, sc.results, sc.events, sc.now.isoformat())
        env = {**CLEAN_ENV, "STREAMCLEAN_READER": reader}

        if reader == "layout":
            # Another layout: the layout reader either reads it exactly or refuses it whole.
            result = CliRunner().invoke(main, args, env=env)
            if result.exit_code == 1:
                assert (
                    "not in the service's layout" in result.stderr
                    and result.stderr.count("\n") == 1
                )
                assert fingerprint(path) == before and not leftovers(folder, listing)
                return
            assert result.exit_code == 0, result.stderr
            report = json.loads(result.stdout)
        else:
            report = run_cli(args, env=env)
        assert report["reader"] == reader

        assert_report(report, oracle_report, path=path, dry_run=False)
        out = path.read_bytes()
        assert semantic(json.loads(out)) == semantic(new_state)
        if deleted(oracle_report) == 0:
            assert fingerprint(path) == before, "store touched although nothing deleted"
        assert not leftovers(folder, listing)


@settings(max_examples=100, **PROPERTY)
@given(fmt=st.sampled_from(["service", "ascii", "compact"]), data=st.data())
def test_second_run_deletes_nothing_and_does_not_rewrite(fmt, data):
    # lone surrogates cannot be written as UTF-8, so only in the escaped formats
    sc = data.draw(scenarios(surrogates=fmt != "service"), label="scenario")
    blob = store_bytes(sc, fmt)
    new_state, _ = oracle_for(blob, sc)
    _, second_oracle = clean_state(
        new_state, results_ttl=sc.results.seconds, events_ttl=sc.events.seconds, now=sc.now
    )
    assert deleted(second_oracle) == 0  # oracle sanity: the rule is idempotent
    args_now = sc.now.isoformat()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / STORE_NAME
        path.write_bytes(blob)
        run_cli(cli_args(path, sc.results, sc.events, args_now))
        after_first = fingerprint(path)

        second = run_cli(cli_args(path, sc.results, sc.events, args_now))

        assert second["results"]["delete_count"] == 0
        assert second["events"]["delete_count"] == 0
        assert_report(second, second_oracle, path=path, dry_run=False)
        assert fingerprint(path) == after_first, "second run rewrote the store"


@settings(max_examples=100, **PROPERTY)
@given(fmt=st.sampled_from(["service", "ascii", "compact_tight"]), data=st.data())
def test_dry_run_reports_the_same_and_writes_nothing(fmt, data):
    sc = data.draw(scenarios(surrogates=fmt != "service"), label="scenario")
    blob = store_bytes(sc, fmt)
    _, oracle_report = oracle_for(blob, sc)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / STORE_NAME
        path.write_bytes(blob)
        listing = sorted(os.listdir(folder))
        before = fingerprint(path)

        dry = run_cli(cli_args(path, sc.results, sc.events, sc.now.isoformat(), dry_run=True))

        assert_report(dry, oracle_report, path=path, dry_run=True)
        assert fingerprint(path) == before, "dry run touched the store"
        assert sorted(os.listdir(folder)) == listing, "dry run created files"

        real = run_cli(cli_args(path, sc.results, sc.events, sc.now.isoformat()))
        assert_report(real, oracle_report, path=path, dry_run=False)


# --------------------------------------------------------------------------- examples

SPEC_STORE = """{
  "events": {
    "j1": [
      {
        "actor_type": "system",
        "event_id": "e1",
        "event_seq": 1,
        "event_type": "job.queued",
        "job_id": "j1",
        "occurred_at": "2026-03-01T12:00:00+00:00",
        "payload_json": {}
      }
    ]
  },
  "jobs": {
    "j1": {
      "job_id": "j1",
      "status": "completed"
    }
  },
  "notifications": {},
  "results": {
    "r1": {
      "created_at": "2026-03-01T12:00:05+00:00",
      "job_id": "j1",
      "result_id": "r1",
      "result_kind": "final"
    }
  },
  "schema_version": 5
}"""

SPEC_STORE_CLEANED = """{
  "events": {
    "j1": []
  },
  "jobs": {
    "j1": {
      "job_id": "j1",
      "status": "completed"
    }
  },
  "notifications": {},
  "results": {},
  "schema_version": 5
}"""


def make_store(folder, state_or_text):
    path = Path(folder) / STORE_NAME
    if isinstance(state_or_text, str):
        path.write_text(state_or_text, encoding="utf-8")
    else:
        path.write_bytes(dump_like_service(state_or_text))
    return path


def clean(path, results="7d", events="3d", now=NOW_ISO, extra=()):
    args = ["clean", "--store-file", str(path), "--now", now]
    args += (
        ["--disable-results-retention"] if results is None else ["--results-ttl-seconds", results]
    )
    args += ["--disable-events-retention"] if events is None else ["--events-ttl-seconds", events]
    return run_cli(args + list(extra))


def counts(total, eligible, delete, skipped, cutoff):
    return {
        "total": total,
        "eligible_terminal": eligible,
        "delete_count": delete,
        "kept_count": total - delete,
        "skipped_missing_timestamp": skipped,
        "cutoff": cutoff,
    }


def test_oracle_on_spec_store_deletes_both():
    new_state, report = clean_state(
        json.loads(SPEC_STORE), results_ttl=604800.0, events_ttl=259200.0, now=NOW
    )
    assert dump_like_service(new_state) == SPEC_STORE_CLEANED.encode()
    assert report["results"] == counts(1, 1, 1, 0, "2026-03-03T12:00:00+00:00")
    assert report["events"] == counts(1, 1, 1, 0, "2026-03-07T12:00:00+00:00")


def test_spec_tiny_store(tmp_path):
    path = make_store(tmp_path, SPEC_STORE)
    report = clean(path)
    assert path.read_text(encoding="utf-8") == SPEC_STORE_CLEANED
    assert report == {
        **report,
        **{
            "runner": "streamclean",
            "store_file": str(path),
            "now": "2026-03-10T12:00:00+00:00",
            "dry_run": False,
            "results_ttl_seconds": 604800.0,
            "events_ttl_seconds": 259200.0,
            "ttl_seconds": {"results": 604800.0, "events": 259200.0},
            "terminal_job_count": 1,
            "active_job_count": 0,
        },
    }
    assert {k: report["results"][k] for k in counts(0, 0, 0, 0, None)} == counts(
        1, 1, 1, 0, "2026-03-03T12:00:00+00:00"
    )
    assert {k: report["events"][k] for k in counts(0, 0, 0, 0, None)} == counts(
        1, 1, 1, 0, "2026-03-07T12:00:00+00:00"
    )


def test_default_ttls_are_reported_as_floats(tmp_path):
    path = make_store(tmp_path, SPEC_STORE)
    report = run_cli(["clean", "--store-file", str(path), "--now", NOW_ISO, "--dry-run"])
    assert report["results_ttl_seconds"] == 604800.0
    assert report["events_ttl_seconds"] == 259200.0
    assert isinstance(report["results_ttl_seconds"], float)
    assert isinstance(report["events_ttl_seconds"], float)
    assert report["ttl_seconds"] == {"results": 604800.0, "events": 259200.0}


@pytest.mark.parametrize("dur", ["604800", "604800.0", "7d", "7D", "168h", "10080m", "604800s"])
def test_duration_spellings_agree(tmp_path, dur):
    path = make_store(tmp_path, SPEC_STORE)
    report = clean(path, results=dur, events=None, extra=["--dry-run"])
    assert report["results_ttl_seconds"] == 604800.0
    assert report["results"]["cutoff"] == "2026-03-03T12:00:00+00:00"
    assert report["events_ttl_seconds"] is None and report["events"]["cutoff"] is None


def boundary_state(results_cutoff, events_cutoff):
    us = timedelta(microseconds=1)

    def stamps(cutoff):
        return {
            "before": (cutoff - us).isoformat(),
            "equal": cutoff.isoformat(),
            "after": (cutoff + us).isoformat(),
        }

    rs, es = stamps(results_cutoff), stamps(events_cutoff)
    return {
        "events": {
            "j1": [{"event_id": k, "job_id": "j1", "occurred_at": v} for k, v in es.items()]
        },
        "jobs": {"j1": {"job_id": "j1", "status": "failed"}},
        "results": {k: {"created_at": v, "job_id": "j1", "result_id": k} for k, v in rs.items()},
        "schema_version": 5,
    }


@pytest.mark.parametrize("now", [NOW, NOW.replace(microsecond=123456)])
def test_le_boundary_by_one_microsecond(tmp_path, now):
    state = boundary_state(now - timedelta(days=7), now - timedelta(days=3))
    path = make_store(tmp_path, state)
    report = clean(path, results="604800", events="259200", now=now.isoformat())
    out = json.loads(path.read_bytes())
    assert list(out["results"]) == ["after"]
    assert [e["event_id"] for e in out["events"]["j1"]] == ["after"]
    assert report["results"]["delete_count"] == 2 and report["events"]["delete_count"] == 2
    new_state, oracle_report = clean_state(state, results_ttl=604800, events_ttl=259200, now=now)
    assert path.read_bytes() == dump_like_service(new_state)
    assert_report(report, oracle_report, path=path, dry_run=False)


def test_ttl_zero_cutoff_is_now(tmp_path):
    state = boundary_state(NOW, NOW)
    path = make_store(tmp_path, state)
    report = clean(path, results="0", events="0")
    out = json.loads(path.read_bytes())
    assert list(out["results"]) == ["after"]
    assert [e["event_id"] for e in out["events"]["j1"]] == ["after"]
    assert report["results"]["cutoff"] == report["events"]["cutoff"] == NOW_ISO
    assert report["results_ttl_seconds"] == 0.0


def test_disabled_kinds_delete_nothing_but_count(tmp_path):
    state = boundary_state(NOW - timedelta(days=7), NOW - timedelta(days=3))
    state["results"]["nostamp"] = {"job_id": "j1", "result_id": "nostamp"}
    state["events"]["j1"].append(7)  # not an object: no timestamp
    path = make_store(tmp_path, state)
    before = fingerprint(path)
    report = clean(path, results=None, events=None)
    assert fingerprint(path) == before
    assert report["results_ttl_seconds"] is None and report["events_ttl_seconds"] is None
    assert report["ttl_seconds"] == {"results": None, "events": None}
    assert {k: report["results"][k] for k in counts(0, 0, 0, 0, None)} == counts(4, 4, 0, 0, None)
    assert {k: report["events"][k] for k in counts(0, 0, 0, 0, None)} == counts(4, 4, 0, 0, None)


def test_one_kind_disabled_other_enabled(tmp_path):
    state = boundary_state(NOW - timedelta(days=7), NOW - timedelta(days=3))
    state["results"]["nostamp"] = {"job_id": "j1", "result_id": "nostamp"}
    state["events"]["j1"].append(7)
    path = make_store(tmp_path, state)
    report = clean(path, results=None, events="3d")
    new_state, oracle_report = clean_state(state, results_ttl=None, events_ttl=259200, now=NOW)
    assert oracle_report["events"]["skipped_missing_timestamp"] == 1
    assert oracle_report["results"]["skipped_missing_timestamp"] == 0
    assert_report(report, oracle_report, path=path, dry_run=False)
    assert path.read_bytes() == dump_like_service(new_state)


@pytest.mark.parametrize(
    "state",
    [
        {"events": {}, "jobs": {}, "notifications": {}, "results": {}, "schema_version": 5},
        {"jobs": {"j1": {"job_id": "j1", "status": "completed"}}, "schema_version": 1},
        {"events": {"j1": [{"occurred_at": "2020-01-01T00:00:00+00:00"}]}, "schema_version": 1},
        {
            "jobs": {"j1": {"job_id": "j1", "status": "completed"}},
            "results": {"r1": {"job_id": "j1", "created_at": "2020-01-01T00:00:00+00:00"}},
        },
        {},
    ],
    ids=["empty-sections", "no-results-no-events", "no-jobs", "no-events", "empty-object"],
)
def test_empty_and_missing_sections(tmp_path, state):
    path = make_store(tmp_path, state)
    before = fingerprint(path)
    report = clean(path)
    new_state, oracle_report = clean_state(state, results_ttl=604800, events_ttl=259200, now=NOW)
    assert_report(report, oracle_report, path=path, dry_run=False)
    assert path.read_bytes() == dump_like_service(new_state)
    if deleted(oracle_report) == 0:
        assert fingerprint(path) == before


def test_naive_now_is_utc(tmp_path):
    path = make_store(tmp_path, SPEC_STORE)
    report = clean(path, now="2026-03-10T12:00:00", extra=["--dry-run"])
    assert report["now"] == "2026-03-10T12:00:00+00:00"
    assert report["results"]["cutoff"] == "2026-03-03T12:00:00+00:00"


def test_rewrite_keeps_permissions(tmp_path):
    path = make_store(tmp_path, SPEC_STORE)
    os.chmod(path, 0o640)
    clean(path)
    assert path.read_text(encoding="utf-8") == SPEC_STORE_CLEANED
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


@pytest.mark.parametrize(
    "first, last, terminal", [("completed", "running", False), ("running", "completed", True)]
)
def test_duplicate_job_key_last_occurrence_wins(tmp_path, first, last, terminal):
    text = (
        '{"jobs": {"j1": {"job_id": "j1", "status": "%s"}, '
        '"j1": {"job_id": "j1", "status": "%s"}}, '
        '"results": {"r1": {"created_at": "2020-01-01T00:00:00+00:00", "job_id": "j1"}}}'
        % (first, last)
    )
    path = make_store(tmp_path, text)
    report = clean(path)
    new_state, oracle_report = clean_state(
        json.loads(text), results_ttl=604800, events_ttl=259200, now=NOW
    )
    assert report["terminal_job_count"] == int(terminal)
    assert (
        report["results"]["eligible_terminal"] == report["results"]["delete_count"] == int(terminal)
    )
    assert report["results"] == {**report["results"], **oracle_report["results"]}
    assert semantic(json.loads(path.read_bytes())) == semantic(new_state)


@pytest.mark.parametrize(
    "status",
    [["completed"], {"completed": True}, 1, None, "Completed", "FAILED", " canceled", "cancelled"],
)
def test_non_terminal_status_values(tmp_path, status):
    """Only the exact strings completed/failed/canceled are terminal (SPEC §2.1)."""
    state = {
        "jobs": {"j1": {"job_id": "j1", "status": status}},
        "results": {"r1": {"created_at": "2020-01-01T00:00:00+00:00", "job_id": "j1"}},
        "events": {"j1": [{"occurred_at": "2020-01-01T00:00:00+00:00"}]},
    }
    path = make_store(tmp_path, state)
    before = fingerprint(path)
    report = clean(path)
    assert report["terminal_job_count"] == 0 and report["active_job_count"] == 1
    assert report["results"]["eligible_terminal"] == report["events"]["eligible_terminal"] == 0
    assert fingerprint(path) == before


def test_now_with_offset_is_converted_to_utc(tmp_path):
    path = make_store(tmp_path, SPEC_STORE)
    report = clean(path, now="2026-03-10T17:30:00+05:30", extra=["--dry-run"])
    assert report["now"] == "2026-03-10T12:00:00+00:00"
    assert report["results"]["cutoff"] == "2026-03-03T12:00:00+00:00"


def every_stamp(cutoff):
    """Each rendering of cutoff-1µs, cutoff, cutoff+1µs (and ±1 day), plus odd values."""
    values = []
    for delta_us in (-86400 * 10**6, -1, 0, 1, 86400 * 10**6):
        values += renderings(cutoff + timedelta(microseconds=delta_us))
    values += INVALID_STAMPS + ODD_VALID_STAMPS + NON_STRING_STAMPS + ["", "  "]
    return values


@pytest.mark.parametrize("now", [NOW, NOW.replace(microsecond=123456)])
def test_every_timestamp_form_at_the_boundary(tmp_path, now):
    r_cut, e_cut = now - timedelta(days=7), now - timedelta(seconds=1.5)
    results, events = {}, {"j1": [], "j2": []}
    for job in ("j1", "j2"):  # j1 terminal, j2 active
        for i, value in enumerate(every_stamp(r_cut)):
            results[f"{job}-{i:03d}"] = {"created_at": value, "job_id": job}
        results[f"{job}-missing"] = {"job_id": job}
        for i, value in enumerate(every_stamp(e_cut)):
            events[job].append({"event_seq": i, "occurred_at": value})
        events[job] += [{"event_seq": -1}, None, 3, "2020-01-01T00:00:00+00:00", []]
    state = {
        "events": events,
        "jobs": {"j1": {"status": "canceled"}, "j2": {"status": "partial"}},
        "results": results,
        "schema_version": 5,
    }
    path = make_store(tmp_path, state)
    report = clean(path, results="7d", events="1.5", now=now.isoformat())
    new_state, oracle_report = clean_state(state, results_ttl=604800, events_ttl=1.5, now=now)
    assert (
        0 < oracle_report["results"]["delete_count"] < oracle_report["results"]["eligible_terminal"]
    )
    assert (
        0 < oracle_report["events"]["delete_count"] < oracle_report["events"]["eligible_terminal"]
    )
    assert_report(report, oracle_report, path=path, dry_run=False)
    assert path.read_bytes() == dump_like_service(new_state)


@pytest.mark.parametrize("fmt", ["service", "ascii"])
def test_job_id_coercion_matches_str_of_value_or_empty(tmp_path, fmt):
    """Eligibility is `str(result.get("job_id") or "") in terminal ids` (SPEC §2.2)."""
    jobs = {key: {"status": "completed"} for key in JOB_KEYS}
    results = {
        f"r{i:02d}": {"created_at": "2020-01-01T00:00:00Z", "job_id": value}
        for i, value in enumerate(JOB_ID_VALUES)
    }
    results["r-missing"] = {"created_at": "2020-01-01T00:00:00Z"}
    state = {"jobs": jobs, "results": results}
    if fmt == "service":
        path = make_store(tmp_path, state)
    else:
        path = make_store(tmp_path, SERIALISERS["ascii"](state))
    new_state, oracle_report = clean_state(
        json.loads(path.read_bytes()), results_ttl=604800, events_ttl=259200, now=NOW
    )
    report = clean(path)
    assert_report(report, oracle_report, path=path, dry_run=False)
    assert semantic(json.loads(path.read_bytes())) == semantic(new_state)
    if fmt == "service":
        assert path.read_bytes() == dump_like_service(new_state)

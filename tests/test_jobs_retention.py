"""Job retention (issue 13) held to the oracle (tests/oracle.py, extended by the job rule).

Byte for byte on generated stores (both readers, one and two processes) and on
hypothesis-generated stores in the service's layout; as the same JSON value in other
layouts; and to hand-written expected stores for each edge case the issue lists: a missing or
invalid `finished_at`, orphan results and notifications, non-terminal jobs with old
timestamps, a jobs TTL shorter than the events TTL. Without the option, nothing changes.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

import processes
from conftest import NOW_ISO, service_bytes
from oracle import clean_state, dump_like_service
from strategies import Scenario, job_scenarios
from streamclean.cli import main
from test_oracle_agreement import PROPERTY, SERIALISERS, cli_args, semantic

pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)

ENV = {
    "ASYNC_JOBS_STORE_FILE": None,
    "ASYNC_JOB_RESULTS_RETENTION_SECONDS": None,
    "ASYNC_JOB_EVENTS_RETENTION_SECONDS": None,
    "STREAMCLEAN_JOBS_RETENTION_SECONDS": None,
    "STREAMCLEAN_READER": None,
    "STREAMCLEAN_WORKERS": None,
}


def run(args, env=None, code=0):
    result = CliRunner().invoke(main, [str(a) for a in args], env=dict(ENV, **(env or {})))
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    return json.loads(result.stdout) if code == 0 and result.stdout else result


def cleaned_with_archive(folder: Path, state=None, suffix=".gz") -> tuple[Path, Path]:
    """A store of `state` (the edge cases) cleaned with job retention into an archive beside
    it (gzip-compressed, or plain with `suffix=""`): the store and the archive."""
    store = folder / "store.v1.json"
    store.write_bytes(service_bytes(state or edge_state()))
    archive = folder / f"archive.jsonl{suffix}"
    run(
        [
            "clean",
            "--store-file",
            store,
            "--now",
            NOW_ISO,
            "--jobs-ttl-seconds",
            "1d",
            "--archive-file",
            archive,
        ]
    )
    return store, archive


def scenario_args(path, sc: Scenario, *extra):
    args = cli_args(path, sc.results, sc.events, sc.now.isoformat())
    return [*args, "--jobs-ttl-seconds", sc.jobs.arg, *extra]


def oracle(sc: Scenario, blob: bytes):
    return clean_state(
        json.loads(blob),
        results_ttl=sc.results.seconds,
        events_ttl=sc.events.seconds,
        now=sc.now,
        jobs_ttl=sc.jobs.seconds,
    )


def assert_oracle_report(got: dict, want: dict) -> None:
    for key in ("terminal_job_count", "active_job_count", "results", "events", "jobs"):
        assert got[key] == want[key], key
    assert list(got)[list(got).index("events") + 1] == "jobs"  # right after the old script's keys


# -- hypothesis ----------------------------------------------------------------------------


@settings(max_examples=250, **PROPERTY)
# reader "auto": the layout reader where it fits
@given(sc=job_scenarios(surrogates=False), reader=st.sampled_from(["auto", "general"]))
def test_service_layout_matches_the_oracle_byte_for_byte(sc, reader):
    blob = dump_like_service(sc.state)
    new_state, want = oracle(sc, blob)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "store.v1.json"
        path.write_bytes(blob)
        got = run(scenario_args(path, sc), env={"STREAMCLEAN_READER": reader})
        assert path.read_bytes() == dump_like_service(new_state)
        assert_oracle_report(got, want)


@settings(max_examples=150, **PROPERTY)
@given(sc=job_scenarios(surrogates=True), fmt=st.sampled_from(sorted(SERIALISERS)))
def test_other_layouts_match_the_oracle_as_json(sc, fmt):
    blob = SERIALISERS[fmt](sc.state).encode()
    new_state, want = oracle(sc, blob)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "store.v1.json"
        path.write_bytes(blob)
        got = run(scenario_args(path, sc))
        assert semantic(json.loads(path.read_bytes())) == semantic(new_state)
        assert_oracle_report(got, want)


# -- generated stores ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generated")
    return processes.generate(folder / "store.json", 9_000_000, seed=13)


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("jobs_ttl", ["10d", "21d", "0"])
def test_generated_store_matches_the_oracle_byte_for_byte(
    generated, tmp_path, reader, workers, jobs_ttl
):
    path = tmp_path / "store.v1.json"
    path.write_bytes(generated)
    got = run(
        ["clean", "--store-file", path, "--now", processes.NOW, "--jobs-ttl-seconds", jobs_ttl],
        env={"STREAMCLEAN_READER": reader, "STREAMCLEAN_WORKERS": workers},
    )
    seconds = {"10d": 864000, "21d": 1814400, "0": 0}[jobs_ttl]
    new_state, want = clean_state(
        json.loads(generated),
        results_ttl=604800,
        events_ttl=259200,
        now=processes.GENERATOR_NOW,
        jobs_ttl=seconds,
    )
    assert want["jobs"]["delete_count"] > 0 and want["jobs"]["removed_with_jobs"]["results"] > 0
    assert path.read_bytes() == dump_like_service(new_state)
    assert_oracle_report(got, want)
    assert got["reader"] == reader


def test_without_the_option_everything_is_as_before(generated, tmp_path):
    """No jobs block, the same bytes and report as a plain cleanup; the variable set and then
    turned off by --disable-jobs-retention is the same."""
    plain, disabled = tmp_path / "plain.json", tmp_path / "disabled.json"
    plain.write_bytes(generated)
    disabled.write_bytes(generated)
    first = run(["clean", "--store-file", plain, "--now", processes.NOW])
    second = run(
        ["clean", "--store-file", disabled, "--now", processes.NOW, "--disable-jobs-retention"],
        env={"STREAMCLEAN_JOBS_RETENTION_SECONDS": "1d"},
    )
    assert "jobs" not in first and "jobs" not in second
    new_state, _ = clean_state(
        json.loads(generated), results_ttl=604800, events_ttl=259200, now=processes.GENERATOR_NOW
    )
    assert plain.read_bytes() == disabled.read_bytes() == dump_like_service(new_state)
    first.pop("store_file"), second.pop("store_file")
    assert first == second


def test_the_environment_variable_turns_it_on_and_the_option_wins(store, tmp_path):
    from_env = run(
        ["clean", "--store-file", store, "--now", NOW_ISO, "--dry-run"],
        env={"STREAMCLEAN_JOBS_RETENTION_SECONDS": "1d"},
    )
    assert from_env["jobs"]["ttl_seconds"] == 86400.0
    option = run(
        ["clean", "--store-file", store, "--now", NOW_ISO, "--dry-run", "--jobs-ttl-seconds", "2h"],
        env={"STREAMCLEAN_JOBS_RETENTION_SECONDS": "1d"},
    )
    assert option["jobs"]["ttl_seconds"] == 7200.0


def test_a_bad_jobs_ttl_is_a_usage_error_before_the_store_is_read(tmp_path):
    missing = tmp_path / "nowhere.json"
    result = run(["clean", "--store-file", missing, "--jobs-ttl-seconds", "-1d"], code=2)
    assert (
        result.stderr
        == "streamclean: error: --jobs-ttl-seconds: '-1d' is negative; a TTL counts back from now\n"
    )
    result = run(
        ["clean", "--store-file", missing],
        env={"STREAMCLEAN_JOBS_RETENTION_SECONDS": "soon"},
        code=2,
    )
    assert result.stderr.startswith(
        "streamclean: error: STREAMCLEAN_JOBS_RETENTION_SECONDS: 'soon' is not a duration;"
    )


def test_the_drop_in_script_takes_the_option(tmp_path):
    import subprocess

    store = tmp_path / "store.v1.json"
    store.write_bytes(service_bytes(edge_state()))
    done = subprocess.run(
        [
            processes.PYTHON,
            "scripts/run_async_retention_cleanup.py",
            "--store-file",
            str(store),
            "--now",
            NOW_ISO,
            "--jobs-ttl-seconds",
            "1d",
        ],
        cwd=processes.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (
        report["runner"] == "run_async_retention_cleanup.py" and report["jobs"]["delete_count"] == 2
    )
    assert done.stderr == ""


# -- hand-written edge cases -----------------------------------------------------------------

OLD = "2026-03-01T12:00:00+00:00"  # 9 days before NOW (2026-03-10T12:00)
TWO_DAYS = "2026-03-08T12:00:00+00:00"


def _event(job, event_id, at):
    return {"event_id": event_id, "job_id": job, "occurred_at": at}


def edge_state():
    return {
        "events": {
            "gone": [_event("gone", "e1", OLD), _event("gone", "e2", "2026-03-10T11:00:00+00:00")],
            "no_finish": [_event("no_finish", "e3", OLD)],
            "bad_finish": [_event("bad_finish", "e4", OLD)],
            "running_old": [_event("running_old", "e5", OLD)],
            "young": [
                _event("young", "e6", TWO_DAYS),
                _event("young", "e7", "2026-03-10T10:00:00+00:00"),
            ],
        },
        "jobs": {
            "bad_finish": {"finished_at": "yesterday", "job_id": "bad_finish", "status": "failed"},
            "gone": {"finished_at": OLD, "job_id": "gone", "status": "completed"},
            "no_finish": {"job_id": "no_finish", "status": "completed"},
            "running_old": {"finished_at": OLD, "job_id": "running_old", "status": "running"},
            "young": {"finished_at": TWO_DAYS, "job_id": "young", "status": "canceled"},
        },
        "notifications": {
            "n1": {"job_id": "gone", "notification_id": "n1"},
            "n2": {"job_id": "orphan", "notification_id": "n2"},
            "n3": {"job_id": "young", "notification_id": "n3"},
            "n4": {"job_id": "running_old", "notification_id": "n4"},
        },
        "results": {
            "r1": {"created_at": "2026-03-10T11:59:00+00:00", "job_id": "gone", "result_id": "r1"},
            "r2": {"created_at": OLD, "job_id": "orphan", "result_id": "r2"},
            "r3": {"created_at": "2026-03-10T11:00:00+00:00", "job_id": "young", "result_id": "r3"},
            "r4": {"created_at": OLD, "job_id": "running_old", "result_id": "r4"},
        },
        "schema_version": 5,
    }


def test_edge_cases_against_a_hand_written_store(tmp_path, reader):
    """A jobs TTL of 1 d, shorter than the events TTL (3 d) and the results TTL (7 d):
    - `gone` (completed 9 d ago) goes whole: its job, both events (one of them an hour old),
      its young result and its notification;
    - `young` (canceled 2 d ago) goes too although its events and result are within their TTLs;
    - `no_finish` and `bad_finish` are terminal without a valid finished_at: kept, skipped;
      their old events go by the events rule, as always;
    - `running_old` is not terminal: never touched, whatever its timestamps;
    - the orphan result and notification (job `orphan` is unknown) are kept."""
    path = tmp_path / "store.v1.json"
    path.write_bytes(service_bytes(edge_state()))
    got = run(
        ["clean", "--store-file", path, "--now", NOW_ISO, "--jobs-ttl-seconds", "1d"],
        env={"STREAMCLEAN_READER": reader},
    )
    expected = {
        "events": {
            "bad_finish": [],
            "no_finish": [],
            "running_old": [_event("running_old", "e5", OLD)],
        },
        "jobs": {
            "bad_finish": {"finished_at": "yesterday", "job_id": "bad_finish", "status": "failed"},
            "no_finish": {"job_id": "no_finish", "status": "completed"},
            "running_old": {"finished_at": OLD, "job_id": "running_old", "status": "running"},
        },
        "notifications": {
            "n2": {"job_id": "orphan", "notification_id": "n2"},
            "n4": {"job_id": "running_old", "notification_id": "n4"},
        },
        "results": {
            "r2": {"created_at": OLD, "job_id": "orphan", "result_id": "r2"},
            "r4": {"created_at": OLD, "job_id": "running_old", "result_id": "r4"},
        },
        "schema_version": 5,
    }
    assert path.read_bytes() == service_bytes(expected)
    assert got["jobs"] == {
        "total": 5,
        "eligible_terminal": 4,
        "delete_count": 2,
        "kept_count": 3,
        "skipped_missing_timestamp": 2,
        "cutoff": "2026-03-09T12:00:00+00:00",
        "ttl_seconds": 86400.0,
        "removed_with_jobs": {"results": 2, "events": 4, "notifications": 2},
        "notifications_total": 4,
    }
    # Results: r1 and r3 went with their jobs (counted as deleted and eligible); r2 (orphan)
    # and r4 (running) are not eligible.
    assert got["results"] == {
        "total": 4,
        "eligible_terminal": 2,
        "delete_count": 2,
        "kept_count": 2,
        "skipped_missing_timestamp": 0,
        "cutoff": "2026-03-03T12:00:00+00:00",
    }
    # Events: 4 with their jobs, e3 and e4 by the events rule; e5 (running) is kept.
    assert got["events"] == {
        "total": 7,
        "eligible_terminal": 6,
        "delete_count": 6,
        "kept_count": 1,
        "skipped_missing_timestamp": 0,
        "cutoff": "2026-03-07T12:00:00+00:00",
    }
    new_state, want = clean_state(
        edge_state(),
        results_ttl=604800,
        events_ttl=259200,
        now=processes.datetime.fromisoformat(NOW_ISO),
        jobs_ttl=86400,
    )
    assert new_state == expected and want["jobs"] == got["jobs"]  # the oracle agrees


def test_a_jobs_ttl_that_reaches_no_job_changes_nothing_beyond_the_old_rule(tmp_path, reader):
    path = tmp_path / "store.v1.json"
    path.write_bytes(service_bytes(edge_state()))
    got = run(
        ["clean", "--store-file", path, "--now", NOW_ISO, "--jobs-ttl-seconds", "30d"],
        env={"STREAMCLEAN_READER": reader},
    )
    new_state, _ = clean_state(
        edge_state(),
        results_ttl=604800,
        events_ttl=259200,
        now=processes.datetime.fromisoformat(NOW_ISO),
    )
    assert path.read_bytes() == service_bytes(new_state)
    assert got["jobs"]["delete_count"] == 0 and got["jobs"]["removed_with_jobs"] == {
        "results": 0,
        "events": 0,
        "notifications": 0,
    }


def test_inspect_shows_what_job_retention_would_free(tmp_path):
    path = tmp_path / "store.v1.json"
    path.write_bytes(service_bytes(edge_state()))
    before = path.read_bytes()
    result = CliRunner().invoke(
        main,
        [
            "inspect",
            "--store-file",
            str(path),
            "--now",
            NOW_ISO,
            "--jobs-ttl-seconds",
            "1d",
            "--json",
        ],
        env=ENV,
    )
    assert result.exit_code == 0, result.stderr
    inspection = json.loads(result.stdout)
    assert inspection["reclaimable"]["jobs"] == 2
    assert inspection["reclaimable"]["notifications"] == 2
    assert inspection["jobs"]["delete_count"] == 2
    text = (
        CliRunner()
        .invoke(
            main,
            ["inspect", "--store-file", str(path), "--now", NOW_ISO, "--jobs-ttl-seconds", "1d"],
            env=ENV,
        )
        .stdout
    )
    assert re.search(
        r"\n  jobs +2 of +5 +40.0 %  cutoff 2026-03-09T12:00:00\+00:00; 2 terminal without finished_at kept\n",
        text,
    )
    assert "with them 2 of the results, 4 of the events above, and 2 of 4 notifications" in text
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["store.v1.json"]


def test_the_summary_line_names_the_jobs(tmp_path):
    path = tmp_path / "store.v1.json"
    path.write_bytes(service_bytes(edge_state()))
    result = CliRunner().invoke(
        main,
        ["clean", "--store-file", str(path), "--now", NOW_ISO, "--jobs-ttl-seconds", "1d"],
        env=ENV,
    )
    assert result.exit_code == 0
    assert re.fullmatch(
        r"streamclean: deleted 2 jobs, 2 results, 6 events and 2 notifications, kept 2 results "
        r"and 1 event; 0.0 MB freed in \d+\.\d s\n",
        result.stderr,
    ), result.stderr

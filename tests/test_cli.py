"""The command line: options, environment, the report, exit codes and one-line errors."""

import fcntl
import json
import os
import subprocess
import sys

import pytest

from conftest import NOW_ISO, ROOT, service_bytes, small_state
from streamclean.cli import main

SCRIPT = ROOT / "scripts" / "run_async_retention_cleanup.py"


def test_clean_prints_the_report_with_every_dashboard_key(store, invoke):
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert list(report)[:12] == [
        "runner", "store_file", "now", "dry_run", "results_ttl_seconds", "events_ttl_seconds",
        "ttl_seconds", "terminal_job_count", "active_job_count", "results", "events",
        "store_bytes_before",
    ]
    assert report["runner"] == "streamclean" and report["store_file"] == str(store)
    assert report["now"] == NOW_ISO and report["dry_run"] is False
    assert report["ttl_seconds"] == {"results": 604800.0, "events": 259200.0}
    assert (report["terminal_job_count"], report["active_job_count"]) == (2, 1)
    assert report["results"] == {
        "total": 3, "eligible_terminal": 2, "delete_count": 1, "kept_count": 2,
        "skipped_missing_timestamp": 0, "cutoff": "2026-03-03T12:00:00+00:00",
    }
    assert result.stderr == ""


def test_durations_with_units_and_disabled_kinds(store, invoke):
    result = invoke(
        "clean", "--store-file", store, "--now", NOW_ISO, "--results-ttl-seconds", "1D",
        "--events-ttl-seconds", "15m", "--disable-events-retention", "--dry-run",
    )
    report = json.loads(result.stdout)
    assert report["results_ttl_seconds"] == 86400.0 and report["events_ttl_seconds"] is None
    assert report["events"]["cutoff"] is None and report["events"]["delete_count"] == 0
    assert report["events"]["eligible_terminal"] == 3 and report["dry_run"] is True


def test_environment_gives_defaults_and_options_override_it(store, invoke):
    env = {
        "ASYNC_JOBS_STORE_FILE": str(store),
        "ASYNC_JOB_RESULTS_RETENTION_SECONDS": "2h",
        "ASYNC_JOB_EVENTS_RETENTION_SECONDS": "60",
    }
    report = json.loads(invoke("clean", "--now", NOW_ISO, "--dry-run", env=env).stdout)
    assert (report["store_file"], report["results_ttl_seconds"], report["events_ttl_seconds"]) == (
        str(store), 7200.0, 60.0,
    )
    report = json.loads(invoke("clean", "--now", NOW_ISO, "--dry-run", "--events-ttl-seconds", "1m", env=env).stdout)
    assert report["events_ttl_seconds"] == 60.0 and report["results_ttl_seconds"] == 7200.0


def test_ttl_zero_deletes_everything_eligible_up_to_now(store, invoke):
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--results-ttl-seconds", "0", "--events-ttl-seconds", "0")
    report = json.loads(result.stdout)
    assert report["results"]["delete_count"] == 2 and report["events"]["delete_count"] == 3
    assert report["results"]["cutoff"] == NOW_ISO


def test_output_json_creates_parent_folders(store, invoke, tmp_path):
    target = tmp_path / "artifacts" / "async" / "retention-latest.json"
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--output-json", target)
    assert json.loads(target.read_text()) == json.loads(result.stdout)


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["--results-ttl-seconds", "-5"], {}, "streamclean: error: --results-ttl-seconds: '-5' is negative; a TTL counts back from now\n"),
        (["--events-ttl-seconds", "soon"], {}, "streamclean: error: --events-ttl-seconds: 'soon' is not a duration; give seconds (604800, 0.5) or a number with a unit s, m, h or d (7d, 24h, 15m)\n"),
        ([], {"ASYNC_JOB_EVENTS_RETENTION_SECONDS": "inf"}, "streamclean: error: ASYNC_JOB_EVENTS_RETENTION_SECONDS: 'inf' is not a duration; give seconds (604800, 0.5) or a number with a unit s, m, h or d (7d, 24h, 15m)\n"),
        (["--now", "noon"], {}, "streamclean: error: --now: 'noon' is not an ISO-8601 time; for example 2026-03-01T12:00:00+00:00\n"),
    ],
)
def test_bad_values_exit_2_before_the_store_is_read(tmp_path, invoke, args, env, message):
    missing = tmp_path / "does-not-exist.json"  # a read would fail with exit 1 instead
    result = invoke("clean", "--store-file", missing, *args, env=env)
    assert (result.exit_code, result.stderr, result.stdout) == (2, message, "")


def test_unknown_option_is_a_usage_error(invoke):
    assert invoke("clean", "--frobnicate").exit_code == 2


def test_missing_store_exits_1_with_one_line(tmp_path, invoke):
    result = invoke("clean", "--store-file", tmp_path / "store.v1.json")
    assert result.exit_code == 1
    assert result.stderr == (
        f"streamclean: error: store file not found: {tmp_path / 'store.v1.json'}; "
        "check --store-file or ASYNC_JOBS_STORE_FILE\n"
    )


def test_invalid_store_exits_1_and_stays_as_it_was(store, invoke):
    data = service_bytes(small_state())[:-40]
    store.write_bytes(data)
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("streamclean: error: invalid store: ") and result.stderr.count("\n") == 1
    assert store.read_bytes() == data and sorted(os.listdir(store.parent)) == ["store.v1.json", "store.v1.json.lock"]


def test_held_lock_exits_75(store, invoke):
    fd = os.open(f"{store}.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        result = invoke("clean", "--store-file", store)
    finally:
        os.close(fd)
    assert result.exit_code == 75 and "holds the lock" in result.stderr


def test_every_command_has_help_with_an_example(invoke):
    assert "Examples:" in invoke("clean", "--help").stdout
    assert "ASYNC_JOB_RESULTS_RETENTION_SECONDS" in invoke("clean", "--help").stdout
    assert invoke("--help").exit_code == 0
    assert invoke("--version").stdout.strip().endswith("1.0.0")


@pytest.mark.slow
def test_drop_in_script_runs_from_a_checkout_with_the_old_runner_name(store, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--store-file", str(store), "--now", NOW_ISO,
         "--output-json", str(tmp_path / "out" / "r.json")],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["runner"] == "run_async_retention_cleanup.py"
    assert report["results"]["delete_count"] == 1


@pytest.mark.slow
def test_drop_in_script_bad_duration_exits_2_with_its_name(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--events-ttl-seconds", "x"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.startswith("run_async_retention_cleanup.py: error: --events-ttl-seconds: 'x'")


@pytest.mark.slow
def test_python_dash_m_runs_the_cli(store):
    result = subprocess.run(
        [sys.executable, "-m", "streamclean", "clean", "--store-file", str(store), "--dry-run"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0 and json.loads(result.stdout)["dry_run"] is True

"""The command line: options, environment, the report, exit codes and one-line errors."""

import fcntl
import itertools
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import NOW_ISO, ROOT, service_bytes, small_state
from streamclean import __version__, cli
from streamclean.cli import drop_in_command, main

SCRIPT = ROOT / "scripts" / "run_async_retention_cleanup.py"


@pytest.fixture
def seconds(monkeypatch):
    """Every run takes 3.5 seconds."""
    monkeypatch.setattr(cli, "_elapsed_clock", itertools.count(100.0, 3.5).__next__)


def test_clean_prints_the_report_with_every_dashboard_key(store, invoke, seconds):
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert list(report)[:12] == [
        "runner",
        "store_file",
        "now",
        "dry_run",
        "results_ttl_seconds",
        "events_ttl_seconds",
        "ttl_seconds",
        "terminal_job_count",
        "active_job_count",
        "results",
        "events",
        "store_bytes_before",
    ]
    assert report["runner"] == "streamclean" and report["store_file"] == str(store)
    assert report["now"] == NOW_ISO and report["dry_run"] is False
    assert report["ttl_seconds"] == {"results": 604800.0, "events": 259200.0}
    assert (report["terminal_job_count"], report["active_job_count"]) == (2, 1)
    assert report["results"] == {
        "total": 3,
        "eligible_terminal": 2,
        "delete_count": 1,
        "kept_count": 2,
        "skipped_missing_timestamp": 0,
        "cutoff": "2026-03-03T12:00:00+00:00",
    }
    assert result.stderr == (
        "streamclean: deleted 1 result and 2 events, kept 2 results and 2 events; 0.0 MB freed in 3.5 s\n"
    )


def test_dry_run_summary_says_would(store, invoke, seconds):
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--dry-run")
    assert result.stderr == (
        "streamclean: dry run: would delete 1 result and 2 events, keep 2 results and 2 events; "
        "would free 0.0 MB; 3.5 s\n"
    )


def test_quiet_leaves_stderr_empty_and_the_report_unchanged(store, invoke):
    quiet = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--dry-run", "-q")
    loud = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--dry-run")
    assert (quiet.exit_code, quiet.stderr) == (0, "") and quiet.stdout == loud.stdout


def test_drop_in_prints_no_summary(store):
    command = drop_in_command("run_async_retention_cleanup.py")
    result = CliRunner().invoke(
        command, ["--store-file", str(store), "--now", NOW_ISO], catch_exceptions=False
    )
    assert result.exit_code == 0 and result.stderr == ""
    assert json.loads(result.stdout)["runner"] == "run_async_retention_cleanup.py"


def test_durations_with_units_and_disabled_kinds(store, invoke):
    result = invoke(
        "clean",
        "--store-file",
        store,
        "--now",
        NOW_ISO,
        "--results-ttl-seconds",
        "1D",
        "--events-ttl-seconds",
        "15m",
        "--disable-events-retention",
        "--dry-run",
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
        str(store),
        7200.0,
        60.0,
    )
    report = json.loads(
        invoke("clean", "--now", NOW_ISO, "--dry-run", "--events-ttl-seconds", "1m", env=env).stdout
    )
    assert report["events_ttl_seconds"] == 60.0 and report["results_ttl_seconds"] == 7200.0


def test_ttl_zero_deletes_everything_eligible_up_to_now(store, invoke):
    result = invoke(
        "clean",
        "--store-file",
        store,
        "--now",
        NOW_ISO,
        "--results-ttl-seconds",
        "0",
        "--events-ttl-seconds",
        "0",
    )
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
        (
            ["--results-ttl-seconds", "-5"],
            {},
            "streamclean: error: --results-ttl-seconds: '-5' is negative; a TTL counts back from now\n",
        ),
        (
            ["--events-ttl-seconds", "soon"],
            {},
            "streamclean: error: --events-ttl-seconds: 'soon' is not a duration; "
            "give seconds (604800, 0.5) or a number with a unit s, m, h or d (7d, 24h, 15m)\n",
        ),
        (
            [],
            {"ASYNC_JOB_EVENTS_RETENTION_SECONDS": "inf"},
            "streamclean: error: ASYNC_JOB_EVENTS_RETENTION_SECONDS: 'inf' is not a duration; "
            "give seconds (604800, 0.5) or a number with a unit s, m, h or d (7d, 24h, 15m)\n",
        ),
        (
            ["--now", "noon"],
            {},
            "streamclean: error: --now: 'noon' is not an ISO-8601 time; for example 2026-03-01T12:00:00+00:00\n",
        ),
    ],
)
def test_bad_values_exit_2_before_the_store_is_read(tmp_path, invoke, args, env, message):
    missing = tmp_path / "does-not-exist.json"  # a read would fail with exit 1 instead
    result = invoke("clean", "--store-file", missing, *args, env=env)
    assert (result.exit_code, result.stderr, result.stdout) == (2, message, "")


@pytest.mark.parametrize("command", [[], ["clean"], ["inspect"]])
def test_unknown_option_is_a_usage_error(invoke, command):
    result = invoke(*command, "--frobnicate")
    assert result.exit_code == 2 and "Error: No such option '--frobnicate'" in result.stderr


def test_unknown_option_of_the_drop_in_is_a_usage_error():
    result = CliRunner().invoke(drop_in_command("run_async_retention_cleanup.py"), ["--frobnicate"])
    assert result.exit_code == 2


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
    assert (
        result.stderr.startswith("streamclean: error: invalid store: ")
        and result.stderr.count("\n") == 1
    )
    assert store.read_bytes() == data and sorted(os.listdir(store.parent)) == [
        "store.v1.json",
        "store.v1.json.lock",
    ]


def test_held_lock_exits_75(store, invoke):
    fd = os.open(f"{store}.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        result = invoke("clean", "--store-file", store)
    finally:
        os.close(fd)
    assert result.exit_code == 75 and "holds the lock" in result.stderr


COMMANDS = {
    "streamclean": (main, []),
    "streamclean clean": (main, ["clean"]),
    "streamclean inspect": (main, ["inspect"]),
    "run_async_retention_cleanup.py": (drop_in_command("run_async_retention_cleanup.py"), []),
}


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_examples(name):
    command, args = COMMANDS[name]
    for flag in ("--help", "-h"):
        result = CliRunner().invoke(
            command, [*args, flag], prog_name=name.split()[0], terminal_width=200
        )
        assert result.exit_code == 0 and "Examples:" in result.stdout
    if name != "streamclean":  # the commands that read a store show its environment and defaults
        for shown in (
            "[env var: ASYNC_JOBS_STORE_FILE; default: runtime/async_jobs/store.v1.json]",
            "[env var: ASYNC_JOB_RESULTS_RETENTION_SECONDS; default: 604800 (7d)]",
            "[env var: ASYNC_JOB_EVENTS_RETENTION_SECONDS; default: 259200 (3d)]",
        ):
            assert shown in result.stdout


def test_main_help_lists_every_command_and_how_to_complete():
    result = CliRunner().invoke(main, ["--help"], prog_name="streamclean")
    assert "clean " in result.stdout and "inspect " in result.stdout
    assert 'eval "$(_STREAMCLEAN_COMPLETE=bash_source streamclean)"' in result.stdout


@pytest.mark.parametrize("name", ["streamclean", "run_async_retention_cleanup.py"])
def test_version(name):
    command, _ = COMMANDS[name]
    for flag in ("--version", "-V"):
        result = CliRunner().invoke(command, [flag], prog_name=name)
        assert (result.exit_code, result.stdout) == (0, f"{name}, version {__version__}\n")


def test_shell_completion_script_and_completions():
    env = {"_STREAMCLEAN_COMPLETE": "bash_source"}
    script = CliRunner().invoke(main, [], prog_name="streamclean", env=env).stdout
    assert (
        "_streamclean_completion()" in script
        and "complete -o nosort -F _streamclean_completion streamclean" in script
    )
    env = {
        "_STREAMCLEAN_COMPLETE": "bash_complete",
        "COMP_WORDS": "streamclean ins",
        "COMP_CWORD": "1",
    }
    assert (
        CliRunner().invoke(main, [], prog_name="streamclean", env=env).stdout == "plain,inspect\n"
    )
    env = {
        "_STREAMCLEAN_COMPLETE": "bash_complete",
        "COMP_WORDS": "streamclean clean --metr",
        "COMP_CWORD": "2",
    }
    assert (
        CliRunner().invoke(main, [], prog_name="streamclean", env=env).stdout
        == "plain,--metrics-textfile\n"
    )


@pytest.mark.slow
def test_drop_in_script_runs_from_a_checkout_with_the_old_runner_name(store, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--store-file",
            str(store),
            "--now",
            NOW_ISO,
            "--output-json",
            str(tmp_path / "out" / "r.json"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert (result.returncode, result.stderr) == (0, "")  # as the old script: nothing on stderr
    report = json.loads(result.stdout)
    assert report["runner"] == "run_async_retention_cleanup.py"
    assert report["results"]["delete_count"] == 1


@pytest.mark.slow
def test_drop_in_script_bad_duration_exits_2_with_its_name(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--events-ttl-seconds", "x"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        "run_async_retention_cleanup.py: error: --events-ttl-seconds: 'x'"
    )


@pytest.mark.slow
def test_python_dash_m_runs_the_cli(store):
    result = subprocess.run(
        [sys.executable, "-m", "streamclean", "clean", "--store-file", str(store), "--dry-run"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and json.loads(result.stdout)["dry_run"] is True


def test_an_unforeseen_error_is_one_line_and_leaves_the_store(store, invoke, monkeypatch):
    from streamclean import pass2

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(pass2, "filter_store", broken)
    data = store.read_bytes()
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert result.stderr == (
        "streamclean: error: internal error: ZeroDivisionError: boom; "
        "the store was left unchanged; please report this with the command line\n"
    )
    assert store.read_bytes() == data


# -- issue 11, point 11 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option", ["--store-file", "--output-json", "--lock-file", "--metrics-textfile"]
)
def test_path_options_complete_as_paths(option):
    env = {
        "_STREAMCLEAN_COMPLETE": "bash_complete",
        "COMP_WORDS": f"streamclean clean {option} ",
        "COMP_CWORD": "3",
    }
    result = CliRunner().invoke(main, [], prog_name="streamclean", env=env)
    assert result.output == "file,\n"  # bash then completes file and folder names itself


def test_a_store_that_is_a_folder_is_still_exit_1_not_a_usage_error(tmp_path, invoke):
    result = invoke("clean", "--store-file", tmp_path)
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"streamclean: error: store file is a directory: {tmp_path}; give the path of store.v1.json\n"
    )


def test_the_command_list_in_help_is_not_cut_short(invoke):
    result = invoke("--help")
    commands = result.stdout.split("Commands:\n", 1)[1]
    assert "..." not in commands
    assert "  clean    Delete expired results and events of terminal jobs.\n" in commands
    assert "  inspect  Show what is in the store and what clean would delete.\n" in commands

"""--metrics-textfile: node_exporter's textfile format, written atomically, after failures too."""

import itertools
import os
import re
import stat

import pytest

from conftest import NOW_ISO, listing
from streamclean import cli, metrics
from streamclean.metrics import RunOutcome, previous_last_success, write_textfile

FINISHED_AT = 1764322345.5

SUCCESS = """\
# HELP streamclean_records_deleted Records the last run deleted (a dry run: would have deleted), by kind.
# TYPE streamclean_records_deleted gauge
streamclean_records_deleted{kind="results"} 1
streamclean_records_deleted{kind="events"} 2
# HELP streamclean_records_kept Records the last run kept, by kind.
# TYPE streamclean_records_kept gauge
streamclean_records_kept{kind="results"} 2
streamclean_records_kept{kind="events"} 2
# HELP streamclean_store_bytes Size of the store before and after the last run, in bytes.
# TYPE streamclean_store_bytes gauge
streamclean_store_bytes{stage="before"} 1220
streamclean_store_bytes{stage="after"} 866
# HELP streamclean_last_run_timestamp_seconds When the last run ended, in seconds since the epoch.
# TYPE streamclean_last_run_timestamp_seconds gauge
streamclean_last_run_timestamp_seconds 1764322345.500
# HELP streamclean_last_run_duration_seconds How long the last run took, in seconds.
# TYPE streamclean_last_run_duration_seconds gauge
streamclean_last_run_duration_seconds 2.500
# HELP streamclean_last_run_success 1 if the last run succeeded (exit status 0), else 0.
# TYPE streamclean_last_run_success gauge
streamclean_last_run_success 1
# HELP streamclean_last_success_timestamp_seconds When the last successful run ended, in seconds since the epoch.
# TYPE streamclean_last_success_timestamp_seconds gauge
streamclean_last_success_timestamp_seconds 1764322345.500
"""

FAILURE_HEAD = """\
# HELP streamclean_last_run_timestamp_seconds When the last run ended, in seconds since the epoch.
# TYPE streamclean_last_run_timestamp_seconds gauge
streamclean_last_run_timestamp_seconds 1764322345.500
# HELP streamclean_last_run_duration_seconds How long the last run took, in seconds.
# TYPE streamclean_last_run_duration_seconds gauge
streamclean_last_run_duration_seconds 2.500
# HELP streamclean_last_run_success 1 if the last run succeeded (exit status 0), else 0.
# TYPE streamclean_last_run_success gauge
streamclean_last_run_success 0
"""


@pytest.fixture
def clocks(monkeypatch):
    """Fixed clocks: every run ends at FINISHED_AT, 2.5 s after it started."""
    monkeypatch.setattr(cli, "_elapsed_clock", itertools.count(100.0, 2.5).__next__)
    monkeypatch.setattr(cli, "_wall_clock", lambda: FINISHED_AT)


@pytest.fixture
def textfile(tmp_path):
    folder = tmp_path / "textfile"
    folder.mkdir()
    return folder / "streamclean.prom"


def test_a_successful_run_writes_every_metric_with_help_and_type(store, invoke, clocks, textfile):
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--metrics-textfile", textfile)
    assert result.exit_code == 0, result.stderr
    assert textfile.read_text() == SUCCESS
    assert listing(textfile.parent) == ["streamclean.prom"]  # no temporary file left behind
    assert stat.S_IMODE(textfile.stat().st_mode) == 0o644  # node_exporter runs as another user


def test_every_sample_has_help_and_type_lines():
    text = metrics.render(RunOutcome(FINISHED_AT, 1.0, None), "1700000000.000")
    names = {line.split("{")[0].split()[0] for line in text.splitlines() if not line.startswith("#")}
    for name in names:
        assert f"# HELP {name} " in text and f"# TYPE {name} gauge" in text
    assert all(re.fullmatch(r"(# (HELP|TYPE) \w+ .+|\w+(\{\w+=\"\w+\"\})? [0-9.]+)", line) for line in text.splitlines())


def test_a_failed_run_carries_the_last_success_over_unchanged(store, invoke, clocks, textfile):
    textfile.write_text(SUCCESS.replace("1764322345.500", "1700000000.25"))
    result = invoke("clean", "--store-file", store.with_name("missing.json"), "--metrics-textfile", textfile)
    assert result.exit_code == 1 and result.stderr.startswith("streamclean: error: store file not found")
    assert textfile.read_text() == FAILURE_HEAD + (
        "# HELP streamclean_last_success_timestamp_seconds When the last successful run ended, in seconds since the epoch.\n"
        "# TYPE streamclean_last_success_timestamp_seconds gauge\n"
        "streamclean_last_success_timestamp_seconds 1700000000.25\n"
    )
    assert listing(textfile.parent) == ["streamclean.prom"]


def test_a_failed_first_run_has_no_last_success(store, invoke, clocks, textfile):
    result = invoke("clean", "--store-file", store.with_name("missing.json"), "--metrics-textfile", textfile)
    assert result.exit_code == 1
    assert textfile.read_text() == FAILURE_HEAD


def test_a_usage_error_in_a_value_is_a_failed_run_too(store, invoke, clocks, textfile):
    result = invoke("clean", "--store-file", store, "--events-ttl-seconds", "soon", "--metrics-textfile", textfile)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert textfile.read_text() == FAILURE_HEAD


def test_success_after_failure_sets_a_new_last_success(store, invoke, clocks, textfile):
    invoke("clean", "--store-file", store.with_name("missing.json"), "--metrics-textfile", textfile)
    invoke("clean", "--store-file", store, "--now", NOW_ISO, "--metrics-textfile", textfile)
    assert textfile.read_text() == SUCCESS


@pytest.mark.parametrize("previous", [
    "streamclean_last_success_timestamp_seconds soon\n",
    "garbage \xff\n",
    "# streamclean_last_success_timestamp_seconds 12\n",
])
def test_an_unreadable_previous_value_counts_as_none(textfile, previous):
    textfile.write_text(previous, encoding="latin-1")
    assert previous_last_success(textfile) is None


def test_an_unwritable_metrics_file_is_one_line_and_exit_1_after_the_report(store, invoke, clocks, tmp_path):
    target = tmp_path / "no-such-folder" / "streamclean.prom"
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--metrics-textfile", target)
    assert result.exit_code == 1
    assert '"runner": "streamclean"' in result.stdout  # the cleanup itself ran and is reported
    assert result.stderr == (
        f"streamclean: error: cannot write the metrics file {target}: No such file or directory; "
        "its folder must exist and be writable\n"
    )


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(textfile, monkeypatch):
    textfile.write_text(SUCCESS)

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(metrics.os, "replace", full_disk)
    with pytest.raises(metrics.StreamcleanError, match="No space left on device"):
        write_textfile(textfile, RunOutcome(FINISHED_AT, 1.0, None))
    assert textfile.read_text() == SUCCESS and listing(textfile.parent) == ["streamclean.prom"]


def test_a_dry_run_reports_what_it_would_delete(store, invoke, clocks, textfile):
    invoke("clean", "--store-file", store, "--now", NOW_ISO, "--dry-run", "--metrics-textfile", textfile)
    assert 'streamclean_records_deleted{kind="events"} 2\n' in textfile.read_text()
    assert os.path.getsize(store) == 1220

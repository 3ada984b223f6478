"""--metrics-textfile: node_exporter's textfile format, written atomically, after failures too."""

import fcntl
import gzip
import itertools
import os
import re
import shutil
import stat
import subprocess
from datetime import timedelta

import pytest

from conftest import NOW, NOW_ISO, listing, service_bytes, small_state
from streamclean import atomicfile, cli, fs, metrics, outcome
from streamclean.metrics import RunOutcome, previous_last_success, write_textfile
from test_archive_dir import fake_archive
from test_jobs_retention import edge_state

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
# HELP streamclean_last_run_success 1 if the last run succeeded (exit status 0), else 0; \
a run that gave way (exit status 75) leaves it as it was.
# TYPE streamclean_last_run_success gauge
streamclean_last_run_success 1
# HELP streamclean_last_run_exit_status The exit status of the last run that did not give way.
# TYPE streamclean_last_run_exit_status gauge
streamclean_last_run_exit_status 0
# HELP streamclean_last_success_timestamp_seconds When the last successful run that was not a dry run \
ended, in seconds since the epoch.
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
# HELP streamclean_last_run_success 1 if the last run succeeded (exit status 0), else 0; \
a run that gave way (exit status 75) leaves it as it was.
# TYPE streamclean_last_run_success gauge
streamclean_last_run_success 0
# HELP streamclean_last_run_exit_status The exit status of the last run that did not give way.
# TYPE streamclean_last_run_exit_status gauge
streamclean_last_run_exit_status {status}
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
    result = invoke(
        "clean", "--store-file", store, "--now", NOW_ISO, "--metrics-textfile", textfile
    )
    assert result.exit_code == 0, result.stderr
    assert textfile.read_text() == SUCCESS
    assert listing(textfile.parent) == ["streamclean.prom"]  # no temporary file left behind
    assert stat.S_IMODE(textfile.stat().st_mode) == 0o644  # node_exporter runs as another user


def test_every_sample_has_help_and_type_lines():
    text = metrics.render(
        RunOutcome(FINISHED_AT, 1.0, None), {metrics.LAST_SUCCESS: [("", "1700000000.000")]}
    )
    names = {
        line.split("{")[0].split()[0] for line in text.splitlines() if not line.startswith("#")
    }
    for name in names:
        assert f"# HELP {name} " in text and f"# TYPE {name} gauge" in text
    assert all(
        re.fullmatch(r"(# (HELP|TYPE) \w+ .+|\w+(\{\w+=\"\w+\"\})? [0-9.]+)", line)
        for line in text.splitlines()
    )


def test_a_failed_run_carries_the_last_success_over_unchanged(store, invoke, clocks, textfile):
    textfile.write_text(SUCCESS.replace("1764322345.500", "1700000000.25"))
    result = invoke(
        "clean", "--store-file", store.with_name("missing.json"), "--metrics-textfile", textfile
    )
    assert result.exit_code == 1 and result.stderr.startswith(
        "streamclean: error: store file not found"
    )
    assert textfile.read_text() == FAILURE_HEAD.format(status=1) + (
        "# HELP streamclean_last_success_timestamp_seconds When the last successful run that was not a dry run "
        "ended, in seconds since the epoch.\n"
        "# TYPE streamclean_last_success_timestamp_seconds gauge\n"
        "streamclean_last_success_timestamp_seconds 1700000000.25\n"
    )
    assert listing(textfile.parent) == ["streamclean.prom"]


def test_a_failed_first_run_has_no_last_success(store, invoke, clocks, textfile):
    result = invoke(
        "clean", "--store-file", store.with_name("missing.json"), "--metrics-textfile", textfile
    )
    assert result.exit_code == 1
    assert textfile.read_text() == FAILURE_HEAD.format(status=1)


def test_a_usage_error_in_a_value_is_a_failed_run_too(store, invoke, clocks, textfile):
    result = invoke(
        "clean",
        "--store-file",
        store,
        "--events-ttl-seconds",
        "soon",
        "--metrics-textfile",
        textfile,
    )
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert textfile.read_text() == FAILURE_HEAD.format(status=2)


def test_success_after_failure_sets_a_new_last_success(store, invoke, clocks, textfile):
    invoke("clean", "--store-file", store.with_name("missing.json"), "--metrics-textfile", textfile)
    invoke("clean", "--store-file", store, "--now", NOW_ISO, "--metrics-textfile", textfile)
    assert textfile.read_text() == SUCCESS


@pytest.mark.parametrize(
    "previous",
    [
        "streamclean_last_success_timestamp_seconds soon\n",
        "garbage \xff\n",
        "# streamclean_last_success_timestamp_seconds 12\n",
    ],
)
def test_an_unreadable_previous_value_counts_as_none(textfile, previous):
    textfile.write_text(previous, encoding="latin-1")
    assert previous_last_success(textfile) is None


def test_a_metrics_file_in_a_missing_folder_is_refused_before_the_store_is_read(
    store, invoke, clocks, tmp_path
):
    before = store.read_bytes(), os.stat(store).st_mtime_ns
    target = tmp_path / "no-such-folder" / "streamclean.prom"
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--metrics-textfile", target)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        f"streamclean: error: cannot write the metrics to {target}: the folder {target.parent} does not "
        "exist; the store was left unchanged; its folder must exist and be writable\n"
    )
    assert (store.read_bytes(), os.stat(store).st_mtime_ns) == before
    # not even the lock: the store was never opened
    assert listing(store.parent) == ["store.v1.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(textfile, monkeypatch):
    textfile.write_text(SUCCESS)

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomicfile.os, "replace", full_disk)
    with pytest.raises(metrics.OutputError, match="No space left on device"):
        write_textfile(textfile, RunOutcome(FINISHED_AT, 1.0, None))
    assert textfile.read_text() == SUCCESS and listing(textfile.parent) == ["streamclean.prom"]


def test_a_dry_run_reports_what_it_would_delete(store, invoke, clocks, textfile):
    invoke(
        "clean",
        "--store-file",
        store,
        "--now",
        NOW_ISO,
        "--dry-run",
        "--metrics-textfile",
        textfile,
    )
    assert 'streamclean_records_deleted{kind="events"} 2\n' in textfile.read_text()
    assert os.path.getsize(store) == 1220


# -- what each exit status records (issue 11, points 4 and 5) -------------------------------------


def _hold_lock(store):
    fd = os.open(f"{store}.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_giving_way_changes_only_the_skip_time(store, invoke, clocks, textfile, monkeypatch):
    """Exit 75 (another cleanup holds the lock) is no failure: success and last success stay."""
    invoke("clean", "--store-file", store, "--now", NOW_ISO, "--metrics-textfile", textfile)
    monkeypatch.setattr(cli, "_wall_clock", lambda: FINISHED_AT + 86400)
    fd = _hold_lock(store)
    try:
        result = invoke("clean", "--store-file", store, "--metrics-textfile", textfile)
    finally:
        os.close(fd)
    assert result.exit_code == 75, result.stderr
    assert textfile.read_text() == SUCCESS + (
        "# HELP streamclean_last_skip_timestamp_seconds When a run last gave way (exit status 75) to another "
        "cleanup or to the service.\n"
        "# TYPE streamclean_last_skip_timestamp_seconds gauge\n"
        "streamclean_last_skip_timestamp_seconds 1764408745.500\n"
    )
    assert listing(textfile.parent) == ["streamclean.prom"]


def test_the_skip_time_survives_the_next_run(store, invoke, clocks, textfile):
    fd = _hold_lock(store)
    try:
        assert (
            invoke("clean", "--store-file", store, "--metrics-textfile", textfile).exit_code == 75
        )
    finally:
        os.close(fd)
    assert "streamclean_last_run_success" not in textfile.read_text()  # a first run that gave way
    invoke("clean", "--store-file", store, "--now", NOW_ISO, "--metrics-textfile", textfile)
    assert textfile.read_text().endswith("streamclean_last_skip_timestamp_seconds 1764322345.500\n")
    assert "streamclean_last_run_success 1\n" in textfile.read_text()


def test_a_dry_run_never_refreshes_the_last_success(store, invoke, clocks, textfile):
    result = invoke(
        "clean",
        "--store-file",
        store,
        "--now",
        NOW_ISO,
        "--dry-run",
        "--metrics-textfile",
        textfile,
    )
    assert result.exit_code == 0
    text = textfile.read_text()
    assert "streamclean_last_run_success 1\n" in text
    assert metrics.LAST_SUCCESS not in text  # a host that only dry-runs never looks cleaned
    textfile.write_text(SUCCESS.replace("1764322345.500", "1700000000.25"))
    invoke(
        "clean",
        "--store-file",
        store,
        "--now",
        NOW_ISO,
        "--dry-run",
        "--metrics-textfile",
        textfile,
    )
    assert textfile.read_text().endswith(f"{metrics.LAST_SUCCESS} 1700000000.25\n")


def test_a_cleaned_store_whose_report_failed_records_74_and_its_counts(
    store, invoke, clocks, textfile, monkeypatch
):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outcome, "write_atomically", full_disk)
    report = store.parent / "report.json"
    result = invoke(
        "clean",
        "--store-file",
        store,
        "--now",
        NOW_ISO,
        "--metrics-textfile",
        textfile,
        "--output-json",
        report,
    )
    assert result.exit_code == 74
    text = textfile.read_text()
    assert 'streamclean_records_deleted{kind="events"} 2\n' in text
    assert (
        "streamclean_last_run_success 0\n" in text
        and "streamclean_last_run_exit_status 74\n" in text
    )
    assert metrics.LAST_SUCCESS not in text


# -- a real parser ------------------------------------------------------------------------------


def _files_of_every_kind(store, invoke, textfile, tmp_path) -> list[str]:
    texts = []
    invoke("clean", "--store-file", store, "--now", NOW_ISO, "--metrics-textfile", textfile)
    texts.append(textfile.read_text())  # success
    fd = _hold_lock(store)
    try:
        invoke("clean", "--store-file", store, "--metrics-textfile", textfile)
    finally:
        os.close(fd)
    texts.append(textfile.read_text())  # gave way
    invoke("clean", "--store-file", store.with_name("missing.json"), "--metrics-textfile", textfile)
    texts.append(textfile.read_text())  # failed
    return texts


def test_every_file_parses_with_prometheus_client(store, invoke, clocks, textfile, tmp_path):
    parser = pytest.importorskip("prometheus_client.parser", reason="pip install '.[test]'")
    success, skipped, failed = _files_of_every_kind(store, invoke, textfile, tmp_path)
    parsed = {}
    for text in (success, skipped, failed):
        families = list(parser.text_string_to_metric_families(text))
        assert all(family.type == "gauge" and family.documentation for family in families)
        samples = [sample for family in families for sample in family.samples]
        parsed[text] = {
            sample.name + str(sorted(sample.labels.items())): sample.value for sample in samples
        }
    assert parsed[success]["streamclean_records_deleted[('kind', 'events')]"] == 2
    assert parsed[success]["streamclean_last_run_success[]"] == 1
    assert parsed[skipped]["streamclean_last_run_success[]"] == 1  # giving way is no failure
    assert parsed[skipped]["streamclean_last_skip_timestamp_seconds[]"] == FINISHED_AT
    assert parsed[failed]["streamclean_last_run_success[]"] == 0
    assert parsed[failed]["streamclean_last_run_exit_status[]"] == 1
    assert parsed[failed][f"{metrics.LAST_SUCCESS}[]"] == FINISHED_AT


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_every_file_passes_promtool(store, invoke, clocks, textfile, tmp_path):
    for text in _files_of_every_kind(store, invoke, textfile, tmp_path):
        checked = subprocess.run(
            ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


def _parsed(text: str) -> dict[str, float]:
    parser = pytest.importorskip("prometheus_client.parser", reason="pip install '.[test]'")
    families = list(parser.text_string_to_metric_families(text))
    assert families and all(family.type == "gauge" and family.documentation for family in families)
    return {
        sample.name + "".join(f"[{v}]" for _, v in sorted(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
    }


def test_job_retention_and_the_archive_folder_have_their_gauges(invoke, clocks, textfile, tmp_path):
    """Jobs and notifications removed and kept, the archive's records and bytes, the archives
    pruned: counted here by hand from the store (test_jobs_retention's edge cases) and from the
    files, and read back with prometheus_client."""
    store = tmp_path / "store.v1.json"
    store.write_bytes(service_bytes(edge_state()))
    folder = tmp_path / "archives"
    folder.mkdir()
    for days in (40, 50):
        moment = NOW - timedelta(days=days)
        fake_archive(
            folder / f"store.v1.json.{moment:%Y%m%dT%H%M%SZ}.jsonl.gz", store.resolve(), moment
        )
    result = invoke(
        "clean",
        "--store-file",
        store,
        "--now",
        NOW_ISO,
        "--jobs-ttl-seconds",
        "1d",
        "--archive-dir",
        folder,
        "--archive-keep",
        "30d",
        "--metrics-textfile",
        textfile,
    )
    assert result.exit_code == 0, result.stderr
    [archive] = os.listdir(folder)
    with gzip.open(folder / archive) as stream:
        records = len(stream.read().splitlines()) - 1
    values = _parsed(textfile.read_text())
    # jobs `gone` and `young` go (1 d), the 3 others stay; notifications n1, n3 go with them, n2, n4 stay
    assert (
        values["streamclean_records_deleted[jobs]"] == 2
        and values["streamclean_records_kept[jobs]"] == 3
    )
    assert values["streamclean_records_deleted[notifications]"] == 2
    assert values["streamclean_records_kept[notifications]"] == 2
    # 2 jobs, 2 results, 2 notifications, the 2 jobs' events arrays whole and 2 single old events
    assert values["streamclean_archive_records"] == records == 10
    assert values["streamclean_archive_bytes"] == (folder / archive).stat().st_size
    assert values["streamclean_archives_pruned"] == 2


def test_without_job_retention_or_archive_the_file_is_as_before(store, invoke, clocks, textfile):
    result = invoke(
        "clean", "--store-file", store, "--now", NOW_ISO, "--metrics-textfile", textfile
    )
    assert result.exit_code == 0
    assert "jobs" not in textfile.read_text() and "archive" not in textfile.read_text()


def test_a_run_with_an_archive_folder_that_fails_still_writes_the_file(
    store, invoke, clocks, textfile, tmp_path, monkeypatch
):
    folder = tmp_path / "archives"
    argv = (
        "clean",
        "--store-file",
        store,
        "--now",
        NOW_ISO,
        "--archive-dir",
        folder,
        "--archive-keep",
        "1d",
        "--metrics-textfile",
        textfile,
    )
    store.write_bytes(b"{not json")
    result = invoke(*argv)
    assert result.exit_code == 1
    values = _parsed(textfile.read_text())
    assert (
        values["streamclean_last_run_exit_status"] == 1
        and "streamclean_archives_pruned" not in values
    )
    # cleaned, then the pruning fails: 74, and the file says so
    store.write_bytes(service_bytes(small_state()))
    planted = folder / "store.v1.json.20260101T000000Z.jsonl.gz"
    fake_archive(planted, store.resolve(), NOW.replace(month=1, day=1))
    real_call = fs.call

    def call(op, func, *args):
        if op == "unlink":
            raise OSError(5, "Input/output error")
        return real_call(op, func, *args)

    monkeypatch.setattr(fs, "call", call)
    result = invoke(*argv)
    assert result.exit_code == 74, result.stderr
    values = _parsed(textfile.read_text())
    assert (
        values["streamclean_last_run_exit_status"] == 74
        and values["streamclean_last_run_success"] == 0
    )
    assert planted.exists()

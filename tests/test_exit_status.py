"""Exit statuses that tell the truth about the store (issue 11, point 1).

1 promises the store byte for byte as it was. So the outputs are checked before the store is
read, and a failure after the cleaned store is in place exits 74, prints the report and says
that the store was cleaned.
"""

import errno
import json
import os
import signal
import tempfile
from pathlib import Path

import pytest

from conftest import NOW_ISO, listing
from streamclean import cli, metrics, outcome

FIX_REPORT = "give --output-json a file in a writable folder (missing folders are created)"


def _unchanged(store: Path):
    return store.read_bytes(), os.stat(store).st_mtime_ns, listing(store.parent)


def test_a_report_under_a_file_is_refused_before_the_store_is_read(store, invoke, tmp_path):
    (tmp_path / "afile").write_text("")
    before = _unchanged(store)
    target = tmp_path / "afile" / "x.json"
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--output-json", target)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        f"streamclean: error: cannot write the report to {target}: {tmp_path / 'afile'} is a file, not a folder; "
        f"the store was left unchanged; {FIX_REPORT}\n"
    )
    assert _unchanged(store) == before  # not even a lock file: the store was never opened


@pytest.mark.parametrize("option, name, problem", [
    ("--output-json", "store.v1.json", "is the store itself"),
    ("--output-json", "store.v1.json.lock", "is the store's lock file"),
    ("--output-json", "store.v1.json.bak", "is the store's backup (--backup)"),
    ("--metrics-textfile", "store.v1.json", "is the store itself"),
    ("--metrics-textfile", "store.v1.json.lock", "is the store's lock file"),
])
def test_an_output_that_is_the_store_its_lock_or_its_backup_is_refused(store, invoke, option, name, problem):
    before = _unchanged(store)
    target = store.with_name(name)
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, option, target)
    assert result.exit_code == 1 and result.stdout == ""
    what = "the report" if option == "--output-json" else "the metrics"
    assert result.stderr == (
        f"streamclean: error: {option} {target} {problem}; the store was left unchanged; write {what} elsewhere\n"
    )
    assert _unchanged(store) == before


def test_an_output_that_is_a_folder_is_refused(store, invoke, tmp_path):
    before = _unchanged(store)
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--output-json", tmp_path)
    assert result.exit_code == 1
    assert result.stderr == (
        f"streamclean: error: cannot write the report to {tmp_path}: it is a folder; give a file name; "
        f"the store was left unchanged; {FIX_REPORT}\n"
    )
    assert _unchanged(store) == before


def test_the_report_and_the_metrics_in_one_file_are_refused(store, invoke, tmp_path):
    target = tmp_path / "out"
    result = invoke("clean", "--store-file", store, "--output-json", target, "--metrics-textfile", target)
    assert result.exit_code == 1
    assert "--output-json and --metrics-textfile name the same file" in result.stderr
    assert listing(store.parent) == ["store.v1.json"]
    assert "streamclean_last_run_success 0\n" in target.read_text()  # the metrics record the refusal


def test_a_missing_report_folder_is_created_only_by_a_run_that_writes_the_report(store, invoke, tmp_path):
    target = tmp_path / "artifacts" / "async" / "retention-latest.json"
    result = invoke("clean", "--store-file", store.with_name("missing.json"), "--output-json", target)
    assert result.exit_code == 1 and not (tmp_path / "artifacts").exists()  # nothing left behind
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--output-json", target)
    assert result.exit_code == 0 and json.loads(target.read_text()) == json.loads(result.stdout)


@pytest.fixture
def as_nobody():
    """Really unprivileged: the effective uid is nobody's while the block runs (root's saved uid
    brings it back). Yields a folder nobody may write in, and one it may not."""
    if os.geteuid() != 0:
        pytest.skip("dropping privileges needs root (the test suite runs as root in CI)")
    base = Path(tempfile.mkdtemp(prefix="streamclean-nobody-"))
    base.chmod(0o755)
    own, foreign = base / "own", base / "foreign"
    own.mkdir()
    foreign.mkdir(mode=0o755)
    os.chown(own, 65534, 65534)
    try:
        yield own, foreign
    finally:
        os.seteuid(0)
        for folder in (own, foreign):
            for name in os.listdir(folder):
                os.unlink(folder / name)
            folder.rmdir()
        base.rmdir()


def test_a_real_permission_error_as_an_unprivileged_user_is_refused_first(as_nobody, invoke):
    own, foreign = as_nobody
    store = own / "store.v1.json"
    from conftest import service_bytes, small_state

    store.write_bytes(service_bytes(small_state()))
    os.chown(store, 65534, 65534)
    before = _unchanged(store)
    os.seteuid(65534)
    try:
        result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--metrics-textfile", foreign / "s.prom")
    finally:
        os.seteuid(0)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        f"streamclean: error: cannot write the metrics to {foreign / 's.prom'}: cannot create a file in "
        f"{foreign}: Permission denied; the store was left unchanged; its folder must exist and be writable\n"
    )
    assert _unchanged(store) == before and listing(foreign) == []


# -- after the swap: 74, the report on stdout, and the line says the store was cleaned ----------


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_report_that_fails_after_the_swap_exits_74_with_the_report_on_stdout(store, invoke, tmp_path, monkeypatch):
    monkeypatch.setattr(outcome, "write_atomically", _no_space)
    old = store.read_bytes()
    target = tmp_path / "report.json"
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--output-json", target)
    assert result.exit_code == 74
    assert json.loads(result.stdout)["rewritten"] is True
    assert result.stderr == (
        f"streamclean: error: the store was cleaned, but cannot write the report to {target}: "
        "No space left on device; the report is on stdout\n"
    )
    assert len(store.read_bytes()) < len(old)


def test_a_metrics_file_that_fails_after_the_swap_exits_74(store, invoke, tmp_path, monkeypatch):
    monkeypatch.setattr(metrics, "write_atomically", _no_space)
    target = tmp_path / "streamclean.prom"
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--metrics-textfile", target)
    assert result.exit_code == 74 and json.loads(result.stdout)["rewritten"] is True
    assert result.stderr == (
        f"streamclean: error: the store was cleaned, but cannot write the metrics file {target}: "
        "No space left on device; the report is on stdout\n"
    )


@pytest.mark.parametrize("extra", [["--dry-run"], ["--disable-results-retention", "--disable-events-retention"]])
def test_a_report_that_fails_in_a_run_that_changed_nothing_exits_1(store, invoke, tmp_path, monkeypatch, extra):
    monkeypatch.setattr(outcome, "write_atomically", _no_space)
    old = store.read_bytes()
    target = tmp_path / "report.json"
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--output-json", target, *extra)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        f"streamclean: error: cannot write the report to {target}: No space left on device; {FIX_REPORT}\n"
    )
    assert store.read_bytes() == old


def test_a_signal_after_the_swap_exits_74(store, invoke, monkeypatch, handlers_restored):
    real_clean = cli.clean

    def clean_then_signal(*args, **kwargs):
        report = real_clean(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)  # the cleaned store is in place
        return report

    monkeypatch.setattr(cli, "clean", clean_then_signal)
    old = store.read_bytes()
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO)
    assert result.exit_code == 74 and result.stdout == ""
    assert result.stderr == (
        "streamclean: error: the store was cleaned, but the run was interrupted by SIGTERM; there is no report\n"
    )
    assert len(store.read_bytes()) < len(old)


def test_an_unforeseen_error_after_the_swap_exits_74(store, invoke, monkeypatch):
    from streamclean import cleanup

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(cleanup.Run, "fill_report", broken)  # runs after the swap
    old = store.read_bytes()
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO)
    assert result.exit_code == 74 and result.stdout == ""
    assert result.stderr == (
        "streamclean: error: the store was cleaned, but internal error: ZeroDivisionError: boom; there is no report\n"
    )
    assert len(store.read_bytes()) < len(old)


def test_a_signal_while_the_report_is_written_exits_74_with_the_report(
    store, invoke, tmp_path, monkeypatch, handlers_restored
):
    def signalled(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(outcome, "write_atomically", signalled)
    result = invoke("clean", "--store-file", store, "--now", NOW_ISO, "--output-json", tmp_path / "r.json")
    assert result.exit_code == 74 and json.loads(result.stdout)["rewritten"] is True
    assert result.stderr == (
        "streamclean: error: the store was cleaned, but the run was interrupted by SIGTERM; the report is on stdout\n"
    )

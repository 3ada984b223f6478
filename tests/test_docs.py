"""The README and docs/CONTRACT.md say what the code does (issue 11, points 2, 4-7 and 9): the
exit table, the metrics and their alerts, the cron lines and the systemd unit."""

import re

import pytest

from conftest import ROOT
from streamclean import errors, metrics

README = (ROOT / "README.md").read_text(encoding="utf-8")
CONTRACT = ROOT / "docs" / "CONTRACT.md"
EXIT_STATUSES = {errors.EXIT_FAILED, errors.EXIT_USAGE, errors.EXIT_CLEANED, errors.EXIT_TEMPFAIL, 0}


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.DOTALL)


def _exit_table(text: str) -> set[int]:
    return {int(status) for status in re.findall(r"^\| (\d+) \|", text, re.MULTILINE)}


@pytest.mark.parametrize("text", [README, CONTRACT.read_text(encoding="utf-8")], ids=["README", "CONTRACT"])
def test_the_exit_tables_list_every_status_the_code_uses(text):
    assert _exit_table(text) == EXIT_STATUSES


def test_the_readme_points_at_the_contract_in_the_repository():
    assert "SPEC.md" not in README and "SPEC §" not in README
    assert "(docs/CONTRACT.md)" in README and CONTRACT.is_file()


def test_the_cron_lines_name_the_executable_by_its_absolute_path():
    lines = [line for block in _blocks("cron") for line in block.splitlines() if line.strip()]
    assert len(lines) == 2
    streamclean, drop_in = lines
    assert re.search(r"&& timeout 2h /\S+/bin/streamclean clean ", streamclean)
    assert re.search(r"&& STREAMCLEAN_PYTHON=/\S+/bin/python \./scripts/run_async_retention_cleanup\.py ", drop_in)


def test_the_textfile_folder_is_debians():
    assert "/var/lib/node_exporter" not in README
    for line in _blocks("cron")[0].splitlines() + _blocks("ini")[0].splitlines():
        if "--metrics-textfile" in line:
            assert "--metrics-textfile /var/lib/prometheus/node-exporter/streamclean.prom" in line


def test_the_systemd_unit_is_a_oneshot_with_a_start_timeout_and_a_working_directory():
    unit = _blocks("ini")[0]
    for setting in ("Type=oneshot", "WorkingDirectory=/", "TimeoutStartSec=2h", "ExecStart=/", "Before="):
        assert f"\n{setting}" in unit, setting
    assert "ExecStartPre" not in unit and "timeout 2h" not in unit
    assert "After=async-jobs-cleanup.service" in _blocks("ini")[1]


def test_the_metrics_table_and_the_alerts_name_real_metrics():
    table = set(re.findall(r"^\| `(streamclean_\w+)", README, re.MULTILINE))
    table |= set(re.findall(r"`, `(streamclean_\w+)`", README))
    assert table == set(metrics.FAMILIES)
    (alerts,) = _blocks("yaml")
    exprs = re.findall(r"expr: (.+?)(?:\s+#.*)?$", alerts, re.MULTILINE)
    assert exprs == [
        "time() - streamclean_last_success_timestamp_seconds > 26 * 3600",
        "streamclean_last_run_success == 0",
        "absent(streamclean_last_success_timestamp_seconds)",
    ]
    for name in re.findall(r"streamclean_\w+", alerts):
        assert name in metrics.FAMILIES


def test_clean_help_lists_every_exit_status():
    from click.testing import CliRunner

    from streamclean.cli import main

    shown = CliRunner().invoke(main, ["clean", "--help"]).output
    block = shown.split("Exit status:\n", 1)[1].split("\n\n", 1)[0]
    assert {int(status) for status in re.findall(r"^    (\d+) ", block, re.MULTILINE)} == EXIT_STATUSES

"""The README and the pages under docs/ say what the code does (issue 11, points 2, 4-7 and 9;
issue 22, point 1): the exit table, the metrics and their alerts, the cron lines and the systemd
unit; every relative link resolves; the README's usage names every command and option that
`--help` shows; the README stays a front door whose figures are performance.md's."""

import re
import unicodedata
from pathlib import Path

import click
import pytest

from conftest import ROOT
from streamclean import errors, metrics
from streamclean.cli import main

README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = ROOT / "docs"
CONTRACT = DOCS / "CONTRACT.md"
OPERATING = (DOCS / "operating.md").read_text(encoding="utf-8")
PERFORMANCE = (DOCS / "performance.md").read_text(encoding="utf-8")
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
EXIT_STATUSES = {errors.EXIT_FAILED, errors.EXIT_USAGE, errors.EXIT_CLEANED, errors.EXIT_TEMPFAIL, 0}


def _blocks(language: str, text: str = OPERATING) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


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
    assert len(lines) == 3
    streamclean, drop_in, inspect = lines
    assert re.search(r"&& timeout 2h /\S+/bin/streamclean clean ", streamclean)
    assert re.search(r"&& STREAMCLEAN_PYTHON=/\S+/bin/python \./scripts/run_async_retention_cleanup\.py ", drop_in)
    assert re.search(r"&& /\S+/bin/streamclean inspect .*--metrics-textfile /\S+/streamclean-store\.prom ", inspect)


def test_the_textfile_folder_is_debians():
    assert "/var/lib/node_exporter" not in README and "/var/lib/node_exporter" not in OPERATING
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
    table = set(re.findall(r"^\| `(streamclean_\w+)", OPERATING, re.MULTILINE))
    table |= set(re.findall(r"`, `(streamclean_\w+)`", OPERATING))
    assert table == set(metrics.FAMILIES) | set(metrics.STORE_FAMILIES)
    alerts = "\n".join(_blocks("yaml"))
    exprs = re.findall(r"expr: (.+?)(?:\s+#.*)?$", alerts, re.MULTILINE)
    assert exprs == [
        "time() - streamclean_last_success_timestamp_seconds > 26 * 3600",
        "streamclean_last_run_success == 0",
        "absent(streamclean_last_success_timestamp_seconds)",
        "streamclean_store_kept_bytes_per_day > 0",
        "predict_linear(streamclean_store_size_bytes[7d], 30 * 86400) > 10e9",
    ]
    for name in re.findall(r"streamclean_\w+", alerts):
        assert name in metrics.FAMILIES or name in metrics.STORE_FAMILIES


def test_clean_help_lists_every_exit_status():
    from click.testing import CliRunner

    shown = CliRunner().invoke(main, ["clean", "--help"]).output
    block = shown.split("Exit status:\n", 1)[1].split("\n\n", 1)[0]
    assert {int(status) for status in re.findall(r"^    (\d+) ", block, re.MULTILINE)} == EXIT_STATUSES


# Links: every relative link in the README and docs/*.md points at a file that exists and, with
# a fragment, at a heading of that file, by GitHub's rules for heading anchors.

_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The text without its fenced code blocks (a `#` there is a comment, not a heading)."""
    return _FENCE.sub("", text)


def github_anchor(heading: str) -> str:
    """GitHub's anchor for a heading: the text of its links, lower case, every character that is
    not a letter, digit, space, hyphen or underscore dropped, spaces turned into hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading's anchor; a repeated one gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", _prose(text), re.MULTILINE):
        anchor = github_anchor(heading)
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def relative_links(text: str) -> list[str]:
    return [t for t in _LINK.findall(_prose(text)) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_the_anchor_rule_is_githubs():
    assert github_anchor("Running it from cron — and the service") == "running-it-from-cron--and-the-service"
    assert github_anchor("What is in the store? `streamclean inspect`") == "what-is-in-the-store-streamclean-inspect"
    assert github_anchor("Monitoring: `--metrics-textfile`") == "monitoring---metrics-textfile"
    assert github_anchor("Nothing lost: what is guaranteed, and its limits") == (
        "nothing-lost-what-is-guaranteed-and-its-limits"
    )
    assert anchors("# A\n```sh\n# not a heading\n```\n## A\n") == {"a", "a-1"}
    assert relative_links("[x](a.md#b) [y](https://e.org) ![i](p.png)\n```\n[z](c.md)\n```") == ["a.md#b"]


def test_the_pages_exist():
    names = {page.name for page in PAGES}
    assert {"README.md", "operating.md", "archive.md", "performance.md", "design.md", "CONTRACT.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path):
    text = page.read_text(encoding="utf-8")
    broken = []
    for link in relative_links(text):
        path, _, fragment = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no such file")
        elif fragment and fragment not in anchors(target.read_text(encoding="utf-8")):
            broken.append(f"{link}: no such heading")
    assert not broken, broken


# The README's usage names every command and every option that `--help` shows.


def _usage_block() -> str:
    section = README.split("\n## Usage\n", 1)[1]
    return re.search(r"```\n(.*?)```", section, re.DOTALL).group(1)


def _usage_of(block: str) -> dict[str, str]:
    """Each command's lines of the usage block: a line `streamclean NAME ...` and the indented
    lines that follow it."""
    usage: dict[str, str] = {}
    name = None
    for line in block.splitlines():
        match = re.match(r"streamclean (\w+)", line)
        if match:
            name = match.group(1)
            usage[name] = usage.get(name, "") + line + "\n"
        elif line.startswith(" ") and name is not None:
            usage[name] += line + "\n"
        else:
            name = None
    return usage


def _context(command: click.Command, parent: click.Context | None = None) -> click.Context:
    """The context click builds for `command` (its settings, and those inherited from `parent`,
    such as the help option's names; click caches a command's help option on first use, so a
    context built any other way would change what later runs show)."""
    return command.make_context(command.name or "streamclean", [], parent=parent, resilient_parsing=True)


def _shown_options(command: click.Command, context: click.Context) -> set[str]:
    return {
        name
        for param in command.get_params(context)
        if isinstance(param, click.Option) and not param.hidden
        for name in (*param.opts, *param.secondary_opts)
    }


def _names(name: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def test_the_usage_names_every_command_and_every_option_help_shows():
    block = _usage_block()
    usage = _usage_of(block)
    assert isinstance(main, click.Group)
    assert set(main.commands) == set(usage) and len(main.commands) >= 3
    top = _context(main)
    missing = [name for name in sorted(_shown_options(main, top)) if not _names(name, block)]
    for command_name, command in main.commands.items():
        context = _context(command, top)
        help_option = command.get_help_option(context)
        help_names = set(help_option.opts) if help_option else set()
        assert help_names == {"-h", "--help"}
        for name in sorted(_shown_options(command, context)):
            where = block if name in help_names else usage[command_name]
            if not _names(name, where):
                missing.append(f"{command_name} {name}")
    assert not missing, missing


def test_the_usage_check_sees_a_missing_option():
    block = _usage_block().replace("[--archive-file PATH]", "")
    assert not _names("--archive-file", _usage_of(block)["clean"])
    assert _names("--archive-file", _usage_of(_usage_block())["clean"])


# A front door: short, and its figures are those of docs/performance.md.


def test_the_readme_is_a_front_door():
    assert len(README.splitlines()) <= 300


def test_the_readmes_figures_are_those_of_the_performance_page():
    measured = README.split("Measured on ", 1)[1].split("\n\n", 1)[0]
    date, commit = re.match(r"(\d{4}-\d\d-\d\d) \(commit ([0-9a-f]{7})", measured).groups()
    assert date in PERFORMANCE and f"commit {commit}" in PERFORMANCE
    figures = re.findall(r"(\d+\.\d+)(?: s\b|×| MiB)", measured)
    assert len(figures) >= 6
    on_page = re.findall(r"\d+\.\d+", PERFORMANCE)
    for figure in figures:
        places = len(figure.split(".")[1])
        assert any(f"{float(value):.{places}f}" == figure for value in on_page), figure

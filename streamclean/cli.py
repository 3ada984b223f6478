"""The command line: options in, one library call, the report out, errors as one line."""

from __future__ import annotations

import functools
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from . import __version__, signals
from .cleanup import clean
from .errors import EXIT_FAILED, StreamcleanError, UsageError
from .policy import (
    DEFAULT_EVENTS_TTL_SECONDS,
    DEFAULT_RESULTS_TTL_SECONDS,
    RetentionPolicy,
    parse_duration,
    parse_now,
)

DEFAULT_STORE_FILE = "runtime/async_jobs/store.v1.json"
ENV_STORE_FILE = "ASYNC_JOBS_STORE_FILE"
ENV_RESULTS_TTL = "ASYNC_JOB_RESULTS_RETENTION_SECONDS"
ENV_EVENTS_TTL = "ASYNC_JOB_EVENTS_RETENTION_SECONDS"


def clean_options(command):
    """The options of `streamclean clean`, shared with the drop-in script."""
    options = [
        click.option(
            "--store-file",
            metavar="PATH",
            help=f"The store to clean. [env {ENV_STORE_FILE}; default {DEFAULT_STORE_FILE}]",
        ),
        click.option(
            "--results-ttl-seconds",
            metavar="DUR",
            help=f"Keep results of terminal jobs this long: seconds or 7d/24h/15m/30s. "
            f"[env {ENV_RESULTS_TTL}; default {DEFAULT_RESULTS_TTL_SECONDS:g}]",
        ),
        click.option(
            "--events-ttl-seconds",
            metavar="DUR",
            help=f"Keep events of terminal jobs this long. [env {ENV_EVENTS_TTL}; "
            f"default {DEFAULT_EVENTS_TTL_SECONDS:g}]",
        ),
        click.option("--disable-results-retention", is_flag=True, help="Delete no results."),
        click.option("--disable-events-retention", is_flag=True, help="Delete no events."),
        click.option("--dry-run", is_flag=True, help="Report what would be deleted; write nothing."),
        click.option("--output-json", metavar="PATH", help="Also write the report to PATH."),
        click.option("--now", metavar="ISO-8601", help="Fix the clock (a naive time is UTC)."),
        click.option(
            "--lock-file",
            metavar="PATH",
            help="The lock that keeps cleanups apart. [default: <store>.lock]",
        ),
        click.option("--backup", is_flag=True, help="Keep the replaced store as <store>.bak."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def run_clean(runner: str, **options) -> None:
    """Parse what the options and environment say, clean, print the report; exit on failure."""
    try:
        policy, store_file = _settings(**options)
        signals.install()
        report = clean(
            store_file,
            policy,
            dry_run=options["dry_run"],
            lock_file=options["lock_file"],
            backup=options["backup"],
        )
        document = json.dumps(report.as_dict(runner), indent=2, ensure_ascii=False) + "\n"
        if options["output_json"]:
            _write_report(Path(options["output_json"]), document)
    except StreamcleanError as exc:
        _fail(runner, str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail(runner, "interrupted by SIGINT; the store was left unchanged", EXIT_FAILED)
    click.echo(document, nl=False)


def _settings(**options) -> tuple[RetentionPolicy, str]:
    """Everything is checked here, before the store is opened."""
    store_file = options["store_file"] or os.environ.get(ENV_STORE_FILE) or DEFAULT_STORE_FILE
    results_ttl = _ttl(
        options["results_ttl_seconds"], "--results-ttl-seconds", ENV_RESULTS_TTL, DEFAULT_RESULTS_TTL_SECONDS
    )
    events_ttl = _ttl(
        options["events_ttl_seconds"], "--events-ttl-seconds", ENV_EVENTS_TTL, DEFAULT_EVENTS_TTL_SECONDS
    )
    if options["disable_results_retention"]:
        results_ttl = None
    if options["disable_events_retention"]:
        events_ttl = None
    now = parse_now(options["now"]) if options["now"] else datetime.now(timezone.utc)
    return RetentionPolicy.build(now, results_ttl, events_ttl), store_file


def _ttl(option: str | None, name: str, env: str, default: float) -> float:
    if option is not None:
        return parse_duration(option, name)
    if env in os.environ:
        return parse_duration(os.environ[env], env)
    return default


def _write_report(path: Path, document: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temp.write_text(document, encoding="utf-8")
        os.replace(temp, path)
    except OSError as exc:
        raise StreamcleanError(f"cannot write the report to {path}: {exc.strerror}") from None


def _fail(runner: str, message: str, code: int) -> None:
    click.echo(f"{runner}: error: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="streamclean")
def main() -> None:
    """Streaming retention cleanup for the async-job store (store.v1.json).

    Deletes the expired results and events of terminal jobs without ever holding the store
    in memory, and swaps the new store in atomically.
    """


@main.command("clean")
@clean_options
def clean_command(**options) -> None:
    """Delete expired results and events of terminal jobs from the store.

    Prints the report as JSON on stdout. Exit status: 0 done, 1 failed (store unchanged),
    2 usage error, 75 the store changed during the run or another cleanup holds the lock.

    \b
    Examples:
      streamclean clean --store-file runtime/async_jobs/store.v1.json --dry-run
      streamclean clean --results-ttl-seconds 7d --events-ttl-seconds 3d \\
          --output-json artifacts/async/retention-latest.json
    """
    run_clean("streamclean", **options)


def drop_in_command(runner: str) -> click.Command:
    """The old script's command line, for `scripts/run_async_retention_cleanup.py`."""

    @click.command(context_settings={"help_option_names": ["-h", "--help"]})
    @clean_options
    @functools.wraps(clean_command.callback)
    def command(**options) -> None:
        run_clean(runner, **options)

    return command

"""The command line: options in, one library call, the report out, errors as one line."""

from __future__ import annotations

import errno
import gc
import io
import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial

import click

from . import __version__, signals
from .cleanup import clean
from .errors import StreamcleanError, UsageError
from .inspect import DEFAULT_GROWTH_WINDOW_SECONDS, inspect_store, render_text
from .metrics import write_store_textfile
from .outcome import Run, as_streamclean_errors, check_metrics_output, store_file_mode
from .outputs import ARCHIVE_DIR, LOCK
from .policy import (
    DEFAULT_EVENTS_TTL_SECONDS,
    DEFAULT_RESULTS_TTL_SECONDS,
    RetentionPolicy,
    parse_duration,
    parse_now,
)
from .progress import progress_on_stderr
from .report import CleanupReport
from .units import megabytes

DEFAULT_STORE_FILE = "runtime/async_jobs/store.v1.json"
ENV_STORE_FILE = "ASYNC_JOBS_STORE_FILE"
ENV_RESULTS_TTL = "ASYNC_JOB_RESULTS_RETENTION_SECONDS"
ENV_EVENTS_TTL = "ASYNC_JOB_EVENTS_RETENTION_SECONDS"
ENV_JOBS_TTL = "STREAMCLEAN_JOBS_RETENTION_SECONDS"
ENV_READER = "STREAMCLEAN_READER"
ENV_WORKERS = "STREAMCLEAN_WORKERS"

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

CLEAN_PASSES = (
    "index",
    "filter",
)  # what the progress line's ETA counts on; `inspect` reads the same

# Paths complete as paths in the shell; checking them is left to the run, which words its own
# errors and exit statuses (a missing store is 1, not click's usage error 2).
PATH = click.Path(exists=False, file_okay=True, dir_okay=True)

# The clocks, as attributes so tests can fix them: one for durations, one for timestamps.
_elapsed_clock = time.monotonic
_wall_clock = time.time


# -- options -------------------------------------------------------------------------------------
# The environment is read by `_settings`, not by click's `envvar=`: a bad value must be refused
# with the variable's name, and an option must win over it. The help shows both, as click would.


def _with(command, options):
    for option in reversed(options):
        command = option(command)
    return command


def store_options(command):
    """Which store and which rule: the options `clean` and `inspect` share."""
    return _with(
        command,
        [
            click.option(
                "--store-file",
                metavar="PATH",
                type=PATH,
                help=f"The store. [env var: {ENV_STORE_FILE}; default: {DEFAULT_STORE_FILE}]",
            ),
            click.option(
                "--results-ttl-seconds",
                metavar="DUR",
                help="Keep results of terminal jobs this long: seconds or 7d/24h/15m/30s. "
                f"[env var: {ENV_RESULTS_TTL}; default: {DEFAULT_RESULTS_TTL_SECONDS:g} (7d)]",
            ),
            click.option(
                "--events-ttl-seconds",
                metavar="DUR",
                help="Keep events of terminal jobs this long. "
                f"[env var: {ENV_EVENTS_TTL}; default: {DEFAULT_EVENTS_TTL_SECONDS:g} (3d)]",
            ),
            click.option("--disable-results-retention", is_flag=True, help="Delete no results."),
            click.option("--disable-events-retention", is_flag=True, help="Delete no events."),
            click.option(
                "--jobs-ttl-seconds",
                metavar="DUR",
                help="Job retention: remove terminal jobs that finished this long ago, with their "
                "events, results and notifications. [env var: " + ENV_JOBS_TTL + "; default: off]",
            ),
            click.option(
                "--disable-jobs-retention",
                is_flag=True,
                help="Remove no jobs (overrides the env var).",
            ),
            click.option(
                "--now",
                metavar="ISO-8601",
                help="Fix the clock (a naive time is UTC). [default: the current time]",
            ),
        ],
    )


def quiet_option(what: str):
    return click.option(
        "-q",
        "--quiet",
        is_flag=True,
        help=f"{what}: stderr stays empty unless the run fails. "
        "(Progress is only ever shown when stderr is a terminal.)",
    )


def clean_options(command):
    """The options of `streamclean clean`, shared with the drop-in script."""
    return _with(
        command,
        [
            store_options,
            click.option(
                "--dry-run", is_flag=True, help="Report what would be deleted; write nothing."
            ),
            click.option(
                "--output-json",
                metavar="PATH",
                type=PATH,
                help="Also write the report to PATH, atomically (missing folders are created).",
            ),
            click.option(
                "--lock-file",
                metavar="PATH",
                type=PATH,
                help="The lock that keeps cleanups apart. [default: <store>.lock]",
            ),
            click.option("--backup", is_flag=True, help="Keep the replaced store as <store>.bak."),
            click.option(
                "--archive-file",
                metavar="PATH",
                help="Keep every removed record in PATH (JSON Lines; gzip if PATH ends in .gz) for "
                "`streamclean restore`. PATH must not exist.",
            ),
            click.option(
                "--archive-dir",
                metavar="DIR",
                help="Keep every removed record in an archive the run names in DIR: "
                "<store name>.<UTC time of --now, YYYYMMDDTHHMMSSZ>.jsonl.gz (-2, -3, ... before .jsonl.gz "
                "if taken; no file is ever replaced). DIR is created if missing.",
            ),
            click.option(
                "--archive-keep",
                metavar="DUR",
                help="With --archive-dir: after a successful run, remove this store's archives there "
                "whose run was longer ago than DUR (30d, 12h, seconds); nothing else is touched.",
            ),
            click.option(
                "--metrics-textfile",
                metavar="PATH",
                type=PATH,
                help="Write the run's Prometheus metrics to PATH (a *.prom file in node_exporter's "
                "textfile folder: /var/lib/prometheus/node-exporter on Debian; it must exist), "
                "atomically, also when the run fails.",
            ),
            quiet_option("No progress display and no summary line"),
        ],
    )


# -- running clean -------------------------------------------------------------------------------


def _freeze_what_is_imported() -> None:
    """The process is ours, and what it imported lives as long as it does: frozen, the cyclic
    collector stops walking those objects again each time a few hundred records have passed,
    and once more at exit."""
    gc.freeze()


def run_clean(runner: str, *, summary: bool = True, **options) -> None:
    """Clean as the options and environment say: the report on stdout, a summary on stderr;
    on failure one line on stderr and the exit status (`outcome.Run` decides them)."""
    quiet = options.pop("quiet")
    metrics_file = options.pop("metrics_textfile")
    run = Run(runner, "cleaned", _elapsed_clock, _wall_clock)
    _freeze_what_is_imported()
    with run.going():
        store_file = _store_file(options)
        archive_file, archive_dir = (
            options.get("archive_file") or None,
            options.pop("archive_dir") or None,
        )
        run_files = [
            (LOCK, options["lock_file"]),
            ("--archive-file", archive_file),
            (ARCHIVE_DIR, archive_dir),
        ]
        run.check_metrics(store_file, metrics_file, run_files)
        policy, store_file = _settings(**options)
        choice = pipeline_choice()
        archive_keep = options.pop("archive_keep")
        if archive_keep is not None:
            archive_keep = parse_duration(archive_keep, "--archive-keep")
        run.check_report(store_file, options["output_json"], run_files)
        with progress_on_stderr(quiet, CLEAN_PASSES) as progress:
            report = clean(
                store_file,
                policy,
                dry_run=options["dry_run"],
                lock_file=options["lock_file"],
                backup=options["backup"],
                progress=progress,
                archive_file=archive_file,
                archive_dir=archive_dir,
                archive_keep=archive_keep,
                **choice,
            )
        run.finished(report, report.as_dict(runner))
    _exit(run, summary_line if summary and not quiet else None)


def _exit(run: Run, summary: Callable[[str, CleanupReport, float], str] | None) -> None:
    """Show how the run ended and exit with its status. Signals wait meanwhile, and are
    ignored from then on: the status is final (one that came is in the account)."""
    with signals.critical_section():
        status = run.conclude(_show, None if summary is None else partial(summary, run.runner))
        signals.ignore()
    if status:
        sys.exit(status)


def _show(text: str, err: bool) -> None:
    """Print `text` on stdout (or stderr) whole, or raise OSError; after a failure, what is
    left of it is dropped, so that exiting adds no complaint of its own."""
    stream = sys.stderr if err else sys.stdout
    if stream is None:  # started with the descriptor closed
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))
    try:
        click.echo(text, nl=False, err=err)
    except (OSError, ValueError) as exc:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass
        raise OSError(getattr(exc, "errno", None) or errno.EBADF, str(exc)) from None


def summary_line(runner: str, report: CleanupReport, seconds: float) -> str:
    """One line for a person: what went, what stayed, how much space, how long."""
    deleted = f"{_count(report.results.delete_count, 'result')} and {_count(report.events.delete_count, 'event')}"
    if (
        report.policy.jobs.enabled
    ):  # job retention: the jobs too (their results and events are counted above)
        deleted = (
            f"{_count(report.jobs.delete_count, 'job')}, {_count(report.results.delete_count, 'result')}, "
            f"{_count(report.events.delete_count, 'event')} and "
            f"{_count(report.with_jobs.notifications, 'notification')}"
        )
    kept = f"{_count(report.results.kept_count, 'result')} and {_count(report.events.kept_count, 'event')}"
    freed = megabytes(report.bytes_before - report.bytes_after)
    pruned = (
        "" if not report.archives_pruned else _count(len(report.archives_pruned), "old archive")
    )
    if report.dry_run:
        pruned = f"; would remove {pruned}" if pruned else ""
        return f"{runner}: dry run: would delete {deleted}, keep {kept}; would free {freed}{pruned}; {seconds:.1f} s"
    pruned = f"; removed {pruned}" if pruned else ""
    return f"{runner}: deleted {deleted}, kept {kept}; {freed} freed in {seconds:.1f} s{pruned}"


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


# -- settings, shared by every command ---------------------------------------------------------


def _settings(**options) -> tuple[RetentionPolicy, str]:
    """Everything is checked here, before the store is opened."""
    store_file = _store_file(options)
    results_ttl = _ttl(
        options["results_ttl_seconds"],
        "--results-ttl-seconds",
        ENV_RESULTS_TTL,
        DEFAULT_RESULTS_TTL_SECONDS,
    )
    events_ttl = _ttl(
        options["events_ttl_seconds"],
        "--events-ttl-seconds",
        ENV_EVENTS_TTL,
        DEFAULT_EVENTS_TTL_SECONDS,
    )
    if options["disable_results_retention"]:
        results_ttl = None
    if options["disable_events_retention"]:
        events_ttl = None
    jobs_ttl = _ttl(options.get("jobs_ttl_seconds"), "--jobs-ttl-seconds", ENV_JOBS_TTL, None)
    if options.get("disable_jobs_retention"):
        jobs_ttl = None
    now = parse_now(options["now"]) if options["now"] else datetime.now(UTC)
    return RetentionPolicy.build(now, results_ttl, events_ttl, jobs_ttl), store_file


def _store_file(options) -> str:
    return options["store_file"] or os.environ.get(ENV_STORE_FILE) or DEFAULT_STORE_FILE


def pipeline_choice() -> dict:
    """The reader and the worker count the environment asks for, checked before the store is
    opened (the library takes them as parameters; only the command line reads the variables)."""
    from .cleanup import check_workers
    from .readers import check_reader

    return {
        "reader": check_reader(os.environ.get(ENV_READER, "auto").strip() or "auto", ENV_READER),
        "workers": check_workers(
            os.environ.get(ENV_WORKERS, "auto").strip() or "auto", ENV_WORKERS
        ),
    }


def _ttl(option: str | None, name: str, env: str, default: float | None) -> float | None:
    if option is not None:
        return parse_duration(option, name)
    if env in os.environ:
        return parse_duration(os.environ[env], env)
    return default


def _say_error(runner: str, message: str) -> None:
    click.echo(f"{runner}: error: {message}", err=True)


@contextmanager
def _errors_as_one_line(runner: str):
    try:
        with as_streamclean_errors():
            yield
    except StreamcleanError as exc:
        _say_error(runner, str(exc))
        sys.exit(exc.exit_code)


# -- the commands ----------------------------------------------------------------------------------


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="streamclean")
def main() -> None:
    """Streaming retention cleanup for the async-job store (store.v1.json).

    Deletes the expired results and events of terminal jobs without ever holding the store
    in memory, and swaps the new store in atomically. `inspect` shows what is in a store and
    what a cleanup would free; `clean` does it. See `streamclean COMMAND --help`.

    \b
    Examples:
      streamclean inspect --store-file runtime/async_jobs/store.v1.json
      streamclean clean --dry-run
      streamclean clean --quiet --metrics-textfile /var/lib/prometheus/node-exporter/streamclean.prom

    \b
    Shell completion (bash; zsh and fish likewise with zsh_source, fish_source):
      eval "$(_STREAMCLEAN_COMPLETE=bash_source streamclean)"
    """


@main.command(
    "clean",
    context_settings=CONTEXT_SETTINGS,
    short_help="Delete expired results and events of terminal jobs.",
)
@clean_options
def clean_command(**options) -> None:
    """Delete expired results and events of terminal jobs from the store.

    Prints the report as JSON on stdout and a one-line summary on stderr; shows progress on
    stderr while it works if stderr is a terminal. The outputs (--output-json,
    --metrics-textfile) are checked before the store is read.

    \b
    Exit status:
      0   done
      1   failed; the store is byte for byte as it was
      2   usage error
      74  the store was cleaned, but something after that failed (the report, the metrics
          file or stdout, the archive's name, a signal, a swap that could not be undone): see
          the message; the report is on stdout when there is one
      75  try again later: another cleanup holds the lock, or the store changed during the run

    \b
    Examples:
      streamclean clean --store-file runtime/async_jobs/store.v1.json --dry-run
      streamclean clean --results-ttl-seconds 7d --events-ttl-seconds 3d \\
          --output-json artifacts/async/retention-latest.json
      streamclean clean --quiet --metrics-textfile /var/lib/prometheus/node-exporter/streamclean.prom
    """
    run_clean("streamclean", **options)


@main.command(
    "inspect",
    context_settings=CONTEXT_SETTINGS,
    short_help="Show what is in the store and what clean would delete.",
)
@store_options
@click.option(
    "--json", "as_json", is_flag=True, help="Print the inspection as JSON instead of a table."
)
@click.option(
    "--growth-window",
    metavar="DUR",
    help="The growth is that of the records dated this long before now. [default: 14d]",
)
@click.option(
    "--metrics-textfile",
    metavar="PATH",
    type=PATH,
    help="Also write the store's sizes, growth and level as Prometheus metrics to PATH (a *.prom "
    "file of its own in node_exporter's textfile folder; it must exist), atomically.",
)
@quiet_option("No progress display")
def inspect_command(
    as_json: bool, quiet: bool, growth_window: str | None, metrics_textfile: str | None, **options
) -> None:
    """Show what is in the store, how fast it grows, and what `clean` with the same TTLs would delete.

    Read-only and streamed like `clean`: section sizes and entries; how many bytes a day the
    store grew over the growth window (from the records' own timestamps), how many of those
    the TTLs never remove, and where the store levels off (or which option would make it);
    jobs by status; results and events by age in days; and the records and bytes a cleanup
    would free (the counts of `clean --dry-run`). Takes no lock and writes nothing but the
    metrics file, if asked for (checked before the store is read). Exit status as for `clean`.

    \b
    Examples:
      streamclean inspect --store-file runtime/async_jobs/store.v1.json
      streamclean inspect --results-ttl-seconds 3d --events-ttl-seconds 1d --jobs-ttl-seconds 30d
      streamclean inspect --json | jq .growth
      streamclean inspect --quiet --metrics-textfile /var/lib/prometheus/node-exporter/streamclean-store.prom
    """
    _freeze_what_is_imported()
    with _errors_as_one_line("streamclean"):
        window = _growth_window(growth_window)
        if metrics_textfile:
            check_metrics_output(_store_file(options), metrics_textfile)
        policy, store_file = _settings(**options)
        choice = pipeline_choice()
        with progress_on_stderr(quiet, CLEAN_PASSES) as progress:
            inspection = inspect_store(
                store_file, policy, progress=progress, growth_window=window, **choice
            )
        if metrics_textfile:
            write_store_textfile(metrics_textfile, inspection, store_file_mode(store_file))
    if as_json:
        click.echo(json.dumps(inspection.as_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(render_text(inspection), nl=False)


def _growth_window(option: str | None) -> float:
    if option is None:
        return DEFAULT_GROWTH_WINDOW_SECONDS
    seconds = parse_duration(option, "--growth-window")
    if seconds <= 0:
        raise UsageError(
            f"--growth-window: {option!r} is no time at all", "give a duration such as 14d"
        )
    return seconds


def drop_in_command(runner: str) -> click.Command:
    """The old script's command line, for `scripts/run_async_retention_cleanup.py`.

    Its stderr stays empty on success, as the old script's did (no summary line): callers that
    treat any stderr output as a failure keep working. Progress still shows on a terminal.
    """

    @click.command(context_settings=CONTEXT_SETTINGS, help=_DROP_IN_HELP.format(runner=runner))
    @click.version_option(__version__, "-V", "--version", prog_name=runner)
    @clean_options
    def command(**options) -> None:
        run_clean(runner, summary=False, **options)

    return command


_DROP_IN_HELP = """Delete expired results and events of terminal jobs from the async-job store.

A drop-in replacement for the service's retention script, backed by streamclean: the same
options, environment and JSON report on stdout (with "runner": "{runner}"). Unlike `streamclean
clean` it prints no summary line: stderr stays empty on success. Exit status: 0 done, 1 failed
(store unchanged), 2 usage error, 74 the store was cleaned but something after that failed
(see the message), 75 try again later.

When the python3 running it cannot import streamclean (cron's usually cannot), the script
runs itself once more with the interpreter named by STREAMCLEAN_PYTHON, or else with
.venv/bin/python in the folder above scripts/.

\b
Examples:
  {runner} --dry-run
  {runner} --results-ttl-seconds 604800 --events-ttl-seconds 259200 \\
      --output-json artifacts/async/retention-latest.json
"""


# -- restore ---------------------------------------------------------------------------------------


@main.command(
    "restore",
    context_settings=CONTEXT_SETTINGS,
    short_help="Put back what a cleanup archived with --archive-file.",
)
@click.option(
    "--store-file",
    metavar="PATH",
    help=f"The store. [env var: {ENV_STORE_FILE}; default: {DEFAULT_STORE_FILE}]",
)
@click.option(
    "--archive-file",
    metavar="PATH",
    multiple=True,
    help="An archive a `clean --archive-file` wrote (gzip or plain JSON Lines); may be given more than once.",
)
@click.option(
    "--archive-dir",
    metavar="DIR",
    help="Every streamclean archive in DIR (recognised by its first line, whatever its name).",
)
@click.option(
    "--job",
    "jobs",
    metavar="ID",
    multiple=True,
    help="Only this job's records: the job, its events, results and notifications; may be given more than once.",
)
@click.option(
    "--any-store-path",
    is_flag=True,
    help="Restore archives whose header names another store path (a store that was moved).",
)
@click.option("--dry-run", is_flag=True, help="Report what would be put back; write nothing.")
@click.option(
    "--lock-file", metavar="PATH", help="The lock that keeps runs apart. [default: <store>.lock]"
)
@click.option("--output-json", metavar="PATH", help="Also write the report to PATH.")
@quiet_option("No progress display")
def restore_command(
    store_file,
    archive_file,
    archive_dir,
    jobs,
    any_store_path,
    dry_run,
    lock_file,
    output_json,
    quiet,
) -> None:
    """Put back into the store, as it is now, every record the archives hold that is missing from it.

    Several archives are restored as if one at a time, newest first (by the time in their
    header). Records already present are left as they are and counted. Onto the store the
    cleanup produced, the store comes back as it was before the cleanup, byte for byte; onto
    a store the service has changed since, the result is what the service would write for
    today's state plus the restored records. An archive of another store path is refused (exit
    1) unless --any-store-path. Prints a JSON report. Exit status as for `clean`; with --job,
    1 also when none of the jobs is in any archive.

    \b
    Examples:
      streamclean restore --archive-file archive-20261128T031700.jsonl.gz --dry-run
      streamclean restore --archive-dir /var/backups/streamclean --job 3f2a9c
      streamclean restore --store-file runtime/async_jobs/store.v1.json \\
          --archive-file archive-20261128T031700.jsonl.gz --archive-file archive-20261127T031700.jsonl.gz
    """
    from .restore import archive_paths, restore

    run = Run("streamclean", "restored", _elapsed_clock, _wall_clock)
    with run.going():
        store = store_file or os.environ.get(ENV_STORE_FILE) or DEFAULT_STORE_FILE
        read = archive_paths(archive_file, archive_dir)[
            0
        ]  # the report may take none of their names
        run.check_report(
            store, output_json, [(LOCK, lock_file)], [("--archive-file", path) for path in read]
        )
        choice = pipeline_choice()
        with progress_on_stderr(quiet) as progress:
            report = restore(
                store,
                list(archive_file),
                archive_dir=archive_dir,
                jobs=list(jobs) or None,
                any_store_path=any_store_path,
                dry_run=dry_run,
                lock_file=lock_file,
                reader=choice["reader"],
                progress=progress,
            )
        run.finished(report, report.as_dict())
    _exit(run, None)

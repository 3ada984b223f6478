#!/usr/bin/env python3
"""Drop-in replacement for the service's retention script, backed by streamclean.

Same options, environment and report as before (with "runner": "run_async_retention_cleanup.py"),
so cron lines and dashboards keep working; see `--help`.

The old script needed only the standard library, so cron ran it with whatever `python3` its
PATH found (`/usr/bin/python3`). streamclean needs orjson and click. When the interpreter
running this file cannot import streamclean, the script runs itself once more, with the first
of these that exists:

- the interpreter named by STREAMCLEAN_PYTHON;
- `.venv/bin/python` in the folder above `scripts/`: a streamclean checkout set up as the
  README says, or the service's repository with streamclean installed in its `.venv`.

If there is none, or that one cannot import streamclean either, it says in one line what to
install, and exits 1 having read nothing.
"""

import os
import sys
from pathlib import Path

RUNNER = "run_async_retention_cleanup.py"
ENV_PYTHON = "STREAMCLEAN_PYTHON"
_GUARD = "STREAMCLEAN_DROP_IN_REEXEC"  # set for the one re-execution: never a second
_FOLDER = Path(__file__).resolve().parents[1]  # the checkout, or the repository it was copied into


def _drop_in_command():
    if sys.version_info < (3, 11):
        raise ImportError("streamclean needs Python 3.11 or later")
    try:
        from streamclean.cli import drop_in_command
    except ImportError:
        if (_FOLDER / "streamclean" / "__init__.py").is_file() and str(_FOLDER) not in sys.path:
            sys.path.insert(0, str(_FOLDER))  # run from a checkout without installing the package
            return _drop_in_command()
        raise
    return drop_in_command


def _other_interpreters() -> list:
    named = os.environ.get(ENV_PYTHON)
    candidates = [named] if named else []
    candidates.append(str(_FOLDER / ".venv" / "bin" / "python"))
    # Not resolved: a venv's python is a link to the interpreter it was made from, which may
    # be this one, but it sees other packages.
    here = os.path.abspath(sys.executable)
    return [c for c in candidates if os.access(c, os.X_OK) and os.path.abspath(c) != here]


def _run_elsewhere_or_explain(problem: Exception) -> None:
    if os.environ.get(_GUARD) != "1":
        for python in _other_interpreters():
            os.environ[_GUARD] = "1"
            try:
                os.execv(python, [python, os.path.abspath(__file__), *sys.argv[1:]])
            except OSError:
                continue
    sys.stderr.write(
        f"{RUNNER}: error: {sys.executable} cannot import streamclean ({problem}); "
        "in the streamclean checkout run `python3 -m venv .venv && .venv/bin/pip install -e .`, "
        f"or install streamclean (pip install streamclean) and set {ENV_PYTHON} to that Python\n"
    )
    sys.exit(1)


if __name__ == "__main__":
    try:
        command = _drop_in_command()
    except Exception as exc:  # ImportError, or an interpreter too old to read streamclean
        _run_elsewhere_or_explain(exc)
    os.environ.pop(_GUARD, None)
    command(RUNNER)(prog_name=RUNNER)

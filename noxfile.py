"""The test suite on every Python streamclean supports, and the linters.

    nox -s tests          the full suite on 3.11 (what the README's test command runs)
    nox -s tests_other    the version-sensitive tests on 3.12 and 3.13
    nox -s lint           ruff check, ruff format --check and mypy

The interpreters come from PATH or a version manager (pyenv); a missing one is an error, never
a skipped session, and none is downloaded. `.ci/run` runs tests_other and lint after the
README's test command.
"""

import nox

nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"
nox.options.sessions = ["tests", "tests_other", "lint"]

# On the other versions: what could differ between Pythons. The oracle's byte-for-byte
# agreement (json's output), both readers and the block path, msgspec's agreement with the
# stdlib, timestamp parsing (datetime.fromisoformat changed across versions), the crash
# guarantees (os, signals, fork) and the command line with its exit statuses; and the growth
# tally's float sums, held bit for bit to a record at a time (3.12's sum() rounds otherwise).
OTHER_VERSION_TESTS = [
    "tests/test_oracle_agreement.py",
    "tests/test_layout_reader.py",
    "tests/test_blocks.py",
    "tests/test_general_reader.py",
    "tests/test_reader_choice.py",
    "tests/test_fields.py",
    "tests/test_policy.py",
    "tests/test_judge.py",
    "tests/test_pass2.py",
    "tests/test_crash.py",
    "tests/test_cli.py",
    "tests/test_exit_status.py",
    "tests/test_inspect.py",
    "tests/test_inspect_blocks.py",
    "tests/test_growth.py",
]


def _install(session: nox.Session) -> None:
    session.install("-q", "-e", ".[test]")


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """The full suite (pytest's own exit status: 5, no tests collected, fails too)."""
    _install(session)
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=["3.12", "3.13"])
def tests_other(session: nox.Session) -> None:
    _install(session)
    session.run("python", "-m", "pytest", *(session.posargs or OTHER_VERSION_TESTS))


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    _install(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")

"""The drop-in script under cron (issue 11, point 3): cron runs it with `PATH=/usr/bin:/bin`,
whose `python3` lacks orjson and click. It must find an interpreter that has them, run itself
there once, or say in one line what to install — never a traceback."""

import json
import sys

import pytest

from conftest import NOW_ISO, service_bytes, small_state
from deployments import (
    DROP_IN,
    copy_checkout,
    cron_env,
    imports_streamclean_deps,
    run,
    store_in,
    system_python,
    venv,
)

pytestmark = pytest.mark.slow

SYSTEM_PYTHON = system_python()
needs_system_python = pytest.mark.skipif(
    SYSTEM_PYTHON is None, reason="no python3 on cron's PATH (/usr/bin:/bin)"
)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """A streamclean checkout set up as the README's first command does: a .venv with the
    dependencies (made here without pip, by a .pth file, for speed)."""
    folder = copy_checkout(tmp_path_factory.mktemp("checkout"))
    venv(folder / ".venv", with_deps=True)
    return folder


def _report_args(store) -> list[str]:
    return [
        "--store-file",
        str(store),
        "--now",
        NOW_ISO,
        "--output-json",
        "artifacts/async/retention-cron.json",
    ]


def _assert_cleaned(done, folder, store, old: bytes) -> None:
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    assert report["runner"] == DROP_IN and report["rewritten"] is True
    assert (
        json.loads((folder / "artifacts" / "async" / "retention-cron.json").read_text()) == report
    )
    assert len(store.read_bytes()) < len(old)


@needs_system_python
def test_the_design_notes_cron_line_works_in_a_checkout(checkout, tmp_path):
    """`cd <checkout> && ./scripts/run_async_retention_cleanup.py ...`, verbatim, as cron runs it."""
    if imports_streamclean_deps(SYSTEM_PYTHON):
        pytest.skip(
            f"{SYSTEM_PYTHON} has orjson and click here: this line would not need the re-execution"
        )
    old = service_bytes(small_state())
    store = store_in(tmp_path, old)
    line = f"cd {checkout} && ./scripts/{DROP_IN} " + " ".join(_report_args(store))
    done = run(["/bin/sh", "-c", line], cwd=tmp_path)
    _assert_cleaned(done, checkout, store, old)


@pytest.mark.parametrize(
    "python",
    [
        pytest.param(SYSTEM_PYTHON, id="cron-python3", marks=needs_system_python),
        pytest.param(sys.executable, id="the-venvs-own-base"),  # the .venv's python links to it
    ],
)
def test_an_interpreter_without_the_dependencies_runs_the_script_in_the_checkouts_venv(
    checkout, tmp_path, python
):
    """Whatever this host's python3 has: with -I -S it sees no site-packages at all."""
    old = service_bytes(small_state())
    store = store_in(tmp_path, old)
    done = run([python, "-I", "-S", f"scripts/{DROP_IN}", *_report_args(store)], cwd=checkout)
    _assert_cleaned(done, checkout, store, old)


@needs_system_python
@pytest.mark.parametrize("how", ["STREAMCLEAN_PYTHON", ".venv"])
def test_copied_into_the_services_repository_it_finds_streamclean(checkout, tmp_path, how):
    service = tmp_path / "service"
    (service / "scripts").mkdir(parents=True)
    (service / "scripts" / DROP_IN).write_bytes((checkout / "scripts" / DROP_IN).read_bytes())
    (service / "scripts" / DROP_IN).chmod(0o755)
    env = cron_env()
    if how == "STREAMCLEAN_PYTHON":
        env["STREAMCLEAN_PYTHON"] = str(
            venv(tmp_path / "elsewhere", with_deps=True, importable=checkout)
        )
    else:
        venv(service / ".venv", with_deps=True, importable=checkout)  # streamclean installed there
    old = service_bytes(small_state())
    store = store_in(service, old)
    done = run(
        [SYSTEM_PYTHON, "-I", "-S", f"scripts/{DROP_IN}", *_report_args(store)],
        cwd=service,
        env=env,
    )
    _assert_cleaned(done, service, store, old)


def _assert_one_line_saying_what_to_install(done, python, store, old: bytes) -> None:
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(
        f"{DROP_IN}: error: {python} cannot import streamclean (No module named "
    )
    assert lines[0].endswith("(pip install streamclean) and set STREAMCLEAN_PYTHON to that Python")
    assert store.read_bytes() == old


@needs_system_python
def test_with_nothing_to_find_it_says_what_to_install_in_one_line(checkout, tmp_path):
    service = tmp_path / "service"
    (service / "scripts").mkdir(parents=True)
    (service / "scripts" / DROP_IN).write_bytes((checkout / "scripts" / DROP_IN).read_bytes())
    old = service_bytes(small_state())
    store = store_in(service, old)
    done = run(
        [SYSTEM_PYTHON, "-I", "-S", f"scripts/{DROP_IN}", "--store-file", str(store)], cwd=service
    )
    _assert_one_line_saying_what_to_install(done, SYSTEM_PYTHON, store, old)


@needs_system_python
def test_it_runs_itself_again_only_once(checkout, tmp_path):
    """Both STREAMCLEAN_PYTHON and the .venv name interpreters that cannot import streamclean:
    one re-execution (the message names the first), then the line; never a loop between them."""
    service = tmp_path / "service"
    (service / "scripts").mkdir(parents=True)
    (service / "scripts" / DROP_IN).write_bytes((checkout / "scripts" / DROP_IN).read_bytes())
    venv(service / ".venv", with_deps=False)
    empty = venv(tmp_path / "empty", with_deps=False)
    old = service_bytes(small_state())
    store = store_in(service, old)
    env = cron_env(STREAMCLEAN_PYTHON=str(empty))
    done = run(
        [SYSTEM_PYTHON, "-I", "-S", f"scripts/{DROP_IN}", "--store-file", str(store)],
        cwd=service,
        env=env,
    )
    _assert_one_line_saying_what_to_install(done, empty, store, old)

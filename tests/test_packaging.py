"""The package as it is shipped (issue 11, point 8, and the README's cron line, point 2): the
sdist carries what its tests need and they collect; the wheel, installed, runs without a
checkout, the drop-in included, under cron's environment."""

import json
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from conftest import NOW_ISO, service_bytes, small_state
from deployments import DROP_IN, ROOT, run, store_in, venv

pytestmark = pytest.mark.slow

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", ".nox", "__pycache__", "build", "dist", "*.egg-info", "artifacts", "runtime", ".hypothesis"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The sdist and the wheel, built offline from a copy of the checkout."""
    pytest.importorskip("wheel", reason="building a wheel offline needs `wheel`: pip install '.[test]'")
    base = tmp_path_factory.mktemp("package")
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=_NOT_SOURCE)
    dist = base / "dist"
    sdist = subprocess.run(
        [sys.executable, "-c", f"from setuptools import build_meta; print(build_meta.build_sdist({str(dist)!r}))"],
        cwd=src, capture_output=True, text=True, timeout=120,
    )
    assert sdist.returncode == 0, sdist.stderr
    wheel = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(dist), str(src)],
        capture_output=True, text=True, timeout=120,
    )
    assert wheel.returncode == 0, wheel.stderr
    return dist / sdist.stdout.split()[-1], next(dist.glob("*.whl"))


def test_the_sdist_carries_every_test_helper_script_and_document(built):
    sdist, _ = built
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    patterns = ("tests/*.py", "scripts/*.py", "docs/*.md")
    needed = {str(path.relative_to(ROOT)) for pattern in patterns for path in ROOT.glob(pattern)}
    assert {"tests/conftest.py", "tests/processes.py", "scripts/generate_store.py", "docs/CONTRACT.md"} <= needed
    assert needed - names == set()


def test_the_sdists_tests_collect(built, tmp_path):
    sdist, _ = built
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (unpacked,) = tmp_path.iterdir()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=unpacked, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "error" not in done.stdout.splitlines()[-1], done.stdout[-3000:]


def test_the_wheel_holds_the_package_and_the_drop_in(built):
    _, wheel = built
    names = zipfile.ZipFile(wheel).namelist()
    assert f"streamclean-{VERSION}.data/scripts/{DROP_IN}" in names
    assert {"streamclean/cli.py", "streamclean/atomicfile.py"} <= set(names)
    assert not [name for name in names if name.startswith(("tests/", "scripts/", "benchmarks/"))]


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory):
    """A venv with the wheel installed (and orjson and click), far from any checkout."""
    _, wheel = built
    python = venv(tmp_path_factory.mktemp("installed") / "venv", with_deps=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return python.parent


def test_the_installed_package_runs_without_a_checkout(installed, tmp_path):
    where = run([str(installed / "python"), "-c", "import streamclean; print(streamclean.__file__)"], cwd=tmp_path)
    assert where.stdout.startswith(str(installed.parent)), where.stdout + where.stderr
    store = store_in(tmp_path, service_bytes(small_state()))
    done = run([str(installed / DROP_IN), "--store-file", str(store), "--now", NOW_ISO, "--dry-run"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["runner"] == DROP_IN and done.stderr == ""


def test_the_installed_version_is_the_package_metadatas(installed, tmp_path):
    """One version, pyproject.toml's, bumped since 1.0.0: what --version shows is what the
    installed package's metadata says, for the command and the drop-in alike."""
    python = str(installed / "python")
    read = run([python, "-c", "import importlib.metadata as m; print(m.version('streamclean'))"], cwd=tmp_path)
    assert read.returncode == 0, read.stderr
    installed_version = read.stdout.strip()
    assert installed_version == VERSION != "1.0.0"
    shown = run([str(installed / "streamclean"), "--version"], cwd=tmp_path)
    assert (shown.returncode, shown.stdout) == (0, f"streamclean, version {installed_version}\n")
    drop_in = run([str(installed / DROP_IN), "--version"], cwd=tmp_path)
    assert (drop_in.returncode, drop_in.stdout) == (0, f"{DROP_IN}, version {installed_version}\n")
    module = run([python, "-c", "import streamclean; print(streamclean.__version__)"], cwd=tmp_path)
    assert module.stdout == f"{installed_version}\n"


def test_a_checkout_shows_pyprojects_version():
    """Run from a checkout, installed (editable) or not, --version shows pyproject.toml's."""
    shown = run([sys.executable, "-m", "streamclean", "--version"], cwd=ROOT)
    assert (shown.returncode, shown.stdout) == (0, f"streamclean, version {VERSION}\n")
    try:
        assert metadata.version("streamclean") == VERSION
    except metadata.PackageNotFoundError:
        pass  # not installed here: the version came from pyproject.toml itself


def test_the_readmes_cron_line_runs_under_cron(installed, tmp_path):
    """The README's form: the executable by its absolute path, since cron's PATH is /usr/bin:/bin."""
    textfile = tmp_path / "node-exporter"
    textfile.mkdir()
    old = service_bytes(small_state())
    store = store_in(tmp_path, old)
    options = (
        f"--store-file {store} --now {NOW_ISO} --output-json artifacts/async/retention-latest.json "
        f"--metrics-textfile {textfile}/streamclean.prom"
    )
    line = f"cd {tmp_path} && timeout 2h {installed}/streamclean clean --quiet {options} >/dev/null"
    done = run(["/bin/sh", "-c", line], cwd=Path("/"))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert "streamclean_last_run_success 1\n" in (textfile / "streamclean.prom").read_text()
    assert json.loads((tmp_path / "artifacts" / "async" / "retention-latest.json").read_text())["rewritten"] is True
    assert len(store.read_bytes()) < len(old)
    # The line the README used to give: cron's PATH does not find the executable.
    store.write_bytes(old)
    bare = run(["/bin/sh", "-c", f"cd {tmp_path} && timeout 2h streamclean clean --quiet {options}"], cwd=Path("/"))
    assert bare.returncode == 127 and store.read_bytes() == old

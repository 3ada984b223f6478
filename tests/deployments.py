"""Places streamclean is run from in real use, built in a temporary folder: a checkout set up
as the README says, the service's repository with the drop-in copied into it, an installed
wheel. Shared by test_drop_in.py and test_packaging.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import click
import orjson

ROOT = Path(__file__).resolve().parents[1]
DROP_IN = "run_async_retention_cleanup.py"
CRON_PATH = "/usr/bin:/bin"  # cron's PATH on Debian


def cron_env(**extra: str) -> dict:
    """What cron gives a job: next to nothing (`env -i PATH=/usr/bin:/bin`)."""
    return {"PATH": CRON_PATH, **extra}


def venv(folder: Path, with_deps: bool, importable: Path | None = None) -> Path:
    """A real venv without pip, fast to make. `with_deps`: it sees this interpreter's orjson
    and click (by a .pth file, as a venv with them installed would); `importable`: a folder
    it imports streamclean from (as `pip install -e` makes it). Its python."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=60
    )
    python = folder / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    lines = []
    if with_deps:
        lines += sorted({str(Path(m.__file__).resolve().parents[1]) for m in (orjson, click)})
    if importable is not None:
        lines.append(str(importable))
    Path(site, "streamclean-test.pth").write_text("".join(f"{line}\n" for line in lines))
    return python


def copy_checkout(target: Path) -> Path:
    """The files of a streamclean checkout that running it needs."""
    shutil.copytree(
        ROOT / "streamclean", target / "streamclean", ignore=shutil.ignore_patterns("__pycache__")
    )
    (target / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / DROP_IN, target / "scripts" / DROP_IN)
    return target


def system_python() -> str | None:
    """The interpreter cron's PATH finds as `python3`, if any."""
    return shutil.which("python3", path=CRON_PATH)


def imports_streamclean_deps(python: str) -> bool:
    done = subprocess.run(
        [python, "-c", "import orjson, click"], capture_output=True, env=cron_env()
    )
    return done.returncode == 0


def run(argv: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, cwd=cwd, env=env or cron_env(), capture_output=True, text=True, timeout=120
    )


def store_in(folder: Path, data: bytes) -> Path:
    store = folder / "runtime" / "async_jobs" / "store.v1.json"
    store.parent.mkdir(parents=True)
    store.write_bytes(data)
    return store

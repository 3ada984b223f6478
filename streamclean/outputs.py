"""The files around the store: one rule for every file a run writes or locks.

The lock, the report, the metrics file and the archive may be neither the store, its backup, its
temporary files or a file the run only reads (restore's archive), nor one another: compared
after resolving symbolic links, and by device and inode where the file exists. `check` runs
before the store is opened; a new kind of output registers with its (option, path) pair. The
archive folder (`--archive-dir`) registers so too: a folder the run writes archives into, in
which no other output may take a name of an archive (it would replace one, or pass for one).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from .archive_folder import ANY_ARCHIVE_NAME
from .errors import OutputError
from .swap import leftover_pattern

LOCK = "--lock-file"
ARCHIVE_DIR = "--archive-dir"  # a folder: the run names its archive there
_UNCHANGED = "the store was left unchanged"
_WHAT = {
    "--output-json": "the report",
    "--metrics-textfile": "the metrics",
    LOCK: "the lock",
    "--archive-file": "the archive",
    ARCHIVE_DIR: "the archives",
}


@dataclass(frozen=True)
class _File:
    shown: str  # how a message names it: "--output-json report.json", "the store itself"
    real: str  # the path, symbolic links resolved
    identity: tuple[int, int] | None  # (st_dev, st_ino) of the file there, if there is one
    option: str = ""  # the option that names it (outputs only)
    default_lock: bool = False  # the lock beside the store, which no option named


def check(
    store_file: str | os.PathLike,
    outputs: Iterable[tuple[str, str | os.PathLike | None]],
    reads: Iterable[tuple[str, str | os.PathLike | None]] = (),
) -> None:
    """Refuse, before the store is read, a run whose outputs would overwrite what it protects.

    `outputs` are (option, path) pairs of every file the run writes or locks; a path of None is
    not written, except for the lock (`--lock-file`), where None is the default `<store>.lock`.
    An `--archive-dir` pair names a folder: no other output may have an archive's name there.
    `reads` are files the run only reads (restore's `--archive-file`), protected like the store.
    Raises OutputError naming the first clash.
    """
    store = os.path.realpath(store_file)
    protected = [
        _file("the store itself", store),
        _file("the store's backup (--backup)", f"{store}.bak"),
        *(_file(f"{option} {path}, which the run reads", path) for option, path in reads if path is not None),
    ]
    temporaries = _temporary_names(Path(store))
    folders = [_file(f"{option} {path}", path, option) for option, path in outputs
               if option == ARCHIVE_DIR and path is not None]
    seen: list[_File] = []
    for option, path in outputs:
        if path is None and option == LOCK:
            output = _file(f"the lock file {store}.lock", f"{store}.lock", option, default_lock=True)
        elif path is None:
            continue
        else:
            output = _file(f"{option} {path}", path, option)
        for other in protected:
            if _same(output, other):
                _refuse(f"{output.shown} is {other.shown}", option)
        if os.path.dirname(output.real) == os.path.dirname(store) and temporaries.fullmatch(os.path.basename(output.real)):
            _refuse(f"{output.shown} is one of the store's temporary files", option)
        for folder in folders:
            if option != ARCHIVE_DIR and os.path.dirname(output.real) == folder.real \
                    and ANY_ARCHIVE_NAME.fullmatch(os.path.basename(output.real)):
                _refuse(f"{output.shown} names an archive in {folder.shown}", option)
        for other in seen:
            if not _same(output, other):
                continue
            if other.default_lock:
                _refuse(f"{output.shown} is the store's lock file", option)
            if output.default_lock:
                _refuse(f"{other.shown} is the store's lock file", other.option)
            raise OutputError(
                f"{other.option} and {option} name the same file: {path}",
                f"{_UNCHANGED}; give each its own file",
            )
        seen.append(output)


def _file(shown: str, path: str | os.PathLike, option: str = "", *, default_lock: bool = False) -> _File:
    try:
        st = os.stat(path)
        identity: tuple[int, int] | None = (st.st_dev, st.st_ino)
    except (OSError, ValueError):
        identity = None
    return _File(shown, os.path.realpath(path), identity, option, default_lock)


def _same(a: _File, b: _File) -> bool:
    return a.real == b.real or (a.identity is not None and a.identity == b.identity)


def _temporary_names(store: Path) -> re.Pattern[str]:
    ours = leftover_pattern(store).pattern
    displaced = re.escape(store.name) + r"\.streamclean-displaced-[0-9a-f]{8}"
    service = re.escape(store.name) + r"\.[0-9a-f]{32}\.tmp"
    return re.compile(f"{ours}|{displaced}|{service}")


def _refuse(problem: str, option: str) -> NoReturn:
    raise OutputError(problem, f"{_UNCHANGED}; write {_WHAT.get(option, 'it')} elsewhere")

"""streamclean: the async-job store's retention cleanup, streamed.

One pipeline, one module a stage: `readers` (the store as members with exact byte offsets:
`layout` and `general`), `judge` (the retention rule, once), `pass1` (the job index), `pass2`
(what is deleted, as byte ranges), `splice` (the new store's bytes), `second_core` (the second
core), `swap` (the atomic replace), `report` (the counts), `cleanup` (the run).
Around it: `inspect` (a dry run that also surveys the store), `progress`, `metrics`, `cli`.
"""

import tomllib
from importlib import metadata
from pathlib import Path

from .cleanup import clean
from .errors import (
    InvalidStoreError,
    LockedError,
    StoreChangedError,
    StoreFileError,
    StreamcleanError,
    UsageError,
    WriteError,
)
from .inspect import Inspection, inspect_store
from .policy import RetentionPolicy, parse_duration, parse_timestamp
from .report import CleanupReport


def _version() -> str:
    """The version in one place, pyproject.toml's: as installed (the package metadata), or, in a
    checkout run without installing, read from the file itself."""
    try:
        return metadata.version(__name__)
    except metadata.PackageNotFoundError:
        pass
    try:
        with open(Path(__file__).resolve().parent.parent / "pyproject.toml", "rb") as file:
            project = tomllib.load(file)["project"]
    except (OSError, tomllib.TOMLDecodeError, KeyError):
        return "0+unknown"
    return str(project["version"]) if project.get("name") == __name__ else "0+unknown"


__version__ = _version()

__all__ = [
    "CleanupReport",
    "Inspection",
    "InvalidStoreError",
    "LockedError",
    "RetentionPolicy",
    "StoreChangedError",
    "StoreFileError",
    "StreamcleanError",
    "UsageError",
    "WriteError",
    "clean",
    "inspect_store",
    "parse_duration",
    "parse_timestamp",
]

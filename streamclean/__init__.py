"""streamclean: the async-job store's retention cleanup, streamed.

One pipeline, one module a stage: `readers` (the store as members with exact byte offsets:
`layout` and `general`), `judge` (the retention rule, once), `pass1` (the job index), `pass2`
(what is deleted, as byte ranges), `splice` (the new store's bytes), `split` (the second
core), `swap` (the atomic replace), `report` (the counts), `cleanup` (the run).
Around it: `inspect` (a dry run that also surveys the store), `progress`, `metrics`, `cli`.
"""

__version__ = "1.0.0"

from .cleanup import clean  # noqa: E402
from .errors import (  # noqa: E402
    InvalidStoreError,
    LockedError,
    StoreChangedError,
    StoreFileError,
    StreamcleanError,
    UsageError,
    WriteError,
)
from .inspect import Inspection, inspect_store  # noqa: E402
from .policy import RetentionPolicy, parse_duration, parse_timestamp  # noqa: E402
from .report import CleanupReport  # noqa: E402

__all__ = [
    "clean",
    "CleanupReport",
    "inspect_store",
    "Inspection",
    "RetentionPolicy",
    "parse_duration",
    "parse_timestamp",
    "StreamcleanError",
    "UsageError",
    "StoreFileError",
    "InvalidStoreError",
    "WriteError",
    "StoreChangedError",
    "LockedError",
]

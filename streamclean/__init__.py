"""streamclean: the async-job store's retention cleanup, streamed.

The pipeline, one module a stage: `policy` (the rule), `reader` (the store as exact text),
`index` (pass 1: terminal jobs), `filter` (pass 2: what is kept), `writer` (the new store's
bytes), `swap` (the atomic replace), `report` (the counts), `cleanup` (the run).
Around it: `inspect` (what a store holds and what a run would free), `progress` (the terminal
line), `metrics` (the Prometheus text file), `cli` (the command line).
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

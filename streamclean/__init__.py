"""streamclean: the async-job store's retention cleanup, streamed.

The pipeline, one module a stage: `policy` (the rule), `reader` (the store as exact text),
`index` (pass 1: terminal jobs), `filter` (pass 2: what is kept), `writer` (the new store's
bytes), `swap` (the atomic replace), `report` (the counts), `cleanup` (the run).
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
from .policy import RetentionPolicy, parse_duration, parse_timestamp  # noqa: E402
from .report import CleanupReport  # noqa: E402

__all__ = [
    "clean",
    "CleanupReport",
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

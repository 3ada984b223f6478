#!/usr/bin/env python3
"""Drop-in replacement for the service's retention script, backed by streamclean.

Same options, environment and report as before (with "runner": "run_async_retention_cleanup.py"),
so cron lines and dashboards keep working; see `--help`.
"""

import sys
from pathlib import Path

try:
    from streamclean.cli import drop_in_command
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from streamclean.cli import drop_in_command

if __name__ == "__main__":
    drop_in_command("run_async_retention_cleanup.py")(prog_name="run_async_retention_cleanup.py")

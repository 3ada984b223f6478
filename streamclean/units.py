"""Numbers as operators read them: sizes in decimal megabytes, durations as h:mm:ss.

Decimal units (1 MB = 1,000,000 bytes) because that is what `ls -lh --si`, `df -H` and the store
generator's `--size 20MB` use; shared here so the progress line, the summary and `inspect`
never disagree about what a megabyte is.
"""

from __future__ import annotations

MB = 1_000_000


def megabytes(nbytes: int) -> str:
    """`412.3 MB`: one unit for everything a run moves, so figures compare at a glance."""
    return f"{nbytes / MB:,.1f} MB"


def size(nbytes: int) -> str:
    """A size in the largest decimal unit that keeps it readable: `517 B`, `12.3 kB`, `1.1 GB`."""
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if abs(nbytes) >= factor:
            return f"{nbytes / factor:,.1f} {unit}"
    return f"{nbytes:,} B"


def clock(seconds: float) -> str:
    """`0:07`, `12:30`, `1:02:03`: an ETA or an elapsed time."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"

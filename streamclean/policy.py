"""The retention rule of SPEC §2: durations, timestamps, cutoffs and the terminal rule.

Everything here is pure: no files, no clock. The stream stages ask this module two questions —
"is this job terminal?" and "is this record expired?" — and nothing else decides them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

from .errors import UsageError

TERMINAL_STATUSES = frozenset({"completed", "failed", "canceled"})

DEFAULT_RESULTS_TTL_SECONDS = 604800.0  # 7 days, as the service's script
DEFAULT_EVENTS_TTL_SECONDS = 259200.0  # 3 days

_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([smhd]?)", re.IGNORECASE)


def is_terminal(job: object) -> TypeGuard[dict[str, object]]:
    """A job is terminal when it is an object whose status is exactly one of the terminal ones."""
    status = job.get("status") if isinstance(job, dict) else None
    return isinstance(status, str) and status in TERMINAL_STATUSES


def parse_duration(text: str, what: str = "duration") -> float:
    """Seconds from `604800`, `0.5`, `7d`, `24h`, `15m` or `30s` (unit case-insensitive).

    Refuses negative, non-finite and unparseable values with a UsageError naming `what`.
    """
    match = _DURATION.fullmatch(str(text).strip())
    if match is None:
        raise UsageError(
            f"{what}: {text!r} is not a duration",
            "give seconds (604800, 0.5) or a number with a unit s, m, h or d (7d, 24h, 15m)",
        )
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    if not math.isfinite(seconds):
        raise UsageError(f"{what}: {text!r} is not a finite duration")
    if seconds < 0:
        raise UsageError(f"{what}: {text!r} is negative", "a TTL counts back from now")
    return seconds + 0.0  # -0.0 is a valid zero TTL; report it as 0.0


def parse_now(text: str) -> datetime:
    """The `--now` clock: ISO-8601, a naive time is UTC."""
    try:
        moment = datetime.fromisoformat(_z_to_offset(text.strip()))
    except ValueError:
        raise UsageError(
            f"--now: {text!r} is not an ISO-8601 time", "for example 2026-03-01T12:00:00+00:00"
        ) from None
    return as_utc(moment)


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_timestamp(value: object) -> datetime | None:
    """A record's timestamp as the service reads it, or None when it is missing or unparseable."""
    if type(value) is str:
        # Most timestamps are clean isoformat() output: try them as they are. fromisoformat
        # refuses surrounding whitespace, and reads a trailing Z as UTC, so whatever it accepts
        # here the full procedure below reads as the same instant.
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    text = str(value or "").strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(_z_to_offset(text))
    except (ValueError, TypeError):
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def parse_timestamps(values: Sequence[Any]) -> list[datetime | None]:
    """`parse_timestamp` of each of `values`: the usual clean isoformat() strings in one go,
    and after any error one by one."""
    try:
        moments = list(map(datetime.fromisoformat, values))
        # naive moments among zoned ones cannot be compared: a TypeError
        zoned = not moments or min(moments).tzinfo is not None
    except (TypeError, ValueError):
        return [parse_timestamp(value) for value in values]
    if zoned:
        return list(moments)
    return [moment.replace(tzinfo=UTC) for moment in moments]  # every one naive: UTC


def all_dated(moments: list[datetime | None]) -> TypeGuard[list[datetime]]:
    """Whether every one of `moments` is there (none is None)."""
    return None not in moments


def _z_to_offset(text: str) -> str:
    return text[:-1] + "+00:00" if text.endswith("Z") else text


@dataclass(frozen=True)
class KindRule:
    """Retention of one kind of record (results, events or jobs): its TTL and its cutoff."""

    ttl_seconds: float | None
    cutoff: datetime | None

    @property
    def enabled(self) -> bool:
        return self.cutoff is not None

    def is_expired(self, moment: datetime | None) -> bool:
        """True when an eligible record with this timestamp is deleted (`<=`: the cutoff itself goes)."""
        return self.cutoff is not None and moment is not None and moment <= self.cutoff


@dataclass(frozen=True)
class RetentionPolicy:
    """The kinds' rules, fixed at one `now`. `jobs` (job retention, off unless a jobs TTL is
    given) removes a terminal job whose `finished_at` is at or before its cutoff, with
    everything of it: its events array, its results, its notifications."""

    now: datetime
    results: KindRule
    events: KindRule
    jobs: KindRule = KindRule(None, None)

    @classmethod
    def build(
        cls,
        now: datetime,
        results_ttl: float | None,
        events_ttl: float | None,
        jobs_ttl: float | None = None,
    ) -> RetentionPolicy:
        now = as_utc(now)
        return cls(
            now=now,
            results=_kind_rule(now, results_ttl, "results"),
            events=_kind_rule(now, events_ttl, "events"),
            jobs=_kind_rule(now, jobs_ttl, "jobs"),
        )


def _kind_rule(now: datetime, ttl: float | None, kind: str) -> KindRule:
    if ttl is None:
        return KindRule(None, None)
    if not math.isfinite(ttl) or ttl < 0:
        raise UsageError(f"{kind} TTL {ttl!r} must be a finite number of seconds, 0 or more")
    try:
        cutoff = now - timedelta(seconds=ttl)
    except OverflowError:
        raise UsageError(
            f"{kind} TTL of {ttl:g} seconds reaches back before the year 1",
            f"use --disable-{kind}-retention to keep every {kind[:-1]}",
        ) from None
    return KindRule(float(ttl), cutoff)

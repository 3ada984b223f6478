"""How fast a store grows, how much of that its TTLs never remove, and where it levels off.

`inspect`'s survey tells a `GrowthTally` one fact per record: its section, its own timestamp
(None when it does not parse), its exact bytes in the file and its `Fate` (which TTLs can
remove it, and whether that waits on its job ending). `project` turns the tally into a
`Growth` for any TTLs, without reading the store again: bytes a day dated within the window,
the part no TTL removes, and the size right after a cleanup once every TTL has passed at the
window's rate (None when something arriving today stays for ever). What it assumes and where
it is wrong: docs/operating.md, "Does the store stop growing?".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import compress, repeat
from operator import floordiv, mul, neg, sub
from typing import NamedTuple

from .policy import all_dated

# Which TTLs can remove a record (a bit mask): its own kind's, and job retention's.
BY_RESULTS = 1
BY_EVENTS = 2
BY_JOBS = 4

DAY_SECONDS = 86400.0
_HOUR = timedelta(hours=1)
_MAX_AGE_HOURS = 24 * 366 * 10  # older than ten years counts as ten years: bounded memory
_MIN_RUNNING_HOURS = 1
SUGGESTED_JOBS_TTL_DAYS = 30

# Why records stay for ever, as the JSON names it.
NO_JOB_RETENTION = "no_job_retention"
RETENTION_DISABLED = "retention_disabled"
NO_TIMESTAMP = "no_valid_timestamp"
NEVER_ENDING_JOBS = "jobs_that_never_end"


class Fate(NamedTuple):
    """What can remove a record: the TTLs in `by` (BY_RESULTS | BY_EVENTS | BY_JOBS; 0: none),
    the earliest of them winning; `pending` when its job has not ended (then only if it does).
    A record removed by job retention stays (its job's run time + the jobs TTL) after its
    timestamp; `add`'s `offset` carries the run time for jobs themselves."""

    by: int
    pending: bool = False


class TTLs(NamedTuple):
    """The TTLs a projection is made for, in seconds; None: that retention is off."""

    results: float | None
    events: float | None
    jobs: float | None

    def lifetime(self, by: int) -> float | None:
        """How long a record with these removers stays after its timestamp (None: for ever)."""
        found = [
            ttl
            for bit, ttl in (
                (BY_RESULTS, self.results),
                (BY_EVENTS, self.events),
                (BY_JOBS, self.jobs),
            )
            if by & bit and ttl is not None
        ]
        return min(found) if found else None


@dataclass
class _Sums:
    """One (section, fate)'s bytes: dated within the window, dated at all, undated."""

    window: int = 0
    window_offset: float = 0.0  # the sum of bytes x offset seconds, within the window
    dated: int = 0
    undated: int = 0
    undated_offset: float = 0.0
    # pending: hours -> [bytes, bytes x offset]
    by_age_hours: dict[int, list[float]] = field(default_factory=dict)

    def add(self, other: _Sums) -> None:
        self.window += other.window
        self.window_offset += other.window_offset
        self.dated += other.dated
        self.undated += other.undated
        self.undated_offset += other.undated_offset
        for hours, (nbytes, offset) in other.by_age_hours.items():
            mine = self.by_age_hours.setdefault(hours, [0, 0.0])
            mine[0] += nbytes
            mine[1] += offset


@dataclass
class GrowthTally:
    """The facts `project` needs, summed as the records pass: bounded memory, mergeable."""

    now: datetime
    window_seconds: float
    sums: dict[tuple[str, Fate], _Sums] = field(default_factory=dict)
    # how long ended jobs ran, in whole hours
    run_hours: Counter[int] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.window_start = self.now - timedelta(seconds=self.window_seconds)

    def fresh(self) -> GrowthTally:
        return GrowthTally(self.now, self.window_seconds)

    def _sums(self, section: str, fate: Fate) -> _Sums:
        sums = self.sums.get((section, fate))
        if sums is None:
            sums = self.sums[(section, fate)] = _Sums()
        return sums

    def add(
        self, section: str, moment: datetime | None, nbytes: int, fate: Fate, offset: float = 0.0
    ) -> None:
        """One record: its section, timestamp, exact bytes and fate (`offset`: see `Fate`)."""
        sums = self._sums(section, fate)
        if moment is None:
            sums.undated += nbytes
            sums.undated_offset += nbytes * offset
            return
        sums.dated += nbytes
        if fate.pending:
            hours = min(max(0, (self.now - moment) // _HOUR), _MAX_AGE_HOURS)
            cell = sums.by_age_hours.get(hours)
            if cell is None:
                cell = sums.by_age_hours[hours] = [0, 0.0]
            cell[0] += nbytes
            cell[1] += nbytes * offset
        elif moment > self.window_start:
            sums.window += nbytes
            sums.window_offset += nbytes * offset

    def add_many(
        self,
        section: str,
        fate: Fate,
        moments: list[datetime | None],
        sizes: list[int],
        offsets: list[float] | None = None,
    ) -> None:
        """`add` for many records of one section and one fate at once (a block's)."""
        if all_dated(moments):
            dated = moments
        else:  # the undated apart, then the rest
            undated = [moment is None for moment in moments]
            sums = self._sums(section, fate)
            sizes_undated = list(compress(sizes, undated))
            sums.undated += sum(sizes_undated)
            if offsets is not None:
                sums.undated_offset = _added(
                    sums.undated_offset, map(mul, sizes_undated, compress(offsets, undated))
                )
                offsets = [offset for offset, no in zip(offsets, undated, strict=True) if not no]
            sizes = [nbytes for nbytes, no in zip(sizes, undated, strict=True) if not no]
            dated = [moment for moment in moments if moment is not None]
            if not dated:
                return
        if fate.pending:
            ages = list(map(sub, repeat(self.now, len(dated)), dated))
            self.add_pending(section, fate, ages, sizes, offsets)
            return
        sums = self._sums(section, fate)
        sums.dated += sum(sizes)
        inside = list(map(self.window_start.__lt__, dated))
        sums.window += sum(compress(sizes, inside))
        if offsets is not None:
            sums.window_offset = _added(
                sums.window_offset, map(mul, compress(sizes, inside), compress(offsets, inside))
            )

    def add_pending(
        self,
        section: str,
        fate: Fate,
        ages: list[timedelta],
        sizes: list[int],
        offsets: list[float] | None = None,
    ) -> None:
        """`add` for many dated records of one section and one pending fate, by their ages
        (now minus their timestamps)."""
        sums = self._sums(section, fate)
        sums.dated += sum(sizes)
        # whole hours of age, as `age // _HOUR` (the days and seconds of a timedelta are floored)
        hours = [age.days * 24 + age.seconds // 3600 for age in ages]
        by_age = sums.by_age_hours
        if offsets is not None:  # floats: added in turn, as `add` adds them
            for hour, nbytes, offset in zip(hours, sizes, offsets, strict=True):
                cell = by_age.setdefault(min(max(0, hour), _MAX_AGE_HOURS), [0, 0.0])
                cell[0] += nbytes
                cell[1] += nbytes * offset
            return
        found: dict[int, int] = {}  # whole bytes: summed in any order, the same
        for hour, nbytes in zip(hours, sizes, strict=True):
            found[hour] = found.get(hour, 0) + nbytes
        for hour, nbytes in found.items():
            cell = by_age.setdefault(min(max(0, hour), _MAX_AGE_HOURS), [0, 0.0])
            cell[0] += nbytes

    def add_shared(self, section: str, moments: list[datetime], nbytes: int, fate: Fate) -> None:
        """`add` for records dated `moments` that share `nbytes` evenly (a job's events, in bulk)."""
        if fate.pending:
            share, rest = divmod(nbytes, len(moments))
            for moment in moments:
                self.add(section, moment, share, fate)
            self.add(section, moments[0], rest, fate)
            return
        sums = self._sums(section, fate)
        sums.dated += nbytes
        start = self.window_start
        if min(moments) > start:
            sums.window += nbytes
        elif max(moments) > start:
            sums.window += nbytes * sum(1 for moment in moments if moment > start) // len(moments)

    def add_sums(self, section: str, fate: Fate, undated: int, dated: int, window: int) -> None:
        """Bytes of records of one `fate` that is not pending, summed elsewhere: `undated`
        (as `add` with no timestamp), `dated`, and of those `window` within the window."""
        sums = self._sums(section, fate)
        sums.undated += undated
        sums.dated += dated
        sums.window += window

    def record_bytes(self, section: str) -> int:
        """The bytes of the records of `section`."""
        return sum(
            sums.dated + sums.undated for (name, _), sums in self.sums.items() if name == section
        )

    def ran(self, seconds: float) -> None:
        """An ended job ran this long (from `queued_at` to `finished_at`)."""
        # bounded, like the ages
        self.run_hours[min(max(0, int(-(-seconds // 3600))), _MAX_AGE_HOURS)] += 1

    def ran_many(self, seconds: list[float]) -> None:
        """`ran` for many ended jobs at once."""
        # -(-ran // 3600), the whole hours begun, as `ran` takes them: counted as floats
        for hours, count in Counter(map(floordiv, map(neg, seconds), repeat(3600))).items():
            self.run_hours[min(max(0, int(-hours)), _MAX_AGE_HOURS)] += count

    def merge(self, other: GrowthTally) -> None:
        """Count in a worker's tally of its part of the store."""
        self.run_hours.update(other.run_hours)
        for key, sums in other.sums.items():
            self.sums.setdefault(key, _Sums()).add(sums)

    def running_hours(self) -> int:
        """A job that has not ended after this many hours counts as one that never ends."""
        total = sum(self.run_hours.values())
        if not total:
            return 24
        allowed, seen = total // 1000, 0  # the slowest one in a thousand is left out
        for hours in sorted(self.run_hours, reverse=True):
            seen += self.run_hours[hours]
            if seen > allowed:
                return max(hours, _MIN_RUNNING_HOURS)
        return _MIN_RUNNING_HOURS


def _added(total: float, terms: Iterable[float]) -> float:
    """`total` plus each of `terms` in turn, as `add` adds them one record at a time (the same
    float, where `sum` may round otherwise)."""
    for term in terms:
        total += term
    return total


@dataclass
class SectionGrowth:
    bytes_per_day: float = 0.0
    kept_bytes_per_day: float = 0.0
    levels_off_bytes: float | None = 0.0

    def as_dict(self) -> dict[str, int | None]:
        return {
            "bytes_per_day": round(self.bytes_per_day),
            "kept_bytes_per_day": round(self.kept_bytes_per_day),
            "levels_off_bytes": None
            if self.levels_off_bytes is None
            else round(self.levels_off_bytes),
        }


@dataclass
class Growth:
    """The projection for one set of TTLs (see the module's docstring)."""

    window_days: float
    ttls: TTLs
    sections: dict[str, SectionGrowth]
    kept_by_reason: dict[str, float]
    bytes_per_day: float
    kept_bytes_per_day: float
    levels_off_bytes: float | None
    suggestion: Suggestion | None = None

    def as_dict(self) -> dict[str, object]:
        document: dict[str, object] = {
            "window_days": self.window_days,
            "bytes_per_day": round(self.bytes_per_day),
            "kept_bytes_per_day": round(self.kept_bytes_per_day),
            "levels_off_bytes": None
            if self.levels_off_bytes is None
            else round(self.levels_off_bytes),
            "kept_by_reason": {reason: round(rate) for reason, rate in self.kept_by_reason.items()},
            "sections": {name: section.as_dict() for name, section in self.sections.items()},
            "suggestion": None,
        }
        if self.suggestion is not None:
            document["suggestion"] = self.suggestion.as_dict()
        return document


@dataclass
class Suggestion:
    """The jobs TTL that would make a store level off that does not, and where it would."""

    option: str
    ttl_seconds: float
    levels_off_bytes: float | None
    kept_bytes_per_day: float

    def as_dict(self) -> dict[str, str | float | None]:
        return {
            "option": self.option,
            "ttl_seconds": self.ttl_seconds,
            "levels_off_bytes": None
            if self.levels_off_bytes is None
            else round(self.levels_off_bytes),
            "kept_bytes_per_day": round(self.kept_bytes_per_day),
        }


def project(
    tally: GrowthTally,
    ttls: TTLs,
    section_bytes: dict[str, int],
    total_bytes: int,
    suggest: bool = True,
) -> Growth:
    """The growth, kept bytes and level of the store `tally` describes, under `ttls`.

    `section_bytes` are the sections' sizes (the survey's), `total_bytes` the file's: what is
    not any record's bytes (braces, keys, other sections) stays as it is.
    """
    days = tally.window_seconds / DAY_SECONDS
    window_hours = tally.window_seconds / 3600
    running = tally.running_hours()
    share = _jobs_share(tally, window_hours)
    sections = {
        name: SectionGrowth(levels_off_bytes=float(nbytes - tally.record_bytes(name)))
        for name, nbytes in section_bytes.items()
    }
    reasons: dict[str, float] = {}
    for (name, fate), sums in tally.sums.items():
        section = sections.setdefault(name, SectionGrowth())
        lifetime = ttls.lifetime(fate.by)
        # within the window: bytes, kept of them, of jobs
        arriving = kept = never_ending = staying = 0.0
        # bytes x seconds within the window of those that go;  staying: present for ever
        lasting = 0.0
        if fate.pending:
            for hours, (nbytes, offset) in sums.by_age_hours.items():
                within = hours < window_hours
                arriving += nbytes if within else 0
                if hours >= running:  # a job that never ends
                    staying += nbytes
                    never_ending += nbytes if within else 0
                elif lifetime is None:
                    staying += nbytes
                    kept += nbytes if within else 0
                elif within:
                    lasting += nbytes * lifetime + offset
            # undated: no telling when its job began; it is kept for ever
            arriving += sums.undated * share
            never_ending += sums.undated * share
            staying += sums.undated
        else:
            arriving = sums.window + sums.undated * share
            if lifetime is None:
                kept = arriving
                staying = sums.dated + sums.undated
            else:
                lasting = arriving * lifetime + sums.window_offset + sums.undated_offset * share
        section.bytes_per_day += arriving / days
        section.kept_bytes_per_day += (kept + never_ending) / days
        for reason, nbytes in ((_reason(fate, ttls), kept), (NEVER_ENDING_JOBS, never_ending)):
            if nbytes:
                reasons[reason] = reasons.get(reason, 0.0) + nbytes / days
        if section.levels_off_bytes is not None:
            section.levels_off_bytes += staying + lasting / tally.window_seconds
    for section in sections.values():
        if section.kept_bytes_per_day > 0:
            section.levels_off_bytes = None
    outside = total_bytes - sum(section_bytes.values())
    kept_total = sum(section.kept_bytes_per_day for section in sections.values())
    levels = [section.levels_off_bytes for section in sections.values()]
    growth = Growth(
        window_days=days,
        ttls=ttls,
        sections=sections,
        kept_by_reason=reasons,
        bytes_per_day=sum(section.bytes_per_day for section in sections.values()),
        kept_bytes_per_day=kept_total,
        levels_off_bytes=None
        if kept_total > 0
        else outside + sum(level or 0.0 for level in levels),
    )
    if suggest and NO_JOB_RETENTION in reasons:  # a jobs TTL would remove some of what stays
        suggested = suggested_jobs_ttl(ttls)
        other = project(
            tally, ttls._replace(jobs=suggested), section_bytes, total_bytes, suggest=False
        )
        growth.suggestion = Suggestion(
            "--jobs-ttl-seconds", suggested, other.levels_off_bytes, other.kept_bytes_per_day
        )
    return growth


def suggested_jobs_ttl(ttls: TTLs) -> float:
    """The jobs TTL suggested to a store that keeps its jobs for ever: 30 days, or the longest
    of the results and events TTLs if that is longer (a job should outlive its records)."""
    longest = max([ttl for ttl in (ttls.results, ttls.events) if ttl is not None], default=0.0)
    return max(SUGGESTED_JOBS_TTL_DAYS * DAY_SECONDS, longest)


def _jobs_share(tally: GrowthTally, window_hours: float) -> float:
    """The share of the jobs' dated bytes that are dated within the window: how undated
    records are spread in time."""
    within, dated = 0.0, 0
    for (name, fate), sums in tally.sums.items():
        if name != "jobs":
            continue
        dated += sums.dated
        if fate.pending:
            within += sum(
                nbytes for hours, (nbytes, _) in sums.by_age_hours.items() if hours < window_hours
            )
        else:
            within += sums.window
    return within / dated if dated else 0.0


def _reason(fate: Fate, ttls: TTLs) -> str:
    """Why records of this fate (of jobs that end, or have) stay for ever under `ttls`."""
    if fate.by == 0:
        return NO_TIMESTAMP
    if fate.by & BY_JOBS and ttls.jobs is None:
        return NO_JOB_RETENTION
    return RETENTION_DISABLED

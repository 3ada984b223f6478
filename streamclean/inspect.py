"""`streamclean inspect`: what is in a store and what a cleanup would free, read-only and streamed.

`inspect` is a dry run of `clean` — the same reader, the same passes, the same judge — that
also hands the passes a `StoreSurvey` to fill on the way: each section's size and entry
count, jobs by status, and how old the results and events are. So its counts are the dry
run's by construction, and it costs little more than the dry run itself.

    >>> inspection = inspect_store("runtime/async_jobs/store.v1.json", policy)
    >>> inspection.reclaimable_bytes, inspection.survey.jobs_by_status
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from itertools import accumulate, chain, compress, pairwise, repeat
from operator import attrgetter
from operator import sub as _minus
from typing import Any, TypeVar

from .cleanup import clean
from .errors import StoreChangedError
from .growth import (
    BY_EVENTS,
    BY_JOBS,
    BY_RESULTS,
    NEVER_ENDING_JOBS,
    NO_JOB_RETENTION,
    NO_TIMESTAMP,
    RETENTION_DISABLED,
    Fate,
    Growth,
    GrowthTally,
    TTLs,
    project,
)
from .index import NO_FINISHED_AT, TERMINAL, JobIndex
from .policy import (
    TERMINAL_STATUSES,
    KindRule,
    RetentionPolicy,
    all_dated,
    is_terminal,
    parse_timestamp,
    parse_timestamps,
)
from .readers.base import Block, Member
from .report import CleanupReport
from .swap import Snapshot
from .units import percent, size

Progress = Callable[[str, int, int], None]  # as cleanup.clean takes it

_from_iso = datetime.fromisoformat
_whole_days = attrgetter("days")
_MAX_WHOLE_DAYS = timedelta.max.days
_seconds = timedelta.total_seconds
# lifecycle order
KNOWN_STATUSES = ("queued", "running", "partial", "completed", "failed", "canceled")
NOT_AN_OBJECT = "(not an object)"
NO_STATUS = "(no status)"
STATUS_NOT_A_STRING = "(status not a string)"
OTHER_STATUSES = "(other)"
# distinct status strings kept apart; a store of random statuses must not grow memory
_MAX_STATUSES = 64
DEFAULT_GROWTH_WINDOW_SECONDS = 14 * 86400.0
_SURVEY_FIELDS = {
    "results": ("job_id", "created_at"),
    "events": ("occurred_at",),
    "notifications": ("job_id", "created_at"),
}


# -- what the survey pass counts ---------------------------------------------------------------


@dataclass
class SectionSize:
    """One top-level section: its share of the file in bytes (its key included) and its entries.

    Entries are an object's members, an array's elements, or 1 for a single value such as
    `schema_version`. For `events` an entry is one job's list of events.
    """

    bytes: int = 0
    count: int = 0
    at: int | None = None  # where its key begins: sections are listed in the file's order

    def as_dict(self) -> dict[str, int]:
        return {"bytes": self.bytes, "count": self.count}


@dataclass
class AgeHistogram:
    """Records by age in whole days before `now`: day 0 is the last 24 hours.

    Counts every record that `clean` counts in its `total`; a record without a parseable
    timestamp is counted in `no_timestamp`, one dated after `now` in `future`.
    """

    per_day: Counter[int] = field(default_factory=Counter)
    future: int = 0
    no_timestamp: int = 0

    def add(self, moment: datetime | None, now: datetime) -> None:
        if moment is None:
            self.no_timestamp += 1
            return
        age = now - moment
        if age < timedelta(0):
            self.future += 1
        else:
            self.per_day[age.days] += 1  # a timedelta of 0 or more: its whole days

    def add_ages(self, ages: list[timedelta]) -> None:
        """`add` for many records at once, by their ages (now minus their timestamps)."""
        self.add_days(list(map(_whole_days, ages)))

    def add_days(self, days: list[int]) -> None:
        """`add` for many records at once, by their ages' whole days (`timedelta.days`)."""
        for day, number in Counter(days).items():
            if day < 0:  # a negative timedelta has negative days, and only it
                self.future += number
            else:
                self.per_day[day] += number

    def add_moments(self, moments: list[datetime | None], now: datetime) -> None:
        """`add` for many records at once."""
        dated = [moment for moment in moments if moment is not None]
        self.no_timestamp += len(moments) - len(dated)
        self.add_ages(list(map(_minus, repeat(now, len(dated)), dated)))

    @property
    def total(self) -> int:
        return sum(self.per_day.values()) + self.future + self.no_timestamp

    def as_dict(self) -> dict[str, object]:
        return {
            "per_day": {str(day): self.per_day[day] for day in sorted(self.per_day)},
            "future": self.future,
            "no_timestamp": self.no_timestamp,
        }


@dataclass
class StoreSurvey:
    """What the passes saw, section by section: the observer `clean(survey=...)` fills.

    A section's bytes run from its key to the end of its value. Pass 1 tells it of every job,
    pass 2 of every result, event and notification it reads; a worker's survey of its part is
    added in. Given the records themselves (their `Member`s, with byte offsets) and the job
    index, it also tells `growth` each record's section, timestamp, bytes and fate. On the
    layout reader's block path it is told of a block at a time (`jobs_block`, `block`,
    `events_block`: the structs of its `block_fields` and the block's offsets), and of each
    record the block path hands over one at a time, as above.
    """

    now: datetime
    growth_window: float = DEFAULT_GROWTH_WINDOW_SECONDS  # seconds
    sections: dict[str, SectionSize] = field(default_factory=dict)
    jobs_by_status: Counter[str] = field(default_factory=Counter)
    result_ages: AgeHistogram = field(default_factory=AgeHistogram)
    event_ages: AgeHistogram = field(default_factory=AgeHistogram)
    schema_version: object = None
    growth: GrowthTally = field(init=False)

    def __post_init__(self) -> None:
        self.growth = GrowthTally(self.now, self.growth_window)

    def section(self, key: str, nbytes: int, count: int, at: int | None = None) -> None:
        sizes = self.sections.setdefault(key, SectionSize())
        sizes.bytes += nbytes
        sizes.count += count
        if at is not None:
            sizes.at = at if sizes.at is None else min(sizes.at, at)

    def fields(self, section: str, judged: tuple[str, ...]) -> tuple[str, ...] | None:
        """The only fields of a `section`'s records the passes need decode, the judge reading
        `judged`; None: whole records (a job's: a missing status is told from a null one)."""
        if section == "jobs":
            return None
        return tuple(dict.fromkeys(judged + _SURVEY_FIELDS[section]))

    def block_fields(
        self, section: str, judged: tuple[str, ...]
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """`fields` for the block path, where records are not decoded whole: the fields, and
        those whose absence must be told from a null (a job's status: see `job_status`)."""
        if section == "jobs":
            return tuple(dict.fromkeys((*judged, "status", "queued_at", "finished_at"))), (
                "status",
            )
        return tuple(dict.fromkeys(judged + _SURVEY_FIELDS[section])), ()

    def jobs_block(self, block: Block, statuses: list[Any]) -> None:
        """A block of jobs (structs of `block_fields`; `statuses` theirs, missing ones not
        strings nor None): as `job` told of each in turn."""
        counted = self.jobs_by_status
        for status, number in Counter(statuses).items():  # in the order first seen, as `job`
            if type(status) is not str:
                status = STATUS_NOT_A_STRING if status is None else NO_STATUS
            if status not in counted and len(counted) >= _MAX_STATUSES:
                status = OTHER_STATUSES
            counted[status] += number
        values, sizes, growth = block.values, _block_sizes(block), self.growth
        moments = parse_timestamps([value.queued_at for value in values])
        terminal = [status in TERMINAL_STATUSES for status in statuses]
        if False in terminal:
            going = [not flag for flag in terminal]
            growth.add_many("jobs", _GOING, _chosen(moments, going), _chosen(sizes, going))
        if True not in terminal:
            return
        ended = list(compress(range(len(terminal)), terminal))
        finished = parse_timestamps([values[position].finished_at for position in ended])
        if None in finished:  # job retention keeps them
            kept = [moment is None for moment in finished]
            growth.add_many(
                "jobs",
                _KEPT,
                [moments[position] for position in compress(ended, kept)],
                [sizes[position] for position in compress(ended, kept)],
            )
            ended = [position for position, no in zip(ended, kept, strict=True) if not no]
        started = [moments[position] for position in ended]
        ended_at = [moment for moment in finished if moment is not None]
        # how long each ran: from `queued_at` to `finished_at` (0 when it was not queued)
        if all_dated(started):
            ran = list(map(_seconds, map(_minus, ended_at, started)))
            growth.ran_many(ran)
        else:
            ran = [
                (end - start).total_seconds() if start is not None else 0.0
                for start, end in zip(started, ended_at, strict=True)
            ]
            growth.ran_many(_chosen(ran, [start is not None for start in started]))
        growth.add_many(
            "jobs",
            _ENDED,
            started,
            [sizes[position] for position in ended],
            list(map(max, ran, repeat(0.0))),
        )

    def other(self, section: Member) -> None:
        if section.key == "schema_version":
            self.schema_version = section.value

    def job(self, job: object, member: Member | None = None) -> None:
        status = job_status(job)
        if status not in self.jobs_by_status and len(self.jobs_by_status) >= _MAX_STATUSES:
            status = OTHER_STATUSES
        self.jobs_by_status[status] += 1
        if member is not None:
            self._grow_job(job, member)

    def result(
        self,
        result: object,
        member: Member | None = None,
        index: JobIndex | RememberingIndex | None = None,
    ) -> None:
        if isinstance(result, dict):  # as `clean`: only objects are results
            moment = parse_timestamp(result.get("created_at"))
            self.result_ages.add(moment, self.now)
            if member is not None and index is not None:
                fate = _fate(
                    index.flags_of(str(result.get("job_id") or "")), BY_RESULTS if moment else 0
                )
                self.growth.add("results", moment, _record_bytes(member), fate)

    def notification(
        self, notification: object, member: Member, index: JobIndex | RememberingIndex
    ) -> None:
        """A member of `notifications`: it goes, if at all, with its job."""
        job_id = moment = None
        if isinstance(notification, dict):
            job_id, moment = (
                notification.get("job_id"),
                parse_timestamp(notification.get("created_at")),
            )
        self.growth.add(
            "notifications",
            moment,
            _record_bytes(member),
            _fate(index.flags_of(str(job_id or "")), 0),
        )

    def block(self, section: str, block: Block, flags: list[int]) -> None:
        """A block of results or notifications (their structs of the fields asked for, `fields`),
        their jobs' index `flags`: as `result` or `notification` told of each in turn."""
        moments = parse_timestamps([value.created_at for value in block.values])
        own = 0
        if section == "results":
            self.result_ages.add_moments(moments, self.now)
            own = BY_RESULTS
        sizes, growth = _block_sizes(block), self.growth
        for flag, chosen in _groups(flags):
            dated = moments if chosen is None else _chosen(moments, chosen)
            dated_sizes = sizes if chosen is None else _chosen(sizes, chosen)
            if own and None in dated:  # one without a timestamp is not its own TTL's to remove
                undated = [moment is None for moment in dated]
                growth.add_many(
                    section, _fate(flag, 0), [None] * sum(undated), _chosen(dated_sizes, undated)
                )
                dated = [moment for moment in dated if moment is not None]
                dated_sizes = [
                    size for size, no in zip(dated_sizes, undated, strict=True) if not no
                ]
            if dated:
                growth.add_many(section, _fate(flag, own), dated, dated_sizes)

    def events_block(
        self, block: Block, flags: list[int]
    ) -> tuple[list[int], list[datetime]] | None:
        """A block of jobs' events arrays (lists of structs), their jobs' index `flags`: as
        `events` told of each array in turn, the usual timestamps parsed in one go. Gives the
        arrays' lengths and every event's moment, in order, where every one parsed (for
        `Judge.event_arrays_parsed`); else None."""
        values = block.values
        stamps = [event.occurred_at for events in values for event in events]
        now = self.now
        try:
            moments = list(map(_from_iso, stamps))
            ages = list(map(_minus, repeat(now, len(moments)), moments))  # TypeError: naive
        except (TypeError, ValueError):
            for position, events in enumerate(values):
                self._events_stamps(
                    [event.occurred_at for event in events], block.member(position), flags[position]
                )
            return None
        days = list(map(_whole_days, ages))
        self.event_ages.add_days(days)
        growth = self.growth
        counts = list(map(len, values))
        firsts = list(accumulate(counts, initial=0))  # where each array's events begin in `ages`
        # how many of the events before each array's lie within the window: a moment after
        # its start is one less than the window old, and for a window of whole days, one
        # whose age has fewer whole days than it (compared as ints, much faster)
        window_days, part = divmod(growth.window_seconds, 86400)
        within = (
            map(int(window_days).__gt__, days)
            if not part and window_days <= _MAX_WHOLE_DAYS
            else map(growth.window_start.__lt__, moments)
        )
        before = list(accumulate(within, initial=0))
        at_firsts = [before[first] for first in firsts]
        inside = list(map(_minus, at_firsts[1:], at_firsts))
        starts, ends = block.value_starts, block.value_ends
        first = block.lines[0] + 5 if block.comma_at is None else block.comma_at - block.base
        # `"<job id>": []` and the comma before it: what is left when every event goes
        bare = list(map(_minus, [start + 2 for start in starts], [first, *ends[:-1]]))
        shared = [end - start - 2 for start, end in zip(starts, ends, strict=True)]  # the rest
        for flag, chosen in _groups(flags):
            arrays = (
                range(len(values)) if chosen is None else list(compress(range(len(chosen)), chosen))
            )
            full = [position for position in arrays if counts[position]]
            bare_fate, events_fate = _fate(flag, 0), _fate(flag, BY_EVENTS)
            if flag & TERMINAL:  # a bare array dated like the jobs; events not pending
                growth.add_sums("events", bare_fate, sum([bare[at] for at in arrays]), 0, 0)
                if full:
                    growth.add_sums(
                        "events",
                        events_fate,
                        0,
                        sum([shared[at] for at in full]),
                        sum([shared[at] * inside[at] // counts[at] for at in full]),
                    )
                continue
            if len(full) < len(arrays):  # an empty array, dated like the jobs
                growth.add_sums(
                    "events", bare_fate, sum([bare[at] for at in arrays if not counts[at]]), 0, 0
                )
            if not full:
                continue
            # pending: each array's bare bytes dated by its first event; its events share the
            # rest evenly, the first event taking what does not divide (as `add_shared`)
            heads = [ages[firsts[at]] for at in full]
            growth.add_pending("events", bare_fate, heads, [bare[at] for at in full])
            shares = [shared[at] // counts[at] for at in full]
            events_ages = (  # the events of these arrays
                ages
                if chosen is None
                else compress(ages, chain.from_iterable(map(repeat, chosen, counts)))
            )
            growth.add_pending(
                "events",
                events_fate,
                [*events_ages, *heads],
                [
                    *chain.from_iterable(map(repeat, shares, [counts[at] for at in full])),
                    *[shared[at] % counts[at] for at in full],
                ],
            )
        return counts, moments

    def _events_stamps(self, stamps: list[Any], member: Member, flags: int) -> None:
        """`events` for an array whose events are objects, by their `occurred_at` (None: missing)."""
        try:
            moments = list(map(_from_iso, stamps))
            ages = [self.now - moment for moment in moments]  # TypeError for a naive moment
        except (TypeError, ValueError):
            odd = [parse_timestamp(stamp) for stamp in stamps]
            for moment in odd:
                self.event_ages.add(moment, self.now)
            self._grow_odd_events(member, flags, odd)
            return
        self.event_ages.add_ages(ages)
        self._grow_events(member, flags, moments)

    def events(self, events: list[Any], member: Member | None = None, flags: int = 0) -> None:
        """A job's whole events array; the usual one (zoned isoformat() strings) in bulk.
        With its `member`, the array's bytes go to the growth: its events share what is not
        the bare `"<job id>": []` evenly (the reader decoded them in one piece)."""
        try:
            moments = list(map(_from_iso, [event["occurred_at"] for event in events]))
            ages = [self.now - moment for moment in moments]  # TypeError for a naive moment
        except (KeyError, TypeError, ValueError):
            for event in events:
                self.event(event)
            if member is not None:
                self._grow_odd_events(member, flags, [_event_moment(event) for event in events])
            return
        self.event_ages.add_ages(ages)
        if member is not None:
            self._grow_events(member, flags, moments)

    def event(self, event: object) -> None:
        moment = _event_moment(event)
        self.event_ages.add(moment, self.now)

    @staticmethod
    def remembering(index: JobIndex) -> RememberingIndex:
        """`index`, remembering its last answer (for the judge and the survey in turn)."""
        return RememberingIndex(index)

    def events_array(self, member: Member, flags: int) -> EventsWatch:
        """A job's events array read element by element (a long one; its job's index `flags`):
        the watch to tell each element to, and then that the array is closed."""
        return EventsWatch(self, member, flags)

    def _grow_job(self, job: object, member: Member) -> None:
        moment = parse_timestamp(job.get("queued_at")) if isinstance(job, dict) else None
        nbytes = _record_bytes(member)
        if not isinstance(job, dict) or not is_terminal(job):
            self.growth.add("jobs", moment, nbytes, _GOING)
            return
        finished = parse_timestamp(job.get("finished_at"))
        if finished is None:  # job retention keeps it
            self.growth.add("jobs", moment, nbytes, _KEPT)
            return
        ran = (finished - moment).total_seconds() if moment is not None else 0.0
        self.growth.add("jobs", moment, nbytes, _ENDED, max(ran, 0.0))
        if moment is not None:
            self.growth.ran(ran)

    def _grow_events(self, member: Member, flags: int, moments: list[datetime]) -> None:
        """A job's events array whose every event has a timestamp: its events share its bytes."""
        bare = _bare_array_bytes(member)
        self._grow_bare_array(flags, moments[0] if moments else None, bare)
        if moments:
            self.growth.add_shared(
                "events", moments, _record_bytes(member) - bare, _fate(flags, BY_EVENTS)
            )

    def _grow_odd_events(self, member: Member, flags: int, moments: list[datetime | None]) -> None:
        """`_grow_events` for an array with events without a timestamp."""
        bare = _bare_array_bytes(member)
        self._grow_bare_array(flags, moments[0], bare)
        share, rest = divmod(_record_bytes(member) - bare, len(moments))
        fate, undated = _fate(flags, BY_EVENTS), _fate(flags, 0)
        for moment in moments:
            self.growth.add("events", moment, share, fate if moment else undated)
        self.growth.add("events", moments[0], rest, fate if moments[0] else undated)

    def _grow_bare_array(self, flags: int, first: datetime | None, nbytes: int) -> None:
        """A job's `"<job id>": []`: it goes with its job. An ended job's is dated like the jobs
        (its events may be gone); the first event dates that of a job still going."""
        if flags & TERMINAL:
            self.growth.add("events", None, nbytes, _fate(flags, 0))
        else:
            self.growth.add("events", first, nbytes, _fate(flags, 0))

    def in_file_order(self) -> list[tuple[str, SectionSize]]:
        return sorted(
            self.sections.items(), key=lambda item: -1 if item[1].at is None else item[1].at
        )

    def fresh(self) -> StoreSurvey:
        """An empty survey for a worker's part of the store, to `add` in afterwards."""
        return StoreSurvey(self.now, self.growth_window)

    def add(self, other: StoreSurvey) -> None:
        """Count in a worker's survey of its part of the store."""
        for key, sizes in other.sections.items():
            self.section(key, sizes.bytes, sizes.count, sizes.at)
        for status, count in other.jobs_by_status.items():
            if status not in self.jobs_by_status and len(self.jobs_by_status) >= _MAX_STATUSES:
                status = OTHER_STATUSES
            self.jobs_by_status[status] += count
        for mine, theirs in (
            (self.result_ages, other.result_ages),
            (self.event_ages, other.event_ages),
        ):
            mine.per_day.update(theirs.per_day)
            mine.future += theirs.future
            mine.no_timestamp += theirs.no_timestamp
        if other.schema_version is not None:
            self.schema_version = other.schema_version
        self.growth.merge(other.growth)


_NOTHING = object()


class RememberingIndex:
    """A job index that remembers its last answer: the judge and the survey ask about the same
    record's job one after the other, and a lookup costs more than the rest of a record."""

    def __init__(self, index: JobIndex) -> None:
        self._index = index
        self._last: object = _NOTHING
        self._flags = 0

    def flags_of(self, job_id: object) -> int:
        if job_id != self._last:
            self._flags = self._index.flags_of(job_id)
            self._last = job_id
        return self._flags

    def __contains__(self, job_id: object) -> bool:
        return bool(self.flags_of(job_id) & TERMINAL)


class EventsWatch:
    """The survey of one events array read element by element: each element's timestamp, and
    its bytes from the end of the one before (the first: from the `[`); at `close`, the bytes
    up to the `]` go to the last one, as the bulk form shares them (see `StoreSurvey.events`)."""

    def __init__(self, survey: StoreSurvey, member: Member, flags: int) -> None:
        self._survey, self._member, self._flags = survey, member, flags
        self._fate, self._undated = _fate(flags, BY_EVENTS), _fate(flags, 0)
        self._previous_end = member.value_start + 1
        self._last: datetime | None = None
        self._count = 0

    def element(self, item: Member) -> None:
        survey = self._survey
        moment = _event_moment(item.value)
        survey.event_ages.add(moment, survey.now)
        if not self._count:
            survey._grow_bare_array(self._flags, moment, _bare_array_bytes(self._member))
        self._count += 1
        self._last = moment
        fate = self._fate if moment else self._undated
        survey.growth.add("events", moment, item.value_end - self._previous_end, fate)
        self._previous_end = item.value_end

    def close(self) -> None:
        """The array is read (its `value_end` is set)."""
        survey = self._survey
        if not self._count:
            survey._grow_bare_array(self._flags, None, _bare_array_bytes(self._member))
            return
        rest = self._member.value_end - 1 - self._previous_end  # whitespace before the "]"
        survey.growth.add("events", self._last, rest, self._fate if self._last else self._undated)


_GOING, _KEPT, _ENDED = Fate(BY_JOBS, True), Fate(0), Fate(BY_JOBS)  # a job's fates
_FATES: dict[int, Fate] = {}


def _fate(flags: int, own: int) -> Fate:
    """The fate of a result, event or notification of a job with index `flags`; `own` is its
    kind's TTL when its timestamp parses (BY_RESULTS, BY_EVENTS), else 0."""
    fate = _FATES.get(flags << 3 | own)
    if fate is None:
        if flags & TERMINAL:
            fate = Fate(own | (0 if flags & NO_FINISHED_AT else BY_JOBS))
        else:
            fate = Fate(own | BY_JOBS, True)
        _FATES[flags << 3 | own] = fate
    return fate


_T = TypeVar("_T")


def _chosen(items: list[_T], chosen: list[bool]) -> list[_T]:
    """The `items` whose place in `chosen` is True."""
    return list(compress(items, chosen))


def _groups(keys: list[int]) -> list[tuple[int, list[bool] | None]]:
    """The distinct `keys`, in the order first seen, each with where it is (None: everywhere)."""
    distinct = dict.fromkeys(keys)
    if len(distinct) == 1:
        return [(keys[0], None)]
    return [(key, list(map(key.__eq__, keys))) for key in distinct]


def _record_bytes(member: Member) -> int:
    """A record's exact bytes: from the comma before it (or its first byte) to its end."""
    return member.value_end - (member.start if member.comma_at is None else member.comma_at)


def _block_sizes(block: Block) -> list[int]:
    """`_record_bytes` of each of a block's members."""
    ends = block.value_ends
    start = block.base + block.lines[0] + 5 if block.comma_at is None else block.comma_at
    return [block.base + ends[0] - start, *[end - before for before, end in pairwise(ends)]]


def _bare_array_bytes(member: Member) -> int:
    """What stays of a job's events array when every event is gone: `"<job id>": []`, and
    the comma before it."""
    return member.value_start + 2 - (member.start if member.comma_at is None else member.comma_at)


def _event_moment(event: object) -> datetime | None:
    return parse_timestamp(event.get("occurred_at")) if isinstance(event, dict) else None


def job_status(job: object) -> str:
    """The status a job is counted under; the parenthesised names cannot be a real status."""
    if not isinstance(job, dict):
        return NOT_AN_OBJECT
    if "status" not in job:
        return NO_STATUS
    status = job["status"]
    return status if isinstance(status, str) else STATUS_NOT_A_STRING


# -- one inspection: the dry run and the survey of the same file --------------------------------


@dataclass
class Inspection:
    bytes_total: int
    survey: StoreSurvey
    dry_run: CleanupReport  # what `clean --dry-run` reports for the same store and policy

    @property
    def reclaimable_bytes(self) -> int:
        return self.dry_run.bytes_before - self.dry_run.bytes_after

    @cached_property
    def growth(self) -> Growth:
        """How fast the store grows, and where it levels off under these TTLs (see growth.py)."""
        policy = self.dry_run.policy
        ttls = TTLs(policy.results.ttl_seconds, policy.events.ttl_seconds, policy.jobs.ttl_seconds)
        sections = {name: sizes.bytes for name, sizes in self.survey.in_file_order()}
        return project(self.survey.growth, ttls, sections, self.bytes_total)

    def as_dict(self) -> dict[str, Any]:
        report = self.dry_run
        dry = report.as_dict()
        document = {
            "store_file": report.store_file,
            "now": dry["now"],
            "ttl_seconds": dry["ttl_seconds"],
            "bytes_total": self.bytes_total,
            "bytes_after_cleanup": report.bytes_after,
            "sections": {name: sizes.as_dict() for name, sizes in self.survey.in_file_order()},
            "schema_version": self.survey.schema_version,
            "jobs_by_status": dict(_statuses_in_order(self.survey.jobs_by_status)),
            "terminal_job_count": report.terminal_job_count,
            "active_job_count": report.active_job_count,
            "results": dry["results"],
            "events": dry["events"],
            "reclaimable": {
                "results": report.results.delete_count,
                "events": report.events.delete_count,
                "bytes": self.reclaimable_bytes,
            },
            "age_days": {
                "results": self.survey.result_ages.as_dict(),
                "events": self.survey.event_ages.as_dict(),
            },
            "growth": self.growth.as_dict(),
        }
        if "jobs" in dry:  # job retention on: what it would take, besides the counts above
            document["jobs"] = dry["jobs"]
            document["reclaimable"] = dict(
                document["reclaimable"],
                jobs=report.jobs.delete_count,
                notifications=report.with_jobs.notifications,
            )
            document["reclaimable"]["bytes"] = document["reclaimable"].pop("bytes")
        return document


def inspect_store(
    store_file: str | os.PathLike[str],
    policy: RetentionPolicy,
    progress: Progress | None = None,
    reader: str = "auto",
    workers: str | int = "auto",
    growth_window: float = DEFAULT_GROWTH_WINDOW_SECONDS,
) -> Inspection:
    """Inspect the store at `store_file` under `policy`; writes nothing, takes no lock.
    `growth_window`: the seconds before `now` whose records give the growth.

    Raises what `clean` raises for a missing or invalid store, and StoreChangedError when the
    path named another file by the end (the service replaced the store meanwhile).
    """
    before = _snapshot_at(store_file)
    report = clean(
        store_file,
        policy,
        dry_run=True,
        progress=progress,
        reader=reader,
        workers=workers,
        survey=lambda: StoreSurvey(policy.now, growth_window),
    )
    if before is None or not _unchanged(store_file, before) or report.bytes_before != before.size:
        raise StoreChangedError(
            f"the store {store_file} changed while it was inspected",
            "the figures describe a store that is no longer there; run again",
        )
    survey = report.survey
    if not isinstance(survey, StoreSurvey):  # cannot happen: `clean` gathers it with `survey=`
        raise TypeError("the cleanup gathered no survey of the store")
    return Inspection(report.bytes_before, survey, report)


def _snapshot_at(path: str | os.PathLike[str]) -> Snapshot | None:
    try:
        return Snapshot.of(os.stat(path))
    except OSError:
        return None  # `clean` will say what is wrong with the path


def _unchanged(path: str | os.PathLike[str], before: Snapshot) -> bool:
    try:
        return before.matches(os.stat(path))
    except OSError:
        return False


# -- the human table ---------------------------------------------------------------------------

HISTOGRAM_DAYS = 30  # rows of one day each; older records share one row
BAR_WIDTH = 40


def render_text(inspection: Inspection) -> str:
    """The human-readable inspection: sections, jobs, ages, and what `clean` would do."""
    report, survey = inspection.dry_run, inspection.survey
    policy = report.policy
    blocks = [
        _store_block(inspection),
        _sections_block(dict(survey.in_file_order()), inspection.bytes_total),
        _growth_block(inspection.growth, inspection.bytes_total),
        _jobs_block(survey.jobs_by_status, report),
        _ages_block("results", survey.result_ages, policy.results),
        _ages_block("events", survey.event_ages, policy.events),
        _cleanup_block(inspection),
    ]
    return "\n\n".join(blocks) + "\n"


def _store_block(inspection: Inspection) -> str:
    report, survey = inspection.dry_run, inspection.survey
    schema = (
        f", schema_version {survey.schema_version}" if survey.schema_version is not None else ""
    )
    return "\n".join(
        [
            f"store    {report.store_file}",
            f"size     {size(inspection.bytes_total)} ({inspection.bytes_total:,} bytes){schema}",
            f"now      {report.policy.now.isoformat()}",
        ]
    )


def _sections_block(sections: dict[str, SectionSize], total: int) -> str:
    width = max([len("section")] + [len(name) for name in sections])
    lines = [f"{'section':<{width}}  {'size':>10}  {'share':>7}  {'entries':>11}"]
    for name, sizes in sections.items():
        lines.append(
            f"{name:<{width}}  {size(sizes.bytes):>10}  {percent(sizes.bytes, total):>7}  {sizes.count:>11,}"
        )
    if not sections:
        lines.append("(an empty store)")
    return "\n".join(lines)


_WHY_KEPT = {
    NO_JOB_RETENTION: "jobs are never removed (no job retention)",
    NEVER_ENDING_JOBS: "records of jobs that never end",
    NO_TIMESTAMP: "records without a valid timestamp",
    RETENTION_DISABLED: "records whose retention is disabled",
}


def _growth_block(growth: Growth, total: int) -> str:
    """How fast the store grows, what of it stays, and where it levels off (or what would make it)."""
    lines = [f"growth over the last {growth.window_days:g} d, from the records' own timestamps"]
    if growth.levels_off_bytes is not None:
        lines.append(
            f"  grows {size(round(growth.bytes_per_day))} a day, none of it for ever: under these TTLs "
            f"it levels off at about {size(round(growth.levels_off_bytes))} (now {size(total)})"
        )
    else:
        why = "; ".join(_WHY_KEPT[reason] for reason in growth.kept_by_reason)
        lines.append(
            f"  grows {size(round(growth.bytes_per_day))} a day; "
            f"{size(round(growth.kept_bytes_per_day))} a day of it stays for ever: {why}"
        )
        hint = growth.suggestion
        if hint is not None and hint.levels_off_bytes is not None:
            lines.append(
                f"  with {hint.option} {_days(hint.ttl_seconds)} it would level off at about "
                f"{size(round(hint.levels_off_bytes))}"
            )
        elif hint is not None:
            lines.append(
                f"  even with {hint.option} {_days(hint.ttl_seconds)}, "
                f"{size(round(hint.kept_bytes_per_day))} a day would stay for ever"
            )
        else:
            lines.append("  no TTL removes that: the store never stops growing")
    parts = []
    for name, section in growth.sections.items():
        if section.bytes_per_day >= 0.5:
            kept = section.kept_bytes_per_day
            stays = (
                ""
                if kept < 0.5
                else " (all for ever)"
                if kept >= section.bytes_per_day - 0.5
                else f" ({size(round(kept))} for ever)"
            )
            parts.append(f"{name} {size(round(section.bytes_per_day))}{stays}")
    if parts:
        lines.append("  a day by section: " + ", ".join(parts))
    return "\n".join(lines)


def _days(seconds: float) -> str:
    return f"{seconds / 86400:g}d" if seconds % 86400 == 0 else f"{seconds:g}"


def _jobs_block(statuses: Counter[str], report: CleanupReport) -> str:
    jobs = sum(statuses.values())
    lines = [
        f"jobs by status ({jobs:,}; terminal {report.terminal_job_count:,}, active {report.active_job_count:,})"
    ]
    ordered = list(_statuses_in_order(statuses))
    width = max([0] + [len(status) for status, _ in ordered])
    for status, count in ordered:
        lines.append(f"  {status:<{width}}  {count:>11,}  {percent(count, jobs):>7}")
    return "\n".join(lines)


def _statuses_in_order(statuses: Counter[str]) -> Iterator[tuple[str, int]]:
    """The service's statuses in lifecycle order, then any others by name."""
    for status in KNOWN_STATUSES:
        if status in statuses:
            yield status, statuses[status]
    for status in sorted(set(statuses) - set(KNOWN_STATUSES)):
        yield status, statuses[status]


def _ages_block(kind: str, ages: AgeHistogram, rule: KindRule) -> str:
    ttl = rule.ttl_seconds  # set exactly where the rule is enabled (`policy._kind_rule`)
    retention = (
        f"TTL {ttl / 86400:g} d: below the line, records of terminal jobs are deleted"
        if rule.enabled and ttl is not None
        else "retention disabled"
    )
    lines = [f"{kind} by age in days before now ({ages.total:,}; {retention})"]
    rows = _age_rows(ages, rule)
    peak = max([1] + [count for label, count in rows if label is not None])
    for label, count in rows:
        if label is None:
            lines.append("  " + "-" * (BAR_WIDTH + 21) + " cutoff")
        else:
            lines.append(
                f"  {label:>7}  {count:>10,}  {'#' * round(BAR_WIDTH * count / peak)}".rstrip()
            )
    return "\n".join(lines)


def _age_rows(ages: AgeHistogram, rule: KindRule) -> list[tuple[str | None, int]]:
    """(label, count) rows, one a day up to HISTOGRAM_DAYS; None as the label marks the cutoff."""
    rows: list[tuple[str | None, int]] = []
    if ages.future:
        rows.append(("future", ages.future))
    last_day = max(ages.per_day, default=-1)
    # first day wholly past it
    cutoff_day = None if rule.ttl_seconds is None else -(-rule.ttl_seconds // 86400)
    for day in range(min(last_day, HISTOGRAM_DAYS - 1) + 1):
        if day == cutoff_day:
            rows.append((None, 0))
        rows.append((f"{day} d", ages.per_day[day]))
    if last_day >= HISTOGRAM_DAYS:
        older = sum(count for day, count in ages.per_day.items() if day >= HISTOGRAM_DAYS)
        if cutoff_day == HISTOGRAM_DAYS:
            rows.append((None, 0))
        rows.append((f">={HISTOGRAM_DAYS} d", older))
    if ages.no_timestamp:
        rows.append(("no time", ages.no_timestamp))
    return rows


def _cleanup_block(inspection: Inspection) -> str:
    report = inspection.dry_run
    freed = inspection.reclaimable_bytes
    lines = ["streamclean clean with these TTLs would delete (the counts of clean --dry-run)"]
    for kind, tally, rule in (
        ("results", report.results, report.policy.results),
        ("events", report.events, report.policy.events),
    ):
        cutoff = f"cutoff {rule.cutoff.isoformat()}" if rule.cutoff else "retention disabled"
        lines.append(
            f"  {kind:<7}  {tally.delete_count:>11,} of {tally.total:>11,}  "
            f"{percent(tally.delete_count, tally.total):>7}  {cutoff}"
        )
    jobs_cutoff = report.policy.jobs.cutoff
    if jobs_cutoff is not None:  # job retention (`enabled`): the jobs, and what went with them
        jobs, taken = report.jobs, report.with_jobs
        lines.append(
            f"  {'jobs':<7}  {jobs.delete_count:>11,} of {jobs.total:>11,}  {percent(jobs.delete_count, jobs.total):>7}"
            f"  cutoff {jobs_cutoff.isoformat()}; {jobs.skipped_missing_timestamp:,} terminal without finished_at kept"
        )
        lines.append(
            f"  {'':<7}  with them {taken.results:,} of the results, {taken.events:,} of the events above, "
            f"and {taken.notifications:,} of {taken.notifications_total:,} notifications"
        )
    lines.append(
        f"  {'bytes':<7}  {size(freed):>11} of {size(report.bytes_before):>11}  "
        f"{percent(freed, report.bytes_before):>7}  the store would shrink to {size(report.bytes_after)}"
    )
    return "\n".join(lines)

"""The judge: the retention rule, written once, and the counts it keeps.

Every decision about retention is a `Judge`'s: which job is terminal (pass 1), which result,
event, job or notification goes (pass 2), and what each verdict adds to the report; `policy.py`
holds the rule's inputs, and the readers only find and decode records. The rule is
docs/CONTRACT.md's (sections 2 and 7). The verdicts have batch forms for a job's whole events
array and for a block of records (`*_block`, `event_arrays`), which the tests hold to the plain
forms.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any

from .index import NO_FINISHED_AT, REMOVED, TERMINAL, FlagsOf
from .policy import (
    TERMINAL_STATUSES,
    KindRule,
    RetentionPolicy,
    all_dated,
    is_terminal,
    parse_timestamp,
    parse_timestamps,
)
from .report import KindTally, WithJobs

_UTC = UTC
_from_iso = datetime.fromisoformat
# stands for a timestamp that does not parse: never expired
_NEVER = datetime.max.replace(tzinfo=_UTC)
_FIELDS = {
    "results": ("job_id", "created_at"),
    "notifications": ("job_id",),
    "events": ("occurred_at",),
}


class Judge:
    """The rule of one run, fixed at `policy`, with the tallies its verdicts add up to."""

    def __init__(self, policy: RetentionPolicy) -> None:
        self.policy = policy
        self.results = KindTally()
        self.events = KindTally()
        self.with_jobs = WithJobs()  # records that went with removed jobs (job retention)

    def fields(self, section: str) -> tuple[str, ...]:
        """The only fields of a `section`'s records that this judge reads (a reader may decode
        just those). A field that is missing and one that is null are read alike."""
        if section == "jobs":
            return ("status", "finished_at") if self.policy.jobs.enabled else ("status",)
        return _FIELDS[section]

    # -- pass 1 --------------------------------------------------------------------------------

    @staticmethod
    def terminal(job: object) -> bool:
        """Whether a job's results and events are eligible at all."""
        return is_terminal(job)

    def job_flags(self, job: object) -> int:
        """A job's flags for the index with job retention on: TERMINAL, and REMOVED when it
        finished at or before the jobs cutoff, or NO_FINISHED_AT when that does not parse."""
        if not is_terminal(job):
            return 0
        rule = self.policy.jobs
        if rule.cutoff is None:
            return TERMINAL
        moment = parse_timestamp(job.get("finished_at"))
        if moment is None:
            return TERMINAL | NO_FINISHED_AT
        return TERMINAL | REMOVED if rule.is_expired(moment) else TERMINAL

    def job_flags_block(
        self, statuses: Sequence[str | None], finished: Sequence[str | None] | None
    ) -> list[int]:
        """`job_flags` (or `terminal`, with job retention off) over a block of jobs, each an
        object whose `status` (and `finished_at`) is a string or missing: the same flags."""
        flags = [TERMINAL if status in TERMINAL_STATUSES else 0 for status in statuses]
        rule = self.policy.jobs
        if rule.cutoff is None:
            return flags
        if finished is None:
            raise ValueError("job retention needs each job's finished_at")
        chosen = [position for position, flag in enumerate(flags) if flag]
        moments, _ = _moments([finished[position] for position in chosen])
        cutoff = rule.cutoff
        for position, moment in zip(chosen, moments, strict=True):
            if moment is _NEVER:
                flags[position] = TERMINAL | NO_FINISHED_AT
            elif moment <= cutoff:
                flags[position] = TERMINAL | REMOVED
        return flags

    # -- pass 2: results -----------------------------------------------------------------------

    def results_block(self, flags: Sequence[int], created: Sequence[str | None]) -> list[int]:
        """`result` (or `result_of_jobs`, with job retention on) over a block of results, each
        an object whose `created_at` is a string or missing and whose job has the index `flags`
        (`JobIndex.flags_many` of the job ids, a missing one as ""): the same counts, and the
        positions of the results deleted, in order."""
        tally = self.results
        tally.total += len(flags)
        eligible = [position for position, flag in enumerate(flags) if flag & TERMINAL]
        tally.eligible_terminal += len(eligible)
        removed: list[int] = []
        if self.policy.jobs.enabled:
            removed = [position for position in eligible if flags[position] & REMOVED]
            if removed:
                eligible = [position for position in eligible if not flags[position] & REMOVED]
                tally.delete_count += len(removed)
                self.with_jobs.results += len(removed)
        cutoff = self.policy.results.cutoff
        if cutoff is None or not eligible:
            return removed
        moments, skipped = _moments([created[position] for position in eligible])
        tally.skipped_missing_timestamp += skipped
        expired = [
            position for position, moment in zip(eligible, moments, strict=True) if moment <= cutoff
        ]
        tally.delete_count += len(expired)
        return sorted(removed + expired) if removed else expired

    def notifications_block(self, flags: Sequence[int]) -> list[int]:
        """`notification` over a block of notifications, each an object whose job has the index
        `flags` (as `results_block`): the positions deleted."""
        self.with_jobs.notifications_total += len(flags)
        removed = [position for position, flag in enumerate(flags) if flag & REMOVED]
        self.with_jobs.notifications += len(removed)
        return removed

    def result(self, record: object, terminal_jobs: Container[object]) -> bool:
        """Count one member of `results`; True when it is deleted. `terminal_jobs` answers
        `job_id in terminal_jobs` (the index of pass 1)."""
        if not isinstance(record, dict):
            return False  # not a result: kept, and not counted
        tally = self.results
        tally.total += 1
        if str(record.get("job_id") or "") not in terminal_jobs:
            return False
        return _expired(record.get("created_at"), self.policy.results, tally)

    def result_of_jobs(self, record: object, index: FlagsOf) -> bool:
        """`result` with job retention on: a result of a removed job goes with it."""
        if isinstance(record, dict) and index.flags_of(str(record.get("job_id") or "")) & REMOVED:
            tally = self.results
            tally.total += 1
            tally.eligible_terminal += 1
            tally.delete_count += 1
            self.with_jobs.results += 1
            return True
        return self.result(record, index)

    def notification(self, record: object, index: FlagsOf) -> bool:
        """A member of `notifications` (job retention on): True when its job is removed."""
        if not isinstance(record, dict):
            return False
        self.with_jobs.notifications_total += 1
        if index.flags_of(str(record.get("job_id") or "")) & REMOVED:
            self.with_jobs.notifications += 1
            return True
        return False

    def events_of_removed_job(self, count: int) -> None:
        """Count the `count` events of a removed job's array, which goes whole."""
        tally = self.events
        tally.total += count
        tally.eligible_terminal += count
        tally.delete_count += count
        self.with_jobs.events += count

    # -- pass 2: events ------------------------------------------------------------------------

    def event(self, record: object, job_terminal: bool) -> bool:
        """Count one event of a job's events array; True when it is deleted."""
        tally = self.events
        tally.total += 1
        if not job_terminal:
            return False
        moment = record.get("occurred_at") if isinstance(record, dict) else None
        return _expired(moment, self.policy.events, tally)

    def event_batch(self, records: list[Any], job_terminal: bool) -> list[bool] | None:
        """`event` over a job's whole events array in one call: the same verdicts and counts.

        Returns None when nothing is deleted (the usual case for a job that is not terminal,
        or one whose events are recent), else one verdict per record.
        """
        tally = self.events
        tally.total += len(records)
        if not job_terminal:
            return None
        tally.eligible_terminal += len(records)
        cutoff = self.policy.events.cutoff
        if cutoff is None or not records:
            return None
        # The usual case: every event a dict with a clean, zoned isoformat() string, parsed in
        # bulk and decided by the newest and the oldest. Anything else goes one by one.
        try:
            moments = list(map(_from_iso, [record["occurred_at"] for record in records]))
            earliest, latest = min(moments), max(moments)
        except (KeyError, TypeError, ValueError):
            return self._event_batch_one_by_one(records, cutoff, tally)
        if earliest.tzinfo is None:  # naive (UTC) moments: compared one by one
            return self._event_batch_one_by_one(records, cutoff, tally)
        if earliest > cutoff:
            return None
        if latest <= cutoff:
            tally.delete_count += len(records)
            return [True] * len(records)
        verdicts = [moment <= cutoff for moment in moments]
        tally.delete_count += sum(verdicts)
        return verdicts

    def event_arrays(
        self, stamps: Sequence[Sequence[str | None]], terminal: Sequence[int]
    ) -> list[tuple[int, list[bool] | None]]:
        """`event_batch` over a block of jobs' events arrays at once: `stamps` holds each
        array's `occurred_at` values (every event an object: a string, or None when missing),
        `terminal` whether each job is terminal. The same counts; the arrays that lose events,
        as (position, None) when every event goes, else (position, one verdict per event)."""
        counts = list(map(len, stamps))
        chosen = [position for position, flag in enumerate(terminal) if flag]
        moments: list[datetime] = []
        skipped = 0
        if self.policy.events.cutoff is not None:
            moments, skipped = _moments(
                [stamp for position in chosen for stamp in stamps[position]]
            )
        return self._dropped(counts, chosen, moments, skipped)

    def event_arrays_parsed(
        self, counts: Sequence[int], moments: list[datetime], terminal: Sequence[int]
    ) -> list[tuple[int, list[bool] | None]]:
        """`event_arrays` for arrays of `counts` events whose every `occurred_at` parsed, to
        `moments` (in order, as `parse_timestamp` reads them; `inspect`'s survey parsed them
        for itself): the same counts and verdicts, without parsing them again."""
        chosen = [position for position, flag in enumerate(terminal) if flag]
        if len(chosen) < len(counts):
            firsts = list(accumulate(counts, initial=0))
            moments = [
                moment
                for position in chosen
                for moment in moments[firsts[position] : firsts[position + 1]]
            ]
        return self._dropped(counts, chosen, moments, 0)

    def _dropped(
        self, counts: Sequence[int], chosen: list[int], moments: list[datetime], skipped: int
    ) -> list[tuple[int, list[bool] | None]]:
        """The arrays of `counts` events that lose some: `chosen` those of terminal jobs, whose
        events have `moments` (`_NEVER` where there is none; `skipped` of them)."""
        tally = self.events
        tally.total += sum(counts)
        eligible = sum([counts[position] for position in chosen])
        tally.eligible_terminal += eligible
        cutoff = self.policy.events.cutoff
        if cutoff is None or not eligible:
            return []
        tally.skipped_missing_timestamp += skipped
        verdicts = [moment <= cutoff for moment in moments]
        tally.delete_count += sum(verdicts)
        dropped: list[tuple[int, list[bool] | None]] = []
        if True not in verdicts:
            return dropped
        at = 0
        for position in chosen:
            count = counts[position]
            mine = verdicts[at : at + count]
            at += count
            if True in mine:
                dropped.append((position, mine if False in mine else None))
        return dropped

    @staticmethod
    def _event_batch_one_by_one(
        records: list[Any], cutoff: datetime, tally: KindTally
    ) -> list[bool] | None:
        verdicts = []
        deleted = skipped = 0
        from_iso = _from_iso
        for record in records:
            value = record.get("occurred_at") if type(record) is dict else None
            moment = None
            if type(value) is str:
                # parse_timestamp's first try, inlined
                try:
                    moment = from_iso(value)
                except ValueError:
                    pass
                else:
                    if moment.tzinfo is None:
                        moment = moment.replace(tzinfo=_UTC)
            if moment is None:
                moment = parse_timestamp(value)
            if moment is None:
                skipped += 1
                verdicts.append(False)
            elif moment <= cutoff:
                deleted += 1
                verdicts.append(True)
            else:
                verdicts.append(False)
        tally.skipped_missing_timestamp += skipped
        tally.delete_count += deleted
        return verdicts if deleted else None

    # -- parts judged elsewhere ----------------------------------------------------------------

    def add(self, other: Judge) -> None:
        """Count in what another part of the same pass judged (a worker's)."""
        self.results.add(other.results)
        self.events.add(other.events)
        self.with_jobs.add(other.with_jobs)


def _moments(values: Sequence[Any]) -> tuple[list[datetime], int]:
    """Each value's moment as `parse_timestamp` reads it, `_NEVER` where it does not parse,
    and how many do not."""
    moments = parse_timestamps(values)
    if all_dated(moments):
        return moments, 0
    return [_NEVER if moment is None else moment for moment in moments], moments.count(None)


def _expired(value: object, rule: KindRule, tally: KindTally) -> bool:
    """One eligible record with timestamp `value`: counted, and True when deleted."""
    tally.eligible_terminal += 1
    if rule.cutoff is None:
        return False
    moment = parse_timestamp(value)
    if moment is None:
        tally.skipped_missing_timestamp += 1
        return False
    if rule.is_expired(moment):
        tally.delete_count += 1
        return True
    return False

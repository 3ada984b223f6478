"""The judge: the retention rule, written once, and the counts it keeps.

Every stage that has to decide something about retention asks a `Judge`, and nothing else
decides: which job is terminal (pass 1), which result and which event is deleted (pass 2),
what each decision adds to the report's counts. `policy.py` holds the rule's inputs
(durations, cutoffs, timestamps); the readers only find and decode records.

The rule (see docs/CONTRACT.md): a result or event is *eligible* when it belongs to a terminal
job, and an eligible one is deleted when its timestamp parses and is at or before its kind's
cutoff (`<=`). An eligible record without a parseable timestamp is kept and counted as
skipped. Records of other jobs are never touched.

Each verdict has a plain form, one record at a time, and `event` has a batch form for the
hot loop (one call a job's whole events array) that gives the same verdicts and counts; the
tests hold the two to each other.
"""

from __future__ import annotations

from datetime import datetime, timezone

from .policy import KindRule, RetentionPolicy, is_terminal, parse_timestamp
from .report import KindTally

_UTC = timezone.utc
_from_iso = datetime.fromisoformat


class Judge:
    """The rule of one run, fixed at `policy`, with the tallies its verdicts add up to."""

    def __init__(self, policy: RetentionPolicy) -> None:
        self.policy = policy
        self.results = KindTally()
        self.events = KindTally()

    # -- pass 1 --------------------------------------------------------------------------------

    @staticmethod
    def terminal(job: object) -> bool:
        """Whether a job's results and events are eligible at all."""
        return is_terminal(job)

    # -- pass 2: results -----------------------------------------------------------------------

    def result(self, record: object, terminal_jobs) -> bool:
        """Count one member of `results`; True when it is deleted. `terminal_jobs` answers
        `job_id in terminal_jobs` (the index of pass 1)."""
        if not isinstance(record, dict):
            return False  # not a result: kept, and not counted
        tally = self.results
        tally.total += 1
        if str(record.get("job_id") or "") not in terminal_jobs:
            return False
        return _expired(record.get("created_at"), self.policy.results, tally)

    # -- pass 2: events ------------------------------------------------------------------------

    def event(self, record: object, job_terminal: bool) -> bool:
        """Count one event of a job's events array; True when it is deleted."""
        tally = self.events
        tally.total += 1
        if not job_terminal:
            return False
        moment = record.get("occurred_at") if isinstance(record, dict) else None
        return _expired(moment, self.policy.events, tally)

    def event_batch(self, records: list, job_terminal: bool) -> list[bool] | None:
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

    @staticmethod
    def _event_batch_one_by_one(records: list, cutoff: datetime, tally: KindTally) -> list[bool] | None:
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

    def add(self, other: "Judge") -> None:
        """Count in what another part of the same pass judged (a worker's)."""
        self.results.add(other.results)
        self.events.add(other.events)


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

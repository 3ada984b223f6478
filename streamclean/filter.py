"""Pass 2: the store again, without the expired results and events of terminal jobs.

Kept text is copied exactly as it was read, so every kept value survives byte for byte and a
store the service wrote comes out as the service would write the cleaned state. Deleting a
member only mends the commas around it; an emptied container becomes `{}` or `[]`, as
`json.dumps` writes it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import BinaryIO, Callable, Protocol

from .index import JobIndex, iter_top_level
from .policy import KindRule, RetentionPolicy, parse_timestamp
from .reader import Scanner, iter_elements, iter_members
from .report import KindTally


class Sink(Protocol):
    def write(self, text: str) -> None: ...
    def diverge(self) -> None: ...


class _Splice:
    """Writes one container member by member, dropping some and keeping the rest's separators.

    Each member's `lead` is the text since the previous value: whitespace, and for all but the
    first member the comma. Kept in a row, members are copied verbatim; after a gap, the lead is
    cut to what follows its comma and a comma is written only if a kept member precedes.
    """

    def __init__(self, out: Sink, opening: str) -> None:
        self._out = out
        self._kept_any = False
        self._previous_kept = True  # the first member's lead holds no comma
        out.write(opening)

    def keep(self, lead: str, text: str) -> None:
        out = self._out
        if self._previous_kept:
            out.write(lead)
        else:
            out.write(("," if self._kept_any else "") + lead.rpartition(",")[2])
        out.write(text)
        self._kept_any = self._previous_kept = True

    def drop(self) -> None:
        self._out.diverge()
        self._previous_kept = False

    def close(self, tail: str, closing: str) -> None:
        if self._kept_any:
            self._out.write(tail)
        self._out.write(closing)


def filter_store(
    stream: BinaryIO,
    index: JobIndex,
    policy: RetentionPolicy,
    out: Sink,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[KindTally, KindTally]:
    """Stream the store into `out` without its expired records; return the (results, events) tallies."""
    results, events = KindTally(), KindTally()
    sc = Scanner(stream, on_progress=on_progress)
    out.write(sc.whitespace())
    out.write("{")
    sections = iter_top_level(sc, "the top level")
    for section in sections:
        out.write(section.head)
        if section.key == "results" and sc.peek() == "{":
            _filter_results(sc, index, policy.results, results, out)
        elif section.key == "events" and sc.peek() == "{":
            _filter_events(sc, index, policy.events, events, out)
        else:
            copy_section(sc, section.key, out)
    out.write(sections.tail + "}")
    out.write(sc.expect_end())
    return results, events


def _filter_results(sc: Scanner, index: JobIndex, rule: KindRule, tally: KindTally, out: Sink) -> None:
    splice = _Splice(out, "{")
    members = iter_members(sc, "results")
    for member in members:
        record, text = sc.value()
        if isinstance(record, dict):
            tally.total += 1
            if str(record.get("job_id") or "") in index and judge_eligible(record, "created_at", rule, tally):
                splice.drop()
                continue
        splice.keep(member.head, text)
    splice.close(members.tail, "}")


def _filter_events(sc: Scanner, index: JobIndex, rule: KindRule, tally: KindTally, out: Sink) -> None:
    out.write("{")
    members = iter_members(sc, "events")
    for member in members:
        out.write(member.head)
        if sc.peek() != "[":
            out.write(sc.value()[1])  # not an array: kept and not counted
        elif member.key in index:
            _filter_job_events(sc, member.key, rule, tally, out)
        else:
            tally.total += _copy_container(sc, f"events of job {member.key_text}", out)
    out.write(members.tail + "}")


def _filter_job_events(sc: Scanner, job_id: str, rule: KindRule, tally: KindTally, out: Sink) -> None:
    splice = _Splice(out, "[")
    elements = iter_elements(sc, f"events of job {job_id!r}")
    for lead in elements:
        event, text = sc.value()
        tally.total += 1
        if judge_eligible(event, "occurred_at", rule, tally):
            splice.drop()
        else:
            splice.keep(lead, text)
    splice.close(elements.tail, "]")


def judge_eligible(record: object, field: str, rule: KindRule, tally: KindTally) -> bool:
    """Judge one eligible record, counting it; True when it is to be deleted."""
    tally.eligible_terminal += 1
    cutoff = rule.cutoff
    if cutoff is None:
        return False
    moment = parse_timestamp(record.get(field)) if isinstance(record, dict) else None
    if moment is None:
        tally.skipped_missing_timestamp += 1
        return False
    if moment <= cutoff:  # KindRule.is_expired, inlined: this runs once a record
        tally.delete_count += 1
        return True
    return False


def judge_all(records: list, field: str, rule: KindRule, tally: KindTally) -> list[bool]:
    """`judge_eligible` over a whole array in one call: the fast path's innermost loop.

    Same verdicts and counts; the usual case, a clean isoformat() string, is parsed inline.
    """
    tally.eligible_terminal += len(records)
    cutoff = rule.cutoff
    if cutoff is None:
        return [False] * len(records)
    verdicts = []
    from_iso = datetime.fromisoformat
    for record in records:
        value = record.get(field) if isinstance(record, dict) else None
        moment = None
        if type(value) is str:
            try:
                moment = from_iso(value)
            except ValueError:
                pass
            else:
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=timezone.utc)
        if moment is None:
            moment = parse_timestamp(value)
        if moment is None:
            tally.skipped_missing_timestamp += 1
            verdicts.append(False)
        elif moment <= cutoff:
            tally.delete_count += 1
            verdicts.append(True)
        else:
            verdicts.append(False)
    return verdicts


def copy_section(sc: Scanner, where: str, out: Sink) -> None:
    """Copy a section verbatim, one record at a time, so a huge section never sits in memory."""
    if sc.peek() in "{[":
        _copy_container(sc, where, out)
    else:
        out.write(sc.value()[1])


def _copy_container(sc: Scanner, where: str, out: Sink) -> int:
    """Copy the object or array at the cursor record by record; return how many it held."""
    opening = sc.peek()
    walk = iter_members(sc, where) if opening == "{" else iter_elements(sc, where)
    out.write(opening)
    count = 0
    for step in walk:
        out.write(step.head if opening == "{" else step)
        out.write(sc.value()[1])
        count += 1
    out.write(walk.tail + ("}" if opening == "{" else "]"))
    return count

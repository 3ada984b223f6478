"""Pass 2: the store again, without what the judge deletes, as byte ranges left out.

The reader hands out every record with its byte offsets, the judge decides, and a `Splice` per
container turns the verdicts into ranges the `RangeWriter` leaves out, copying everything kept
undecoded. A worker may filter the store's tail meanwhile (`tail`, `filter_tail`); job retention
walks `jobs`, `notifications` and the `events` object too; an archive receives every record
left out. Where the reader has the block path, a section's members come a block at a time and
are judged in bulk. How and why: docs/design.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .index import REMOVED, TERMINAL, JobIndex
from .judge import Judge
from .readers import LayoutMismatch
from .readers.base import STREAM, Block, BlockPath, Member, Reader, Walk
from .splice import ArchivingSplice, RangeWriter, Splice

if TYPE_CHECKING:  # they import this module
    from .archive import ArchiveWriter
    from .inspect import StoreSurvey
    from .second_core import TailWorker

Span = tuple[int, int]


@dataclass(frozen=True)
class Context:
    """What a run's pass 2 works from, built once per run: pass 1's index and the `jobs` span
    it found (None: not found), the judge that counts, the store's size, and, if any, the
    survey (`inspect`) and the archive. A worker filtering the tail has its own judge, survey
    and archive part (`dataclasses.replace`)."""

    index: JobIndex
    jobs_span: Span | None
    judge: Judge
    size: int
    survey: StoreSurvey | None = None
    archive: ArchiveWriter | None = None


def filter_store(
    reader: Reader, out: RangeWriter, context: Context, tail: TailWorker | None = None
) -> None:
    """Filter the whole store (or, with `tail`, the part before the tail's start)."""
    run = Pass.of(reader, out, context)
    jobs_span, judge = context.jobs_span, context.judge
    survey, archive = context.survey, context.archive
    seen: set[str] = set()
    jobs_confirmed = jobs_span is None
    sections = reader.sections(seen)
    previous = None  # where the section before ends: a section's bytes run from there
    for section in sections:
        if previous is None:
            previous = reader.top_open + 1
        if tail is not None and tail.in_events and section.key == "events":
            # The worker took over behind the job whose events end at `tail.start`.
            count = _filter_events(run, section.value_start, stop_at=tail.start)[1]
            if survey is not None:
                survey.section("events", tail.start - previous, count, section.start)
            break
        end = section.value_end = _filter_section(run, section, previous)
        previous = end
        if section.key == "jobs" and jobs_span is not None:
            jobs_confirmed = True
            if tail is not None:
                if tail.in_events or end != tail.start:
                    raise LayoutMismatch("the split point is not where the jobs section ends")
                break
    else:
        if tail is not None:
            raise LayoutMismatch("the split point was not reached")
    if tail is None:
        out.finish(context.size)
    else:
        if out.fd is not None:  # our part is written: the worker's output can follow it already
            out.finish(tail.start)
            tail.forward_to(out.fd)
        done = tail.result()
        jobs_confirmed = jobs_confirmed or done.jobs_confirmed
        if done.keys & seen:
            raise LayoutMismatch("a top-level key appears twice")
        judge.add(done.judge)
        if survey is not None and done.survey is not None:  # the worker surveyed its part
            survey.add(done.survey)
        out.finish_with_tail(tail.start, done, tail.copy_output)
        if archive is not None and done.archived is not None:
            assert tail.archive_fd is not None  # it archived its part into this file
            archive.append_part(tail.archive_fd, *done.archived)  # the worker's records follow ours
    if not jobs_confirmed:
        raise LayoutMismatch("the jobs section pass 1 read is not the top-level one")


@dataclass
class Pass:
    """What one pass 2 (or its tail) works with: the reader, the writer of the new bytes, pass
    1's index and the `jobs` span it found, the judge, and, if any, the survey (`inspect`)
    and the archive. `blocks` is the reader's block path, where this pass can take it (the
    survey reads every field of every record, so it takes the record-by-record path)."""

    reader: Reader
    out: RangeWriter
    index: JobIndex
    jobs_span: Span | None
    judge: Judge
    survey: Any = None  # an `inspect` survey
    archive: Any = None  # an `archive.ArchiveWriter`

    @classmethod
    def of(cls, reader: Reader, out: RangeWriter, context: Context) -> Pass:
        return cls(
            reader,
            out,
            context.index,
            context.jobs_span,
            context.judge,
            context.survey,
            context.archive,
        )

    @property
    def blocks(self) -> BlockPath | None:
        return self.reader.powers.blocks

    def splice(self, open_at: int, section: str, key: str | None = None) -> Splice:
        if self.archive is None:
            return Splice(self.out, open_at)
        return ArchivingSplice(self.out, open_at, self.archive, section, key)


@dataclass
class Tail:
    """What filtering the store's tail found: the judge's counts, the top-level keys, whether
    it confirmed the jobs section, whether (and by how many bytes) its output differs from the
    old store's tail, and the survey of its part (for `inspect`)."""

    judge: Judge
    keys: set[str]
    diverged: bool
    skipped: int
    jobs_confirmed: bool = False
    survey: StoreSurvey | None = None
    archived: tuple[int, int] | None = None  # the archive part's records and bytes, if archiving


def filter_tail(
    reader: Reader, out: RangeWriter, context: Context, start: int, in_events: bool
) -> Tail:
    """Pass 2 over the store's tail, every byte from `start`, as `filter_store` would filter
    it. `start` is where the top-level `jobs` value ends or, `in_events`, where a job's events
    array ends inside the events section; the reader begins there.

    Whether `start` really is such a place is for the caller to confirm, by reaching it on its
    own walk: this one only checks that what follows is the rest of such a store.
    """
    run = Pass.of(reader, out, context)
    jobs_span, judge = context.jobs_span, context.judge
    survey, archive = context.survey, context.archive
    seen: set[str] = set()
    resume_after = start
    if in_events:
        resume_after, count = _filter_events(run, None, resume_after=start)
        if survey is not None:
            survey.section("events", resume_after - start, count)
    jobs_confirmed = False
    previous = resume_after
    for section in reader.sections(seen, resume_after=resume_after):
        previous = section.value_end = _filter_section(run, section, previous)
        jobs_confirmed = jobs_confirmed or (section.key == "jobs" and jobs_span is not None)
    out.finish(context.size)
    archived = archive.finish_part() if archive is not None else None
    return Tail(judge, seen, out.diverged, out.skipped, jobs_confirmed, survey, archived)


def _filter_section(run: Pass, section: Member, previous: int) -> int:
    """Filter (or check) one top-level section; returns the offset where its value ends. For
    the survey a section's bytes run from the end of the one before (`previous`)."""
    reader, survey = run.reader, run.survey
    first = reader.first_byte(section)
    key = section.key
    count = 0  # entries: pass 1 counts those of `jobs`
    jobs_on = run.judge.policy.jobs.enabled
    if key == "results" and first == 0x7B:
        end, count = _filter_results(run, section.value_start)
    elif key == "events" and first == 0x7B:
        end, count = _filter_events(run, section.value_start)
    elif key == "jobs" and first == 0x7B and jobs_on:
        end = _filter_jobs(run, section)
    elif key == "jobs" and first == 0x7B:  # pass 1 read it (a span of None: pass 1 did not find it)
        end = reader.known_section(section, run.jobs_span, run.out)
    elif key == "notifications" and first == 0x7B and (jobs_on or survey is not None):
        end, count = _filter_results(run, section.value_start, "notifications")
    else:
        end, count = reader.check(section)
        if survey is not None:
            survey.other(section)
    if survey is not None:
        survey.section(key, end - previous, count, section.start)
    return end


def _filter_jobs(run: Pass, section: Member) -> int:
    """Job retention: the jobs section again, without the removed jobs (pass 1 judged them)."""
    reader, jobs_span = run.reader, run.jobs_span
    moved = "the jobs section is not where pass 1 read it"
    if jobs_span is None or section.value_start != jobs_span[0]:
        raise reader.moved(moved)
    splice = run.splice(section.value_start, "jobs")
    flags_of = run.index.flags_of
    blocks = run.blocks
    # validated; only the keys are read
    start = section.value_start
    records = reader.records(start, fields=()) if blocks is None else blocks.blocks(start, ())
    for job in records:
        if isinstance(job, Block):
            flags = run.index.flags_many(job.keys)
            splice.block(job, [position for position, flag in enumerate(flags) if flag & REMOVED])
        elif flags_of(job.key) & REMOVED:
            splice.drop(job)
        else:
            splice.keep(job)
    splice.close(records.close)
    if records.close + 1 != jobs_span[1]:
        raise reader.moved(moved)
    return records.close + 1


def _filter_results(run: Pass, open_at: int, section: str = "results") -> tuple[int, int]:
    """The results (or, with job retention, the notifications) of the section opening at
    `open_at`; where it ends, and how many members it has."""
    judge, index, survey = run.judge, run.index, run.survey
    splice = run.splice(open_at, section)
    fields = _fields(judge, survey, section)
    blocks = run.blocks
    records: Walk[Block | Member]
    if blocks is None:
        records = run.reader.records(open_at, exact="job_id", fields=fields)
    else:
        records = blocks.blocks(open_at, fields or (), exact="job_id")
    plain = index  # answers `flags_many`, for the blocks
    if survey is not None:  # the judge and the survey ask about each record's job in turn
        index = survey.remembering(index)
    jobs_on = judge.policy.jobs.enabled
    judged: Callable[[object, Any], bool]
    if section == "notifications":
        # without job retention only a survey reads them
        judged = judge.notification if jobs_on else _kept
    else:
        judged = judge.result_of_jobs if jobs_on else judge.result
    observe = (
        None if survey is None else survey.result if section == "results" else survey.notification
    )
    # a block's jobs' flags, looked up once for the judge and the survey (without job retention
    # and without a survey, the notifications need none)
    looked_up = section == "results" or jobs_on or survey is not None
    count = 0
    for record in records:
        if isinstance(record, Block):
            values = record.values
            count += len(values)
            flags = plain.flags_many([value.job_id or "" for value in values]) if looked_up else []
            if survey is not None:
                survey.block(section, record, flags)
            if section == "notifications":
                dropped = judge.notifications_block(flags) if jobs_on else []
            else:
                dropped = judge.results_block(flags, [value.created_at for value in values])
            splice.block(record, dropped)
            continue
        count += 1
        if observe is not None:
            observe(record.value, record, index)
        if judged(record.value, index):
            splice.drop(record)
        else:
            splice.keep(record)
    splice.close(records.close)
    return records.close + 1, count


def _kept(record: object, index: JobIndex) -> bool:
    return False


def _fields(judge: Judge, survey: StoreSurvey | None, section: str) -> tuple[str, ...] | None:
    """The fields of a `section`'s records that are read: the judge's, and the survey's."""
    fields = judge.fields(section)
    return fields if survey is None else survey.fields(section, fields)


def _filter_events(
    run: Pass, open_at: int | None, resume_after: int | None = None, stop_at: int | None = None
) -> tuple[int, int]:
    """Filter the events section opening at `open_at` (or, with `resume_after`, the rest of it
    behind a job's array ending there); returns where the section ends, or `stop_at` once a
    job's array ends exactly there (a LayoutMismatch if one runs past it), and how many jobs'
    events it walked. With job retention on, the arrays of removed jobs go whole (then the
    section is never split: the split lies at the end of `jobs`)."""
    reader, judge, index, survey, out, archive = (
        run.reader,
        run.judge,
        run.index,
        run.survey,
        run.out,
        run.archive,
    )
    fields = _fields(judge, survey, "events") or ()
    outer = None
    blocks = run.blocks
    if judge.policy.jobs.enabled:
        if resume_after is not None or stop_at is not None:
            raise LayoutMismatch("with job retention the events section is filtered in one piece")
        assert open_at is not None  # not resuming: the section's own opening brace
        outer = run.splice(open_at, "events")
        blocks = None  # a removed job's array goes whole, the others' events one by one: in turn
    arrays: Walk[Block | Member]
    if blocks is None:
        arrays = reader.job_arrays(open_at, resume_after, fields=_fields(judge, survey, "events"))
    else:
        arrays = blocks.blocks(
            open_at, fields, array=True, resume_after=resume_after, stop_at=stop_at
        )
    count = 0
    for job in arrays:
        if isinstance(job, Block):
            count += len(job)
            job_flags = index.flags_many(job.keys)
            terminal_flags = [flag & TERMINAL for flag in job_flags]
            values = job.values
            parsed = None if survey is None else survey.events_block(job, job_flags)
            if parsed is not None:  # the survey parsed every event's time: judged by them
                counts, moments = parsed
                dropped = judge.event_arrays_parsed(counts, moments, terminal_flags)
            else:
                stamps = [[event.occurred_at for event in events] for events in values]
                dropped = judge.event_arrays(stamps, terminal_flags)
            for position, verdicts in dropped:
                if verdicts is None and archive is None:  # every event goes: "[...]" becomes "[]"
                    out.skip_from(job.base + job.value_starts[position] + 1)
                    out.resume_at(job.base + job.value_ends[position] - 1)
                else:
                    events = values[position]
                    _drop_events(
                        run, job.member(position), events, verdicts or [True] * len(events)
                    )
            if stop_at is not None and job.end >= stop_at:
                return stop_at, count  # `blocks` ends a block at `stop_at` or hands the walk over
            continue
        count += 1
        flags = index.flags_of(job.key)
        if outer is not None:
            if flags & REMOVED:
                _removed_job_events(run, job, flags)
                outer.drop(job)
                continue
            outer.keep(job)
        terminal = bool(flags & TERMINAL)
        events = job.values
        if events is not None:  # the whole array, decoded in one call
            if survey is not None:
                survey.events(events, job, flags)
            verdicts = judge.event_batch(events, terminal)
            if verdicts is not None:
                _drop_events(run, job, events, verdicts)
        elif job.value is STREAM:  # an array to stream, element by element
            splice = run.splice(job.value_start, "events", job.key)
            watch = None if survey is None else survey.events_array(job, flags)
            for element in reader.elements(job):
                if watch is not None:
                    watch.element(element)
                if judge.event(element.value, terminal):
                    splice.drop(element)
                else:
                    splice.keep(element)
            splice.close(job.value_end - 1)
            if watch is not None:
                watch.close()
        # else: not an array of events: kept as it is, and not counted
        if outer is not None:
            outer.kept_until(job.value_end)
        if stop_at is not None and job.value_end >= stop_at:
            if job.value_end != stop_at:
                raise LayoutMismatch("the split point is not between two jobs' events")
            return stop_at, count
    if stop_at is not None:
        raise LayoutMismatch("the split point is not in the events section")
    if outer is not None:
        outer.close(arrays.close)
    return arrays.close + 1, count


def _removed_job_events(run: Pass, job: Member, flags: int) -> None:
    """A removed job's events array, which goes whole: counted, and read past if streamed."""
    survey = run.survey
    if job.values is not None:
        if survey is not None:
            survey.events(job.values, job, flags)
        run.judge.events_of_removed_job(len(job.values))
    elif job.value is STREAM:
        count = 0
        watch = None if survey is None else survey.events_array(job, flags)
        for element in run.reader.elements(job):
            count += 1
            if watch is not None:
                watch.element(element)
        if watch is not None:
            watch.close()
        run.judge.events_of_removed_job(count)


def _drop_events(run: Pass, job: Member, values: list[Any], verdicts: list[bool]) -> None:
    """Leave out the events of one array the verdicts delete. A job's events lie close in
    time, so usually all of them go and the array is emptied whole; a mixed one (or any, to
    be archived) is walked element by element (the reader proves each piece is one of the
    `values`)."""
    splice = run.splice(job.value_start, "events", job.key)
    if all(verdicts) and run.archive is None:
        splice.drop_all(job.value_end - 1)  # leaves "[]", as json.dumps writes an empty list
        return
    blocks = run.reader.powers.blocks
    placed = blocks.array_elements(job) if blocks is not None else None
    elements: Iterable[Member] = (
        placed
        if placed is not None and len(placed) == len(values)
        else (run.reader.elements(job, count=len(values)))
    )
    for position, element in enumerate(elements):
        if position < len(verdicts) and verdicts[position]:
            splice.drop(element)
        else:
            splice.keep(element)
    splice.close(job.value_end - 1)

"""Pass 1: the index of jobs, and which of them are terminal, from the `jobs` section alone.

The reader finds the section (`find_jobs`); the judge says which job is terminal; the index
keeps the answer compactly for pass 2. A reader that offers split points (`powers.splits`) lets
a worker on the second core index the later half while this process indexes the first
(`second_core.IndexWorker`, which runs `index_from`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .index import JobIndex
from .judge import Judge
from .readers import LayoutMismatch
from .readers.base import Block, Member, Reader, Walk

if TYPE_CHECKING:  # they import this module
    from .inspect import StoreSurvey
    from .second_core import IndexWorker

Span = tuple[int, int]


def index_jobs(
    reader: Reader,
    judge: Judge,
    helper: Callable[[int], IndexWorker] | None = None,
    survey: StoreSurvey | None = None,
) -> tuple[JobIndex, Span | None]:
    """The index and the (start, end) offsets of the `jobs` value (None without one).

    With `helper(boundary)`, which starts indexing the jobs behind `boundary` elsewhere (a
    `second_core.IndexWorker`), the section is indexed in two halves where the reader offers a split.
    """
    index = JobIndex()
    jobs = reader.find_jobs()
    if jobs is None:
        return index, None
    splits = reader.powers.splits
    if helper is None or splits is None or (found := splits.jobs_split(jobs)) is None:
        end = _index(_jobs(reader, judge, survey, jobs.value_start), judge, index, survey)
    else:
        boundary, section_end = found
        later = helper(boundary)
        try:
            _index(
                _jobs(reader, judge, survey, jobs.value_start, stop_at=boundary),
                judge,
                index,
                survey,
                stop_at=boundary,
            )
            end = later.result(index, survey)  # the later jobs' word wins, as if indexed here
        finally:
            later.stop()
        if end != section_end:
            raise LayoutMismatch("the jobs section does not end where it seemed to")
    return index, (jobs.value_start, end)


def index_from(
    reader: Reader, boundary: int, judge: Judge, survey: StoreSurvey | None = None
) -> tuple[JobIndex, int]:
    """Index the jobs behind the job ending at `boundary` to the end of the section; that part
    of the index and where the section ends. That `boundary` is such a place is for the caller
    to confirm, by ending its own walk there."""
    index = JobIndex()
    end = _index(_jobs(reader, judge, survey, None, resume_after=boundary), judge, index, survey)
    return index, end


def _jobs(
    reader: Reader,
    judge: Judge,
    survey: StoreSurvey | None,
    open_at: int | None,
    resume_after: int | None = None,
    stop_at: int | None = None,
) -> Walk[Block | Member]:
    """The jobs, a block at a time where the reader can. A survey reads more of them: record
    by record, whole records; in blocks, its fields too, a missing status told from a null one."""
    fields = judge.fields("jobs")
    blocks = reader.powers.blocks
    if blocks is None:
        read = fields if survey is None else survey.fields("jobs", fields)
        return reader.records(open_at, resume_after=resume_after, fields=read)
    told_apart: tuple[str, ...] = ()
    if survey is not None:
        fields, told_apart = survey.block_fields("jobs", fields)
    return blocks.blocks(
        open_at, fields, resume_after=resume_after, stop_at=stop_at, told_apart=told_apart
    )


def _index(
    records: Walk[Block | Member],
    judge: Judge,
    index: JobIndex,
    survey: StoreSurvey | None = None,
    stop_at: int | None = None,
) -> int:
    jobs_on = judge.policy.jobs.enabled
    terminal = judge.job_flags if jobs_on else judge.terminal
    count = 0
    for job in records:
        if isinstance(job, Block):
            values = job.values
            statuses = [value.status for value in values]
            if survey is not None:
                survey.jobs_block(job, statuses)
                statuses = [status if type(status) is str else None for status in statuses]
            flags = judge.job_flags_block(
                statuses,
                [value.finished_at for value in values] if jobs_on else None,
            )
            index.add_many(job.keys, flags)
            count += len(flags)
            if stop_at is not None and job.end >= stop_at:
                break  # the block ends there: `blocks` ends a block at `stop_at` or refuses it
            continue
        assert job.key is not None  # a member of an object: it has its key
        index.add(job.key, terminal(job.value))
        count += 1
        if survey is not None:
            survey.job(job.value, job)
        if stop_at is not None and job.value_end >= stop_at:
            if job.value_end != stop_at:
                raise LayoutMismatch("the jobs section was split inside a job")
            break
    else:
        if stop_at is not None:
            raise LayoutMismatch("the jobs section was split outside it")
    if survey is not None:
        survey.section("jobs", 0, count)
    return stop_at if stop_at is not None else records.close + 1

"""Pass 1: the index of jobs, and which of them are terminal, from the `jobs` section alone.

The reader finds the section (`find_jobs`); the judge says which job is terminal; the index
keeps the answer compactly for pass 2. A reader that offers a split point (`jobs_split`) lets
a worker on the second core index the later half while this process indexes the first
(`split.IndexWorker`, which runs `index_from`).
"""

from __future__ import annotations

from typing import Callable

from .index import JobIndex
from .judge import Judge
from .readers import LayoutMismatch

Span = tuple[int, int]


def index_jobs(reader, judge: Judge, helper: Callable | None = None, survey=None) -> tuple[JobIndex, Span | None]:
    """The index and the (start, end) offsets of the `jobs` value (None without one).

    With `helper(boundary)`, which starts indexing the jobs behind `boundary` elsewhere (a
    `split.IndexWorker`), the section is indexed in two halves where the reader offers a split.
    """
    index = JobIndex()
    jobs = reader.find_jobs()
    if jobs is None:
        return index, None
    found = reader.jobs_split(jobs) if helper is not None and hasattr(reader, "jobs_split") else None
    fields = judge.fields("jobs") if survey is None else survey.fields("jobs", judge.fields("jobs"))
    if found is None:
        end = _index(reader.records(jobs.value_start, fields=fields), judge, index, survey)
    else:
        boundary, section_end = found
        later = helper(boundary)
        try:
            _index(reader.records(jobs.value_start, fields=fields), judge, index, survey, stop_at=boundary)
            end = later.result(index, survey)  # the later jobs' word wins, as if indexed here
        finally:
            later.stop()
        if end != section_end:
            raise LayoutMismatch("the jobs section does not end where it seemed to")
    return index, (jobs.value_start, end)


def index_from(reader, boundary: int, judge: Judge, survey=None) -> tuple[JobIndex, int]:
    """Index the jobs behind the job ending at `boundary` to the end of the section; that part
    of the index and where the section ends. That `boundary` is such a place is for the caller
    to confirm, by ending its own walk there."""
    index = JobIndex()
    fields = judge.fields("jobs") if survey is None else survey.fields("jobs", judge.fields("jobs"))
    end = _index(reader.records(None, resume_after=boundary, fields=fields), judge, index, survey)
    return index, end


def _index(records, judge: Judge, index: JobIndex, survey=None, stop_at: int | None = None) -> int:
    terminal = judge.job_flags if judge.policy.jobs.enabled else judge.terminal
    count = 0
    for job in records:
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

"""Both passes run in this process on a reader chosen by name, for the tests of the readers
and of pass 2: the new bytes, the index and the judge's tallies, with no file written.

A split over two cores is played here too: the worker's part runs in this process and is
spliced in as the worker's is (`InProcessIndexer`, `InProcessTail`).
"""

import io

import pytest

from conftest import NOW
from streamclean import pass1, pass2
from streamclean.judge import Judge
from streamclean.policy import RetentionPolicy
from streamclean.readers import LayoutMismatch, LayoutReader, reader_class
from streamclean.splice import RangeWriter

POLICY = RetentionPolicy.build(NOW, 604800.0, 259200.0)


def run_passes(data: bytes, name: str, policy=POLICY, split=None):
    """Both passes on the reader `name`, in memory; the new bytes the range writer would write,
    the index and the judge's tallies.

    With `split` (an offset and whether it lies in the events section), the store's tail is
    filtered as the worker process would filter it, here in this process, and spliced in."""
    reader = reader_class(name)(io.BytesIO(data))
    helper = None if split is None else InProcessIndexer(data, policy)
    index, jobs_span = pass1.index_jobs(reader, Judge(policy), helper)
    chunks = []
    tail = None
    if split is not None:
        start, in_events = split
        tail = InProcessTail(data, start, in_events, index, jobs_span, policy, chunks)
    judge = Judge(policy)
    reader = reader_class(name)(io.BytesIO(data))
    out = RangeWriter(
        reader.window,
        open_target=lambda: 1,
        copy_source=lambda fd, start, n: chunks.append(data[start : start + n]),
        write=lambda fd, buf: chunks.append(bytes(buf)),
        read_source=lambda offset, n: data[offset : offset + n],
    )
    try:
        pass2.filter_store(reader, out, pass2.Context(index, jobs_span, judge, len(data)), tail)
    finally:
        out.close()
    new = b"".join(chunks) if out.diverged else data
    assert len(new) == len(data) - out.skipped
    return new, index, judge.results, judge.events


def general(data: bytes, policy=POLICY):
    return run_passes(data, "general", policy)


def fast_path(data: bytes, policy=POLICY, split=None):
    return run_passes(data, "layout", policy, split)


def split_points(data: bytes) -> list:
    """Every place a worker could take over: the end of `jobs`, and between any two jobs'
    events (whether or not `layout.tail_split` would choose it)."""
    try:
        reader = LayoutReader(io.BytesIO(data))
        _, jobs_span = pass1.index_jobs(reader, Judge(POLICY))
        events_span = reader.events_span
    except LayoutMismatch:
        jobs_span = None
    if jobs_span is None:  # no split where pass 1 found no jobs: any other must step aside
        return [(len(data) // 2, False), (len(data) // 2, True)]
    between = []
    if events_span is not None:
        offset = data.find(b',\n    "', events_span[0])
        while 0 <= offset < events_span[1]:
            between.append((offset, True))
            offset = data.find(b',\n    "', offset + 1)
    if len(between) > 8:  # a big store: the first, the last and some between
        between = [between[i * (len(between) - 1) // 7] for i in range(8)]
    return [(jobs_span[1], False), *between]


def merged_as_sent(into, part) -> bytes:
    """Merge `part` into `into` through a pipe, as the pass-1 worker sends it; returns what
    `update_from` left unread."""
    pipe = io.BytesIO()
    part.send(pipe)
    pipe.seek(0)
    into.update_from(pipe)
    return pipe.read()


class InProcessIndexer:
    """`second_core.IndexWorker` for `pass1.index_jobs`, without the process."""

    def __init__(self, data: bytes, policy):
        self._data, self._policy = data, policy

    def __call__(self, boundary: int):
        self._boundary = boundary
        return self

    def result(self, into, survey=None):
        stream = io.BytesIO(self._data)
        stream.seek(self._boundary)
        reader = LayoutReader(stream, start=self._boundary)
        part, end = pass1.index_from(reader, self._boundary, Judge(self._policy))
        assert merged_as_sent(into, part) == b""
        return end

    def stop(self):
        pass


class InProcessTail:
    """`second_core.TailWorker`'s part in `pass2.filter_store`, without the process."""

    def __init__(
        self, data: bytes, start: int, in_events: bool, index, jobs_span, policy, out: list
    ):
        self.start, self.in_events, self.done = start, in_events, 0
        self._data, self._index, self._jobs_span, self._policy, self._out = (
            data,
            index,
            jobs_span,
            policy,
            out,
        )
        self._segment = []

    def result(self):
        data, start = self._data, self.start
        stream = io.BytesIO(data)
        stream.seek(start)
        reader = LayoutReader(stream, start=start)
        out = RangeWriter(
            reader.window,
            open_target=lambda: 2,
            copy_source=lambda fd, offset, n: self._segment.append(data[offset : offset + n]),
            write=lambda fd, buf: self._segment.append(bytes(buf)),
        )
        try:
            context = pass2.Context(self._index, self._jobs_span, Judge(self._policy), len(data))
            tail = pass2.filter_tail(reader, out, context, start, self.in_events)
        finally:
            out.close()
        if tail.diverged:
            assert len(b"".join(self._segment)) == len(data) - start - tail.skipped
        else:
            assert self._segment == []
        return tail

    def forward_to(self, fd):
        # the new store: our part is written (forwarding itself: tests/test_second_core.py)
        assert fd == 1

    def copy_output(self, fd, tail):
        self._out.append(b"".join(self._segment) if tail.diverged else self._data[self.start :])


def run_on(reader: str, data: bytes, policy=POLICY, in_layout: bool = True):
    """`run_passes` on `reader`; for a store not in the service's layout (`in_layout` False)
    the `layout` reader must refuse it, and None is returned."""
    if reader == "layout" and not in_layout:
        with pytest.raises(LayoutMismatch):
            run_passes(data, reader, policy)
        return None
    return run_passes(data, reader, policy)

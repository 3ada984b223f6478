"""Pass 2: deletions splice the text; everything kept is copied byte for byte."""

import copy
import io
import json

import pytest

from conftest import NOW, service_bytes, small_state
from streamclean import reader
from streamclean.filter import filter_store
from streamclean.index import build_index
from streamclean.policy import RetentionPolicy


class Collect:
    def __init__(self):
        self.parts, self.diverged = [], False

    def write(self, text):
        self.parts.append(text)

    def diverge(self):
        self.diverged = True

    @property
    def text(self):
        return "".join(self.parts)


def run_filter(data: bytes, results_ttl=604800.0, events_ttl=259200.0):
    policy = RetentionPolicy.build(NOW, results_ttl, events_ttl)
    out = Collect()
    tallies = filter_store(io.BytesIO(data), build_index(io.BytesIO(data)), policy, out)
    return out, tallies


def expected_state():
    state = small_state()
    del state["results"]["r1"]
    state["events"]["j1"].pop(0)
    state["events"]["j3"].clear()
    return state


def test_service_store_comes_out_as_the_service_would_write_it():
    out, (results, events) = run_filter(service_bytes(small_state()))
    assert out.text.encode() == service_bytes(expected_state())
    assert (results.total, results.eligible_terminal, results.delete_count) == (3, 2, 1)
    assert (events.total, events.eligible_terminal, events.delete_count) == (4, 3, 2)


@pytest.mark.parametrize("chunk", [1, 4, 1 << 20])
def test_chunk_size_does_not_change_the_output(monkeypatch, chunk):
    monkeypatch.setattr(reader, "CHUNK_SIZE", chunk)
    out, _ = run_filter(service_bytes(small_state()))
    assert out.text.encode() == service_bytes(expected_state())


@pytest.mark.parametrize("drop", [{0}, {1}, {2}, {0, 1}, {1, 2}, {0, 2}, {0, 1, 2}, set()])
@pytest.mark.parametrize("layout", ["service", "compact"])
def test_any_subset_of_results_can_go(drop, layout):
    state = {"jobs": {"j": {"status": "completed"}}, "results": {}}
    for i in range(3):
        created = "2026-01-01T00:00:00" if i in drop else "2026-03-10T00:00:00"
        state["results"][f"r{i}"] = {"created_at": created, "job_id": "j"}
    dump = service_bytes if layout == "service" else (lambda s: json.dumps(s, separators=(",", ":")).encode())
    out, (results, _) = run_filter(dump(state))
    kept = copy.deepcopy(state)
    for i in drop:
        del kept["results"][f"r{i}"]
    assert out.text.encode() == dump(kept)
    assert out.diverged == bool(drop) and results.delete_count == len(drop)


def test_nothing_deleted_means_no_divergence_and_identical_text():
    data = service_bytes(small_state())
    out, _ = run_filter(data, results_ttl=None, events_ttl=None)
    assert not out.diverged and out.text.encode() == data


def test_odd_whitespace_is_kept_and_deletion_still_yields_valid_json():
    state = small_state()
    data = json.dumps(state, indent="\t", separators=(" ,  ", " :\t")).encode() + b"\n"
    out, _ = run_filter(data)
    assert json.loads(out.text) == expected_state()
    assert out.text.endswith("}\n")


def test_non_records_are_kept_and_not_counted():
    state = {
        "events": {"j": [{"occurred_at": "2026-01-01"}, 5, "x", None], "k": "not an array", "a": [1]},
        "jobs": {"j": {"status": "completed"}, "a": {"status": "running"}, "bad": "completed"},
        "results": {"r": [1, 2], "s": None, "t": {"job_id": "j", "created_at": "2026-01-01"}},
    }
    out, (results, events) = run_filter(service_bytes(state))
    kept = copy.deepcopy(state)
    del kept["results"]["t"]
    kept["events"]["j"].pop(0)
    assert out.text.encode() == service_bytes(kept)
    assert (results.total, results.eligible_terminal, results.delete_count) == (1, 1, 1)
    assert (events.total, events.eligible_terminal, events.delete_count, events.skipped_missing_timestamp) == (
        5, 4, 1, 3,
    )

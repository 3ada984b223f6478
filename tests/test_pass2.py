"""Pass 2 on every reader: deletions leave out byte ranges; everything kept is copied byte for byte."""

import copy
import json

import pytest

from conftest import NOW, service_bytes, small_state
from passes import run_on
from streamclean.policy import RetentionPolicy
from streamclean.readers import general, layout


class Output:
    """What pass 2 made of a store: the new text, and whether it differs from the old."""

    def __init__(self, old: bytes, new: bytes):
        self.text, self.diverged = new.decode("utf-8", "surrogatepass"), new != old


def run_filter(reader, data: bytes, results_ttl=604800.0, events_ttl=259200.0, in_layout=True):
    policy = RetentionPolicy.build(NOW, results_ttl, events_ttl)
    done = run_on(reader, data, policy, in_layout)
    if done is None:
        return None, None  # not the service's layout: the layout reader refused it, as it must
    new, _, results, events = done
    return Output(data, new), (results, events)


def expected_state():
    state = small_state()
    del state["results"]["r1"]
    state["events"]["j1"].pop(0)
    state["events"]["j3"].clear()
    return state


def test_service_store_comes_out_as_the_service_would_write_it(reader):
    out, (results, events) = run_filter(reader, service_bytes(small_state()))
    assert out.text.encode() == service_bytes(expected_state())
    assert (results.total, results.eligible_terminal, results.delete_count) == (3, 2, 1)
    assert (events.total, events.eligible_terminal, events.delete_count) == (4, 3, 2)


@pytest.mark.parametrize("chunk", [1, 4, 1 << 20])
def test_read_sizes_do_not_change_the_output(monkeypatch, chunk, reader):
    monkeypatch.setattr(general, "CHUNK_SIZE", chunk)
    monkeypatch.setattr(layout, "BLOCK_SIZE", chunk)
    out, _ = run_filter(reader, service_bytes(small_state()))
    assert out.text.encode() == service_bytes(expected_state())


@pytest.mark.parametrize("drop", [{0}, {1}, {2}, {0, 1}, {1, 2}, {0, 2}, {0, 1, 2}, set()])
@pytest.mark.parametrize("shape", ["service", "compact"])
def test_any_subset_of_results_can_go(drop, shape, reader):
    state = {"jobs": {"j": {"status": "completed"}}, "results": {}}
    for i in range(3):
        created = "2026-01-01T00:00:00" if i in drop else "2026-03-10T00:00:00"
        state["results"][f"r{i}"] = {"created_at": created, "job_id": "j"}
    dump = (
        service_bytes
        if shape == "service"
        else (lambda s: json.dumps(s, separators=(",", ":")).encode())
    )
    out, tallies = run_filter(reader, dump(state), in_layout=shape == "service")
    if out is None:
        return
    results = tallies[0]
    kept = copy.deepcopy(state)
    for i in drop:
        del kept["results"][f"r{i}"]
    assert out.text.encode() == dump(kept)
    assert out.diverged == bool(drop) and results.delete_count == len(drop)


def test_nothing_deleted_means_no_divergence_and_identical_text(reader):
    data = service_bytes(small_state())
    out, _ = run_filter(reader, data, results_ttl=None, events_ttl=None)
    assert not out.diverged and out.text.encode() == data


def test_odd_whitespace_is_kept_and_deletion_still_yields_valid_json(reader):
    state = small_state()
    data = json.dumps(state, indent="\t", separators=(" ,  ", " :\t")).encode() + b"\n"
    out, _ = run_filter(reader, data, in_layout=False)
    if out is None:
        return
    assert json.loads(out.text) == expected_state()
    assert out.text.endswith("}\n")


def test_non_records_are_kept_and_not_counted(reader):
    state = {
        "events": {
            "j": [{"occurred_at": "2026-01-01"}, 5, "x", None],
            "k": "not an array",
            "a": [1],
        },
        "jobs": {"j": {"status": "completed"}, "a": {"status": "running"}, "bad": "completed"},
        "results": {"r": [1, 2], "s": None, "t": {"job_id": "j", "created_at": "2026-01-01"}},
    }
    out, (results, events) = run_filter(reader, service_bytes(state))
    kept = copy.deepcopy(state)
    del kept["results"]["t"]
    kept["events"]["j"].pop(0)
    assert out.text.encode() == service_bytes(kept)
    assert (results.total, results.eligible_terminal, results.delete_count) == (1, 1, 1)
    assert (
        events.total,
        events.eligible_terminal,
        events.delete_count,
        events.skipped_missing_timestamp,
    ) == (
        5,
        4,
        1,
        3,
    )

"""Tests for scripts/generate_store.py, the generator of realistic stores.

Small stores only; the whole file runs in a few seconds.
"""

import importlib.util
import json
import multiprocessing
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "generate_store.py"
NOW = datetime(2026, 11, 28, tzinfo=timezone.utc)
TERMINAL = {"completed", "failed", "canceled"}


def _load():
    spec = importlib.util.spec_from_file_location("generate_store", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load()


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    """A ~200 KB store, its bytes, its parsed state and its stats."""
    path = tmp_path_factory.mktemp("store") / "store.v1.json"
    stats = gen.generate_store(path, 200_000, seed=7, now=NOW)
    data = path.read_bytes()
    return path, data, json.loads(data), stats


def _service_bytes(state) -> bytes:
    return json.dumps(state, ensure_ascii=False, sort_keys=True, indent=2).encode()


def _generate(tmp_path, name, size, **kwargs) -> bytes:
    path = tmp_path / name
    gen.generate_store(path, size, **kwargs)
    return path.read_bytes()


def test_layout_is_byte_exact_service_output(small_store):
    _, data, state, _ = small_store
    assert data == _service_bytes(state)
    assert list(state) == ["events", "jobs", "notifications", "results", "schema_version"]
    assert state["schema_version"] == 5
    assert 1 <= len(state["notifications"]) <= 10


def test_stats_describe_the_file(small_store):
    path, data, state, stats = small_store
    assert stats.bytes == len(data) == path.stat().st_size
    assert stats.jobs == len(state["jobs"])
    assert stats.results == len(state["results"])
    assert stats.events == sum(len(events) for events in state["events"].values())


def test_contains_non_ascii_text(small_store):
    _, data, _, _ = small_store
    text = data.decode("utf-8")
    assert "ü" in text or "ß" in text
    assert any("\u3040" <= ch <= "\u9fff" for ch in text)  # CJK
    assert any(ord(ch) > 0xFFFF for ch in text)  # an emoji outside the BMP


def test_same_arguments_give_identical_bytes(tmp_path):
    first = _generate(tmp_path, "a.json", 150_000, seed=3, now=NOW)
    second = _generate(tmp_path, "b.json", 150_000, seed=3, now=NOW)
    other_seed = _generate(tmp_path, "c.json", 150_000, seed=4, now=NOW)
    assert first == second
    assert first != other_seed


def test_worker_processes_produce_the_same_bytes(tmp_path, monkeypatch):
    # Small chunks so that two workers each render several of them.
    monkeypatch.setattr(gen, "_CHUNK_JOBS", 17)
    serial = _generate(tmp_path, "serial.json", 300_000, seed=5, now=NOW, workers=1)
    parallel = _generate(tmp_path, "parallel.json", 300_000, seed=5, now=NOW, workers=2)
    assert serial == parallel


@pytest.mark.parametrize("target", [1_000_000, 3_000_000])
def test_size_lands_near_target(tmp_path, target):
    stats = gen.generate_store(tmp_path / "store.json", target, seed=1, now=NOW)
    assert abs(stats.bytes - target) <= 0.05 * target


def test_tiny_target_still_writes_a_valid_store(tmp_path):
    data = _generate(tmp_path, "tiny.json", 1, now=NOW)
    state = json.loads(data)
    assert len(state["jobs"]) == 1
    assert data == _service_bytes(state)


def test_sections_belong_to_the_same_jobs(small_store):
    _, _, state, _ = small_store
    jobs = state["jobs"]
    assert set(state["events"]) <= set(jobs)
    for job_id, job in jobs.items():
        assert job["job_id"] == job_id
    for result_id, result in state["results"].items():
        assert result["result_id"] == result_id
        assert result["job_id"] in jobs
        assert result["result_kind"] in ("partial", "final")
    for notification in state["notifications"].values():
        assert notification["job_id"] in jobs
    for job_id, events in state["events"].items():
        assert 1 <= len(events) <= 12
        assert [event["event_seq"] for event in events] == list(range(1, len(events) + 1))
        assert all(event["job_id"] == job_id for event in events)


def test_ids_sort_in_generation_order(small_store):
    _, _, state, _ = small_store
    # The file is key-sorted (see the byte-exact test), so dict order is id
    # order; it must be job index order, and result_seq order within a job.
    job_ids = list(state["jobs"])
    assert [int(job_id[:8], 16) for job_id in job_ids] == list(range(len(job_ids)))
    seqs = [(int(r["result_id"][:8], 16), r["result_seq"]) for r in state["results"].values()]
    assert seqs == sorted(seqs)


def test_statuses_and_timestamps_are_realistic(tmp_path):
    state = json.loads(_generate(tmp_path, "store.json", 1_000_000, seed=2, now=NOW))
    jobs = state["jobs"]
    statuses = {job["status"] for job in jobs.values()}
    assert statuses == TERMINAL | {"queued", "running", "partial"}
    terminal_share = sum(job["status"] in TERMINAL for job in jobs.values()) / len(jobs)
    assert 0.7 <= terminal_share <= 0.9

    for job in jobs.values():
        queued = datetime.fromisoformat(job["queued_at"])
        assert NOW - timedelta(days=31) <= queued <= NOW
        assert (job["finished_at"] is None) == (job["status"] not in TERMINAL)
        assert (job["error"] is not None) == (job["status"] == "failed")
        for event in state["events"][job["job_id"]]:
            assert queued <= datetime.fromisoformat(event["occurred_at"]) <= NOW

    # Some timestamps print without microseconds, as isoformat() does for .000000.
    assert any("." not in job["queued_at"] for job in jobs.values())

    # The default TTLs delete a good share, but not everything.
    events_cutoff, results_cutoff = NOW - timedelta(days=3), NOW - timedelta(days=7)
    terminal = {job_id for job_id, job in jobs.items() if job["status"] in TERMINAL}
    events = [(job_id, e) for job_id, evs in state["events"].items() for e in evs]
    old_events = sum(job_id in terminal and datetime.fromisoformat(e["occurred_at"]) <= events_cutoff
                     for job_id, e in events)
    old_results = sum(r["job_id"] in terminal and datetime.fromisoformat(r["created_at"]) <= results_cutoff
                      for r in state["results"].values())
    assert 0.4 <= old_events / len(events) <= 0.7
    assert 0.3 <= old_results / len(state["results"]) <= 0.55
    assert 5 <= len(events) / len(jobs) <= 7
    assert 0.7 <= len(state["results"]) / len(jobs) <= 1.3


@pytest.mark.parametrize("running_share", [0.0, 0.1])
def test_uniform_arrivals_spread_jobs_evenly_and_keep_a_share_running(tmp_path, running_share):
    """--uniform-days: every tenth of the span holds a tenth of the jobs, and of the running ones."""
    data = _generate(tmp_path, "store.json", 1_000_000, seed=3, now=NOW, arrivals=gen.Arrivals(60, running_share))
    state = json.loads(data)
    assert data == _service_bytes(state)
    jobs = list(state["jobs"].values())
    tenths = [0] * 10
    running = [0] * 10
    for job in jobs:
        tenth = min(9, int((NOW - datetime.fromisoformat(job["queued_at"])) / timedelta(days=6)))
        tenths[tenth] += 1
        running[tenth] += job["status"] == "running"
        assert job["status"] in TERMINAL | {"running"}
    assert all(abs(count - len(jobs) / 10) <= 3 for count in tenths), tenths
    assert all(abs(count - running_share * len(jobs) / 10) <= 3 for count in running), running
    assert sum(running) == pytest.approx(running_share * len(jobs), abs=2)


def test_the_uniform_options_on_the_command_line(tmp_path):
    out = tmp_path / "store.json"
    done = subprocess.run([sys.executable, str(SCRIPT), str(out), "--size", "100K", "--uniform-days", "10",
                           "--running-share", "0.5"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    statuses = [job["status"] for job in json.loads(out.read_bytes())["jobs"].values()]
    assert 0.3 <= statuses.count("running") / len(statuses) <= 0.7
    refused = subprocess.run([sys.executable, str(SCRIPT), str(out), "--running-share", "0.1"],
                             capture_output=True, text=True, check=False)
    assert refused.returncode == 2 and "--running-share needs --uniform-days" in refused.stderr


def test_timestamps_match_isoformat():
    rng = random.Random(0)
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    for _ in range(20_000):
        us = rng.randrange(0, 4_000_000_000_000_000)
        if rng.random() < 0.2:
            us -= us % 1_000_000
        assert gen._iso(us) == (epoch + timedelta(microseconds=us)).isoformat()


@pytest.mark.parametrize("text, expected", [
    ("12345", 12345),
    ("500K", 500_000),
    ("100MB", 100_000_000),
    ("1.5g", 1_500_000_000),
    ("2KiB", 2048),
    ("1GiB", 1 << 30),
])
def test_parse_size(text, expected):
    assert gen.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "MB", "-5", "1TB", "0", "5i"])
def test_parse_size_refuses_nonsense(text):
    with pytest.raises(Exception):
        gen.parse_size(text)


def test_command_line(tmp_path):
    out = tmp_path / "cli.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(out), "--size", "100K", "--seed", "7",
         "--now", "2026-11-28T00:00:00+00:00"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    line = proc.stderr.strip()
    assert str(out) in line and "jobs" in line and "events" in line and "results" in line
    assert out.read_bytes() == _generate(tmp_path, "api.json", 100_000, seed=7, now=NOW)


def test_command_line_rejects_a_bad_size(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "x.json"), "--size", "lots"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert not (tmp_path / "x.json").exists()


def test_naive_now_means_utc(tmp_path):
    naive = _generate(tmp_path, "naive.json", 50_000, now=NOW.replace(tzinfo=None))
    aware = _generate(tmp_path, "aware.json", 50_000, now=NOW)
    assert naive == aware


def test_failure_while_writing_stops_the_workers(tmp_path, monkeypatch):
    monkeypatch.setattr(gen, "_CHUNK_JOBS", 5)
    real_notifications = gen._notification_records
    calls = []

    def fail_once_writing(*args):
        # The first call sizes the store; the second comes after the events
        # and jobs sections, while the workers are busy with results.
        calls.append(args)
        if len(calls) > 1:
            raise OSError("disk full")
        return real_notifications(*args)

    monkeypatch.setattr(gen, "_notification_records", fail_once_writing)
    with pytest.raises(OSError, match="disk full"):
        gen.generate_store(tmp_path / "store.json", 100_000, now=NOW, workers=2)
    assert len(calls) == 2
    assert multiprocessing.active_children() == []

"""Restore onto the store as it is now (issue 18): cleanups into archives, a simulated service
that adds, finishes and changes jobs in between, and restores of everything, of some jobs, from
a folder and from repeated --archive-file.

The yardstick is independent of the code it judges: what each cleanup removed is worked out
from the states before and after it (the oracle's `clean_state`), and put back into today's
state as plain dicts and lists, newest cleanup first (a record whose key is there stays as it
is; a single event goes back at its position in its job's list); the expected file is that
state as the service writes it.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import service_bytes
from oracle import clean_state
from test_jobs_retention import run

NOW1 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
NOW2 = NOW1 + timedelta(days=5)
DAY = 86400
RESULTS_TTL, EVENTS_TTL, JOBS_TTL = 7 * DAY, 3 * DAY, 20 * DAY
TERMINAL = ("completed", "failed", "canceled")
SECTIONS = ("jobs", "results", "notifications")


def stamp(moment: datetime) -> str:
    return moment.isoformat()


# -- the stores ----------------------------------------------------------------------------------


def initial_state(seed: int) -> dict:
    """Jobs of every status finished over the last 40 days, with events spread over their
    lives (each event unique), results and notifications; some keys and texts not ASCII."""
    rnd = random.Random(seed)
    state: dict = {"events": {}, "jobs": {}, "notifications": {}, "results": {}}
    for i in range(40):
        key = f"job-{i:03d}" if i % 7 else f"jöb-{i:03d}-✓"
        status = rnd.choice((*TERMINAL, "running", "queued"))
        finished = NOW1 - timedelta(days=rnd.uniform(0, 40))
        job = {
            "job_id": key,
            "status": status,
            "title": rnd.choice(["plain", "ünïcode ✓", 'q"uote\\']),
            "created_at": stamp(finished - timedelta(days=3)),
        }
        if status in TERMINAL:
            job["finished_at"] = stamp(finished)
        state["jobs"][key] = job
        if rnd.random() < 0.8:
            state["events"][key] = [
                {
                    "seq": f"{key}/{n}",
                    "occurred_at": stamp(finished - timedelta(days=3) + timedelta(hours=9 * n)),
                    "n": rnd.randint(0, 10**20),
                }
                for n in range(rnd.randint(0, 9))
            ]
        for n in range(rnd.randint(0, 3)):
            state["results"][f"r-{i:03d}-{n}"] = {
                "job_id": key,
                "created_at": stamp(finished - timedelta(days=n)),
                "value": rnd.random(),
                "odd": [1e16, 1e-7, -0.0, 2**70, "\x7f"],
            }
        for n in range(rnd.randint(0, 2)):
            state["notifications"][f"n-{i:03d}-{n}"] = {"job_id": key, "channel": "mail"}
    # one job whose events two cleanups take in turn (events TTL), and which job retention
    # then takes whole in the second cleanup when it runs with it
    state["jobs"]["job-two"] = {
        "job_id": "job-two",
        "status": "completed",
        "finished_at": stamp(NOW1 - timedelta(days=17)),
    }
    state["events"]["job-two"] = [
        {"seq": f"two/{n}", "occurred_at": stamp(NOW1 - timedelta(days=9 - n))} for n in range(9)
    ]
    return state


def service_changes(state: dict, seed: int) -> dict:
    """The service between the cleanups: new jobs with events and results, running jobs
    finished, a record changed, events appended to a job the cleanup kept."""
    rnd = random.Random(seed + 1000)
    state = copy.deepcopy(state)
    for _, job in sorted(state["jobs"].items()):
        if job["status"] == "running" and rnd.random() < 0.5:
            job["status"] = "completed"
            job["finished_at"] = stamp(NOW1 + timedelta(days=1))
    for i in range(6):
        key = f"new-{i}"
        state["jobs"][key] = {
            "job_id": key,
            "status": "running",
            "created_at": stamp(NOW1 + timedelta(days=i)),
        }
        state["events"][key] = [{"seq": f"{key}/0", "occurred_at": stamp(NOW1 + timedelta(days=i))}]
        state["results"][f"r-new-{i}"] = {
            "job_id": key,
            "created_at": stamp(NOW1 + timedelta(days=i)),
        }
    kept_results = sorted(state["results"])
    if kept_results:
        state["results"][kept_results[0]]["changed"] = "by the service"
    for key in sorted(state["events"]):
        if state["events"][key] and state["jobs"].get(key, {}).get("status") not in TERMINAL:
            state["events"][key].append({"seq": f"{key}/late", "occurred_at": stamp(NOW2)})
            break
    return state


def removed(before: dict, after: dict) -> dict:
    """What a cleanup took: records by key, whole events arrays, and single events with the
    positions they had (events are unique, so each is found by value)."""
    taken: dict = {
        section: {
            k: v for k, v in before.get(section, {}).items() if k not in after.get(section, {})
        }
        for section in SECTIONS
    }
    taken["arrays"] = {k: v for k, v in before["events"].items() if k not in after["events"]}
    taken["singles"] = {}
    for key, events in before["events"].items():
        if key in after["events"]:
            kept = after["events"][key]
            gone = [(position, event) for position, event in enumerate(events) if event not in kept]
            if gone:
                taken["singles"][key] = gone
    return taken


def only_jobs(taken: dict, jobs: set[str]) -> dict:
    return {
        "jobs": {k: v for k, v in taken["jobs"].items() if k in jobs},
        "results": {k: v for k, v in taken["results"].items() if v.get("job_id") in jobs},
        "notifications": {
            k: v for k, v in taken["notifications"].items() if v.get("job_id") in jobs
        },
        "arrays": {k: v for k, v in taken["arrays"].items() if k in jobs},
        "singles": {k: v for k, v in taken["singles"].items() if k in jobs},
    }


def put_back(state: dict, taken: dict) -> dict:
    """One archive restored onto `state`: what is missing goes back, what is there stays."""
    state = copy.deepcopy(state)
    for section in SECTIONS:
        for key, value in taken[section].items():
            state[section].setdefault(key, value)
    for key, events in taken["arrays"].items():
        state["events"].setdefault(key, copy.deepcopy(events))
    for key, gone in taken["singles"].items():
        events = state["events"][key]
        for position, event in gone:
            if position >= len(events) or events[position] != event:  # there already: present
                events.insert(position, event)
    return state


# -- the runs ------------------------------------------------------------------------------------


def clean_args(store: Path, now: datetime, archive: Path, jobs_ttl: bool) -> list:
    args = [
        "clean",
        "--store-file",
        store,
        "--now",
        stamp(now),
        "--results-ttl-seconds",
        str(RESULTS_TTL),
        "--events-ttl-seconds",
        str(EVENTS_TTL),
        "--archive-file",
        archive,
    ]
    return args + (["--jobs-ttl-seconds", str(JOBS_TTL)] if jobs_ttl else [])


def oracle_clean(state: dict, now: datetime, jobs_ttl: bool) -> dict:
    return clean_state(
        state,
        results_ttl=RESULTS_TTL,
        events_ttl=EVENTS_TTL,
        now=now,
        jobs_ttl=JOBS_TTL if jobs_ttl else None,
    )[0]


class History:
    """Two cleanups with the service in between, in `folder`; the states the oracle knows."""

    def __init__(
        self, folder: Path, seed: int, jobs_ttl: bool, second_jobs_ttl: bool | None = None
    ) -> None:
        self.folder = folder
        self.store = folder / "store.v1.json"
        archives = folder / "archives"
        archives.mkdir()
        self.archives = [archives / "first.jsonl.gz", archives / "second.jsonl"]
        state0 = initial_state(seed)
        self.store.write_bytes(service_bytes(state0))
        run(clean_args(self.store, NOW1, self.archives[0], jobs_ttl))
        cleaned1 = oracle_clean(state0, NOW1, jobs_ttl)
        assert self.store.read_bytes() == service_bytes(cleaned1)
        state1 = service_changes(cleaned1, seed)
        self.store.write_bytes(service_bytes(state1))
        second = jobs_ttl if second_jobs_ttl is None else second_jobs_ttl
        run(clean_args(self.store, NOW2, self.archives[1], second))
        self.today = oracle_clean(state1, NOW2, second)
        assert self.store.read_bytes() == service_bytes(self.today)
        self.taken = [removed(state0, cleaned1), removed(state1, self.today)]  # oldest first

    def expected(self, jobs: set[str] | None = None) -> dict:
        state = self.today
        for taken in reversed(self.taken):  # newest first
            state = put_back(state, taken if jobs is None else only_jobs(taken, jobs))
        return state

    def restore(self, *extra, code: int = 0):
        return run(["restore", "--store-file", self.store, *extra], code=code)


def assert_restored(store: Path, want: dict) -> None:
    data = store.read_bytes()
    assert json.loads(data) == want
    assert data == service_bytes(want)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("jobs_ttl", [False, True])
def test_restore_everything_from_repeated_archive_files(tmp_path, seed, jobs_ttl, reader):
    history = History(tmp_path, seed, jobs_ttl)
    env = {"STREAMCLEAN_READER": reader}
    # given oldest first: the tool orders them by the time in their header
    report = run(
        [
            "restore",
            "--store-file",
            history.store,
            "--archive-file",
            history.archives[0],
            "--archive-file",
            history.archives[1],
        ],
        env=env,
    )
    want = history.expected()
    if reader == "layout":
        assert_restored(history.store, want)
    else:
        assert json.loads(history.store.read_bytes()) == want
    assert report["reader"] == reader and report["rewritten"] is True
    assert [use["file"] for use in report["archives"]] == [
        str(history.archives[1]),
        str(history.archives[0]),
    ]
    assert report["archive_file"] == str(history.archives[1])
    assert report["restored"]["total"] == sum(
        use["restored"]["total"] for use in report["archives"]
    )
    # a second restore finds everything there and leaves the file alone
    before = os.stat(history.store)
    again = history.restore("--archive-dir", history.archives[0].parent)
    after = os.stat(history.store)
    assert again["restored"]["total"] == 0 and again["rewritten"] is False
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_restoring_one_at_a_time_newest_first_gives_the_same(tmp_path):
    history = History(tmp_path, 4, True)
    history.restore("--archive-file", history.archives[1])
    history.restore("--archive-file", history.archives[0])
    assert_restored(history.store, history.expected())


@pytest.mark.parametrize("seed", [5, 6])
def test_restore_from_an_archive_dir(tmp_path, seed):
    history = History(tmp_path, seed, True)
    folder = history.archives[0].parent
    renamed = folder / "whatever-name"
    history.archives[0].rename(renamed)  # recognised by its header, whatever its name
    (folder / "notes.txt").write_text("not an archive\n")
    report = history.restore("--archive-dir", folder)
    assert_restored(history.store, history.expected())
    assert [use["file"] for use in report["archives"]] == [str(history.archives[1]), str(renamed)]
    assert report["skipped_files"] == [str(folder / "notes.txt")]


def test_an_archive_dir_without_archives_is_refused(tmp_path):
    history = History(tmp_path, 7, False)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.jsonl").write_text('{"hello": 1}\n')
    before = history.store.read_bytes()
    result = history.restore("--archive-dir", empty, code=1)
    assert (
        result.stderr
        == f"streamclean: error: no streamclean archive in {empty}; the store was left unchanged\n"
    )
    assert history.store.read_bytes() == before


def test_events_taken_by_two_cleanups_come_back_in_order(tmp_path):
    """job-two lost its oldest events to the first cleanup and more to the second; with job
    retention in the second, its whole (shorter) array: either way all nine come back in order."""
    for second_jobs_ttl, folder in ((False, tmp_path / "a"), (True, tmp_path / "b")):
        folder.mkdir()
        history = History(folder, 8, False, second_jobs_ttl)
        first, second = history.taken
        assert "job-two" in first["singles"]
        assert (
            ("job-two" in second["arrays"]) if second_jobs_ttl else ("job-two" in second["singles"])
        )
        report = history.restore("--archive-dir", history.archives[0].parent)
        assert_restored(history.store, history.expected())
        events = json.loads(history.store.read_bytes())["events"]["job-two"]
        assert [event["seq"] for event in events] == [f"two/{n}" for n in range(9)]
        assert report["restored"]["events"] >= 2


@pytest.mark.parametrize("seed", [9, 10])
def test_restore_by_job(tmp_path, seed):
    history = History(tmp_path, seed, True)
    gone = sorted(set(history.taken[0]["jobs"]) | set(history.taken[1]["jobs"]))
    assert len(gone) >= 2
    asked = [gone[0], gone[-1], "no-such-job"]
    report = history.restore(
        "--archive-dir", history.archives[0].parent, *[f"--job={job}" for job in asked]
    )
    assert_restored(history.store, history.expected(set(asked)))
    jobs = report["jobs"]
    assert jobs["no-such-job"] == {
        "found": False,
        "restored": {"total": 0},
        "already_present": {"total": 0},
        "archives": [],
    }
    assert report["jobs_not_found"] == ["no-such-job"]
    for job in asked[:2]:
        assert jobs[job]["found"] and jobs[job]["restored"]["jobs"] == 1
        holding = [
            str(path)
            for path, taken in zip(history.archives, history.taken, strict=False)
            if job in taken["jobs"]
        ]
        assert set(holding) <= set(jobs[job]["archives"])
    assert report["restored"]["total"] == sum(jobs[job]["restored"]["total"] for job in asked)


def test_restore_by_job_found_nowhere_exits_1(tmp_path):
    history = History(tmp_path, 11, True)
    before = history.store.read_bytes()
    result = history.restore(
        "--archive-dir", history.archives[0].parent, "--job", "nope", "--job", "nada", code=1
    )
    assert result.stderr == (
        "streamclean: error: none of the jobs asked for is in the archives given: nope, nada; "
        "the store was left unchanged\n"
    )
    assert history.store.read_bytes() == before


def test_a_dry_run_reports_what_the_restore_then_does(tmp_path):
    history = History(tmp_path, 12, True)
    before = os.stat(history.store)
    listing = sorted(os.listdir(tmp_path))
    dry = history.restore("--archive-dir", history.archives[0].parent, "--dry-run")
    assert (
        os.stat(history.store).st_mtime_ns == before.st_mtime_ns
        and sorted(os.listdir(tmp_path)) == listing
    )
    real = history.restore("--archive-dir", history.archives[0].parent)
    for key in (
        "restored",
        "already_present",
        "store_bytes_after",
        "archives",
        "store_matches_archive",
    ):
        assert dry[key] == real[key], key
    assert dry["rewritten"] is False and real["rewritten"] is True
    assert real["store_bytes_after"] == history.store.stat().st_size


def test_the_cleanups_own_output_still_comes_back_byte_for_byte(tmp_path):
    """Onto the store the second cleanup produced, its archive gives back the store before it
    exactly (the service's changes included), then the first's the rest."""
    history = History(tmp_path, 13, True)
    report = history.restore("--archive-file", history.archives[1])
    assert report["store_matches_archive"] is True
    assert history.store.read_bytes() == service_bytes(put_back(history.today, history.taken[1]))


def test_a_single_event_without_its_array_is_refused(tmp_path):
    """The service removed a job's events array meanwhile, and no archive holds it whole."""
    history = History(tmp_path, 14, False)
    state = json.loads(history.store.read_bytes())
    del state["events"]["job-two"]
    history.store.write_bytes(service_bytes(state))
    before = history.store.read_bytes()
    result = history.restore("--archive-file", history.archives[1], code=1)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and f"archive {history.archives[1]}: line " in lines[0]
    assert (
        "of job 'job-two' has no place: the job's events array is neither in the store nor whole"
        in lines[0]
    )
    assert history.store.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["archives", "store.v1.json", "store.v1.json.lock"]


def test_a_store_in_another_layout_gets_the_value_and_keeps_its_bytes(tmp_path):
    history = History(tmp_path, 15, True)
    compact = json.dumps(history.today, sort_keys=True, separators=(",", ":")).encode()
    history.store.write_bytes(compact)
    history.restore("--archive-dir", history.archives[0].parent)
    data = history.store.read_bytes()
    assert json.loads(data) == history.expected()
    assert b'"changed":"by the service"' in data  # a kept record as it was


def test_the_archive_gz_and_plain_are_both_read(tmp_path):
    history = History(tmp_path, 16, False)
    assert history.archives[0].read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(history.archives[0].read_bytes()).startswith(b'{"streamclean_archive":1')
    assert history.archives[1].read_bytes().startswith(b'{"streamclean_archive":1')


def test_a_copy_of_an_archive_in_the_folder_counts_once(tmp_path):
    history = History(tmp_path, 17, True)
    folder = history.archives[0].parent
    (folder / "copy-of-first.jsonl.gz").write_bytes(history.archives[0].read_bytes())
    report = history.restore("--archive-dir", folder)
    assert_restored(history.store, history.expected())
    assert len(report["archives"]) == 2


def test_events_restored_and_taken_again_come_back_once(tmp_path):
    """A cleanup takes events, a restore puts them back, the next cleanup takes them again:
    both archives hold them, and a restore of both puts each back once."""
    store = tmp_path / "store.v1.json"
    archives = tmp_path / "archives"
    archives.mkdir()
    state0 = initial_state(18)
    store.write_bytes(service_bytes(state0))
    run(clean_args(store, NOW1, archives / "a.jsonl", False))
    run(["restore", "--store-file", store, "--archive-file", archives / "a.jsonl"])
    assert store.read_bytes() == service_bytes(state0)
    run(clean_args(store, NOW2, archives / "b.jsonl", False))
    today = oracle_clean(state0, NOW2, False)
    assert store.read_bytes() == service_bytes(today)
    report = run(["restore", "--store-file", store, "--archive-dir", archives])
    assert_restored(store, state0)
    first = next(use for use in report["archives"] if use["file"].endswith("a.jsonl"))
    assert first["already_present"]["total"] == first["records"]


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.sampled_from(
        [
            1e16,
            1e-7,
            -0.0,
            5e-324,
            1.7976931348623157e308,
            123456789.0,
            0.1,
            "\x7f",
            "\u2028",
            "\x00",
            "\ud800",
        ]
    ),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(value=_VALUES)
def test_records_are_written_as_the_service_writes_them(value):
    from streamclean.restore import service_text

    try:
        want = json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2).encode("utf-8")
    except UnicodeEncodeError:
        want = None
    assert service_text(value) == want

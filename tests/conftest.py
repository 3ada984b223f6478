import json
import os
import signal
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from streamclean.cli import main

READERS = ("layout", "general")


def pytest_generate_tests(metafunc):
    """Every test that asks for `reader` runs on every reader, named by it (as ijson runs its
    tests on every backend)."""
    if "reader" in metafunc.fixturenames:
        metafunc.parametrize("reader", READERS, ids=[f"reader={name}" for name in READERS])


NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
NOW_ISO = NOW.isoformat()
ROOT = Path(__file__).resolve().parents[1]


def service_bytes(state) -> bytes:
    """The store exactly as the service writes it."""
    return json.dumps(state, ensure_ascii=False, sort_keys=True, indent=2).encode("utf-8")


def small_state() -> dict:
    """Two terminal jobs and one running, with old and new results and events."""
    return {
        "events": {
            "j1": [
                {"event_id": "e1", "job_id": "j1", "occurred_at": "2026-03-01T12:00:00+00:00"},
                {"event_id": "e2", "job_id": "j1", "occurred_at": "2026-03-09T12:00:00+00:00"},
            ],
            "j2": [{"event_id": "e3", "job_id": "j2", "occurred_at": "2026-03-01T12:00:00+00:00"}],
            "j3": [{"event_id": "e4", "job_id": "j3", "occurred_at": "2026-03-01T12:00:00+00:00"}],
        },
        "jobs": {
            "j1": {"job_id": "j1", "status": "completed"},
            "j2": {"job_id": "j2", "status": "running"},
            "j3": {"job_id": "j3", "status": "failed"},
        },
        "notifications": {"n1": {"text": "Grüße ✓"}},
        "results": {
            "r1": {"created_at": "2026-03-01T12:00:05+00:00", "job_id": "j1", "result_id": "r1"},
            "r2": {"created_at": "2026-03-01T12:00:05+00:00", "job_id": "j2", "result_id": "r2"},
            "r3": {"created_at": "2026-03-09T12:00:05+00:00", "job_id": "j3", "result_id": "r3"},
        },
        "schema_version": 5,
    }


@pytest.fixture
def store(tmp_path):
    """A service-written store with something to delete, in a folder of its own."""
    path = tmp_path / "async_jobs" / "store.v1.json"
    path.parent.mkdir()
    path.write_bytes(service_bytes(small_state()))
    return path


@pytest.fixture
def invoke():
    """Run `streamclean ARGS...` in-process; returns click's Result."""

    def run(*args, env=None):
        return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)

    return run


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.fixture(autouse=True)
def handlers_restored():
    """In-process runs install streamclean's handlers, and ignore SIGINT and SIGTERM once they
    have ended (which the processes a later test starts would inherit): give pytest its own
    back after every test."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)

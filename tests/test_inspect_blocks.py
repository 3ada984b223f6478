"""`inspect`'s survey on the layout reader's block path: the same JSON as with the block path
taken away (every record read one at a time, as the survey read them before it rode the block
path), on a generated store and on one full of records the block path cannot prove."""

import dataclasses
import importlib.util
from datetime import UTC, datetime, timedelta

import pytest

from conftest import ROOT, service_bytes
from streamclean import inspect as inspect_module
from streamclean.inspect import inspect_store
from streamclean.policy import RetentionPolicy
from streamclean.readers import LayoutReader, layout

NOW = datetime(2026, 11, 28, tzinfo=UTC)
POLICIES = {
    "plain": RetentionPolicy.build(NOW, 604800.0, 259200.0),
    "job-retention": RetentionPolicy.build(NOW, 604800.0, 259200.0, 864000.0),
}


def _generated(path) -> None:
    spec = importlib.util.spec_from_file_location(
        "generate_store", ROOT / "scripts" / "generate_store.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate_store(path, 2_000_000, seed=3, now=NOW, workers=1)


def _odd_state() -> dict:
    """Many ordinary records, and among them those the block path hands over or reads apart:
    a missing, a null and a non-string status, naive, `Z` and microsecond-less timestamps,
    missing and null ones, records that are not objects, events that are not an array."""
    state: dict = {"events": {}, "jobs": {}, "results": {}, "notifications": {}}
    statuses = ("completed", "running", "failed", "canceled", "queued")
    for number in range(300):
        job = f"j{number:04d}"
        at = NOW - timedelta(days=number % 30, hours=number % 7)
        stamp = at.isoformat() if number % 5 else at.replace(microsecond=0).isoformat()
        record: dict = {"job_id": job, "queued_at": stamp, "status": statuses[number % 5]}
        if number % 4:
            record["finished_at"] = (at + timedelta(hours=3)).isoformat()
        state["jobs"][job] = record
        state["events"][job] = [
            {"occurred_at": (at + timedelta(minutes=k)).isoformat(), "n": k}
            for k in range(number % 4)
        ]
        state["results"][f"r{number:04d}"] = {"job_id": job, "created_at": stamp}
        state["notifications"][f"n{number:04d}"] = {"job_id": job, "created_at": stamp}
    odd = {
        "j0010": {"job_id": "j0010"},  # no status
        "j0020": {"status": None, "queued_at": "2026-11-20T00:00:00Z"},
        "j0030": {"status": 7},
        "j0040": "not a job",
        "j0050": {"status": "completed", "queued_at": "2026-11-20T00:00:00", "finished_at": None},
        # ended, but never queued: it ran for no time at all
        "j0060": {"status": "failed", "queued_at": None, "finished_at": "2026-11-20T00:00:00Z"},
        "j0070": {"status": "completed", "finished_at": "2026-11-21T00:00:00+00:00"},
    }
    state["jobs"].update(odd)
    state["results"].update(
        {
            "r0011": "not a result",
            "r0021": {"job_id": "j0021", "created_at": "2026-11-27T10:00:00"},  # naive
            "r0031": {"job_id": "j0031", "created_at": "yesterday"},
            "r0041": {"job_id": None, "created_at": None},
            "r0051": {"job_id": "j0051", "created_at": 5},
        }
    )
    state["events"].update(
        {
            "j0012": {"not": "a list"},
            "j0022": ["not an object", {"occurred_at": None}],
            "j0032": [{"occurred_at": "2026-11-20T00:00:00"}, {}],  # naive, and missing
            "j0042": [{"occurred_at": "2026-11-27T00:00:00Z"}],
            "j0052": [{"occurred_at": "nonsense"}, {"occurred_at": NOW.isoformat()}],
            # across the start of the growth window (14 days), in a block of usual timestamps
            "j0005": [
                {
                    "occurred_at": (NOW - timedelta(days=14, hours=hours)).isoformat(),
                    "pad": "x" * 3000,
                }
                for hours in (1, -1, -24)
            ],
        }
    )
    state["notifications"].update({"n0013": 4, "n0023": {"created_at": "2026-11-01T00:00:00Z"}})
    state["schema_version"] = 5
    return state


def _naive_state() -> dict:
    """Ordinary records only, nothing the block path hands over, but some of their times naive
    (read as UTC) among zoned ones, and whole blocks of naive ones."""
    state: dict = {"events": {}, "jobs": {}, "results": {}, "notifications": {}}
    statuses = ("completed", "running", "failed", "queued")
    for number in range(400):
        job = f"j{number:04d}"
        at = NOW - timedelta(days=number % 20, hours=number % 5)
        naive = number % 7 == 0 or number >= 300

        def stamp(moment: datetime, naive: bool = naive) -> str:
            return moment.replace(tzinfo=None).isoformat() if naive else moment.isoformat()

        state["jobs"][job] = {
            "job_id": job,
            "status": statuses[number % 4],
            "queued_at": stamp(at),
            "finished_at": stamp(at + timedelta(hours=2)),
        }
        state["events"][job] = [
            {"occurred_at": stamp(at + timedelta(minutes=k)), "n": k} for k in range(number % 3)
        ]
        state["results"][f"r{number:04d}"] = {"job_id": job, "created_at": stamp(at)}
        state["notifications"][f"n{number:04d}"] = {"job_id": job, "created_at": stamp(at)}
    return state


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stores")
    generated = folder / "generated.json"
    _generated(generated)
    odd = folder / "odd.json"
    data = service_bytes(_odd_state())
    # a repeated key among the jobs: the block path hands their block over, with the job
    # without a status in it
    jobs = data.index(b'\n  "jobs": {')
    repeated = data.index(b'\n    "j0011": {', jobs)
    data = data[:repeated] + b'\n    "j0012"' + data[repeated + 12 :]
    odd.write_bytes(data)
    naive = folder / "naive.json"
    naive.write_bytes(service_bytes(_naive_state()))
    return {"generated": generated, "odd": odd, "naive": naive}


def _inspected(
    path, policy, monkeypatch, blocks: bool, growth_window: float = 14 * 86400.0
) -> tuple[tuple, int, int]:
    """`inspect --json`'s document with the growth tally behind it, how many blocks the
    survey was told of, and how many times the block path handed over to the record-by-record
    one."""
    told = []
    readers: list[LayoutReader] = []
    survey = inspect_module.StoreSurvey
    with monkeypatch.context() as patch:
        for name in ("block", "events_block", "jobs_block"):
            original = getattr(survey, name)

            def counting(self, *args, _original=original):
                told.append(1)
                return _original(self, *args)

            patch.setattr(survey, name, counting)
        init = LayoutReader.__init__

        def made(self, *args, **kwargs):
            init(self, *args, **kwargs)
            readers.append(self)
            if not blocks:
                self.powers = dataclasses.replace(self.powers, blocks=None)

        patch.setattr(LayoutReader, "__init__", made)
        inspection = inspect_store(
            path, policy, reader="layout", workers=1, growth_window=growth_window
        )
    careful = sum(getattr(reader, "careful_blocks", 0) for reader in readers)
    growth = inspection.survey.growth  # the tally, finer than the JSON's rounded figures
    return (inspection.as_dict(), growth.sums, growth.run_hours), len(told), careful


@pytest.mark.parametrize("block_size", [None, 4096], ids=["one-block", "small-blocks"])
@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("store", ["generated", "odd", "naive"])
def test_inspect_on_the_block_path_reports_what_it_reports_record_by_record(
    stores, store, policy, block_size, monkeypatch
):
    if block_size is not None:
        monkeypatch.setattr(layout, "BLOCK_SIZE", block_size)
        monkeypatch.setattr(layout, "_BLOCK_SLACK", block_size // 2)
    on, told, careful = _inspected(stores[store], POLICIES[policy], monkeypatch, blocks=True)
    off, told_off, _ = _inspected(stores[store], POLICIES[policy], monkeypatch, blocks=False)
    assert told > 0 and told_off == 0  # the survey rode the block path, and then it did not
    if store == "odd":
        assert careful > 0  # some of it went record by record
    if store == "naive":
        assert careful == 0  # every naive time was read on the block path
    assert on == off
    if store == "odd":  # a missing status is told from a null one
        statuses = on[0]["jobs_by_status"]
        assert statuses["(no status)"] == 1 and statuses["(status not a string)"] == 2


@pytest.mark.parametrize("window", [2 * 86400.0, 2.5 * 86400, 14 * 86400.0 + 1e-6])
def test_the_growth_window_is_the_same_on_the_block_path(stores, window, monkeypatch):
    """A window of whole days is told by the ages' days there; any other by the moments."""
    on, told, _ = _inspected(stores["odd"], POLICIES["plain"], monkeypatch, True, window)
    off, _, _ = _inspected(stores["odd"], POLICIES["plain"], monkeypatch, False, window)
    assert told > 0 and on == off

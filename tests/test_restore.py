"""The archive (`clean --archive-file`) and `streamclean restore` (issue 13).

Clean followed by restore is the identity, byte for byte, on every store the oracle tests
use: hypothesis-generated stores in the service's layout and in the other serialisations
(with lone surrogates), generated stores on both readers, with and without job retention, gzip
or plain. A second restore changes nothing and does not rewrite the file. The archive's lines
are strict JSON with the fields restore needs; its life through a run (no archive for a dry
run or a run that deletes nothing, an existing one refused first); restore refuses another
store's archive and an invalid line, with its number, the store untouched.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

import processes
from conftest import NOW_ISO, service_bytes, small_state
from strategies import job_scenarios, scenarios
from test_jobs_retention import cleaned_with_archive, edge_state, run, scenario_args
from test_oracle_agreement import PROPERTY, SERIALISERS, cli_args, fingerprint

pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)


def archive_lines(path: Path) -> list[dict]:
    """Every line as strict JSON (no NaN, no Infinity: what jq reads)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    assert raw.endswith(b"\n")
    # split at newlines only: a line may hold U+2028, which str.splitlines would split at
    return [
        json.loads(line, parse_constant=refuse) for line in raw.decode("utf-8").split("\n")[:-1]
    ]


def restore_args(store: Path, archive: Path, *extra):
    return ["restore", "--store-file", store, "--archive-file", archive, *extra]


def assert_round_trip(
    folder: Path, blob: bytes, clean_args_for, suffix: str, env=None
) -> dict | None:
    """Clean with an archive, restore, restore again: the original bytes, then no rewrite."""
    store = folder / "store.v1.json"
    store.write_bytes(blob)
    archive = folder / f"archive.jsonl{suffix}"
    cleaned = run([*clean_args_for(store), "--archive-file", archive], env=env)
    if not cleaned["rewritten"]:
        assert not archive.exists(), "a run that deleted nothing wrote an archive"
        assert sorted(os.listdir(folder)) == ["store.v1.json", "store.v1.json.lock"]
        return None
    lines = archive_lines(archive)
    assert (
        lines[0]["streamclean_archive"] == 1
        and lines[0]["records"] == len(lines) - 1 == cleaned["archive"]["records"]
    )
    assert lines[0]["after"]["size"] == store.stat().st_size == cleaned["store_bytes_after"]
    assert lines[0]["before"]["size"] == len(blob)
    restored = run(restore_args(store, archive), env=env)
    assert store.read_bytes() == blob, "restore did not give back the original store"
    assert (
        restored["restored"]["total"] == len(lines) - 1
        and restored["already_present"]["total"] == 0
    )
    assert restored["rewritten"] and restored["store_bytes_after"] == len(blob)
    before = fingerprint(store)
    again = run(restore_args(store, archive), env=env)
    assert fingerprint(store) == before, "a second restore rewrote the store"
    assert again["restored"]["total"] == 0 and again["already_present"]["total"] == len(lines) - 1
    assert again["rewritten"] is False and again["store_matches_archive"] is False
    assert not [name for name in os.listdir(folder) if ".partial" in name]
    return cleaned


# -- hypothesis ----------------------------------------------------------------------------


@settings(max_examples=200, **PROPERTY)
@given(
    data=st.data(),
    fmt=st.sampled_from(["service", *sorted(SERIALISERS)]),
    jobs=st.booleans(),
    suffix=st.sampled_from([".gz", ""]),
)
def test_clean_then_restore_is_the_identity(data, fmt, jobs, suffix):
    surrogates = fmt != "service"
    sc = data.draw(job_scenarios(surrogates) if jobs else scenarios(surrogates), label="scenario")
    blob = service_bytes(sc.state) if fmt == "service" else SERIALISERS[fmt](sc.state).encode()
    args = (
        (lambda store: scenario_args(store, sc))
        if jobs
        else (lambda store: cli_args(store, sc.results, sc.events, sc.now.isoformat()))
    )
    with tempfile.TemporaryDirectory() as folder:
        assert_round_trip(Path(folder), blob, args, suffix)


# -- generated stores ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generated")
    return processes.generate(folder / "store.json", 9_000_000, seed=17)


@pytest.mark.parametrize("jobs_ttl", [None, "10d"])
def test_generated_store_round_trips_on_every_reader(generated, tmp_path, reader, jobs_ttl):
    extra = [] if jobs_ttl is None else ["--jobs-ttl-seconds", jobs_ttl]
    env = {"STREAMCLEAN_READER": reader, "STREAMCLEAN_WORKERS": "2"}
    cleaned = assert_round_trip(
        tmp_path,
        generated,
        lambda store: ["clean", "--store-file", store, "--now", processes.NOW, *extra],
        ".gz",
        env,
    )
    assert cleaned["reader"] == reader and cleaned["archive"]["records"] > 1000


def test_the_archive_holds_what_went_with_the_fields_restore_needs(tmp_path):
    store = tmp_path / "store.v1.json"
    blob = service_bytes(edge_state())
    store.write_bytes(blob)
    archive = tmp_path / "archive.jsonl"
    report = run(
        [
            "clean",
            "--store-file",
            store,
            "--now",
            NOW_ISO,
            "--jobs-ttl-seconds",
            "1d",
            "--archive-file",
            archive,
        ]
    )
    header, *lines = archive_lines(archive)
    assert header["store"] == str(store) and header["now"] == NOW_ISO
    assert report["archive"] == {
        "file": str(archive),
        "records": len(lines),
        "bytes": archive.stat().st_size,
    }
    where = [(line["section"], line["key"], line.get("position")) for line in lines]
    assert where == [
        ("events", "bad_finish", 0),
        ("events", "gone", None),
        ("events", "no_finish", 0),
        ("events", "young", None),
        ("jobs", "gone", None),
        ("jobs", "young", None),
        ("notifications", "n1", None),
        ("notifications", "n3", None),
        ("results", "r1", None),
        ("results", "r3", None),
    ]
    for line in lines:  # the exact source text of each record
        assert line["text"].encode() in blob
        assert json.loads(line["text"]) == _value(edge_state(), line)
    assert lines[1]["before"] == ',\n    "gone": '  # separator, key and colon, as they were
    assert lines[0]["before"] == "\n      " and lines[0]["after"] == "\n    "  # an emptied array


def _value(state, line):
    value = state[line["section"]][line["key"]]
    return value if line.get("position") is None else value[line["position"]]


def test_numbers_and_escapes_survive_exactly(tmp_path):
    """NaN, a 70-bit integer and escapes in the source text: each line stays strict JSON."""
    blob = (
        b'{\n  "events": {},\n  "jobs": {\n    "j1": {\n      "finished_at": "2026-03-01T12:00:00+00:00",\n'
        b'      "job_id": "j1",\n      "status": "completed",\n      "x": NaN\n    }\n  },\n'
        b'  "results": {\n    "r1": {\n      "job_id": "j1",\n      "n": 1180591620717411303424,\n'
        b'      "s": "\\ud800 \\u00fc \\"q\\""\n    }\n  }\n}'
    )

    def args(store):
        return ["clean", "--store-file", store, "--now", NOW_ISO, "--jobs-ttl-seconds", "1d"]

    assert_round_trip(tmp_path, blob, args, "")


# -- the archive's life ----------------------------------------------------------------------


def test_an_existing_archive_is_refused_before_the_store_is_read(tmp_path):
    archive = tmp_path / "archive.jsonl.gz"
    archive.write_bytes(b"an older archive")
    missing = tmp_path / "no-store.json"
    result = run(["clean", "--store-file", missing, "--archive-file", archive], code=1)
    assert result.stderr == (
        f"streamclean: error: the archive file exists already: {archive}; give a new name, for example one "
        "with the date: --archive-file archive-$(date +%Y%m%dT%H%M%S).jsonl.gz\n"
    )
    assert archive.read_bytes() == b"an older archive"


def test_a_dry_run_and_a_run_that_deletes_nothing_write_no_archive(tmp_path):
    store = tmp_path / "store.v1.json"
    store.write_bytes(service_bytes(small_state()))
    archive = tmp_path / "archive.jsonl"
    dry = run(
        ["clean", "--store-file", store, "--now", NOW_ISO, "--dry-run", "--archive-file", archive]
    )
    assert dry["results"]["delete_count"] > 0 and "archive" not in dry
    assert sorted(os.listdir(tmp_path)) == ["store.v1.json"]
    run(["clean", "--store-file", store, "--now", NOW_ISO])
    again = run(["clean", "--store-file", store, "--now", NOW_ISO, "--archive-file", archive])
    assert again["rewritten"] is False and "archive" not in again
    assert sorted(os.listdir(tmp_path)) == ["store.v1.json", "store.v1.json.lock"]


def test_a_run_that_gives_way_removes_its_archive(tmp_path, monkeypatch):
    """The service writes the store during the run: exit 75, no archive, no temporary file."""
    from streamclean import swap

    store = tmp_path / "store.v1.json"
    store.write_bytes(service_bytes(small_state()))
    archive = tmp_path / "archive.jsonl.gz"
    real = swap.AtomicReplace.commit

    def service_writes_first(self):
        os.utime(store, ns=(1, 1))  # a new mtime: somebody else's write
        return real(self)

    monkeypatch.setattr(swap.AtomicReplace, "commit", service_writes_first)
    result = run(
        ["clean", "--store-file", store, "--now", NOW_ISO, "--archive-file", archive], code=75
    )
    assert "changed by someone else" in result.stderr
    assert store.read_bytes() == service_bytes(small_state())
    assert sorted(os.listdir(tmp_path)) == ["store.v1.json", "store.v1.json.lock"]


# -- restore refuses -------------------------------------------------------------------------


def test_another_stores_archive_is_refused(tmp_path):
    """The header names the store file: another one is refused with both paths named, unless
    --any-store-path says the store was moved (then what is missing goes back)."""
    store, archive = cleaned_with_archive(tmp_path)
    other = tmp_path / "other" / "store.v1.json"
    other.parent.mkdir()
    other.write_bytes(store.read_bytes())
    before = fingerprint(other)
    result = run(restore_args(other, archive), code=1)
    assert result.stderr == (
        f"streamclean: error: the archive {archive} is of the store {store}, not of {other}; "
        "the store was left unchanged; if the store was moved there, add --any-store-path\n"
    )
    assert fingerprint(other) == before and sorted(os.listdir(other.parent)) == [
        "store.v1.json",
        "store.v1.json.lock",
    ]
    moved = run(restore_args(other, archive, "--any-store-path"))
    assert moved["restored"]["total"] == 10 and other.read_bytes() == service_bytes(edge_state())


@pytest.mark.parametrize(
    "line, problem",
    [
        (b"not json\n", "not a JSON object"),
        (
            b'{"section": "results", "key": "r9", "before": ",\\n    \\"r8\\": ", "text": "{}", "after": ""}\n',
            "before does not name the key",
        ),
        (
            b'{"section": "results", "key": "r9", "before": ",", "text": "{oops", "after": ""}\n',
            "text is not a JSON value",
        ),
        (
            b'{"section": "jobs", "key": "j", "position": 1, "before": ",", "text": "1", "after": ""}\n',
            "position must be a whole number, for an event",
        ),
        (
            b'{"section": "results", "key": "r9", "before": ", x", "text": "1", "after": ""}\n',
            "before is not a separator and a key",
        ),
    ],
)
def test_an_invalid_archive_line_is_refused_with_its_number(tmp_path, line, problem):
    store, archive = cleaned_with_archive(tmp_path, suffix="")
    lines = archive.read_bytes().splitlines(keepends=True)
    lines.insert(3, line)
    archive.write_bytes(b"".join(lines))
    before = fingerprint(store)
    result = run(restore_args(store, archive), code=1)
    assert (
        result.stderr
        == f"streamclean: error: invalid archive {archive}: line 4: {problem}; the store was left unchanged\n"
    )
    assert fingerprint(store) == before
    assert sorted(os.listdir(tmp_path)) == ["archive.jsonl", "store.v1.json", "store.v1.json.lock"]


def test_not_an_archive_is_refused(tmp_path):
    store = tmp_path / "store.v1.json"
    store.write_bytes(service_bytes(small_state()))
    bogus = tmp_path / "bogus.jsonl"
    bogus.write_bytes(b'{"hello": 1}\n')
    result = run(restore_args(store, bogus), code=1)
    assert (
        result.stderr
        == f"streamclean: error: invalid archive {bogus}: line 1: not a streamclean archive header; "
        "the store was left unchanged\n"
    )


def test_restore_dry_run_reports_and_writes_nothing(tmp_path):
    store, archive = cleaned_with_archive(tmp_path)
    before, listing = fingerprint(store), sorted(os.listdir(tmp_path))
    dry = run(restore_args(store, archive, "--dry-run"))
    assert dry["dry_run"] and dry["restored"]["total"] == 10 and dry["rewritten"] is False
    assert dry["store_bytes_after"] == len(service_bytes(edge_state()))
    assert fingerprint(store) == before and sorted(os.listdir(tmp_path)) == listing


def test_restore_refuses_when_the_restored_store_cannot_fit(tmp_path, monkeypatch):
    import types

    store, archive = cleaned_with_archive(tmp_path)
    before = fingerprint(store)
    real = os.statvfs
    monkeypatch.setattr(
        os,
        "statvfs",
        lambda path: (
            types.SimpleNamespace(f_bavail=1, f_frsize=512, f_bsize=512)
            if Path(path) == tmp_path
            else real(path)
        ),
    )
    result = run(restore_args(store, archive), code=1)
    assert result.stderr.startswith(
        f"streamclean: error: not enough free space for the restored store in {tmp_path}: "
    )
    assert fingerprint(store) == before


def test_restore_takes_the_lock(tmp_path):
    from streamclean.lock import StoreLock

    store, archive = cleaned_with_archive(tmp_path)
    before = fingerprint(store)
    with StoreLock(Path(f"{store}.lock")):
        result = run(restore_args(store, archive), code=75)
    assert "holds the lock" in result.stderr and fingerprint(store) == before


def test_a_restore_onto_a_partly_restored_store_counts_what_is_there(tmp_path):
    """The service wrote one record back meanwhile: it is left as the store has it and
    counted, the other nine go back, and the result is the store as the service writes it."""
    store, archive = cleaned_with_archive(tmp_path)
    state = json.loads(store.read_bytes())
    state["results"]["r1"] = dict(edge_state()["results"]["r1"], changed=True)
    store.write_bytes(service_bytes(state))
    report = run(restore_args(store, archive))
    assert report["restored"]["total"] == 9 and report["already_present"] == {
        "results": 1,
        "total": 1,
    }
    assert report["store_matches_archive"] is False
    want = edge_state()
    want["results"]["r1"] = state["results"]["r1"]
    assert store.read_bytes() == service_bytes(want)


def test_an_archive_in_a_missing_folder_is_refused_before_the_store_is_read(tmp_path):
    store = tmp_path / "store.v1.json"
    store.write_bytes(service_bytes(small_state()))
    before = fingerprint(store)
    result = run(
        [
            "clean",
            "--store-file",
            store,
            "--now",
            NOW_ISO,
            "--archive-file",
            tmp_path / "no" / "a.jsonl",
        ],
        code=1,
    )
    assert result.stderr == (
        f"streamclean: error: the archive's folder does not exist: {tmp_path / 'no'}; "
        "create it, or give another --archive-file\n"
    )
    assert fingerprint(store) == before and sorted(os.listdir(tmp_path)) == ["store.v1.json"]


def _spec_store() -> bytes:
    from test_oracle_agreement import SPEC_STORE

    return SPEC_STORE.encode()


@pytest.mark.parametrize(
    "name, blob",
    [
        ("small", service_bytes(small_state())),
        ("edge", service_bytes(edge_state())),
        ("spec", _spec_store()),
    ],
)
@pytest.mark.parametrize("jobs_ttl", [None, "1d", "0"])
def test_the_hand_written_stores_round_trip(tmp_path, reader, name, blob, jobs_ttl):
    extra = [] if jobs_ttl is None else ["--jobs-ttl-seconds", jobs_ttl]
    cleaned = assert_round_trip(
        tmp_path,
        blob,
        lambda store: ["clean", "--store-file", store, "--now", NOW_ISO, *extra],
        "",
        {"STREAMCLEAN_READER": reader},
    )
    assert cleaned is not None and cleaned["reader"] == reader


def test_restore_writes_its_report_with_output_json(tmp_path):
    store, archive = cleaned_with_archive(tmp_path)
    out = tmp_path / "reports" / "restore.json"
    printed = run(restore_args(store, archive, "--output-json", out))
    assert json.loads(out.read_text()) == printed and printed["command"] == "restore"


def test_a_restore_that_meets_a_write_gives_way(tmp_path, monkeypatch):
    from streamclean import swap

    store, archive = cleaned_with_archive(tmp_path)
    cleaned = store.read_bytes()
    real = swap.AtomicReplace.commit

    def service_writes_first(self):
        os.utime(store, ns=(1, 1))
        return real(self)

    monkeypatch.setattr(swap.AtomicReplace, "commit", service_writes_first)
    result = run(restore_args(store, archive), code=75)
    assert "changed by someone else" in result.stderr
    assert store.read_bytes() == cleaned
    assert sorted(os.listdir(tmp_path)) == [
        "archive.jsonl.gz",
        "store.v1.json",
        "store.v1.json.lock",
    ]

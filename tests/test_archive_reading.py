"""An archive is read whole or refused whole, with bounded memory (issue 17, cases 4, 7 and 9).

Each case is an archive a careless or hostile hand left: cut short (by lines, at a gzip member
boundary, right after the header), a line repeated, two events swapped, a header whose types
are wrong, a line no store of the header's size could explain, a FIFO or a device, a damaged
gzip trailer. Each is refused before the swap, naming the line, the store untouched. Peak memory
is measured in a separate process (`ru_maxrss` of the children, read after the child ends).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import processes
from conftest import NOW_ISO, service_bytes
from test_jobs_retention import cleaned_with_archive, edge_state, run
from test_oracle_agreement import fingerprint

MB = 1 << 20


@pytest.fixture
def cleaned(tmp_path):
    """A store cleaned with job retention into a plain archive of ten records."""
    return cleaned_with_archive(tmp_path, suffix="")


def refused(store: Path, archive: Path, *extra) -> str:
    before = fingerprint(store)
    listing = sorted(os.listdir(store.parent))
    result = run(["restore", "--store-file", store, "--archive-file", archive, *extra], code=1)
    assert fingerprint(store) == before and sorted(os.listdir(store.parent)) == listing
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].endswith("; the store was left unchanged"), result.stderr
    return lines[0]


def test_an_archive_cut_short_by_lines_is_refused(cleaned):
    store, archive = cleaned
    lines = archive.read_bytes().splitlines(keepends=True)
    archive.write_bytes(b"".join(lines[:6]))
    assert refused(store, archive) == (
        f"streamclean: error: invalid archive {archive}: it ends after 5 records, its "
        "header says 10 (cut short, or not as written); the store was left unchanged"
    )


def test_an_archive_cut_right_after_the_header_is_refused(cleaned):
    store, archive = cleaned
    archive.write_bytes(archive.read_bytes().splitlines(keepends=True)[0])
    assert "it ends after 0 records, its header says 10" in refused(store, archive)


def test_a_gzip_archive_cut_at_a_member_boundary_is_refused(tmp_path):
    """The header and the body are two gzip members: the header alone is a valid gzip file."""
    store, archive = cleaned_with_archive(tmp_path)
    data = archive.read_bytes()
    header = zlib.decompressobj(31)
    header.decompress(data)
    first_member = len(data) - len(header.unused_data)
    archive.write_bytes(data[:first_member])
    assert gzip.decompress(archive.read_bytes()).count(b"\n") == 1
    assert "it ends after 0 records, its header says 10" in refused(store, archive)


def test_a_repeated_line_is_refused_with_its_number(cleaned):
    store, archive = cleaned
    lines = archive.read_bytes().splitlines(keepends=True)
    lines.insert(9, lines[8])
    archive.write_bytes(b"".join(lines))
    assert refused(store, archive) == (
        f"streamclean: error: invalid archive {archive}: line 10: out of store order "
        "(section, key, position), or repeated; the store was left unchanged"
    )


def test_two_events_of_one_job_swapped_are_refused(tmp_path):
    state = edge_state()
    state["events"]["bad_finish"] = [
        {"occurred_at": "2026-01-01T00:00:00+00:00", "n": n} for n in range(3)
    ]
    store, archive = cleaned_with_archive(tmp_path, state, suffix="")
    lines = archive.read_bytes().splitlines(keepends=True)
    events = [i for i, line in enumerate(lines) if b'"position"' in line]
    assert len(events) >= 2
    lines[events[0]], lines[events[1]] = lines[events[1]], lines[events[0]]
    archive.write_bytes(b"".join(lines))
    assert f"line {events[1] + 1}: out of store order" in refused(store, archive)


@pytest.mark.parametrize(
    "change, problem",
    [
        (
            {"streamclean_archive": True},
            "not an archive format this version reads (streamclean_archive: true; it reads 1)",
        ),
        (
            {"streamclean_archive": 2},
            "not an archive format this version reads (streamclean_archive: 2; it reads 1)",
        ),
        ({"records": "10"}, "the header's records must be a whole number"),
        ({"records": None}, "the header's records must be a whole number"),
        ({"before": {"size": 1.5}}, "the header's before.size must be a whole number"),
        ({"before": {"size": True}}, "the header's before.size must be a whole number"),
        (
            {"after": {"size": -1, "sha256": "x"}},
            "the header's after must hold a whole size and a sha256",
        ),
        ({"store": 7}, "the header's store and now must be strings"),
        ({"now": "yesterday"}, "the header's now is not a time with a UTC offset: 'yesterday'"),
        (
            {"now": "2026-03-10T12:00:00"},
            "the header's now is not a time with a UTC offset: '2026-03-10T12:00:00'",
        ),
    ],
)
def test_the_headers_types_are_checked_strictly(cleaned, change, problem):
    store, archive = cleaned
    header, rest = archive.read_bytes().split(b"\n", 1)
    archive.write_bytes(json.dumps(dict(json.loads(header), **change)).encode() + b"\n" + rest)
    assert refused(store, archive) == (
        f"streamclean: error: invalid archive {archive}: line 1: {problem}; "
        "the store was left unchanged"
    )


def test_a_damaged_gzip_trailer_is_reported_after_the_last_line(tmp_path):
    store, archive = cleaned_with_archive(tmp_path)
    data = bytearray(archive.read_bytes())
    data[-8] ^= 0xFF  # the CRC of the last member
    archive.write_bytes(bytes(data))
    message = refused(store, archive)
    assert (
        f"invalid archive {archive}: the compressed data after line " in message
        and "line 12" not in message
    )
    assert "CRC" in message


def _in_a_child(argv: list[str], timeout: float = 120) -> tuple[int, str, int]:
    """Run `argv` from a fresh process and read its children's peak RSS once it has ended."""
    probe = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stderr.write(r.stderr)\n"
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    done = subprocess.run(
        [processes.PYTHON, "-c", probe, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    code, peak_kib = done.stdout.split()
    return int(code), done.stderr, int(peak_kib) * 1024


def _command(*args) -> list[str]:
    return [processes.PYTHON, "-m", "streamclean", *map(str, args)]


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_device_or_a_fifo_as_the_archive_is_refused_at_once(tmp_path, kind):
    store = tmp_path / "store.v1.json"
    store.write_bytes(service_bytes(edge_state()))
    if kind == "fifo":
        archive = tmp_path / "archive.fifo"
        os.mkfifo(archive)
    else:
        archive = Path("/dev/zero")
    code, stderr, _ = _in_a_child(
        _command("restore", "--store-file", store, "--archive-file", archive), timeout=20
    )
    assert code == 1 and stderr == (
        f"streamclean: error: the archive {archive} is not a regular file; the store was "
        "left unchanged; name the archive itself\n"
    )
    assert store.read_bytes() == service_bytes(edge_state())


def test_a_line_longer_than_the_store_could_explain_is_refused_within_100_mb(cleaned):
    """A 1 GiB line without a newline, about 1 MB of gzip: refused without reading it whole."""
    store, archive = cleaned
    header = archive.read_bytes().split(b"\n", 1)[0] + b"\n"
    hostile = archive.with_name("hostile.jsonl.gz")
    body = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(hostile, "wb") as out:
        out.write(gzip.compress(header))
        block = b"a" * MB
        out.writelines(body.compress(block) for _ in range(1024))
        out.write(body.flush())
    assert hostile.stat().st_size < 2 * MB
    code, stderr, peak = _in_a_child(
        _command("restore", "--store-file", store, "--archive-file", hostile)
    )
    assert (
        code == 1 and f"invalid archive {hostile}: line 2: longer than any record of the " in stderr
    )
    assert peak < 100 * MB, f"peak {peak / MB:.0f} MB"


def test_a_20_mb_key_costs_no_more_than_its_line(tmp_path):
    """The key is split from `before` by string operations, not a backtracking regex."""
    store = tmp_path / "store.v1.json"
    store.write_bytes(service_bytes({"events": {}, "jobs": {}, "results": {}}))
    key = "k" * (20 * MB)
    archive = tmp_path / "archive.jsonl"
    header = {
        "streamclean_archive": 1,
        "store": str(store),
        "now": NOW_ISO,
        "before": {"size": 41 * MB},
        "after": {"size": store.stat().st_size, "sha256": "0" * 64},
        "records": 1,
    }
    line = {
        "section": "results",
        "key": key,
        "before": f'\n    "{key}": ',
        "text": "{}",
        "after": "\n  ",
    }
    archive.write_text(json.dumps(header) + "\n" + json.dumps(line) + "\n")
    code, stderr, peak = _in_a_child(
        _command("restore", "--store-file", store, "--archive-file", archive)
    )
    assert code == 0, stderr
    assert json.loads(store.read_bytes())["results"] == {key: {}}
    assert peak < 400 * MB, f"peak {peak / MB:.0f} MB"


def test_restoring_300000_contiguous_records_stays_flat(tmp_path):
    """300,000 removed results in one run (a 34 MB store): restore's peak within max(64 MB,
    twice clean's)."""
    state = {
        "events": {},
        "jobs": {
            "j": {"job_id": "j", "status": "completed", "finished_at": "2026-01-01T00:00:00+00:00"}
        },
        "results": {
            f"r{i:06d}": {
                "job_id": "j",
                "created_at": "2026-01-01T00:00:00+00:00",
                "payload": "x" * 20,
            }
            for i in range(300_000)
        },
    }
    state["results"]["s-kept"] = {"job_id": "j", "created_at": NOW_ISO}
    store = tmp_path / "store.v1.json"
    blob = service_bytes(state)
    del state
    store.write_bytes(blob)
    archive = tmp_path / "archive.jsonl.gz"
    code, stderr, clean_peak = _in_a_child(
        _command(
            "clean", "--store-file", store, "--now", NOW_ISO, "--archive-file", archive, "--quiet"
        )
    )
    assert code == 0, stderr
    code, stderr, restore_peak = _in_a_child(
        _command("restore", "--store-file", store, "--archive-file", archive, "--quiet")
    )
    assert code == 0, stderr
    assert store.read_bytes() == blob
    assert restore_peak <= max(64 * MB, 2 * clean_peak), (restore_peak / MB, clean_peak / MB)

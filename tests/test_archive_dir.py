"""`clean --archive-dir DIR` and `--archive-keep DUR` (issue 18): the run names its archive,
never over a file; after a successful run it removes this store's archives older than DUR and
nothing else; the folder and the archives are no more open than the store.

The decoys and the archives of other stores are built here by hand, from the archive format
as docs/archive.md describes it (a gzip member holding the header line), not by the code under
test.
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import NOW, NOW_ISO

from streamclean import fs

STAMP = NOW.strftime("%Y%m%dT%H%M%SZ")  # 20260310T120000Z
NAME = re.compile(r"store\.v1\.json\.(\d{8}T\d{6}Z)(-\d+)?\.jsonl\.gz")


def _clean(invoke, store: Path, folder: Path, *extra, now: str = NOW_ISO):
    return invoke("clean", "--store-file", store, "--now", now, "--archive-dir", folder, *extra)


def _report(result) -> dict:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def fake_archive(path: Path, store: Path | str, now: datetime, records: int = 0) -> bytes:
    """A file that reads as a streamclean archive of `store` written at `now`: the header as a
    gzip member of its own and no records (a reader needs no more to recognise it)."""
    header = {"streamclean_archive": 1, "store": str(store), "now": now.isoformat(),
              "before": {"size": 100}, "after": {"size": 50, "sha256": "0" * 64}, "records": records}
    data = gzip.compress(json.dumps(header).encode() + b"\n")
    path.write_bytes(data)
    return data


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _snapshot(folder: Path) -> dict[str, object]:
    """Every entry of the folder: a file's bytes, a symlink's target, a folder's mark."""
    seen: dict[str, object] = {}
    for entry in os.scandir(folder):
        if entry.is_symlink():
            seen[entry.name] = ("link", os.readlink(entry.path))
        elif entry.is_dir():
            seen[entry.name] = "folder"
        elif entry.is_file():
            seen[entry.name] = Path(entry.path).read_bytes()
        else:
            seen[entry.name] = "special"
    return seen


# -- naming ------------------------------------------------------------------------------------


def test_the_archive_is_named_after_the_store_and_the_runs_utc_time(store, invoke, tmp_path):
    folder = tmp_path / "archives"
    folder.mkdir()
    # 13:00 at +01:00 is 12:00 UTC: the name says UTC whatever the clock's offset
    report = _report(_clean(invoke, store, folder, now="2026-03-10T13:00:00.750+01:00"))
    name = f"store.v1.json.{STAMP}.jsonl.gz"
    assert os.listdir(folder) == [name]
    assert report["archive"]["file"] == str(folder / name)
    assert report["archive"]["records"] == 3 and report["archive"]["bytes"] == (folder / name).stat().st_size
    assert "archives_pruned" not in report  # only with --archive-keep


def test_without_now_the_name_is_the_current_utc_time(store, invoke, tmp_path):
    folder = tmp_path / "archives"
    before = datetime.now(UTC).replace(microsecond=0)
    result = invoke("clean", "--store-file", store, "--archive-dir", folder, "--results-ttl-seconds", "1d",
                    "--events-ttl-seconds", "1d")
    after = datetime.now(UTC)
    report = _report(result)
    [name] = os.listdir(folder)
    match = NAME.fullmatch(name)
    assert match and match.group(2) is None, name
    moment = datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert before <= moment <= after
    assert report["now"].startswith(moment.strftime("%Y-%m-%dT%H:%M:%S"))


def test_the_archive_restores_the_store(store, invoke, tmp_path):
    folder = tmp_path / "archives"
    old = store.read_bytes()
    report = _report(_clean(invoke, store, folder))
    assert store.read_bytes() != old
    result = invoke("restore", "--store-file", store, "--archive-file", report["archive"]["file"])
    assert result.exit_code == 0, result.stderr
    assert store.read_bytes() == old


def test_a_taken_name_is_never_replaced_the_next_free_one_is_used(store, invoke, tmp_path):
    folder = tmp_path / "archives"
    folder.mkdir()
    first = folder / f"store.v1.json.{STAMP}.jsonl.gz"
    first.write_bytes(b"someone else's file")
    (folder / f"store.v1.json.{STAMP}-2.jsonl.gz").symlink_to("nowhere")  # a dangling link takes a name too
    before = _snapshot(folder)
    report = _report(_clean(invoke, store, folder))
    third = folder / f"store.v1.json.{STAMP}-3.jsonl.gz"
    assert report["archive"]["file"] == str(third)
    assert {name: data for name, data in _snapshot(folder).items() if name != third.name} == before
    with gzip.open(third) as stream:
        assert json.loads(stream.readline())["store"] == str(store.resolve())


def test_a_name_taken_while_the_run_works_is_not_replaced_either(store, invoke, tmp_path, monkeypatch):
    """Another run (of another store of the same name) takes the name between this run's
    start and its naming: this run goes on to the next name."""
    folder = tmp_path / "archives"
    folder.mkdir()
    taken = folder / f"store.v1.json.{STAMP}.jsonl.gz"
    real_call = fs.call

    def call(op, func, *args):
        if op == "link" and args[1] == str(taken) and not taken.exists():
            taken.write_bytes(b"the other run's archive")
        return real_call(op, func, *args)

    monkeypatch.setattr(fs, "call", call)
    report = _report(_clean(invoke, store, folder))
    assert taken.read_bytes() == b"the other run's archive"
    assert report["archive"]["file"] == str(folder / f"store.v1.json.{STAMP}-2.jsonl.gz")
    assert sorted(os.listdir(folder)) == sorted([taken.name, f"store.v1.json.{STAMP}-2.jsonl.gz"])


def test_a_run_that_deletes_nothing_or_a_dry_run_writes_no_archive(store, invoke, tmp_path):
    folder = tmp_path / "archives"
    result = _clean(invoke, store, folder, "--dry-run")
    assert _report(result)["dry_run"] is True and not folder.exists()  # a dry run creates nothing
    _report(_clean(invoke, store, folder))
    assert len(os.listdir(folder)) == 1
    _report(_clean(invoke, store, folder, now="2026-03-10T12:00:01+00:00"))  # nothing left to delete
    assert len(os.listdir(folder)) == 1


# -- pruning -----------------------------------------------------------------------------------


@pytest.fixture
def planted(store, tmp_path):
    """An archive folder holding this store's archives, old and recent, beside decoys that
    must all survive: (folder, the names that are to go, the decoys' names)."""
    folder = tmp_path / "archives"
    folder.mkdir()
    real = store.resolve()
    day = timedelta(days=1)
    old = {
        f"store.v1.json.{_stamp(NOW - 40 * day)}.jsonl.gz": NOW - 40 * day,
        f"store.v1.json.{_stamp(NOW - 31 * day)}-2.jsonl.gz": NOW - 31 * day,
    }
    for name, moment in old.items():
        fake_archive(folder / name, real, moment)
    recent = f"store.v1.json.{_stamp(NOW - 29 * day)}.jsonl.gz"
    fake_archive(folder / recent, real, NOW - 29 * day)
    # a recent name on an old header and the other way round: the header decides
    fake_archive(folder / f"store.v1.json.{_stamp(NOW - 50 * day)}-5.jsonl.gz", real, NOW - 2 * day)
    renamed_old = f"store.v1.json.{_stamp(NOW - 1 * day)}.jsonl.gz"
    fake_archive(folder / renamed_old, real, NOW - 60 * day)
    old[renamed_old] = NOW - 60 * day
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    fake_archive(outside / "kept.jsonl.gz", real, NOW - 90 * day)
    decoys = {
        # the right name, but not an archive (plain text; gzip of something else; empty)
        f"store.v1.json.{_stamp(NOW - 41 * day)}.jsonl.gz": b"not an archive\n",
        f"store.v1.json.{_stamp(NOW - 42 * day)}.jsonl.gz": gzip.compress(b'{"hello": "world"}\n'),
        f"store.v1.json.{_stamp(NOW - 43 * day)}.jsonl.gz": b"",
        # the right name, an archive of another store
        f"store.v1.json.{_stamp(NOW - 44 * day)}.jsonl.gz": ("other", "/srv/other/store.v1.json"),
        # another name, an old archive of this store
        f"store.v1.json.{_stamp(NOW - 45 * day)}.jsonl.gz.bak": ("other", str(real)),
        "archive-20260101T000000Z.jsonl.gz": ("other", str(real)),
        f"store.v1.json.{NOW - 46 * day:%Y-%m-%d}.jsonl.gz": ("other", str(real)),
        f"other.json.{_stamp(NOW - 47 * day)}.jsonl.gz": ("other", str(real)),
        "notes.txt": b"keep me\n",
    }
    for name, content in decoys.items():
        if isinstance(content, tuple):
            fake_archive(folder / name, content[1], NOW - 50 * day)
        else:
            (folder / name).write_bytes(content)
    # a symlink with the right name to an old archive of this store (outside and inside)
    (folder / f"store.v1.json.{_stamp(NOW - 48 * day)}.jsonl.gz").symlink_to(outside / "kept.jsonl.gz")
    (folder / f"store.v1.json.{_stamp(NOW - 49 * day)}.jsonl.gz").symlink_to(folder / renamed_old)
    # a folder and a FIFO with the right name (the FIFO must not make the run wait)
    (folder / f"store.v1.json.{_stamp(NOW - 51 * day)}.jsonl.gz").mkdir()
    os.mkfifo(folder / f"store.v1.json.{_stamp(NOW - 52 * day)}.jsonl.gz")
    keep = set(os.listdir(folder)) - set(old)
    return folder, old, keep


def test_pruning_removes_only_this_stores_old_archives(store, invoke, planted, tmp_path):
    folder, old, keep = planted
    before = _snapshot(folder)
    outside = (tmp_path / "elsewhere" / "kept.jsonl.gz").read_bytes()
    report = _report(_clean(invoke, store, folder, "--archive-keep", "30d"))
    written = Path(report["archive"]["file"]).name
    after = _snapshot(folder)
    assert set(after) == keep | {written}
    assert {name: after[name] for name in keep} == {name: before[name] for name in keep}
    assert (tmp_path / "elsewhere" / "kept.jsonl.gz").read_bytes() == outside
    # listed oldest first, with the header's time
    by_age = sorted(old, key=old.get)
    assert report["archives_pruned"] == [{"file": str(folder / name), "now": old[name].isoformat()}
                                         for name in by_age]
    assert list(report)[-2:] == ["archive", "archives_pruned"]  # the new keys after the existing ones


def test_a_dry_run_lists_what_would_be_pruned_and_removes_nothing(store, invoke, planted):
    folder, old, _ = planted
    before = _snapshot(folder)
    report = _report(_clean(invoke, store, folder, "--archive-keep", "30d", "--dry-run"))
    assert _snapshot(folder) == before
    assert sorted(Path(item["file"]).name for item in report["archives_pruned"]) == sorted(old)


def test_the_archive_just_written_is_never_pruned(store, invoke, planted):
    folder, old, _ = planted
    report = _report(_clean(invoke, store, folder, "--archive-keep", "0"))
    written = Path(report["archive"]["file"])
    assert written.exists()
    pruned = {Path(item["file"]).name for item in report["archives_pruned"]}
    assert written.name not in pruned and set(old) <= pruned
    # keep 0: every archive of this store but the new one went (the old and the recent ones)
    assert not any(NAME.fullmatch(name) and (folder / name).is_file() and not (folder / name).is_symlink()
                   and _is_this_stores(folder / name, store) for name in os.listdir(folder) if name != written.name)


def _is_this_stores(path: Path, store: Path) -> bool:
    try:
        with gzip.open(path) as stream:
            return json.loads(stream.readline()).get("store") == str(store.resolve())
    except (OSError, ValueError, EOFError):
        return False


def test_pruning_happens_without_a_new_archive_too(store, invoke, planted):
    folder, old, _ = planted
    _report(_clean(invoke, store, folder))  # deletes what there is to delete
    report = _report(_clean(invoke, store, folder, "--archive-keep", "30d", now="2026-03-10T12:00:01+00:00"))
    assert "archive" not in report
    assert sorted(Path(item["file"]).name for item in report["archives_pruned"]) == sorted(old)


def test_nothing_is_pruned_when_the_run_fails_or_gives_way(store, invoke, planted):
    import fcntl

    folder, _, _ = planted
    before = _snapshot(folder)
    fd = os.open(f"{store}.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        result = _clean(invoke, store, folder, "--archive-keep", "30d")
    finally:
        os.close(fd)
    assert result.exit_code == 75 and _snapshot(folder) == before
    store.write_bytes(b'{"jobs": ')  # invalid: the run fails
    result = _clean(invoke, store, folder, "--archive-keep", "30d")
    assert result.exit_code == 1 and len(result.stderr.splitlines()) == 1
    assert _snapshot(folder) == before


def test_a_prune_that_fails_after_the_swap_exits_74_in_one_line(store, invoke, planted, monkeypatch):
    folder, old, _ = planted
    old_store = store.read_bytes()
    real_call = fs.call

    def call(op, func, *args):
        if op == "unlink":
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        return real_call(op, func, *args)

    monkeypatch.setattr(fs, "call", call)
    result = _clean(invoke, store, folder, "--archive-keep", "30d")
    assert result.exit_code == 74
    [line] = result.stderr.splitlines()
    assert line.startswith("streamclean: error: the store was cleaned, but cannot remove the old archive")
    assert os.strerror(errno.EACCES) in line
    assert store.read_bytes() != old_store and set(old) <= set(os.listdir(folder))


def test_the_archive_options_are_checked_before_the_store_is_read(store, invoke, tmp_path):
    data = store.read_bytes()
    cases = [
        (["--archive-keep", "30d"], 2, "--archive-keep needs --archive-dir"),
        (["--archive-dir", tmp_path / "a", "--archive-file", tmp_path / "a.jsonl.gz"], 2, "cannot be given together"),
        (["--archive-dir", tmp_path / "a", "--archive-keep", "soon"], 2, "--archive-keep: 'soon' is not a duration"),
        (["--archive-dir", tmp_path / "missing" / "a"], 1, "cannot create the archive folder"),
        (["--archive-dir", store], 1, "is the store itself"),
        (["--archive-dir", tmp_path / "a-file"], 1, "is not a folder"),
    ]
    (tmp_path / "a-file").write_bytes(b"")
    for extra, status, words in cases:
        result = invoke("clean", "--store-file", store, "--now", NOW_ISO, *extra)
        assert result.exit_code == status, (extra, result.stderr)
        [line] = result.stderr.splitlines()
        assert line.startswith("streamclean: error: ") and words in line, (extra, line)
        assert store.read_bytes() == data
        assert not (tmp_path / "a").exists()


def test_no_other_output_may_name_an_archive_in_the_folder(store, invoke, planted):
    folder, old, _ = planted
    data = store.read_bytes()
    before = _snapshot(folder)
    victim = folder / min(old)
    for option in ("--output-json", "--metrics-textfile", "--lock-file"):
        result = _clean(invoke, store, folder, option, victim)
        assert result.exit_code == 1, (option, result.stderr)
        [line] = result.stderr.splitlines()
        assert f"{option} {victim} names an archive in --archive-dir" in line, line
        assert store.read_bytes() == data and _snapshot(folder) == before
    # a name the run might take later is refused as well, not only an archive that exists
    future = folder / f"store.v1.json.{STAMP}.jsonl.gz"
    result = _clean(invoke, store, folder, "--output-json", future)
    assert result.exit_code == 1 and not future.exists()


def test_an_archive_replaced_after_it_was_judged_is_not_removed(store, invoke, planted, monkeypatch):
    """Between reading an archive's header and removing it, its name comes to hold another
    file: that file is not what was judged, and stays."""
    from streamclean import archive_folder

    folder, old, _ = planted
    victim = min(old)
    judge = archive_folder.ArchiveFolder._old_archive

    def judged_then_replaced(self, fd, name, cutoff):
        found = judge(self, fd, name, cutoff)
        if name == victim:
            newcomer = folder / "newcomer"
            newcomer.write_bytes(b"arrived after the judgement")
            os.replace(newcomer, folder / victim)
        return found

    monkeypatch.setattr(archive_folder.ArchiveFolder, "_old_archive", judged_then_replaced)
    report = _report(_clean(invoke, store, folder, "--archive-keep", "30d"))
    assert (folder / victim).read_bytes() == b"arrived after the judgement"
    assert sorted(Path(item["file"]).name for item in report["archives_pruned"]) == sorted(set(old) - {victim})


# -- killed while pruning ------------------------------------------------------------------------


@pytest.mark.slow
def test_killed_at_every_operation_every_archive_is_whole_or_pruned(store, tmp_path, monkeypatch):
    """SIGKILL before and after each file operation of a run that archives and prunes: every
    archive that was there is there byte for byte, or was one to be pruned and is gone whole,
    and only once the cleaned store is in place; the new archive is whole wherever it is."""
    from conftest import service_bytes, small_state
    from test_archive_faults import _kill_sweep

    work = tmp_path / "work"
    work.mkdir()
    old_store = service_bytes(small_state())
    store = work / "store.v1.json"
    folder = work / "archives"
    day = timedelta(days=1)
    planted: dict[str, bytes] = {}
    to_prune: set[str] = set()

    def prepare():
        for path in list(work.iterdir()):
            if path.is_dir():
                for inner in path.iterdir():
                    inner.unlink()
                path.rmdir()
            else:
                path.unlink()
        store.write_bytes(old_store)
        folder.mkdir()
        real = store.resolve()
        for days in (40, 35, 31):
            name = f"store.v1.json.{_stamp(NOW - days * day)}.jsonl.gz"
            planted[name] = fake_archive(folder / name, real, NOW - days * day)
            to_prune.add(name)
        recent = f"store.v1.json.{_stamp(NOW - 3 * day)}.jsonl.gz"
        planted[recent] = fake_archive(folder / recent, real, NOW - 3 * day)
        other = f"store.v1.json.{_stamp(NOW - 50 * day)}.jsonl.gz"
        planted[other] = fake_archive(folder / other, "/srv/other/store.v1.json", NOW - 50 * day)
        decoy = f"store.v1.json.{_stamp(NOW - 60 * day)}.jsonl.gz"
        (folder / decoy).write_bytes(b"not an archive")
        planted[decoy] = b"not an archive"
        return ["clean", "--store-file", str(store), "--now", NOW_ISO, "--archive-dir", str(folder),
                "--archive-keep", "30d"]

    prepare()
    new_store = _cleaned_copy(tmp_path, old_store)

    def check(case):
        data = store.read_bytes()
        assert data in (old_store, new_store), f"{case}: the store is neither old nor new"
        names = set(os.listdir(folder))
        gone = set(planted) - names
        assert gone <= to_prune, f"{case}: removed what was not to be pruned: {gone - to_prune}"
        for name in set(planted) & names:
            assert (folder / name).read_bytes() == planted[name], f"{case}: {name} changed"
        new = sorted(names - set(planted))
        assert len({os.stat(folder / name).st_ino for name in new}) <= 1, (case, new)
        for name in new:
            assert name.startswith(f"store.v1.json.{STAMP}.jsonl.gz"), (case, new)
            if data == old_store:
                continue  # a run killed before its swap may leave its temporary archive (see docs)
            with gzip.open(folder / name) as stream:  # with the cleaned store: whole, named or not
                lines = stream.read().splitlines()
            assert json.loads(lines[0])["records"] == len(lines) - 1 == 3, case
        named = f"store.v1.json.{STAMP}.jsonl.gz" in names
        if data == old_store:
            assert not gone and not named, f"{case}: pruned or named for a store never swapped in"
        if gone:
            assert named, f"{case}: pruned before the new archive was named"
        return ("old" if data == old_store else "new", len(gone))

    _, states = _kill_sweep(work, monkeypatch, prepare, check)
    seen = set(states.values())
    assert ("old", 0) in seen and ("new", 0) in seen and ("new", 3) in seen
    assert ("new", 1) in seen and ("new", 2) in seen  # killed between two removals


def _cleaned_copy(tmp_path: Path, old: bytes) -> bytes:
    from click.testing import CliRunner

    from streamclean.cli import main

    copy = tmp_path / "copy" / "store.v1.json"
    copy.parent.mkdir()
    copy.write_bytes(old)
    result = CliRunner().invoke(main, ["clean", "--store-file", str(copy), "--now", NOW_ISO])
    assert result.exit_code == 0, result.stderr
    return copy.read_bytes()


def test_the_summary_line_counts_the_archives_removed(store, invoke, planted):
    folder, old, _ = planted
    result = _clean(invoke, store, folder, "--archive-keep", "30d", "--dry-run")
    assert re.search(rf"; would remove {len(old)} old archives; \d+\.\d s\n$", result.stderr), result.stderr
    result = _clean(invoke, store, folder, "--archive-keep", "30d")
    assert re.search(rf" freed in \d+\.\d s; removed {len(old)} old archives\n$", result.stderr), result.stderr


# -- modes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("store_mode, folder_mode", [(0o600, 0o700), (0o640, 0o750)])
def test_a_created_folder_and_the_archive_are_no_more_open_than_the_store(store, invoke, tmp_path, store_mode,
                                                                          folder_mode):
    store.chmod(store_mode)
    folder = tmp_path / "archives"
    old_umask = os.umask(0o022)
    try:
        report = _report(_clean(invoke, store, folder))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(folder.stat().st_mode) == folder_mode
    archive_mode = stat.S_IMODE(os.stat(report["archive"]["file"]).st_mode)
    assert archive_mode & ~store_mode == 0, oct(archive_mode)


def test_an_existing_folder_keeps_its_mode(store, invoke, tmp_path):
    store.chmod(0o600)
    folder = tmp_path / "archives"
    folder.mkdir()
    folder.chmod(0o755)
    _report(_clean(invoke, store, folder, "--archive-keep", "1d"))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755


# -- the documented cron line ----------------------------------------------------------------------


def test_the_documented_cron_line_works_in_crons_bare_environment(tmp_path):
    """docs/archive.md's nightly line, run by /bin/sh under `env -i PATH=/usr/bin:/bin` as cron
    runs it (its paths moved under tmp_path, the executable a stand-in for the installed one):
    it names today's archive in UTC and prunes an old one, with no `date` and no `%`."""
    import subprocess
    import sys

    from conftest import ROOT, service_bytes, small_state

    page = (ROOT / "docs" / "archive.md").read_text(encoding="utf-8")
    [line] = [line for block in re.findall(r"```cron\n(.*?)```", page, re.DOTALL)
              for line in block.splitlines() if "--archive-dir" in line]
    assert "%" not in line and "date" not in line and "--archive-keep" in line
    command = line.split(None, 5)[5]  # after the five schedule fields
    service = tmp_path / "srv" / "async-jobs"
    (service / "runtime" / "async_jobs").mkdir(parents=True)
    store = service / "runtime" / "async_jobs" / "store.v1.json"
    store.write_bytes(service_bytes(small_state()))
    backups, textfile = tmp_path / "backups", tmp_path / "node-exporter"
    backups.mkdir()
    textfile.mkdir()
    old = NOW - timedelta(days=200)  # small_state's dates are old for any real clock
    old_name = f"store.v1.json.{_stamp(old)}.jsonl.gz"
    fake_archive(backups / old_name, store.resolve(), old)
    program = tmp_path / "bin" / "streamclean"
    program.parent.mkdir()
    program.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                       "from streamclean.cli import main\nmain()\n")
    program.chmod(0o755)
    replaced = {"/srv/async-jobs": str(service), "/var/backups/async-jobs": str(backups),
                "/var/lib/prometheus/node-exporter": str(textfile)}
    command = re.sub(r"/\S+/bin/streamclean(?= )", str(program), command)
    for documented, here in replaced.items():
        assert documented in command, documented
        command = command.replace(documented, here)
    before = datetime.now(UTC).replace(microsecond=0)
    done = subprocess.run(["env", "-i", "PATH=/usr/bin:/bin", "/bin/sh", "-c", command], check=False, capture_output=True,
                          text=True, timeout=120)
    after = datetime.now(UTC)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done
    [name] = os.listdir(backups)
    match = NAME.fullmatch(name)
    assert match, name
    moment = datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert before <= moment <= after
    assert "streamclean_archives_pruned 1" in (textfile / "streamclean.prom").read_text()

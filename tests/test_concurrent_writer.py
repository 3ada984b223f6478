"""The service writes while cleanups run (SPEC §5, issue 3 point 3).

The writer is a separate process that does what the service does after every change: read the
whole store, add a job, write `store.v1.json.<32 hex>.tmp` with the service's own `json.dumps`
settings, and `os.replace` it over the store — no lock, as fast as it can. Each of its writes
holds every job it added before (it re-reads the store each time), so a single lost write
shows at the end as a missing job. Beside it, cleanups run one after another from two loops
(so some also meet the lock). Every cleanup must end 0 (swapped) or 75 (saw the change, or the
lock, and wrote nothing), and every job the writer added must be in the final store. Each job
also brings an expired result and event, so every cleanup has something to delete and really
races the writer with a swap.

The writer pauses briefly after each write, as the service does between changes: a write it
made right before re-reading would otherwise hide a lost one (its next write, built on what
it just read, would put the lost job back).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import pytest

import processes

WRITER = r"""
import json, os, secrets, sys, time
store, stop = sys.argv[1], sys.argv[2]
count = 0
while not os.path.exists(stop):
    with open(store, encoding="utf-8") as f:
        state = json.load(f)  # the path must always hold a whole store
    job = f"writer-{count:05d}"
    state["jobs"][job] = {"job_id": job, "status": "completed", "updated_at": "2026-01-01T00:00:00+00:00"}
    state["events"][job] = [{"event_id": f"e-{job}", "job_id": job, "occurred_at": "2026-01-01T00:00:00+00:00"}]
    state["results"][f"r-{job}"] = {"created_at": "2026-01-01T00:00:00+00:00", "job_id": job, "result_id": f"r-{job}"}
    temp = f"{store}.{secrets.token_hex(16)}.tmp"
    with open(temp, "w", encoding="utf-8") as f:
        f.write(json.dumps(state, ensure_ascii=False, sort_keys=True, indent=2))
    os.replace(temp, store)
    count += 1
    time.sleep(0.03)  # the service writes after each change, not back to back
print(count)
"""

MIN_SECONDS, MAX_SECONDS = 4.0, 20.0


@pytest.mark.slow
def test_no_write_of_the_service_is_ever_lost(tmp_path):
    folder = tmp_path / "async_jobs"
    folder.mkdir()
    store = folder / "store.v1.json"
    processes.generate(store, 600_000, seed=2)
    stop = tmp_path / "stop"
    writer = processes.start([processes.PYTHON, "-c", WRITER, str(store), str(stop)])

    outcomes: list[tuple[int, str, str]] = []
    started = time.monotonic()

    def enough() -> bool:
        elapsed = time.monotonic() - started
        if elapsed > MAX_SECONDS or writer.poll() is not None:
            return True
        swapped = sum(1 for code, out, _ in outcomes if code == 0 and json.loads(out)["rewritten"])
        changed = sum(
            1 for code, _, err in outcomes if code == 75 and "changed by someone else" in err
        )
        return elapsed > MIN_SECONDS and swapped >= 5 and changed >= 3

    def cleanups():
        while not enough():
            proc = subprocess.run(
                processes.clean_command(store, "--quiet"),
                cwd=processes.ROOT,
                capture_output=True,
                text=True,
                timeout=60,
            )
            outcomes.append((proc.returncode, proc.stdout, proc.stderr))

    loops = [threading.Thread(target=cleanups) for _ in range(2)]
    for loop in loops:
        loop.start()
    for loop in loops:
        loop.join()
    stop.touch()
    writes, writer_errors = writer.communicate(timeout=30)
    assert writer.returncode == 0, writer_errors.decode()
    written = int(writes)

    for code, stdout, stderr in outcomes:
        assert code in (0, 75), stderr
        if code == 75:
            assert stderr.count("\n") == 1 and stdout == ""
            assert "changed by someone else" in stderr or "holds the lock" in stderr, stderr
    final = json.loads(store.read_text(encoding="utf-8"))
    missing = [f"writer-{i:05d}" for i in range(written) if f"writer-{i:05d}" not in final["jobs"]]
    assert not missing, f"{len(missing)} of {written} writes were lost: {missing[:5]}"
    assert sorted(os.listdir(folder)) == ["store.v1.json", "store.v1.json.lock"]

    # The race really happened, both ways, or this test proved nothing.
    swapped = sum(1 for code, out, _ in outcomes if code == 0 and json.loads(out)["rewritten"])
    changed = sum(1 for code, _, err in outcomes if code == 75 and "changed by someone else" in err)
    assert swapped >= 5 and changed >= 3, (swapped, changed, len(outcomes), written)


# -- deterministic: writes landing exactly around the swap -----------------------------------


def test_writes_racing_the_swap_back_leave_the_newest_store_in_place(store, monkeypatch):
    """Three service writes, one right before each exchange: before the swap (so what it swaps
    out is not the store we read), before the swap back (so ours was replaced meanwhile), and
    before the next one. Each time the path must end up with the newest write; the one it
    superseded is kept under a `displaced` name, and nothing of ours remains."""
    from click.testing import CliRunner

    from conftest import service_bytes, small_state
    from streamclean import fs
    from streamclean.cli import main

    versions = [service_bytes({**small_state(), "schema_version": 100 + n}) for n in range(3)]
    real_call, exchanges = fs.call, []

    def racing(op, func, *args):
        if op == "exchange" and len(exchanges) < len(versions):
            temp = store.with_name(f"{store.name}.{len(exchanges):032x}.tmp")
            temp.write_bytes(versions[len(exchanges)])
            os.replace(temp, store)  # the service, right before this exchange
            exchanges.append(op)
        return real_call(op, func, *args)

    monkeypatch.setattr(fs, "call", racing)
    result = CliRunner().invoke(
        main, ["clean", "--store-file", str(store), "--now", "2026-03-10T12:00:00+00:00"]
    )
    assert result.exit_code == 75, result.stderr
    assert "changed by someone else" in result.stderr
    assert store.read_bytes() == versions[2]  # the newest
    names = sorted(os.listdir(store.parent))
    displaced = [name for name in names if ".streamclean-displaced-" in name]
    assert (
        names == sorted(["store.v1.json", "store.v1.json.lock", *displaced]) and len(displaced) == 1
    )
    assert (store.parent / displaced[0]).read_bytes() == versions[1]  # superseded by the newest

"""Speed and peak memory of a full cleanup, side by side on the same generated store (issue 4).

    python -m pytest benchmarks/test_cleanup_bench.py --benchmark-only [--store-size 500MB] [--bench-rounds 2]

Contenders, each a child process started fresh for every round:

- `streamclean`          `python -m streamclean clean --store-file COPY ...` (both passes, write,
                         fsync, atomic swap) on a fresh copy of the store; the copy is not timed.
- `streamclean-general`  the same with `streamclean.cleanup.FAST_PATH = False`: the general
                         path, which reads any JSON (what a store not in the service's layout gets).
- `orjson`, `json`       the in-memory peers of benchmarks/peers.py: load, apply SPEC §2, dump.

Every round is checked against the `json` peer's output (the service's own serialisation):
exit status 0, the same bytes, the same counts. Nothing about timing is asserted.
"""

import pytest

TOOLS = ("streamclean", "streamclean-general", "orjson", "json")


@pytest.mark.parametrize("tool", TOOLS)
def test_clean(benchmark, tool, settings, make_store, measurement, fast_path_taken):
    store = make_store(settings.store_size)
    benchmark.group = f"clean {store.label} store"
    measured = measurement(tool, store)
    measured.measure(benchmark, settings.rounds)
    benchmark.extra_info.update(measured.info(benchmark))
    if tool == "streamclean":
        benchmark.extra_info["path"] = fast_path_taken(store)
    elif tool == "streamclean-general":
        benchmark.extra_info["path"] = "general"

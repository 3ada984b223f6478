"""The reader is chosen by name (STREAMCLEAN_READER, or `clean(reader=...)`), never by patching."""

import json

import pytest

from conftest import NOW, NOW_ISO, listing, service_bytes, small_state
from streamclean import clean
from streamclean.errors import InvalidStoreError, UsageError
from streamclean.policy import RetentionPolicy

POLICY = RetentionPolicy.build(NOW, 604800.0, 259200.0)


def _clean(invoke, store, choice):
    result = invoke(
        "clean", "-q", "--store-file", store, "--now", NOW_ISO, env={"STREAMCLEAN_READER": choice}
    )
    return result


def test_every_choice_gives_the_same_report_and_file_on_a_service_store(tmp_path, invoke):
    outcomes = {}
    for choice in ("auto", "layout", "general"):
        store = tmp_path / choice / "store.v1.json"
        store.parent.mkdir()
        store.write_bytes(service_bytes(small_state()))
        result = _clean(invoke, store, choice)
        assert result.exit_code == 0, result.stderr
        report = json.loads(result.stdout)
        report.pop("store_file")
        outcomes[choice] = (report, store.read_bytes())
    assert outcomes["auto"][0]["reader"] == outcomes["layout"][0]["reader"] == "layout"
    assert outcomes["general"][0].pop("reader") == "general"
    outcomes["auto"][0].pop("reader"), outcomes["layout"][0].pop("reader")
    assert outcomes["auto"] == outcomes["layout"] == outcomes["general"]


def test_auto_falls_back_to_general_on_a_compact_store_and_says_so(tmp_path, invoke):
    store = tmp_path / "store.v1.json"
    store.write_bytes(json.dumps(small_state(), separators=(",", ":")).encode())
    result = _clean(invoke, store, "auto")
    assert result.exit_code == 0 and json.loads(result.stdout)["reader"] == "general"


def test_layout_refuses_a_compact_store_with_exit_1_and_the_store_untouched(tmp_path, invoke):
    store = tmp_path / "store.v1.json"
    data = json.dumps(small_state(), separators=(",", ":")).encode()
    store.write_bytes(data)
    result = _clean(invoke, store, "layout")
    assert result.exit_code == 1 and result.stdout == ""
    assert "not in the service's layout" in result.stderr and result.stderr.count("\n") == 1
    assert store.read_bytes() == data and listing(tmp_path) == [
        "store.v1.json",
        "store.v1.json.lock",
    ]


def test_layout_words_invalid_json_with_its_byte_offset_as_general_does(tmp_path, invoke):
    store = tmp_path / "store.v1.json"
    data = service_bytes(small_state())
    at = data.index(b'"r2"')
    bad = data[:at] + b"}" + data[at + 1 :]
    store.write_bytes(bad)
    messages = {choice: _clean(invoke, store, choice) for choice in ("layout", "general")}
    assert {result.exit_code for result in messages.values()} == {1}
    assert messages["layout"].stderr == messages["general"].stderr
    assert f" at byte {at}" in messages["layout"].stderr
    assert store.read_bytes() == bad


@pytest.mark.parametrize("variable", ["STREAMCLEAN_READER", "STREAMCLEAN_WORKERS"])
def test_an_unknown_value_is_a_usage_error_before_the_store_is_opened(tmp_path, invoke, variable):
    missing = tmp_path / "no-such-store.json"
    result = invoke("clean", "--store-file", missing, env={variable: "fastest"})
    assert result.exit_code == 2
    assert (
        result.stderr.startswith(f"streamclean: error: {variable}: unknown ")
        and result.stderr.count("\n") == 1
    )


def test_the_library_takes_the_choice_as_a_parameter(tmp_path):
    store = tmp_path / "store.v1.json"
    store.write_bytes(service_bytes(small_state()))
    assert clean(store, POLICY, dry_run=True, reader="general", workers=1).reader == "general"
    assert clean(store, POLICY, dry_run=True, reader="layout").reader == "layout"
    with pytest.raises(UsageError):
        clean(store, POLICY, reader="ijson")
    empty_object = tmp_path / "empty.json"
    empty_object.write_bytes(b"{}")  # json.dumps({}, indent=2): the layout of an empty store
    assert clean(empty_object, POLICY, reader="layout").reader == "layout"
    store.write_bytes(b'{"jobs":{}}')
    with pytest.raises(InvalidStoreError, match="not in the service's layout"):
        clean(store, POLICY, reader="layout")


def test_an_empty_file_is_an_empty_store_on_every_reader(tmp_path, reader):
    store = tmp_path / "store.v1.json"
    store.write_bytes(b"")
    report = clean(store, POLICY, reader=reader)
    assert (report.delete_count, report.bytes_after, report.rewritten) == (0, 0, False)
    assert store.read_bytes() == b""

from __future__ import annotations

import logging

from tfserve_nb.core.servable_id import list_versions
from tfserve_nb.core.version_policy import All, Latest, Specific
from tfserve_nb.sources.file_system_storage_path_source import (
    FileSystemStoragePathSource,
    ServableToMonitor,
)


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, name, versions):
        self.calls.append((name, [(v.id.version, v.data) for v in versions]))


def test_only_integer_directories_are_versions(tmp_path):
    for name in ("1", "0002", "v3", ".tmp-export-4-x", "10", "²", "1a", " +7", str(2**63)):
        (tmp_path / name).mkdir()
    (tmp_path / "5").write_text("a file, not a version")
    # as upstream's safe_strto64: ASCII digits, a sign and spaces allowed, within int64
    assert sorted(list_versions(str(tmp_path))) == [1, 2, 7, 10]


def poll_once(tmp_path, policy):
    recorder = Recorder()
    source = FileSystemStoragePathSource(
        [ServableToMonitor("m", str(tmp_path), policy)], recorder, poll_wait_seconds=0
    )
    source.start()
    return recorder.calls


def test_policies_choose_versions(tmp_path):
    for v in ("1", "2", "3"):
        (tmp_path / v).mkdir()
    assert [v for v, _ in poll_once(tmp_path, Latest())[0][1]] == [3]
    assert [v for v, _ in poll_once(tmp_path, Latest(2))[0][1]] == [3, 2]
    assert [v for v, _ in poll_once(tmp_path, All())[0][1]] == [3, 2, 1]
    assert [v for v, _ in poll_once(tmp_path, Specific((1, 7)))[0][1]] == [1]
    assert poll_once(tmp_path, Latest())[0][1][0][1] == str(tmp_path / "3")


def test_no_versions_emits_empty_and_logs_upstream_hint(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        calls = poll_once(tmp_path, Latest())
    assert calls == [("m", [])]
    assert (
        f"No versions of servable m found under base path {tmp_path}. Did you forget to name "
        "your leaf directory as a number (eg. '/1/')?" in caplog.text
    )


def test_missing_base_path_leaves_stream_alone(tmp_path, caplog):
    with caplog.at_level(logging.ERROR):
        calls = poll_once(tmp_path / "absent", Latest())
    assert calls == []
    assert "Could not find base path" in caplog.text


def test_removed_servable_is_unaspired(tmp_path):
    (tmp_path / "1").mkdir()
    recorder = Recorder()
    source = FileSystemStoragePathSource(
        [ServableToMonitor("m", str(tmp_path))], recorder, poll_wait_seconds=0
    )
    source.start()
    source.update_config([])
    assert recorder.calls[-1] == ("m", [])

"""Session memory: what a server remembers of its session lengths survives restarts, and a bad file
costs nothing but a log line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from reverie.serve import session_memory as M
from reverie.serve.session_memory import Remembered


def test_round_trip_keeps_other_entries_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "sessions.json"
    assert M.load(path, "a") is None  # nothing yet: no memory, no error
    M.save(path, "a", Remembered(41.5, 12))
    M.save(path, "b", Remembered(3.0, 1))
    M.save(path, "a", Remembered(40.0, 13))
    assert M.load(path, "a") == Remembered(40.0, 13) and M.load(path, "b") == Remembered(3.0, 1)
    assert [p.name for p in path.parent.iterdir()] == ["sessions.json"]


def test_entries_are_capped_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    for i in range(M.MAX_ENTRIES + 5):
        M.save(path, f"k{i}", Remembered(10.0, 1))
    entries = json.loads(path.read_text())["entries"]
    assert len(entries) == M.MAX_ENTRIES and "k0" not in entries and f"k{M.MAX_ENTRIES + 4}" in entries


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe\x00garbage",
        b'{"version": 99, "entries": {}}',
        b'["a list"]',
        b'{"version": 1, "entries": {"k": {"mean_s": "long", "sessions": 3}}}',
        b'{"version": 1, "entries": {"k": {"mean_s": 1e308, "sessions": 3}}}',
        b'{"version": 1, "entries": {"k": {"mean_s": -4, "sessions": 3}}}',
        b'{"version": 1, "entries": {"k": {"mean_s": 5, "sessions": 0}}}',
        b'{"version": 1, "entries": {"k": {"mean_s": true, "sessions": 3}}}',
        b'{"version": 1, "entries": {"k": 7}}',
    ],
)
def test_a_bad_file_is_no_memory_and_is_replaced_on_save(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "sessions.json"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="reverie.serve"):
        assert M.load(path, "k") is None
    assert "ignored" in caplog.text
    M.save(path, "k", Remembered(9.0, 2))
    assert M.load(path, "k") == Remembered(9.0, 2)


def test_an_oversized_file_is_not_parsed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "sessions.json"
    path.write_text(
        json.dumps(
            {"version": 1, "entries": {"k": {"mean_s": 5, "sessions": 1}}, "pad": "x" * M.MAX_FILE_BYTES}
        )
    )
    with caplog.at_level(logging.WARNING, logger="reverie.serve"):
        assert M.load(path, "k") is None
    assert f"larger than {M.MAX_FILE_BYTES} bytes" in caplog.text


def test_an_unwritable_place_costs_a_log_line_not_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should be")
    with caplog.at_level(logging.WARNING, logger="reverie.serve"):
        M.save(blocker / "sessions.json", "k", Remembered(5.0, 1))
    assert "not written" in caplog.text


def test_default_path_follows_xdg_cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert M.default_path() == tmp_path / "reverie" / "sessions.json"

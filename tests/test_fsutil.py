"""write_text_atomic: the whole new text or the old one, and no temporary file left."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsd_local.fsutil import write_text_atomic


def test_writes_and_replaces_the_whole_text(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "file.txt"
    write_text_atomic(path, "first ✓\n")
    assert path.read_text(encoding="utf-8") == "first ✓\n"
    write_text_atomic(path, "second\n")
    assert path.read_text(encoding="utf-8") == "second\n"
    assert [p.name for p in path.parent.iterdir()] == ["file.txt"]


def test_a_failed_write_keeps_the_old_text_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "file.txt"
    write_text_atomic(path, "kept\n")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(path, "half \ud800 written")  # a lone surrogate cannot be UTF-8
    assert path.read_text(encoding="utf-8") == "kept\n"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


def test_two_writers_use_their_own_temporary_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "file.txt"
    seen: list[str] = []
    real_replace = __import__("os").replace

    def spy(src, dst):  # noqa: ANN001 - records the temporary names, then renames as usual
        seen.append(Path(src).name)
        real_replace(src, dst)

    monkeypatch.setattr("wsd_local.fsutil.os.replace", spy)
    write_text_atomic(path, "a")
    write_text_atomic(path, "b")
    assert len(set(seen)) == 2 and all(name.startswith(".file.txt.") for name in seen)

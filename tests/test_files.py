"""aelib.files: folders named by environment variables (relative: to the repository, wherever the
process runs) and writes no reader sees half done."""

from __future__ import annotations

from pathlib import Path

import pytest

from aelib.files import atomic_write, env_folder, project_root


def test_a_relative_variable_is_read_against_the_repository_not_the_current_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("AELIB_SOME_DIR", "some/cache")
    for here in (project_root(), project_root() / "notebooks", tmp_path):
        monkeypatch.chdir(here)
        assert env_folder("AELIB_SOME_DIR", "default") == project_root() / "some" / "cache"


def test_argument_then_variable_then_default(monkeypatch, tmp_path):
    monkeypatch.setenv("AELIB_SOME_DIR", str(tmp_path / "from-variable"))
    assert env_folder("AELIB_SOME_DIR", "default", tmp_path / "given") == tmp_path / "given"
    assert env_folder("AELIB_SOME_DIR", "default") == tmp_path / "from-variable"
    monkeypatch.setenv("AELIB_SOME_DIR", " ")
    assert env_folder("AELIB_SOME_DIR", "default") == project_root() / "default"
    assert env_folder("AELIB_SOME_DIR", None) is None


def test_atomic_write_creates_folders_and_a_world_readable_file(tmp_path):
    target, seen = tmp_path / "a" / "b" / "out.txt", []

    def write(tmp):
        seen.append(Path(tmp))
        Path(tmp).write_text("new")

    assert atomic_write(target, write) == target and target.read_text() == "new"
    # written under another name in the same folder (so the rename is atomic), then renamed
    assert seen[0] != target and seen[0].parent == target.parent and not seen[0].exists()
    assert target.stat().st_mode & 0o044 == 0o044


def test_readers_see_the_old_file_until_the_write_is_complete(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def write(tmp):
        Path(tmp).write_text("half")
        assert target.read_text() == "old"
        Path(tmp).write_text("new, complete")

    atomic_write(target, write)
    assert target.read_text() == "new, complete"


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failing_write_leaves_the_old_file_and_no_temp_file(tmp_path, error):
    target = tmp_path / "out.png"
    target.write_bytes(b"old picture")

    def failing(tmp):
        Path(tmp).write_bytes(b"half a pic")
        raise error

    with pytest.raises(type(error)):
        atomic_write(target, failing)
    assert target.read_bytes() == b"old picture" and [p.name for p in tmp_path.iterdir()] == ["out.png"]

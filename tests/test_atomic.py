"""atomic_write: all or nothing at the path, nothing left beside it."""

import os

import pytest

from gradnap.atomic import atomic_write, write_text


def test_the_file_appears_whole_and_nothing_is_left_beside_it(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    with atomic_write(path) as tmp:
        tmp.write_text("new")
        assert tmp.parent == path.parent and tmp.name.startswith(".a.txt.")
        assert not path.exists()  # not there until the block ends
    assert path.read_text() == "new"
    assert os.listdir(path.parent) == ["a.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_an_error_keeps_the_old_file(tmp_path):
    path = write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as tmp:
            tmp.write_text("torn")
            raise RuntimeError("killed half-way")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]

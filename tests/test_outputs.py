"""Outputs are checked before a run and written whole or not at all."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gradnap.atomic import atomic_write
from gradnap.outputs import OutputError, check_folder, check_output, held, pending, write_bytes


def test_check_output(tmp_path):
    out = tmp_path / "new" / "deeper" / "p.nc"
    assert check_output(out) == out and out.parent.is_dir()  # the folder is made
    with pytest.raises(OutputError, match="is a folder"):
        check_output(tmp_path)
    out.write_bytes(b"an earlier result")
    with pytest.raises(OutputError, match="exists; pass --force"):
        check_output(out)
    assert check_output(out, force=True) == check_output(out, resume=True) == out
    assert out.read_bytes() == b"an earlier result"
    with pytest.raises(OutputError, match="MB free in"):
        check_output(tmp_path / "q.nc", expected_bytes=10**18)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot create its folder"):
        check_output(tmp_path / "file" / "p.nc")
    with pytest.raises(OutputError, match="cannot write in /proc"):
        check_output("/proc/p.nc")  # read-only for root too (chmod would not stop root)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["deeper", "file", "new", "p.nc"]


def test_check_folder(tmp_path):
    out = tmp_path / "new" / "report"
    assert check_folder(out) == out and out.is_dir()  # made
    (out / "index.html").write_text("an earlier report")
    with pytest.raises(OutputError, match=r"holds a report \(index.html\); pass --force"):
        check_folder(out)
    assert check_folder(out, force=True) == out
    with pytest.raises(OutputError, match="is a file; give a folder for the report"):
        check_folder(out / "index.html")
    with pytest.raises(OutputError, match="cannot create the report folder"):
        check_folder(out / "index.html" / "sub")
    assert [p.name for p in out.iterdir()] == ["index.html"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path, monkeypatch):
    out = write_bytes(tmp_path / "r.bin", b"old")

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", full)
    with pytest.raises(OutputError, match=r"could not be written \(No space left on device\)"):
        write_bytes(tmp_path / "r.bin", b"new")
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["r.bin"]


FULL_DISK = """
import resource, signal, sys
import numpy as np, xarray as xr
import importlib.util  # gradnap.outputs alone: importing the package (torch) took seconds
spec = importlib.util.spec_from_file_location("outputs", sys.argv[2])
outputs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(outputs)
write_netcdf = outputs.write_netcdf  # what save_profiles writes with

tree = xr.DataTree.from_dict(
    {"/": xr.Dataset({"a": ("x", np.random.default_rng(0).random(400_000))})}
)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
try:
    write_netcdf(tree, sys.argv[1])
except OSError as exc:
    print("error:", exc)
    sys.exit(1)
"""


def test_a_full_disk_is_one_clear_error_and_leaves_nothing(tmp_path):
    """A file-size limit in a subprocess stands in for a full disk (h5py, writing the
    NetCDF itself, raised from its close and then crashed with a segmentation fault)."""
    out = tmp_path / "p.nc"
    outputs_file = str(Path(__file__).parents[1] / "src" / "gradnap" / "outputs.py")
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(FULL_DISK), str(out), outputs_file],
        capture_output=True,
        text=True,
        env={"OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 1, r.stderr
    assert r.stdout.strip() == (
        f"error: {out}: could not be written (File too large); nothing was left behind"
    )
    assert "Traceback" not in r.stderr and list(tmp_path.iterdir()) == []


@pytest.fixture
def ctrl_c_raises():
    """Python's own Ctrl-C handler (KeyboardInterrupt) for the test, whatever runs it."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def _ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # where it would land, unless held


def test_a_ctrl_c_while_writing_keeps_the_old_file(tmp_path, monkeypatch, ctrl_c_raises):
    out = write_bytes(tmp_path / "r.bin", b"old")
    fsync, went_on = os.fsync, []
    monkeypatch.setattr("os.fsync", lambda fd: (_ctrl_c(), went_on.append(fd), fsync(fd)))
    with pytest.raises(KeyboardInterrupt):  # delivered after the write, not lost
        write_bytes(out, b"new")
    assert went_on  # the write went on: the Ctrl-C waited for the temporary file to go
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["r.bin"]
    monkeypatch.setattr("os.fsync", fsync)
    with pytest.raises(KeyboardInterrupt), atomic_write(out) as tmp:
        tmp.write_bytes(b"new")
        _ctrl_c()
        went_on.append("block")  # the block goes on too
    assert went_on[-1] == "block"
    assert out.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["r.bin"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_held_delivers_once_and_leaves_an_ignored_ctrl_c_ignored(ctrl_c_raises):
    calls = []
    signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    with held():
        with held():  # nested: one record
            _ctrl_c()
            _ctrl_c()
            assert pending() and calls == []
        assert pending()
    assert calls == [signal.SIGINT] and not pending()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with held():
        _ctrl_c()
        assert not pending()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN

"""Every command that writes checks its output before the work, keeps an existing one
unless ``--force``, and a Ctrl-C, also during the final write, is one line and status 130
with nothing left at the output path."""

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.cli.test_cli import invoke, tiny_model  # noqa: F401 - the fixture

ROOT = Path(__file__).parents[2]


def command(name, out, inputs):
    """``name``'s command line writing ``out``; ``inputs`` (a folder) holds none of the
    files it reads, so an error about an input shows that the output was checked first."""
    absent = inputs / "absent"
    return {
        "sanity": ["sanity", "--model", absent / "m.pt", "--corpus", absent, "--out", out],
        "report": ["report", absent / "p.nc", "--out", out],
        "export": ["export", "--model", absent / "m.pt", "--out", out],
        "dynamics": ["dynamics", "--checkpoints", absent, "--corpus", absent, "--out", out],
        "eval": ["eval", "--model", absent / "m.pt", "--corpus", absent, "--hyps", out],
    }[name]


COMMANDS = ["sanity", "report", "export", "dynamics", "eval"]


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("case", ["folder", "read-only", "parent is a file", "exists"])
def test_outputs_are_checked_before_the_work(name, case, tmp_path):
    report = name == "report"  # writes a folder
    out = tmp_path / ("rep" if report else "o.out")
    if case == "folder":
        out = tmp_path / "o.out"
        out.write_text("x") if report else out.mkdir()
        message = "is a file; give a folder" if report else "is a folder; give the"
    elif case == "read-only":
        out = Path("/proc/gradnap-test" if report else "/proc/gradnap-test.out")
        message = "cannot create the report folder" if report else "cannot write in /proc"
    elif case == "parent is a file":
        (tmp_path / "f").write_text("x")
        out = tmp_path / "f" / out.name
        message = "cannot create the report folder" if report else "cannot create its folder"
    else:
        if report:
            out.mkdir()
            (out / "index.html").write_text("an earlier report")
            message = "holds a report (index.html); pass --force to replace it"
        else:
            out.write_text("an earlier output")
            message = "exists; pass --force to replace it"
    r = invoke(*command(name, out, tmp_path))
    assert r.exit_code == 1 and message in r.output and str(out) in r.output, r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert "--resume" in r.output if name == "dynamics" and case == "exists" else True
    if case == "exists":
        kept = out / "index.html" if report else out
        assert kept.read_text().startswith("an earlier")
        r = invoke(*command(name, out, tmp_path), "--force")  # then the input is missing
        assert r.exit_code == 1 and str(tmp_path / "absent") in r.output, r.output


@pytest.mark.parametrize("name", COMMANDS)
def test_a_missing_folder_is_made(name, tmp_path):
    out = tmp_path / "new" / "deeper" / ("rep" if name == "report" else "o.out")
    r = invoke(*command(name, out, tmp_path))  # passes the output check, fails on an input
    assert r.exit_code == 1 and "absent" in r.output, r.output
    assert (out if name == "report" else out.parent).is_dir()
    assert [p.name for p in out.parent.iterdir()] == (["rep"] if name == "report" else [])


def test_export_replaces_only_with_force(tiny_model, tmp_path):  # noqa: F811
    out = tmp_path / "m.pt"
    out.write_bytes(b"an earlier model")
    r = invoke("export", "--model", tiny_model, "--out", out)
    assert r.exit_code == 1 and "exists; pass --force" in r.output
    assert out.read_bytes() == b"an earlier model"
    r = invoke("export", "--model", tiny_model, "--out", out, "--force")
    assert r.exit_code == 0, r.output
    assert 0 < out.stat().st_size < tiny_model.stat().st_size  # half precision


# --- Ctrl-C --------------------------------------------------------------------------------


def ctrl_c_at(monkeypatch, target: str, calls: int = 1) -> None:
    """Replace ``target`` (a module's function or a class's method, dotted) by a wrapper
    that sends this process a real SIGINT on its ``calls``-th call, gives it time to land,
    and goes on as the original."""
    import importlib

    module, _, attr = target.rpartition(".")
    try:
        owner = importlib.import_module(module)
    except ModuleNotFoundError:  # a class's method
        module, _, cls = module.rpartition(".")
        owner = getattr(importlib.import_module(module), cls)
    original, seen = getattr(owner, attr), []

    def wrapper(*args, **kwargs):
        seen.append(1)
        if len(seen) == calls:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, attr, wrapper)


@pytest.mark.parametrize(
    "target, calls, more",
    [
        ("gradnap.cli.profiling.load_model", 1, []),  # loading the model
        ("gradnap.profiling.run.Profiler.update", 2, []),  # profiling the second utterance
        ("gradnap.profiling.driver._save_partial", 1, []),  # saving a partial checkpoint
        ("gradnap.outputs.write_bytes", 1, ["--checkpoint-every", "0"]),  # the result's bytes
    ],
)
def test_ctrl_c_anywhere_in_profile_is_one_line(
    target, calls, more, small_corpus, tiny_model, tmp_path, monkeypatch  # noqa: F811
):  # fmt: skip
    ctrl_c_at(monkeypatch, target, calls)
    out = tmp_path / "p.nc"
    args = ["--layers", "conv11", "--limit", "3", "--checkpoint-every", "1", *more]
    try:
        r = invoke("profile", "--model", tiny_model, "--corpus", small_corpus, "--out", out, *args)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert r.exit_code == 130, r.output
    assert said(r.output) == [MESSAGE], r.output
    assert "Traceback" not in r.output and "Exception ignored" not in r.output
    assert not out.exists() and not list(tmp_path.glob(".p.nc*"))


MESSAGE = (
    "interrupted (Ctrl-C): stopped; outputs are written whole or not at all (profile: "
    "--resume continues from the last partial checkpoint)"
)


def said(output: str) -> list[str]:
    """The lines of ``output`` that are not progress bars (tqdm redraws with \\r)."""
    lines = [part.strip() for line in output.splitlines() for part in line.split("\r")]
    return [line for line in lines if line and not re.match(r"\w+:\s+\d+%\|", line)]


CHILD = """
import sys, time
import xarray as xr

to_netcdf = xr.DataTree.to_netcdf


class Closing:
    def __del__(self):  # where h5py's weakref callbacks run, and a KeyboardInterrupt is lost
        print("serializing", flush=True)
        time.sleep(3)  # the parent's Ctrl-C comes here


def slow_to_netcdf(self, *args, **kwargs):  # h5py building the result in memory
    Closing()  # collected at once
    return to_netcdf(self, *args, **kwargs)


xr.DataTree.to_netcdf = slow_to_netcdf
from gradnap.cli.main import app

app(sys.argv[1:], prog_name="gradnap")
"""


def test_ctrl_c_during_the_final_write_leaves_nothing(small_corpus, tiny_model, tmp_path):  # noqa: F811
    """A real process and a real Ctrl-C from outside while the result is serialized (where
    h5py's weakref callbacks swallowed it: status 0 and a whole result): status 130, one
    line, nothing at the output path and no temporary file beside it."""
    out = tmp_path / "out" / "p.nc"
    args = ["profile", "--model", tiny_model, "--corpus", small_corpus, "--out", out,
            "--layers", "conv11", "--limit", "2", "--checkpoint-every", "0"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    for line in child.stdout:
        if line.strip() == "serializing":
            break
    child.send_signal(signal.SIGINT)
    stdout, stderr = child.communicate(timeout=60)
    assert child.returncode == 130, stderr
    assert said(stderr) == [MESSAGE], stderr
    assert "profiles:" not in stdout
    assert list(out.parent.iterdir()) == []

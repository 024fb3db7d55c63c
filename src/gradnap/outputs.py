"""Output files: checked before the work, written whole or not at all.

:func:`check_output` runs before a command computes anything: the path must not be a
folder, its folder must exist (it is created when missing) and take a new file, hold free
space for the expected size (at least 100 MB), and an existing file is kept unless the run
continues it (``resume``) or replaces it (``force``). :func:`write_bytes` and
:func:`write_netcdf` write under a temporary name and rename; a failed write (a full disk)
is one :class:`OutputError` and leaves nothing behind. NetCDF is serialized in memory
first: h5py, when a write fails half-way, raises from its close and then crashes the
interpreter (a segmentation fault seen on a full disk). A Ctrl-C during the serialization or
the write is held until the temporary file is gone, then stops the command
(:func:`held`): nothing is left at the path, an earlier file stays as it was.
:func:`check_folder` is :func:`check_output` for a command that writes a folder (a report).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MIN_FREE = 100 * 10**6  # bytes


class OutputError(OSError):
    """An output that cannot be written; the message names the file and the reason."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else super().__str__()


def check_output(
    path: str | Path,
    force: bool = False,
    resume: bool | None = None,
    expected_bytes: int = 0,
    what: str = "result",
    example: str = "out.nc",
) -> Path:
    """Check that ``path`` can take the output of a run, before the run.

    Raises :class:`OutputError` (one line) if ``path`` is a folder, its folder cannot be
    created or written, the disk has less free space than ``max(expected_bytes, 100 MB)``,
    or ``path`` exists and neither ``force`` nor ``resume`` is given (``resume=None``: the
    command has no ``--resume``, and the message does not offer it). ``what`` and
    ``example`` (a file name) word the messages.

    >>> check_output("build/profiles.nc")  # doctest: +SKIP
    PosixPath('build/profiles.nc')
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(
            f"{path}: is a folder; give the {what} file's name, e.g. {path}/{example}"
        )
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create its folder {folder} ({_reason(exc)})") from None
    _check_writable(path, folder, expected_bytes, what)
    if path.exists() and not (force or resume):
        raise OutputError(f"{path}: exists; {_keep_hint(resume)}")
    return path


def check_folder(
    path: str | Path,
    force: bool = False,
    marker: str = "index.html",
    expected_bytes: int = 0,
    what: str = "report",
) -> Path:
    """:func:`check_output` for an output folder: ``path`` must not be a file, is created
    when missing and must take new files with the free space asked for; one that holds
    ``marker`` (an earlier output) is kept unless ``force``.

    >>> check_folder("build/report")  # doctest: +SKIP
    PosixPath('build/report')
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: is a file; give a folder for the {what}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create the {what} folder ({_reason(exc)})") from None
    _check_writable(path / marker, path, expected_bytes, what)
    if (path / marker).exists() and not force:
        raise OutputError(f"{path}: holds a {what} ({marker}); {_keep_hint(None)}")
    return path


def _check_writable(path: Path, folder: Path, expected_bytes: int, what: str) -> None:
    """``folder`` takes a new file and has room for the output (at least 100 MB)."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write in {folder} ({_reason(exc)})") from None
    need = max(int(expected_bytes), MIN_FREE)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise OutputError(
            f"{path}: {free / 1e6:.0f} MB free in {folder}, the {what} needs about "
            f"{need / 1e6:.0f} MB"
        )


def _keep_hint(resume: bool | None) -> str:
    if resume is None:
        return "pass --force to replace it"
    return "pass --force to replace it (or --resume to continue its run)"


def write_bytes(path: str | Path, data) -> Path:
    """Write ``data`` (bytes-like) to ``path`` under a temporary name, then rename.

    A failure (a full disk, a file-size limit) or a Ctrl-C removes the temporary file and
    leaves any earlier ``path`` as it was; OS errors become one :class:`OutputError`, the
    Ctrl-C is delivered once the temporary file is gone."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    view = memoryview(data)
    with held():
        try:
            free = shutil.disk_usage(path.parent).free
            if free < view.nbytes:
                raise OutputError(
                    f"{path}: could not be written: {view.nbytes / 1e6:.1f} MB needed, "
                    f"{free / 1e6:.1f} MB free"
                )
            with open(tmp, "wb") as f:
                f.write(view)
                f.flush()
                os.fsync(f.fileno())
            if not pending():
                os.replace(tmp, path)
        except OutputError:
            raise
        except OSError as exc:
            raise OutputError(
                f"{path}: could not be written ({_reason(exc)}); nothing was left behind"
            ) from None
        finally:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
    return path


def write_netcdf(tree, path: str | Path) -> Path:
    """Write an ``xarray`` DataTree or Dataset as NetCDF (h5netcdf) with
    :func:`write_bytes`: serialized in memory, then written whole or not at all (a Ctrl-C
    during the serialization: nothing is written)."""
    with held():
        data = tree.to_netcdf(None, engine="h5netcdf")
        if not pending():
            write_bytes(path, data)
    return Path(path)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


# --- Ctrl-C while a file is written ----------------------------------------------------
# Python raises a signal handler's KeyboardInterrupt at the next bytecode the main thread
# runs; while h5py serializes a result that is often a weakref callback or a __del__, where
# Python prints "Exception ignored" and goes on: the write finished and the command ended
# with status 0 (seen for SIGINT 50 ms and 150 ms into the serialization of a 64 MB
# result). Inside held() a Ctrl-C is only recorded; a writer asks pending() before it
# renames its temporary file into place and removes it instead; on leaving the block the
# earlier handler runs (the CLI's prints one line and raises KeyboardInterrupt).

_caught: list | None = None  # frames of the Ctrl-Cs caught while held (None: not held)


@contextmanager
def held() -> Iterator[None]:
    """Record SIGINT instead of acting on it inside the block; deliver it once on leaving
    (also when the block raises: the interrupt replaces that exception). Nested blocks
    share the outermost one's record. A process that ignores SIGINT keeps ignoring it."""
    global _caught
    previous = signal.getsignal(signal.SIGINT)
    if (
        _caught is not None
        or threading.current_thread() is not threading.main_thread()
        or previous in (signal.SIG_IGN, None)
    ):
        yield
        return
    caught: list = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    _caught = caught
    try:
        yield
    finally:
        _caught = None
        signal.signal(signal.SIGINT, previous)
        if caught:
            if previous is signal.SIG_DFL:
                signal.raise_signal(signal.SIGINT)
            else:
                previous(signal.SIGINT, caught[0])


def pending() -> bool:
    """Whether a Ctrl-C came inside the current :func:`held` block (to be delivered when it
    ends): a writer then leaves its output as it was."""
    return bool(_caught)

"""Output files: checked before the work, written whole or not at all.

:func:`check_output` runs before a command computes anything: the path must not be a
folder, its folder must exist (it is created when missing) and take a new file, hold free
space for the expected size (at least 100 MB), and an existing file is kept unless the run
continues it (``resume``) or replaces it (``force``). :func:`write_bytes` and
:func:`write_netcdf` write under a temporary name and rename; a failed write (a full disk)
is one :class:`OutputError` and leaves nothing behind. NetCDF is serialized in memory
first: h5py, when a write fails half-way, raises from its close and then crashes the
interpreter (a segmentation fault seen on a full disk).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

MIN_FREE = 100 * 10**6  # bytes


class OutputError(OSError):
    """An output that cannot be written; the message names the file and the reason."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else super().__str__()


def check_output(
    path: str | Path,
    force: bool = False,
    resume: bool = False,
    expected_bytes: int = 0,
    what: str = "result",
) -> Path:
    """Check that ``path`` can take the output of a run, before the run.

    Raises :class:`OutputError` (one line) if ``path`` is a folder, its folder cannot be
    created or written, the disk has less free space than ``max(expected_bytes, 100 MB)``,
    or ``path`` exists and neither ``force`` nor ``resume`` is given.

    >>> check_output("build/profiles.nc")  # doctest: +SKIP
    PosixPath('build/profiles.nc')
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give the {what} file's name, e.g. {path}/out.nc")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create its folder {folder} ({_reason(exc)})") from None
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
    if path.exists() and not (force or resume):
        raise OutputError(
            f"{path}: exists; pass --force to replace it (or --resume to continue its run)"
        )
    return path


def write_bytes(path: str | Path, data) -> Path:
    """Write ``data`` (bytes-like) to ``path`` under a temporary name, then rename.

    A failure (a full disk, a file-size limit, Ctrl-C) removes the temporary file and
    leaves any earlier ``path`` as it was; OS errors become one :class:`OutputError`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    view = memoryview(data)
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
    :func:`write_bytes`: serialized in memory, then written whole or not at all."""
    return write_bytes(path, tree.to_netcdf(None, engine="h5netcdf"))


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)

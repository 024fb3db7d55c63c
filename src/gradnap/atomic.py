"""Atomic file writes: every writer in gradnap goes through :func:`atomic_write`.

A killed run leaves either the old file or the new one at the path, never a torn one: the
content goes to a temporary file beside the path (same file system), is flushed, and is
renamed into place; on an error the temporary file is removed. A Ctrl-C while the file is
written is held until the temporary file is gone, and nothing is renamed into place
(:func:`gradnap.outputs.held`).

>>> with atomic_write("out/table.csv") as tmp:  # doctest: +SKIP
...     tmp.write_text("a,b\\n1,2\\n")
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gradnap.outputs import held, pending


@contextmanager
def atomic_write(path: str | Path, suffix: str = ".part") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (hidden, unique, ending in ``suffix`` for
    tools that read the format from the name); once the block ends without an error, its
    content is flushed to disk and renamed to ``path`` (with the permissions a new file
    gets); on an error, or a Ctrl-C inside the block, it is removed. The parent folder is
    created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with held():
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            yield tmp
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            if not pending():
                os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)

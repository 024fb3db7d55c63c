"""Drawing the report's images in parallel: matplotlib figures and bare heatmaps.

:class:`Drawer` queues drawing jobs and runs them in worker processes started by ``fork``
(they inherit the profile result, so no layer is pickled); with ``workers <= 1``, or where
``fork`` is not available, each job runs at once in this process. Jobs only draw and
write files (no torch), so forking a process that has used torch is safe here.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import xarray as xr

_TREE: xr.DataTree | None = None  # the result the workers draw from (inherited by fork)


@dataclass(frozen=True)
class LayerRef:
    """Stands for ``tree[name].to_dataset()`` in a job's arguments."""

    name: str


TREE = LayerRef("/")  # stands for the whole result


def _resolve(arg):
    if not isinstance(arg, LayerRef):
        return arg
    if arg == TREE:
        return _TREE
    return _TREE[arg.name].to_dataset()


def _figure_job(function: str, args: tuple, kwargs: dict, out_dir, stem, formats):
    from gradnap.viz import figures

    fig = getattr(figures, function)(*map(_resolve, args), **kwargs)
    figures.save_figure(fig, out_dir, stem, formats=formats)
    return stem


def _heatmap_job(layer: str, items: list, lay: dict):
    from gradnap.report.heatmaps import write_heatmap

    ds = _TREE[layer].to_dataset()
    for group, var, path in items:
        write_heatmap(ds[var].sel(group=group).values, lay, path)
    return layer


def default_workers() -> int:
    """One worker per CPU this process may use (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class Drawer:
    """Queue figures (``figure``) and heatmap batches (``heatmaps``); ``close`` waits for
    all of them and re-raises the first error. Use as a context manager."""

    def __init__(self, tree: xr.DataTree, workers: int | None = None):
        global _TREE
        _TREE = tree
        self.workers = default_workers() if workers is None else workers
        self._pool = None
        self._futures: list[Future] = []
        if self.workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("fork")
            )

    def _submit(self, fn, *args):
        if self._pool is None:
            fn(*args)
        else:
            self._futures.append(self._pool.submit(fn, *args))

    def figure(self, function: str, *args, out_dir, stem, formats=("png", "svg"), **kwargs):
        """Draw ``gradnap.viz.figures.<function>(*args, **kwargs)`` into
        ``out_dir/stem.<format>``; :class:`LayerRef` arguments become the layer's dataset."""
        self._submit(_figure_job, function, args, kwargs, out_dir, stem, formats)

    def heatmaps(self, layer: str, items: list[tuple[str, str, object]], lay: dict):
        """Draw ``(group, variable, path)`` heatmaps of ``layer`` with layout ``lay``."""
        self._submit(_heatmap_job, layer, items, lay)

    def close(self) -> None:
        global _TREE
        try:
            for f in self._futures:
                f.result()
        finally:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
            self._futures, _TREE = [], None

    def __enter__(self) -> Drawer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

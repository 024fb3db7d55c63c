"""``gradnap report``: figures, tables and HTML pages from a profile result.

The report is a folder: ``index.html`` (model, corpus, groups and counts, Silhouette
scores per layer, sanity check), one page per layer (every group's profiles, with its
event count and split-half reliability; dendrograms; action-potential plots and optimal
inputs for chosen groups), and ``figures/`` with PNG and SVG files under stable names.
Nothing is loaded from the network. Pages are rendered with Jinja2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import xarray as xr
from jinja2 import Environment, PackageLoader
from tqdm.auto import tqdm

from gradnap.analysis.clustering import groups_of, representation_power
from gradnap.analysis.featurevis import sonify, visualize_group
from gradnap.analysis.listen import Listener
from gradnap.analysis.responsiveness import top_neurons
from gradnap.atomic import atomic_write, write_text
from gradnap.outputs import OutputError
from gradnap.profiling.groupings import group_coords
from gradnap.report import heatmaps
from gradnap.report.drawing import TREE, Drawer, LayerRef
from gradnap.report.listening import SPECTROGRAM_COLORBAR, listen_entries
from gradnap.report.slugs import slug

PAPER_PHONEMES = ("AA", "AE", "IY", "T")
VARIANT_LABELS = {"gradnap": "GradNAP", "navai": "NAvAI", "saliency": "saliency-adjusted"}


@dataclass
class ReportOptions:
    """What the report draws beyond every group's profiles.

    ``groups``: groups for action-potential plots and optimal inputs (default: phonemes
    AA, AE, IY, T and graphemes a, e, t where present); ``featvis_layers``: layers for the
    optimal inputs (default conv1, a middle layer and the last layer with time support);
    ``min_count``: groups with fewer events are left out of the clustering and marked;
    ``max_groups``: per grouping, only the groups with the most events get their own
    profile images on the layer pages (words can number thousands; the rest are listed);
    ``featvis_steps``, ``featvis_lr``, ``seed``: the input optimization; ``workers``:
    processes that draw the figures (default: one per CPU).
    """

    groups: list[str] | None = None
    featvis_layers: list[str] | None = None
    min_count: int = 10
    max_groups: int = 80
    featvis_steps: int = 16
    featvis_lr: float = 0.1
    seed: int = 0
    dendrogram_percentile: float = 75
    workers: int | None = None
    extra: dict = field(default_factory=dict)


def _write_text(path: Path, text: str) -> None:
    write_text(path, text)


def build_report(
    tree: xr.DataTree,
    out: str | Path,
    model=None,
    sanity: xr.Dataset | None = None,
    options: ReportOptions | None = None,
    stats=None,
    progress: bool = True,
) -> Path:
    """Write the report for ``tree`` into ``out``; returns the path of ``index.html``.

    A trajectory (a result with a ``step`` dimension, from ``gradnap dynamics``) gets a
    dynamics page; its layer pages show the final step.
    ``model`` (a :class:`gradnap.ModelSpec` or Wav2Letter) enables the optimal inputs;
    ``sanity`` is the table of :func:`gradnap.analysis.cascading_randomization`; ``stats``
    (:class:`gradnap.FeatureStats`) sets the loudness of the optimal inputs' audio.

    A file that cannot be written (a full disk, say) raises
    :class:`gradnap.outputs.OutputError` naming it and the reason; ``index.html`` is
    written last, so a report cut short has none.
    """
    try:
        return _build_report(tree, out, model, sanity, options, stats, progress)
    except OutputError:
        raise
    except OSError as exc:
        where = exc.filename or out
        reason = exc.strerror or str(exc)
        raise OutputError(f"{where}: cannot write the report ({reason})") from exc


def _build_report(tree, out, model, sanity, options, stats, progress) -> Path:
    from gradnap.profiling.result import config_of
    from gradnap.profiling.run import as_spec

    opt = options or ReportOptions()
    out = Path(out)
    trajectory = tree if "step" in tree.dims else None
    if trajectory is not None:
        tree = trajectory.isel(step=-1)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    config = config_of(tree)
    layers = list(tree.children)
    all_groups, grouping_of, label_of = group_coords(tree)
    grouping_of = dict(zip(all_groups, grouping_of))
    label_of = dict(zip(all_groups, label_of))
    counts = {g: int(n) for g, n in zip(all_groups, tree["count"].values)}
    groups, omitted = _shown_groups(all_groups, grouping_of, counts, opt.max_groups)
    chosen = opt.groups or [
        g
        for g in [f"phoneme:{p}" for p in PAPER_PHONEMES]
        + ["grapheme:a", "grapheme:e", "grapheme:t"]
        if g in counts
    ]
    missing = [g for g in chosen if g not in counts]
    if missing:
        raise KeyError(f"group(s) not in the result: {', '.join(missing)}")
    spec = as_spec(model) if model is not None else None
    steps = len(layers) + 3
    bar = tqdm(total=steps, desc="report", unit="step", disable=not progress)

    drawer = Drawer(tree, opt.workers)  # matplotlib figures and heatmaps, in parallel
    try:
        index = _write_pages(
            tree,
            out,
            opt,
            config,
            layers,
            groups,
            omitted,
            counts,
            chosen,
            spec,
            stats,
            sanity,
            drawer,
            bar,
            grouping_of,
            label_of,
        )
    finally:
        drawer.close()
    if trajectory is not None:
        _write_dynamics(trajectory, out, opt)
    bar.update()
    bar.close()
    return index


def _write_pages(
    tree,
    out,
    opt,
    config,
    layers,
    groups,
    omitted,
    counts,
    chosen,
    spec,
    stats,
    sanity,
    drawer,
    bar,
    grouping_of,
    label_of,
):
    fig_dir = out / "figures"
    # representation power (Figure 4) and its table
    groupings = [g for g in ("grapheme", "phoneme") if any(grouping_of[x] == g for x in groups)]
    power = representation_power(tree, groupings, min_count=opt.min_count) if groupings else None
    figs = {}
    if power is not None:
        drawer.figure("silhouette_plot", power, out_dir=fig_dir, stem="silhouette_per_layer")
        table = fig_dir / "representation_power.nc"
        with atomic_write(table) as tmp:
            power.to_netcdf(tmp, engine="h5netcdf")
        _write_text(
            fig_dir / "representation_power.csv",
            power[["mean_silhouette", "n_defined"]].to_dataframe().to_csv(),
        )
        figs["silhouette"] = "figures/silhouette_per_layer.png"
    bar.update()

    # Figure 2: the paper's vowels and /T/ in the input layer
    if "input" in layers:
        paper = [f"phoneme:{p}" for p in PAPER_PHONEMES if f"phoneme:{p}" in counts]
        if paper:
            stem = "input_profiles_" + "_".join(label_of[p] for p in paper)
            drawer.figure("input_profiles", LayerRef("input"), paper, out_dir=fig_dir, stem=stem)
            figs["paper_input"] = f"figures/{stem}.png"
    bar.update()

    clustered = {g for grouping in groupings for g in groups_of(tree, grouping, opt.min_count)[0]}
    featvis_layers = opt.featvis_layers or _default_featvis_layers(layers, spec)
    layer_pages = []
    heatmaps.write_colorbar(fig_dir / "colorbar.png")
    heatmaps.write_colorbar(fig_dir / SPECTROGRAM_COLORBAR, lut=heatmaps.SEQUENTIAL_LUT)
    listener = Listener(tree)  # every layer page's clips: each utterance read once
    for layer in layers:
        ds = tree[layer].to_dataset()
        layer_pages.append(
            _layer_page(
                tree,
                ds,
                layer,
                groups,
                counts,
                clustered,
                chosen,
                featvis_layers,
                spec,
                opt,
                stats,
                out,
                power,
                drawer,
                listener,
            )
        )
        bar.update()
    # Every template is HTML (``*.html.j2``, which select_autoescape() does not cover): escape
    # everything, so group names, speakers, labels and paths from user data stay text.
    env = Environment(loader=PackageLoader("gradnap.report"), autoescape=True)
    sanity_rows = _sanity_rows(sanity)
    index = env.get_template("index.html.j2").render(
        config=config,
        layers=layer_pages,
        groups=[(g, counts[g], g in clustered) for g in groups],
        omitted=omitted,
        n_events=int(tree["n_events"]),
        power=_power_rows(power),
        power_attrs=power.attrs if power is not None else {},
        figs=figs,
        sanity=sanity_rows,
        sanity_attrs=sanity.attrs if sanity is not None else {},
        min_count=opt.min_count,
        max_groups=opt.max_groups,
        dynamics="step" in tree.coords,
    )
    for page in layer_pages:
        html = env.get_template("layer.html.j2").render(
            page=page, layers=layer_pages, min_count=opt.min_count
        )
        _write_text(out / page["file"], html)
    for name in ("style.css", "picker.js"):  # static: copied, not rendered (autoescape)
        _write_text(out / name, env.loader.get_source(env, name)[0])
    index_path = out / "index.html"
    _write_text(index_path, index)
    return index_path


def _write_dynamics(trajectory, out, opt):
    from gradnap.report.dynamics import dynamics_page

    env = Environment(loader=PackageLoader("gradnap.report"), autoescape=True)
    page = dynamics_page(trajectory, out, opt.min_count)
    layers = [{"name": n, "file": f"layer-{slug(n)}.html"} for n in trajectory.children]
    html = env.get_template("dynamics.html.j2").render(
        page=page, layers=layers, min_count=opt.min_count
    )
    _write_text(out / "dynamics.html", html)


def _shown_groups(groups, grouping_of, counts, max_groups):
    """Per grouping, the ``max_groups`` groups with the most events (in their order), and
    the names of the others."""
    by = {}
    for g in groups:
        by.setdefault(grouping_of[g], []).append(g)
    keep = set()
    for members in by.values():
        keep |= set(sorted(members, key=lambda g: -counts[g])[:max_groups])
    return [g for g in groups if g in keep], [g for g in groups if g not in keep]


def _default_featvis_layers(layers, spec):
    if spec is None:
        return []
    convs = [n for n in layers if n != "input" and n in spec.layer_names]
    with_time = [n for n in convs if spec.geometry.support_width(n) > 1]
    picks = [convs[0]] if convs else []
    if with_time:
        picks += [with_time[len(with_time) // 2], with_time[-1]]
    return list(dict.fromkeys(picks))


def _layer_page(
    tree,
    ds,
    layer,
    groups,
    counts,
    clustered,
    chosen,
    featvis_layers,
    spec,
    opt,
    stats,
    out,
    power,
    drawer,
    listener=None,
):
    fig_dir = out / "figures"
    page = {"name": layer, "file": f"layer-{slug(layer)}.html", "groups": [], "dendrograms": []}
    page["neurons"] = int(ds.sizes["neuron"])
    page["width"] = int(ds.sizes["offset"])
    page["frame_ms"] = float(ds.attrs.get("frame_ms", 0))
    for grouping in ("grapheme", "phoneme"):
        if len(groups_of(tree, grouping, opt.min_count)[0]) < 3:
            continue  # too few groups to cluster
        stem = f"dendrogram_{slug(layer)}_{grouping}"
        drawer.figure(
            "dendrogram",
            TREE,
            layer,
            grouping,
            opt.dendrogram_percentile,
            min_count=opt.min_count,
            out_dir=fig_dir,
            stem=stem,
        )
        page["dendrograms"].append({"grouping": grouping, "src": f"figures/{stem}.png"})
    if power is not None:
        page["silhouette"] = [
            (
                str(g),
                _fmt(power["mean_silhouette"].sel(grouping=g, layer=layer)),
                int(power["n_defined"].sel(grouping=g, layer=layer)),
            )
            for g in power["grouping"].values
        ]
    r_half = ds["split_half_r"] if "split_half_r" in ds else None
    sub = out / "figures" / slug(layer)
    sub.mkdir(parents=True, exist_ok=True)
    freq = ds["frequency"].values if "frequency" in ds.coords else None
    page["layout"] = heatmaps.layout(ds.sizes["neuron"], ds["offset_ms"].values, freq)
    to_draw = []
    for g in groups:
        n = counts[g]
        entry = {
            "name": g,
            "anchor": slug(g),
            "count": n,
            "split_half": _fmt(r_half.sel(group=g)) if r_half is not None else "n/a",
            "clustered": g in clustered,
            "images": [],
        }
        if n == 0:
            page["groups"].append(entry)
            continue
        for var in _aligned_profiles(ds):
            label = VARIANT_LABELS.get(var, var)
            name = f"{var}_{slug(g)}.png"
            values = ds[var].sel(group=g).values
            finite = values[np.isfinite(values)]
            to_draw.append((g, var, sub / name))
            entry["images"].append(
                {
                    "src": f"figures/{slug(layer)}/{name}",
                    "alt": f"{g} {label} in {layer}",
                    "label": label,
                    "vmax": f"{float(np.abs(finite).max()) if finite.size else 0.0:.3g}",
                }
            )
        top = top_neurons(ds, g, 5)
        entry["top"] = [
            (int(k), f"{float(r):.4g}") for k, r in zip(top["neuron"].values, top.values)
        ]
        if g in chosen and ds.sizes["offset"] > 1:
            stem = f"action_potentials_{slug(layer)}_{slug(g)}"
            drawer.figure("action_potentials", LayerRef(layer), g, out_dir=fig_dir, stem=stem)
            entry["action"] = f"figures/{stem}.png"
            if listener is None:
                listener = Listener(tree)
            entry["listen"], entry["listen_note"] = listen_entries(
                listener, ds, layer, g, top["neuron"].values, fig_dir
            )
            if spec is not None and layer in featvis_layers:
                x = visualize_group(
                    spec, ds, layer, g, steps=opt.featvis_steps, lr=opt.featvis_lr, seed=opt.seed
                )
                stem = f"optimal_input_{slug(layer)}_{slug(g)}"
                drawer.figure("optimal_input_figure", x, out_dir=fig_dir, stem=stem)
                if spec.feature_config is not None:
                    wav = sonify(x.values, spec.feature_config, stats)
                    with atomic_write(fig_dir / f"{stem}.wav") as tmp:
                        sf.write(tmp, wav, spec.feature_config.sample_rate, format="WAV")
                    entry["audio"] = f"figures/{stem}.wav"
                entry["featvis"] = f"figures/{stem}.png"
                hist = x.attrs["history"]
                entry["featvis_note"] = (
                    f"objective {hist[0]:.3g} -> {hist[-1]:.3g} in {len(hist) - 1} Adam steps"
                )
        page["groups"].append(entry)
    drawer.heatmaps(layer, to_draw, page["layout"])
    return page


def _aligned_profiles(ds) -> list[str]:
    """The layer's profile variables over time offsets (NAP's ranks are not drawn)."""
    names = str(ds.attrs.get("profiles", "gradnap,navai")).split(",")
    return [v for v in names if v in ds and "offset" in ds[v].dims]


def _fmt(v) -> str:
    v = float(v)
    return "n/a" if np.isnan(v) else f"{v:.3f}"


def _power_rows(power):
    if power is None:
        return None
    rows = []
    for layer in power["layer"].values:
        rows.append(
            [str(layer)]
            + [
                f"{_fmt(power['mean_silhouette'].sel(grouping=g, layer=layer))} "
                f"({int(power['n_defined'].sel(grouping=g, layer=layer))}"
                f"/{power.sizes['percentile']})"
                for g in power["grouping"].values
            ]
        )
    return {"header": ["layer"] + [f"{g}s" for g in power["grouping"].values], "rows": rows}


def _sanity_rows(sanity):
    if sanity is None:
        return None
    tables = []
    for var in [v for v in sanity.data_vars if str(v).startswith("spearman_")]:
        da = sanity[var]
        tables.append(
            {
                "title": var.replace("_", " "),
                "header": ["randomized down to"] + [str(x) for x in da["layer"].values],
                "rows": [
                    [str(k)] + [_fmt(v) for v in da.sel(randomized_down_to=k).values]
                    for k in da["randomized_down_to"].values
                ],
            }
        )
    return tables

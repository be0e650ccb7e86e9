"""Pictures of activation regions over a 2-D input space: exact zones, sampled points, latent zones.

The users' pictures: a 2-D input box tiled by the polygons of the activation regions (each
region's ``vertices``, counter-clockwise), beside a cloud of sampled inputs where the same
conditions hold, and the "latent zones" of one layer ``relu(W x + b)`` labelled by which
features fire. Every polygon drawn is a region's exact polygon; nothing is interpolated
except under ``color_by="y"``, where each polygon is shaded by the network's affine map on
it (linear interpolation over a fan of triangles is exactly that map).

Colours: ``color_by="pattern"`` gives each region a colour hashed from its pattern (the same
pattern has the same colour in every picture); ``color_by="h<L>"`` gives regions with the same
sub-pattern of ReLU layer ``L`` one colour (the legend lists the sub-patterns);
``color_by="y"`` (or ``"y<k>"``, ``"y[k]"``) shades by output ``k``.

matplotlib is imported inside the functions, and figures are made with
:class:`matplotlib.figure.Figure` (no ``pyplot``, no global backend change), so importing this
module is cheap and safe in any program, headless or not.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from milp.core.errors import InputError
from milp.core.box import Box
from milp.core.conditions import evaluate, parse_conditions
from milp.core.network import Network, layer_choices

__all__ = [
    "PlotError",
    "new_figure",
    "plot_regions",
    "plot_zones",
    "mark_points",
    "plot_samples",
    "plot_latent_zones",
    "plot_region_file",
    "sample_points",
    "group_colors",
    "save_figure",
    "shoelace_area",
]

# tab20 without its light halves first, then the light halves: neighbours in the list differ.
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)
_NO_FEATURE = "#eeeeee"  # the zone where no feature fires: drawn pale so the others stand out
_LEGEND_LIMIT = 24
_COLOR_BY = re.compile(r"^(pattern|argmax|h(\d+)|y(?:\[?(\d+)\]?)?)$")


class PlotError(InputError):
    """A picture that cannot be drawn: not 2 free inputs, regions without polygons, a bad option."""


# ------------------------------------------------------------------ figures, files, names
def new_figure(panels: int = 1, size: tuple[float, float] = (5.6, 5.0)):
    """A :class:`matplotlib.figure.Figure` with ``panels`` axes side by side: ``(figure, [axes, ...])``.
    ``size`` is one panel's (width, height) in inches."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(size[0] * panels, size[1]), layout="constrained")
    axes = [figure.add_subplot(1, panels, i + 1) for i in range(panels)]
    return figure, axes


def _axes(ax):
    if ax is None:
        return new_figure(1)[1][0]
    return ax


def save_figure(figure, path, dpi: int = 90) -> Path:
    """Write a figure (or the figure of an axes) as PNG or SVG, chosen by the suffix of ``path``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise PlotError(f"picture {str(path)!r}: use a .png or .svg file name")
    figure = getattr(figure, "figure", figure)
    path.parent.mkdir(parents=True, exist_ok=True)
    # No date or software stamp: the same picture gives the same file.
    metadata = {"Software": None} if suffix == ".png" else {"Date": None, "Creator": None}
    # "tight" keeps a legend placed beside the axes inside the picture
    figure.savefig(path, format=suffix[1:], dpi=dpi, metadata=metadata, bbox_inches="tight", pad_inches=0.1)
    return path


def shoelace_area(polygon) -> float:
    """Area of a simple polygon given by its vertices in order, shape ``(v, 2)``."""
    p = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _free_inputs(box: Box) -> np.ndarray:
    free = np.flatnonzero(box.upper > box.lower)
    if free.size != 2:
        raise PlotError(
            f"a picture needs exactly 2 free inputs; the box has {box.dim} input(s), {free.size} free "
            "(fix the others with lo == hi in the box, or list the regions on a plane: milp regions --slice)"
        )
    return free


def _parse_color_by(color_by: str) -> tuple[str, int]:
    """``("pattern", 0)``, ``("argmax", 0)``, ``("layer", L)`` or ``("output", k)``."""
    match = _COLOR_BY.match(str(color_by).strip())
    if not match:
        raise PlotError(f"--color-by {color_by!r}: use pattern, argmax, h<L> (a ReLU layer, e.g. h0) or y / y<k> (an output)")
    if match.group(1) in ("pattern", "argmax"):
        return match.group(1), 0
    if match.group(2) is not None:
        return "layer", int(match.group(2))
    return "output", int(match.group(3) or 0)


def _layer_slice(widths: Sequence[int] | None, layer: int, neurons: int) -> slice:
    if widths is None:
        raise PlotError(f"color_by h{layer} needs the layer widths (pass widths=network.widths)")
    widths = [int(w) for w in widths]
    if sum(widths) != neurons:
        raise PlotError(f"widths {widths} add up to {sum(widths)} neurons but the patterns have {neurons}")
    if not 0 <= layer < len(widths):
        raise PlotError(f"there is no ReLU layer {layer}: the network has {layer_choices(len(widths))}")
    start = sum(widths[:layer])
    return slice(start, start + widths[layer])


def _hashed(key: str) -> str:
    return _PALETTE[zlib.crc32(key.encode()) % len(_PALETTE)]


def _order(key: str) -> tuple[int, str]:
    # Fewest active neurons first, then the neurons' order: "000", "100", "010", ..., "110", ...
    return key.count("1"), key[::-1]


def group_colors(keys: Iterable[str]) -> dict[str, str]:
    """One colour per sub-pattern: the palette in :func:`_order` of the keys (all inactive pale).

    Give the same dict to :func:`plot_regions` and :func:`plot_samples` so both panels agree.
    Past the palette's 20 colours, colours repeat.
    """
    colors, index = {}, 0
    for key in sorted(set(keys), key=_order):
        if "1" not in key:
            colors[key] = _NO_FEATURE
            continue
        colors[key] = _PALETTE[index % len(_PALETTE)]
        index += 1
    return colors


def _names(input_names, free: np.ndarray) -> tuple[str, str]:
    if input_names is None:
        return f"x[{free[0]}]", f"x[{free[1]}]"
    names = list(input_names)
    if len(names) <= int(free.max()):
        raise PlotError(f"{len(names)} input names for a box whose free inputs are {free.tolist()}")
    return str(names[free[0]]), str(names[free[1]])


def _frame(ax, box: Box, free: np.ndarray, input_names, title) -> None:
    from matplotlib.patches import Rectangle

    lo, hi = box.lower[free], box.upper[free]
    ax.add_patch(Rectangle(lo, *(hi - lo), fill=False, edgecolor="black", linewidth=1.0, zorder=5))
    pad = 0.03 * (hi - lo)
    ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    ratio = (hi[0] - lo[0]) / (hi[1] - lo[1])
    if 0.25 <= ratio <= 4:
        ax.set_aspect("equal")
    xname, yname = _names(input_names, free)
    ax.set_xlabel(xname)
    ax.set_ylabel(yname)
    if title:
        ax.set_title(title, fontsize=10)


def _legend(ax, entries: list[tuple[str, str]]) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=color, edgecolor="0.4", linewidth=0.5, label=label) for label, color in entries[:_LEGEND_LIMIT]]
    if len(entries) > _LEGEND_LIMIT:
        handles.append(Patch(facecolor="none", edgecolor="none", label=f"... and {len(entries) - _LEGEND_LIMIT} more"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False, borderaxespad=0.0)


# ------------------------------------------------------------------ regions
def plot_regions(
    regions,
    box: Box,
    ax=None,
    color_by: str = "pattern",
    input_names: Sequence[str] | None = None,
    legend: bool = False,
    title: str | None = None,
    *,
    widths: Sequence[int] | None = None,
    colors: dict[str, str] | None = None,
    labels: Callable[[str], str] | None = None,
    edgecolor: str = "white",
    linewidth: float = 0.6,
    value_range: tuple[float, float] | None = None,
    facecolor: str | None = None,
    cmap="viridis",
    output_names: Sequence[str] | None = None,
):
    """Draw every region's polygon over the 2-D ``box``; returns the axes (a new figure's if ``ax`` is None).

    ``regions``: :class:`~milp.enumeration.geometry.Region` values with ``vertices`` (the box must have exactly
    2 free inputs). ``color_by``: ``"pattern"`` (hashed colour per region), ``"h<L>"`` (one colour
    per sub-pattern of ReLU layer ``L``; needs ``widths``, e.g. ``network.widths``; ``colors``
    and ``labels`` override the colour and legend text of a sub-pattern) or ``"y"``/``"y<k>"``
    (the exact piecewise-linear output, with a colour bar; ``value_range`` fixes its limits and
    ``cmap`` is the colour map or its name) or ``"argmax"`` (a colour per predicted class, the regions
    cut exactly where it changes by :func:`milp.enumeration.zones.decision_pieces`; the legend names the
    classes by ``output_names`` or ``y[k]``; region outlines in white). ``facecolor`` paints every region in one colour
    instead (``"none"`` for outlines only). The polygons are one ``PolyCollection`` with gid
    ``"regions"``.

    >>> # ax = plot_regions(milp.enumeration.engines(net, box, ["y[0] > 0"]), box, color_by="h0", widths=net.widths, legend=True)
    >>> # save_figure(ax, "zones.png")
    """
    from matplotlib.collections import PolyCollection

    free = _free_inputs(box)
    regions = list(regions)
    kind, index = _parse_color_by(color_by)
    polygons = []
    for region in regions:
        if region.vertices is None or region.vertices.shape[0] < 3:
            raise PlotError(f"region {region.pattern} has no polygon: pictures need regions over 2 free inputs")
        if region.dim != box.dim:
            raise PlotError(f"region {region.pattern} has {region.dim} inputs but the box has {box.dim}")
        polygons.append(np.asarray(region.vertices)[:, free])
    ax = _axes(ax)
    collection = PolyCollection(polygons, edgecolors=edgecolor, linewidths=linewidth, zorder=2)
    collection.set_gid("regions")
    entries: list[tuple[str, str]] = []
    if facecolor is not None:
        collection.set_facecolor(facecolor)
    elif kind == "output":
        _shade_outputs(ax, regions, polygons, index, value_range, cmap)
        collection.set_facecolor("none")
        collection.set_edgecolor("0.2")
        collection.set_linewidth(0.4)
    elif kind == "argmax":
        entries = _shade_classes(ax, regions, free, output_names)
        collection.set_facecolor("none")
        collection.set_edgecolor("white")
        collection.set_linewidth(0.3)
    elif kind == "pattern":
        collection.set_facecolor([_hashed(r.pattern) for r in regions])
    else:
        keys = []
        for region in regions:
            keys.append(region.pattern[_layer_slice(widths, index, len(region.pattern))])
        palette = dict(colors) if colors is not None else group_colors(keys)
        collection.set_facecolor([palette.get(k) or _hashed(k) for k in keys])
        label = labels or (lambda key: f"h{index} = {key}")
        entries = [(label(k), palette.get(k) or _hashed(k)) for k in sorted(set(keys), key=_order)]
    ax.add_collection(collection)
    _frame(ax, box, free, input_names, title)
    if (legend or kind == "argmax") and entries:  # classes' colours mean nothing without their names
        _legend(ax, entries)
    elif legend and kind == "pattern" and facecolor is None and regions:
        _legend(ax, [(r.pattern, _hashed(r.pattern)) for r in sorted(regions, key=lambda r: _order(r.pattern))])
    return ax


def plot_zones(zones, box: Box, ax=None, regions=None, input_names: Sequence[str] | None = None, title: str | None = None,
               *, legend: bool = False):
    """Draw zones (:class:`~milp.core.region.Zone`, from :func:`milp.enumeration.zones.merge_regions`) over the 2-D
    ``box``: each zone filled in one colour with a dark outline; with ``regions``, the regions inside
    show as thin white lines. Returns the axes. The zones are a ``PolyCollection`` with gid ``"zones"``.

    >>> # ax = plot_zones(milp.merge_regions(found), box, regions=found); save_figure(ax, "zones.png")
    """
    from matplotlib.collections import PolyCollection

    free = _free_inputs(box)
    zones = list(zones)
    polygons = []
    for zone in zones:
        if zone.vertices is None or zone.vertices.shape[0] < 3:
            raise PlotError(f"zone of {zone.patterns[0]} has no polygon: pictures need zones over 2 free inputs")
        polygons.append(np.asarray(zone.vertices)[:, free])
    ax = _axes(ax)
    colors = [_PALETTE[k % len(_PALETTE)] for k in range(len(zones))]
    filled = PolyCollection(polygons, facecolors=colors, edgecolors="none", zorder=2)
    ax.add_collection(filled)
    if regions is not None:
        inner = [np.asarray(r.vertices)[:, free] for r in regions if r.vertices is not None and r.vertices.shape[0] >= 3]
        ax.add_collection(PolyCollection(inner, facecolors="none", edgecolors="white", linewidths=0.4, zorder=3))
    outlines = PolyCollection(polygons, facecolors="none", edgecolors="0.1", linewidths=1.2, zorder=4)
    outlines.set_gid("zones")
    ax.add_collection(outlines)
    _frame(ax, box, free, input_names, title)
    if legend and zones:
        _legend(ax, [(f"{len(z.patterns)} region{'s' if len(z.patterns) != 1 else ''} from {z.patterns[0]}", c) for z, c in zip(zones, colors)])
    return ax


def _class_color(k: int) -> str:
    return _PALETTE[k % 10]  # the ten strong colours: one per class of a 10-class model


def _shade_classes(ax, regions, free, output_names) -> list[tuple[str, str]]:
    """Fill the decision pieces of the regions, one colour per predicted class; the legend's entries."""
    from matplotlib.collections import PolyCollection

    from milp.enumeration.zones import decision_pieces

    pieces = decision_pieces(regions)
    polygons, colors, labels = [], [], set()
    for piece in pieces:
        if piece.vertices is None:
            raise PlotError(f"region {piece.pattern} has no polygon: pictures need regions over 2 free inputs")
        polygons.append(np.asarray(piece.vertices)[:, free])
        colors.append(_class_color(piece.label))
        labels.add(piece.label)
    collection = PolyCollection(polygons, facecolors=colors, edgecolors=colors, linewidths=0.2, zorder=1)
    collection.set_gid("classes")
    ax.add_collection(collection)
    name = (lambda k: str(output_names[k])) if output_names is not None else (lambda k: f"y[{k}]")
    return [(name(k), _class_color(k)) for k in sorted(labels)]


def mark_points(ax, points, labels) -> None:
    """Mark points (n, 2) on the axes, each with its label: the inputs a plane was cut through."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    ax.scatter(points[:, 0], points[:, 1], s=36, c="white", edgecolors="black", linewidths=1.2, zorder=7)
    for (x, y), label in zip(points, labels):
        ax.annotate(str(label), (x, y), xytext=(6, 6), textcoords="offset points", fontsize=9, zorder=7,
                    bbox=dict(boxstyle="round,pad=0.2", facecolor="white", edgecolor="0.5", alpha=0.9))


def _shade_outputs(ax, regions, polygons, output: int, value_range, cmap) -> None:
    """Filled level bands of ``y[output]``: each polygon fanned into triangles carrying ``C x + d`` at
    their corners. The function is affine on each triangle, so the bands (linear interpolation
    on triangles) are its exact level sets."""
    from matplotlib.tri import Triangulation

    points, values, triangles = [], [], []
    for region, polygon in zip(regions, polygons):
        C, d = region.affine
        if not 0 <= output < C.shape[0]:
            raise PlotError(f"there is no output {output}: the network has {C.shape[0]} (0..{C.shape[0] - 1})")
        start = len(points)
        points.extend(polygon)
        values.extend(np.asarray(region.vertices) @ C[output] + d[output])
        triangles.extend((start, start + i, start + i + 1) for i in range(1, polygon.shape[0] - 1))
    if not triangles:
        return
    points, values = np.asarray(points), np.asarray(values)
    lo, hi = value_range if value_range is not None else (float(values.min()), float(values.max()))
    if not hi > lo:
        hi = lo + 1.0  # a constant output: one band
    levels = np.linspace(lo, hi, 17)
    bands = ax.tricontourf(Triangulation(points[:, 0], points[:, 1], triangles), np.clip(values, lo, hi), levels=levels,
                           cmap=cmap, zorder=1)
    ax.figure.colorbar(bands, ax=ax, label=f"y[{output}]", shrink=0.8)


# ------------------------------------------------------------------ samples
def sample_points(network: Network, box: Box, where=(), n: int = 10000, seed: int = 0) -> np.ndarray:
    """The inputs among ``n`` uniform samples of ``box`` (generator seeded by ``seed``) where every
    condition of ``where`` holds: shape ``(k, input_dim)``."""
    box.check_dim(network.input_dim)
    if int(n) < 1:
        raise PlotError(f"number of samples must be at least 1, got {n}")
    conditions = parse_conditions(network, where)
    x = box.sample(int(n), np.random.default_rng(seed))
    return x[evaluate(network, conditions, x)] if conditions else x


def plot_samples(
    network: Network,
    box: Box,
    where=(),
    n: int = 10000,
    ax=None,
    color_by: str = "pattern",
    *,
    seed: int = 0,
    input_names: Sequence[str] | None = None,
    title: str | None = None,
    colors: dict[str, str] | None = None,
    value_range: tuple[float, float] | None = None,
    cmap="viridis",
):
    """Scatter the sampled inputs of ``box`` where ``where`` holds (see :func:`sample_points`), coloured
    like :func:`plot_regions` (by pattern, by layer sub-pattern, or by output). Returns the axes; the
    default title says how many of the ``n`` samples satisfy the conditions."""
    free = _free_inputs(box)
    kind, index = _parse_color_by(color_by)
    x = sample_points(network, box, where, n, seed)
    ax = _axes(ax)
    if x.shape[0]:
        trace = network.forward(x)
        bits = trace.pattern()
        if kind == "output":
            if not 0 <= index < network.output_dim:
                raise PlotError(f"there is no output {index}: the network has {network.output_dim} (0..{network.output_dim - 1})")
            values = trace.output[:, index]
            lo, hi = value_range if value_range is not None else (values.min(), values.max())
            ax.scatter(x[:, free[0]], x[:, free[1]], c=values, s=2, cmap=cmap, vmin=lo, vmax=hi, linewidths=0, rasterized=True)
        elif kind == "argmax":
            classes = np.argmax(trace.output, axis=1)
            ax.scatter(x[:, free[0]], x[:, free[1]], c=[_class_color(int(k)) for k in classes], s=2, linewidths=0, rasterized=True)
        else:
            patterns = ["".join("1" if b else "0" for b in row) for row in bits]
            if kind == "pattern":
                point_colors = [_hashed(p) for p in patterns]
            else:
                where_layer = _layer_slice(network.widths, index, network.neuron_count)
                keys = [p[where_layer] for p in patterns]
                palette = colors if colors is not None else group_colors(keys)
                point_colors = [palette.get(k) or _hashed(k) for k in keys]
            ax.scatter(x[:, free[0]], x[:, free[1]], c=point_colors, s=2, linewidths=0, rasterized=True)
    if title is None:
        conditions = parse_conditions(network, where)
        title = (f"{x.shape[0]} of {n} samples with " + " and ".join(c.text for c in conditions)) if conditions else f"{n} samples"
    names = input_names if input_names is not None else network.input_names
    _frame(ax, box, free, names, title)
    return ax


# ------------------------------------------------------------------ latent zones
def _feature_set(key: str, names: Sequence[str]) -> str:
    active = [names[i] for i, c in enumerate(key) if c == "1"]
    return "{" + ", ".join(active) + "}" if active else "none"


def plot_latent_zones(
    W,
    b,
    box: Box,
    ax=None,
    *,
    feature_names: Sequence[str] | None = None,
    input_names: Sequence[str] | None = None,
    arrows: bool = True,
    legend: bool = True,
    title: str | None = None,
    where=(),
    zones=None,
):
    """The latent zones of one layer ``relu(W x + b)`` over a 2-D box: every region of the layer,
    coloured and labelled by the set of features (rows of ``W``) that fire there.

    ``W`` has shape ``(features, 2)``, ``b`` shape ``(features,)``. ``where`` restricts the zones
    to a part of the box (linear conditions over ``x[0]``, ``x[1]``, e.g. a polygon). With
    ``arrows`` the feature directions (rows of ``W``) are drawn from the origin. ``zones`` are the
    layer's regions when already enumerated
    (``milp.enumeration.engines(Network.mlp([(W, b)], output_relu=True), box, where)``). Returns the axes.
    """
    from milp.enumeration.engines import regions as enumerate_regions

    W = np.asarray(W, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if W.ndim != 2 or W.shape[1] != 2 or W.shape[0] != b.size:
        raise PlotError(f"latent zones need W of shape (features, 2) and b of shape (features,); got {W.shape} and {b.shape}")
    box.check_dim(2)
    names = list(feature_names) if feature_names is not None else [f"f{k}" for k in range(W.shape[0])]
    if len(names) != W.shape[0]:
        raise PlotError(f"{len(names)} feature names for {W.shape[0]} features")
    if zones is None:
        zones = list(enumerate_regions(Network.mlp([(W, b)], output_relu=True), box, where))
    ax = plot_regions(
        zones, box, ax, color_by="h0", input_names=input_names or ("h[0]", "h[1]"), legend=legend, title=title,
        widths=(W.shape[0],), labels=lambda key: _feature_set(key, names), edgecolor="0.35", linewidth=0.4,
    )
    if arrows:
        for k, row in enumerate(W):
            ax.annotate("", xy=row, xytext=(0.0, 0.0), zorder=6,
                        arrowprops=dict(arrowstyle="->", color="black", linewidth=1.1, shrinkA=0, shrinkB=0))
            direction = row / max(float(np.linalg.norm(row)), 1e-300)
            ax.annotate(names[k], xy=row, xytext=9 * direction, textcoords="offset points", ha="center", va="center",
                        fontsize=8, zorder=6, annotation_clip=False)
    return ax


# ------------------------------------------------------------------ region files
def _header_box(header: dict) -> Box:
    try:
        return Box(np.array(header["box"]["lower"], dtype=float), np.array(header["box"]["upper"], dtype=float))
    except (KeyError, TypeError) as error:
        raise PlotError(f"the region file's header has no usable box ({error})") from None


def _model_path(header: dict, region_file: Path, model: str | None) -> Path:
    if model is not None:
        path = Path(model)
        if not path.exists():
            raise PlotError(f"model file {model!r} does not exist")
        return path
    name = header.get("model")
    if not name:
        raise PlotError("this needs the model, but the region file's header names none: pass --model FILE")
    for path in (Path(name), region_file.parent / name):
        if path.exists():
            return path
    raise PlotError(f"this needs the model {name!r} named in the region file's header, which does not exist here: pass --model FILE")


def plot_region_file(
    path,
    samples: int | None = None,
    color_by: str = "pattern",
    legend: bool = False,
    title: str | None = None,
    *,
    seed: int = 0,
    load_model: Callable[[Path], Network] | None = None,
    model: str | None = None,
    content=None,
    draw: str = "regions",
):
    """The picture of a region file (``milp regions -o``): its regions over its box, and with
    ``samples`` a panel of sampled inputs where the file's conditions hold, on the left.

    ``draw="zones"`` draws the file's zones (``milp regions --merge``; merged here when the file has
    none) with their outlines instead of the regions' colours.

    ``load_model(path) -> Network`` reads the model named in the header (or ``model``); it is
    needed for ``samples`` and for ``color_by="h<L>"`` when the header records no ``widths``.
    A header with a ``slice`` (a sliced run) is sampled on that plane; ``content`` (the file already
    read by :func:`~milp.io.regionfiles.read_region_file`) saves reading it again. Returns the figure.
    """
    from milp.io.regionfiles import read_region_file
    from milp.core.slicing import parse_slice, slice_network

    path = Path(path)
    content = content if content is not None else read_region_file(path)
    header = content.header
    box = _header_box(header)
    _free_inputs(box)  # raises unless exactly two inputs are free
    if int(header.get("input_dim", box.dim)) != box.dim:
        raise PlotError(f"the header says {header.get('input_dim')} inputs but its box has {box.dim}")
    kind, index = _parse_color_by(color_by)
    if draw not in ("regions", "zones"):
        raise PlotError(f"--draw {draw!r}: use zones or regions")
    plane = parse_slice(header["slice"]) if header.get("slice") else None
    network = None
    widths = header.get("widths")
    if samples is not None or (kind == "layer" and widths is None):
        if load_model is None:
            raise PlotError("this needs the model: give load_model")
        model_path = _model_path(header, path, model)
        expected = header.get("model_sha256")
        if expected and hashlib.sha256(model_path.read_bytes()).hexdigest() != expected:
            raise PlotError(f"model {str(model_path)!r} is not the file these regions were computed from (its SHA-256 differs)")
        network = load_model(model_path)
        if plane is not None:
            network = slice_network(network, plane.origin, plane.u, plane.v)
        if network.input_dim != box.dim:
            raise PlotError(f"the model has {network.input_dim} inputs but the region file's box has {box.dim}")
        widths = widths or list(network.widths)
    names = ("s", "t") if plane is not None else (network.input_names if network is not None else header.get("input_names"))
    conditions = list(header.get("conditions") or [])
    count = len(content.regions)
    heading = title
    if heading is None:
        heading = f"{count} region{'s' if count != 1 else ''}" + (f" with {' and '.join(conditions)}" if conditions else "")
    if not content.complete:
        heading += " (incomplete list)"
    keys = None
    colors = None
    if kind == "layer":
        where_layer = _layer_slice(widths, index, int(header.get("neurons", len(content.regions[0].pattern) if count else 0)))
        keys = [r.pattern[where_layer] for r in content.regions]
        colors = group_colors(keys)
    value_range = None
    if kind == "output" and count:
        values = np.concatenate([np.asarray(r.vertices) @ r.affine[0][index] + r.affine[1][index] for r in content.regions
                                 if r.vertices is not None and index < r.affine[0].shape[0]] or [np.zeros(1)])
        value_range = (float(values.min()), float(values.max()))
    figure, axes = new_figure(2 if samples is not None else 1)
    if samples is not None:
        plot_samples(network, box, conditions, samples, axes[0], color_by, seed=seed, input_names=names,
                     colors=colors, value_range=value_range)
    through = header.get("through")
    if draw == "zones":
        from milp.enumeration.zones import merge_regions

        zones = content.zones or merge_regions(content.regions)
        if title is None:
            heading = f"{len(zones)} zone{'s' if len(zones) != 1 else ''} of " + heading
        plot_zones(zones, box, axes[-1], regions=content.regions, input_names=names, title=heading, legend=legend)
    else:
        plot_regions(content.regions, box, axes[-1], color_by, input_names=names, legend=legend, title=heading,
                     widths=widths, colors=colors, value_range=value_range, output_names=header.get("output_names"))
    if through is not None:
        for ax in axes:
            mark_points(ax, np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), through.get("labels") or ("a", "b", "c"))
    if samples is not None and title is None:
        figure.suptitle("left: sampled inputs     right: exact regions", fontsize=10)
    return figure

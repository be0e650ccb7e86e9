"""Pictures against independent truth: shoelace areas of the drawn polygons, forward passes, the brute-force
oracle, dense sampling, and the files written (PNG/SVG headers). ``milp plot`` itself: tests/cli/test_cli_plot.py;
slices: tests/core/test_slicing.py."""

from __future__ import annotations

import numpy as np
import pytest

import oracle
from importers import save_onnx
from milp import Box, parse_box, parse_conditions
from milp.core.network import Network
from milp.viz.plot import (
    PlotError,
    plot_latent_zones,
    plot_region_file,
    plot_regions,
    plot_samples,
    save_figure,
    shoelace_area,
)
from milp.enumeration.engines import regions
from milp.core.slicing import parse_slice, slice_network
from nets import chained_net, random_mlp, random_residual, un_relu_toy
from pictures import drawn_polygons, png_size


def forward_patterns(net: Network, x: np.ndarray) -> list[str]:
    return oracle.patterns(net, np.atleast_2d(x))


CASES = [
    ("toy", un_relu_toy(), parse_box("-5:5", 2)),
    ("chained", chained_net(1), parse_box("-6:6", 2)),
    ("residual", random_residual(np.random.default_rng(3), 2, 4, 2, 2), Box([-1.0, -2.0], [1.5, 1.0])),
]


# ------------------------------------------------------------------ coverage
@pytest.mark.parametrize("name,net,box", CASES, ids=[c[0] for c in CASES])
def test_drawn_polygons_tile_the_box(name, net, box):
    found = list(regions(net, box))
    ax = plot_regions(found, box)
    polygons = drawn_polygons(ax)
    assert len(polygons) == len(found)
    areas = [shoelace_area(p) for p in polygons]
    # each drawn polygon is its region's: its centroid has the region's pattern (independent forward pass)
    for polygon, region in zip(polygons, found):
        assert forward_patterns(net, polygon.mean(axis=0))[0] == region.pattern
    assert sum(areas) == pytest.approx(sum(r.volume for r in found), rel=1e-9)
    assert sum(areas) == pytest.approx(float(np.prod(box.widths)), rel=1e-9)
    # and the list is the oracle's (the 20-neuron chained blocks are left to the area check: the oracle is slow there)
    if net.neuron_count <= 12:
        assert {r.pattern for r in found} == set(oracle.enumerate_regions(net, box.lower, box.upper))


def test_drawn_area_with_a_condition_matches_sampling():
    net, box = un_relu_toy(), parse_box("-5:5", 2)
    found = list(regions(net, box, ["y[0] > 0"]))
    areas = [shoelace_area(p) for p in drawn_polygons(plot_regions(found, box))]
    assert sum(areas) == pytest.approx(sum(r.volume for r in found), rel=1e-9)
    x = np.random.default_rng(5).uniform(-5, 5, (40000, 2))
    fraction = np.mean(oracle.form_values(net, parse_conditions(net, ["y[0] > 0"])[0].expression, x) > 0)
    # 4 standard deviations of a binomial proportion
    assert abs(sum(areas) / 100.0 - fraction) < 4 * np.sqrt(0.25 / x.shape[0])


# ------------------------------------------------------------------ colours, legends, files
def test_color_by_layer_groups_and_legend():
    net, box = un_relu_toy(), parse_box("-5:5", 2)
    found = list(regions(net, box))
    ax = plot_regions(found, box, color_by="h0", widths=net.widths, legend=True)
    collection = [c for c in ax.collections if c.get_gid() == "regions"][0]
    colors = [tuple(c) for c in collection.get_facecolors()]
    sub = [r.pattern[:3] for r in found]
    for i in range(len(found)):
        for j in range(len(found)):
            assert (colors[i] == colors[j]) == (sub[i] == sub[j])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sorted(labels) == sorted(f"h0 = {s}" for s in set(sub))
    with pytest.raises(PlotError, match="widths"):
        plot_regions(found, box, color_by="h0")
    with pytest.raises(PlotError, match="no ReLU layer 5"):
        plot_regions(found, box, color_by="h5", widths=net.widths)
    with pytest.raises(PlotError, match="color-by"):
        plot_regions(found, box, color_by="colour")


def test_color_by_output_bands_span_the_exact_values():
    net, box = un_relu_toy(), parse_box("-5:5", 2)
    found = list(regions(net, box))
    ax = plot_regions(found, box, color_by="y")
    bands = [c for c in ax.collections if hasattr(c, "levels")]
    assert len(bands) == 1
    vertices = np.vstack([r.vertices for r in found])
    values = oracle.form_values(net, parse_conditions(net, ["y[0] >= 0"])[0].expression, vertices)
    assert bands[0].levels[0] == pytest.approx(values.min(), abs=1e-9)
    assert bands[0].levels[-1] == pytest.approx(values.max(), abs=1e-9)
    assert len(ax.figure.axes) == 2  # the colour bar


def test_png_and_svg_files(tmp_path):
    net, box = chained_net(0), parse_box("-6:6", 2)
    ax = plot_regions(regions(net, box), box, title="all regions")
    png = save_figure(ax, tmp_path / "sub" / "zones.png")
    width, height = png_size(png)
    assert 300 < width < 2000 and 300 < height < 2000
    assert 5_000 < png.stat().st_size < 1_000_000
    svg = save_figure(ax.figure, tmp_path / "zones.svg")
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text and text.count("<path") >= 100
    with pytest.raises(PlotError, match=r"\.png or \.svg"):
        save_figure(ax, tmp_path / "zones.jpg")


def test_samples_are_the_satisfying_points():
    net, box = un_relu_toy(), parse_box("-5:5", 2)
    ax = plot_samples(net, box, ["y[0] > 0"], 5000, seed=3)
    points = np.vstack([c.get_offsets() for c in ax.collections])
    x = box.lower + np.random.default_rng(3).random((5000, 2)) * box.widths  # the same generator, independently
    firing = x[oracle.form_values(net, parse_conditions(net, ["y[0] > 0"])[0].expression, x) > 0]
    assert points.shape == firing.shape
    assert np.allclose(np.sort(points, axis=0), np.sort(firing, axis=0))
    assert ax.get_title() == f"{len(firing)} of 5000 samples with y[0] > 0"


def test_pictures_need_two_free_inputs():
    net = random_mlp(np.random.default_rng(0), [3, 4, 1])
    box = Box([-1.0, -1.0, -1.0], [1.0, 1.0, 1.0])
    with pytest.raises(PlotError, match="exactly 2 free inputs"):
        plot_samples(net, box, (), 10)
    fixed = Box([-1.0, 0.25, -1.0], [1.0, 0.25, 1.0])
    found = list(regions(net, fixed))
    ax = plot_regions(found, fixed)  # two free inputs of three: drawn in x[0], x[2]
    assert ax.get_xlabel() == "x[0]" and ax.get_ylabel() == "x[2]"
    assert sum(shoelace_area(p) for p in drawn_polygons(ax)) == pytest.approx(4.0, rel=1e-9)


def test_latent_zones_are_labelled_by_active_features():
    angles = 2 * np.pi * np.arange(5) / 5
    W = np.column_stack([np.cos(angles), np.sin(angles)])
    b = np.full(5, -0.4)
    box = parse_box("-1.5:1.5", 2)
    ax = plot_latent_zones(W, b, box)
    truth = oracle.enumerate_regions(Network.mlp([(W, b)], output_relu=True), box.lower, box.upper)
    expected = {"{" + ", ".join(f"f{k}" for k, c in enumerate(p) if c == "1") + "}" if "1" in p else "none" for p in truth}
    labels = {t.get_text() for t in ax.get_legend().get_texts()}
    assert labels == expected
    assert len(drawn_polygons(ax)) == len(truth)
    with pytest.raises(PlotError, match=r"shape \(features, 2\)"):
        plot_latent_zones(W.T, b, box)


# ------------------------------------------------------------------ a sliced run's file
def test_region_file_of_a_sliced_run_is_sampled_on_its_plane(tmp_path):
    from milp.io.regionfiles import RegionWriter

    net = random_mlp(np.random.default_rng(6), [3, 5, 2])
    model = tmp_path / "three.onnx"
    save_onnx(net, model, dtype=np.float64)
    plane = parse_slice("x0=0,0,0.5 u=1,0,0 v=0,1,1", 3)
    flat = slice_network(net, plane.origin, plane.u, plane.v)
    box = parse_box("-1:1", 2)
    found = list(regions(flat, box, ["y[1] > 0"]))
    assert found
    header = {"model": str(model), "box": {"lower": box.lower.tolist(), "upper": box.upper.tolist()},
              "conditions": ["y[1] > 0"], "neurons": flat.neuron_count, "input_dim": 2, "output_dim": 2,
              "slice": plane.to_dict()}
    writer = RegionWriter(tmp_path / "sliced.json", header)
    for region in found:
        writer.add(region)
    writer.close(True, {})
    from importers import load_onnx

    figure = plot_region_file(tmp_path / "sliced.json", samples=2000, color_by="h0", legend=True, load_model=load_onnx)
    left, right = figure.axes[:2]
    assert (right.get_xlabel(), right.get_ylabel()) == ("s", "t")
    st = np.vstack([c.get_offsets() for c in left.collections])
    assert len(st) > 100
    # the points are plane coordinates where the original network's y[1] is positive
    assert np.all(net(plane.inputs(st))[:, 1] > 0)
    assert sum(shoelace_area(p) for p in drawn_polygons(right)) == pytest.approx(sum(r.volume for r in found), rel=1e-9)

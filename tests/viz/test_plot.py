"""Pictures and slices against independent truth: shoelace areas of the drawn polygons, forward passes,
the brute-force oracle, dense sampling, and the files written (PNG/SVG headers)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

import oracle
from importers import save_onnx
from milp import Box, parse_box, parse_conditions
from milp.cli import main as cli_main
from milp.cli.main import build_parser
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
from milp.core.slicing import Slice, SliceError, parse_slice, slice_network
from nets import random_mlp, random_residual
from test_queries import un_relu_toy
from test_regions import chained_net


def drawn_polygons(ax) -> list[np.ndarray]:
    """The polygons plot_regions put on ``ax`` (its PolyCollection with gid "regions")."""
    found = [c for c in ax.collections if c.get_gid() == "regions"]
    assert len(found) == 1
    return [path.vertices[:-1] if np.allclose(path.vertices[0], path.vertices[-1]) else path.vertices
            for path in found[0].get_paths()]


def png_size(path) -> tuple[int, int]:
    data = open(path, "rb").read(24)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


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


# ------------------------------------------------------------------ command line
@pytest.fixture
def milp_main(monkeypatch):
    """The real CLI (it registers the plot command itself)."""
    return cli_main


@pytest.fixture
def toy_zones(tmp_path, milp_main):
    model = tmp_path / "toy.onnx"
    save_onnx(un_relu_toy(), model, dtype=np.float64)
    zones = tmp_path / "zones.jsonl"
    assert milp_main(["regions", str(model), "--box", "-5:5", "--where", "y[0] > 0", "-o", str(zones), "--quiet"]) == 0
    return model, zones


def test_cli_plot_with_and_without_samples(toy_zones, milp_main, tmp_path, capsys):
    model, zones = toy_zones
    single, double = tmp_path / "one.png", tmp_path / "two.png"
    assert milp_main(["plot", str(zones), "-o", str(single)]) == 0
    assert milp_main(["plot", str(zones), "-o", str(double), "--samples", "3000", "--legend", "--title", "zones"]) == 0
    (w1, h1), (w2, h2) = png_size(single), png_size(double)
    assert w2 > 1.6 * w1 and abs(h1 - h2) < 0.2 * h1  # side by side
    assert milp_main(["plot", str(zones), "-o", str(tmp_path / "h.svg"), "--color-by", "h1", "--legend"]) == 0
    assert "<svg" in (tmp_path / "h.svg").read_text()
    # the two panels: the sampled points satisfy the file's condition, the polygons are the file's regions
    figure = plot_region_file(zones, samples=3000, load_model=lambda p: un_relu_toy())
    left, right = figure.axes[:2]
    points = np.vstack([c.get_offsets() for c in left.collections])
    assert len(points) > 1000
    assert np.all(oracle.form_values(un_relu_toy(), parse_conditions(un_relu_toy(), ["y[0] > 0"])[0].expression, points) > 0)
    expected = len(oracle.enumerate_regions(un_relu_toy(), [-5, -5], [5, 5], parse_conditions(un_relu_toy(), ["y[0] > 0"])))
    assert len(drawn_polygons(right)) == expected


def test_cli_plot_errors_are_one_line(toy_zones, milp_main, tmp_path, capsys):
    model, zones = toy_zones

    def error(argv) -> str:
        capsys.readouterr()
        assert milp_main(argv) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("milp: error:")
        return lines[0]

    assert "png or .svg" in error(["plot", str(zones), "-o", str(tmp_path / "x.gif")])
    assert "--color-by" in error(["plot", str(zones), "-o", str(tmp_path / "x.png"), "--color-by", "q"])
    assert "does not exist" in error(["plot", str(tmp_path / "none.jsonl"), "-o", str(tmp_path / "x.png")])
    model.rename(tmp_path / "moved.onnx")
    assert "needs the model" in error(["plot", str(zones), "-o", str(tmp_path / "x.png"), "--samples", "10"])
    assert milp_main(["plot", str(zones), "-o", str(tmp_path / "x.png"), "--samples", "10", "--model", str(tmp_path / "moved.onnx")]) == 0
    other = tmp_path / "other.onnx"
    save_onnx(chained_net(0), other, dtype=np.float64)
    assert "SHA-256" in error(["plot", str(zones), "-o", str(tmp_path / "x.png"), "--samples", "10", "--model", str(other)])
    # a 3-input region file
    net3 = tmp_path / "three.onnx"
    save_onnx(random_mlp(np.random.default_rng(1), [3, 4, 1]), net3, dtype=np.float64)
    zones3 = tmp_path / "three.jsonl"
    assert milp_main(["regions", str(net3), "--box", "-1:1", "-o", str(zones3), "--quiet"]) == 0
    assert "exactly 2 free inputs" in error(["plot", str(zones3), "-o", str(tmp_path / "x.png")])


def test_cli_registers_plot_and_the_header_names_the_axes(milp_main, tmp_path):
    assert "plot" in build_parser().format_help()
    net = Network.mlp([(np.array([[1.0, -1.0], [0.5, 2.0], [-1.0, 0.3]]), np.array([0.2, -0.1, 0.4])),
                       (np.array([[1.0, -2.0, 0.5]]), np.array([0.1]))], input_names=("speed", "angle"))
    model = tmp_path / "named.onnx"
    save_onnx(net, model, dtype=np.float64)
    zones = tmp_path / "named.jsonl"
    assert milp_main(["regions", str(model), "--box", "-2:2", "-o", str(zones), "--quiet"]) == 0
    header = json.loads(zones.read_text().splitlines()[0])
    assert header["input_names"] == ["speed", "angle"] and header["widths"] == [3]
    # the picture reads names and widths from the header alone: the model may be gone
    model.unlink()
    figure = plot_region_file(zones, color_by="h0", legend=True)
    ax = figure.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("speed", "angle")
    truth = oracle.enumerate_regions(net, [-2, -2], [2, 2])
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {f"h0 = {p}" for p in truth}
    assert sum(shoelace_area(p) for p in drawn_polygons(ax)) == pytest.approx(16.0, rel=1e-9)
    assert milp_main(["plot", str(zones), "-o", str(tmp_path / "named.svg"), "--color-by", "h0", "--legend"]) == 0
    svg = (tmp_path / "named.svg").read_text()
    assert "<svg" in svg and "speed" in svg


def test_readme_picture_commands_draw_the_committed_picture(milp_main, tmp_path, monkeypatch):
    """The README's two commands under "Pictures", run as typed, give examples/un_relu_toy.png byte for byte."""
    import shlex
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    text = (root / "README.md").read_text().split("## Pictures", 1)[1]
    block = text.split("```bash", 1)[1].split("```", 1)[0]
    commands = [shlex.split(line) for line in block.strip().splitlines()]
    assert [c[:2] for c in commands] == [["milp", "regions"], ["milp", "plot"]]
    (tmp_path / "examples").mkdir()
    shutil.copy(root / "examples" / "un_relu_toy.onnx", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    for command in commands:
        assert milp_main(command[1:]) == 0
    picture = commands[1][commands[1].index("-o") + 1]
    assert (tmp_path / picture).read_bytes() == (root / "examples" / "un_relu_toy.png").read_bytes()


# ------------------------------------------------------------------ slices
def test_cli_regions_on_a_slice(milp_main, tmp_path, capsys):
    rng = np.random.default_rng(9)
    net = random_mlp(rng, [4, 6, 5, 2])
    model = tmp_path / "four.onnx"
    save_onnx(net, model, dtype=np.float64)
    text = "x0=0.1,-0.2,0.3,0 u=1,0.5,0,0 v=0,0,1,-1"
    plane = parse_slice(text, 4)
    zones = tmp_path / "plane.json"
    argv = ["regions", str(model), "--slice", text, "--box", "-1.5:1.5", "--where", "y[0] > y[1]", "-o", str(zones), "--quiet"]
    assert milp_main(argv) == 0
    written = json.loads(zones.read_text())
    assert parse_slice(written["slice"], 4).to_dict() == plane.to_dict()
    assert written["input_dim"] == 2 and written["input_names"] == ["s", "t"]
    # independent truth: brute force on the plane, and the original network at the lifted points
    flat = slice_network(net, plane.origin, plane.u, plane.v)
    box = parse_box("-1.5:1.5", 2)
    truth = set(oracle.enumerate_regions(flat, box.lower, box.upper, parse_conditions(flat, ["y[0] > y[1]"])))
    assert {r["pattern"] for r in written["regions"]} == truth
    for r in written["regions"]:
        y = net(plane.inputs(np.array(r["interior_point"])))
        assert y[0] > y[1]
    figure = plot_region_file(zones, samples=2000, load_model=lambda p: __import__("importers").load_onnx(p))
    left, right = figure.axes[:2]
    assert (right.get_xlabel(), right.get_ylabel()) == ("s", "t")
    st = np.vstack([c.get_offsets() for c in left.collections])
    assert np.all(np.diff(net(plane.inputs(st)), axis=1)[:, 0] < 0)  # y[0] > y[1] at every sampled point
    area = sum(shoelace_area(p) for p in drawn_polygons(right))
    x = box.sample(20000, np.random.default_rng(1))
    y = net(plane.inputs(x))
    assert abs(area / 9.0 - np.mean(y[:, 0] > y[:, 1])) < 4 * np.sqrt(0.25 / 20000)
    assert milp_main(["plot", str(zones), "-o", str(tmp_path / "plane.png"), "--color-by", "h1", "--legend"]) == 0
    assert png_size(tmp_path / "plane.png")[0] > 300
    # resuming checks the plane; bad planes are one-line errors
    capsys.readouterr()
    other = ["regions", str(model), "--slice", "u=e0 v=e1", "--box", "-1.5:1.5", "--where", "y[0] > y[1]", "-o", str(zones), "--quiet"]
    assert milp_main([*other, "--resume"]) == 2
    assert "another slice" in capsys.readouterr().err
    assert milp_main([*argv, "--resume"]) == 0
    for bad, message in [("u=e0 v=e0", "parallel"), ("u=1,0 v=0,1", "4 inputs"), ("u=e0", "needs v")]:
        capsys.readouterr()
        assert milp_main(["regions", str(model), "--slice", bad, "--box", "-1:1", "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0]


def test_sliced_network_agrees_with_the_original_on_the_plane():
    rng = np.random.default_rng(11)
    net = random_residual(rng, 4, 5, 2, 3)
    plane = Slice(rng.normal(size=4), rng.normal(size=4), rng.normal(size=4))
    flat = slice_network(net, plane.origin, plane.u, plane.v)
    assert flat.input_dim == 2 and flat.widths == net.widths and flat.input_names == ("s", "t")
    st = rng.uniform(-2, 2, (3000, 2))
    x = plane.origin + st[:, :1] * plane.u + st[:, 1:] * plane.v  # lifted by hand
    original, sliced = net.forward(x), flat.forward(st)
    assert np.allclose(original.output, sliced.output, atol=1e-9)
    for z0, z1 in zip(original.pre_activations, sliced.pre_activations):
        assert np.allclose(z0, z1, atol=1e-9)
    assert oracle.patterns(net, x) == oracle.patterns(flat, st)


def test_regions_of_a_slice_are_the_original_regions_on_the_plane():
    rng = np.random.default_rng(4)
    net = random_mlp(rng, [4, 6, 5, 2])
    plane = parse_slice("x0=0.1,-0.2,0.3,0 u=1,0.5,0,0 v=0,0,1,-1", 4)
    flat = slice_network(net, plane.origin, plane.u, plane.v)
    box = parse_box("-1.5:1.5", 2)
    found = list(regions(flat, box, ["y[0] > y[1]"]))
    assert {r.pattern for r in found} == set(oracle.enumerate_regions(flat, box.lower, box.upper, parse_conditions(flat, ["y[0] > y[1]"])))
    by_pattern = {r.pattern: r for r in found}
    st = box.sample(4000, np.random.default_rng(2))
    x = plane.inputs(st)
    holds = oracle.form_values(net, parse_conditions(net, ["y[0] > y[1]"])[0].expression, x) > 0
    original_patterns = oracle.patterns(net, x)
    for point, pattern, ok in zip(st, original_patterns, holds):
        if ok:  # the original's pattern at the lifted point is a listed region of the slice, containing the point
            assert by_pattern[pattern].contains(point, tol=1e-9)
    for region in found:  # and each region's interior point has the region's pattern in the original
        assert oracle.patterns(net, plane.inputs(region.interior_point))[0] == region.pattern


def test_axis_aligned_slice_equals_fixing_the_other_inputs():
    net = random_mlp(np.random.default_rng(8), [3, 5, 4, 1])
    plane = parse_slice("x0=0,0.3,0 u=e0 v=e2", 3)
    flat = slice_network(net, plane.origin, plane.u, plane.v)
    fixed = Box([-1.0, 0.3, -2.0], [1.0, 0.3, 2.0])
    sliced = {r.pattern for r in regions(flat, Box([-1.0, -2.0], [1.0, 2.0]))}
    assert sliced == {r.pattern for r in regions(net, fixed)}
    assert sliced == set(oracle.enumerate_regions(net, fixed.lower, fixed.upper))


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


def test_parse_slice_forms_and_errors():
    plane = parse_slice("x0=1,2,3; u=1,0,0; v=0,1,0")
    assert plane.origin.tolist() == [1, 2, 3] and plane.u.tolist() == [1, 0, 0]
    assert parse_slice("u=e1 v=e2", 3).origin.tolist() == [0, 0, 0]
    assert parse_slice("origin=0,0 u=1,1 v=1,-1").v.tolist() == [1, -1]
    again = parse_slice(plane.to_text(), 3)
    assert np.array_equal(again.origin, plane.origin) and np.array_equal(again.v, plane.v)
    assert np.array_equal(parse_slice(json.loads(json.dumps(plane.to_dict()))).u, plane.u)
    for text, message in [
        ("u=1,0,0 v=2,0,0", "parallel"),
        ("u=1,0 v=0,1", "the network has 3 inputs"),
        ("u=e5 v=e0", "no input 5"),
        ("u=1,0,0", "needs v"),
        ("w=1,0,0 u=1,0,0 v=0,1,0", "slice part"),
        ("u=1,a,0 v=0,1,0", "comma-separated numbers"),
        ("", "empty slice"),
        ("u=1,0,0 u=0,1,0 v=0,0,1", "twice"),
    ]:
        with pytest.raises(SliceError, match=message):
            parse_slice(text, 3)
    with pytest.raises(SliceError, match="inputs"):
        slice_network(random_mlp(np.random.default_rng(0), [2, 3, 1]), [0, 0, 0], [1, 0, 0], [0, 1, 0])

"""``milp plot`` (and ``milp regions --slice``) as a user meets it: the pictures of region files, with and
without samples, one-line errors, the README's picture commands; checked by the drawn polygons' areas,
forward passes and the brute-force oracle."""

from __future__ import annotations

import json

import numpy as np
import pytest

import oracle
from importers import save_onnx
from milp import parse_box, parse_conditions
from milp.cli import main as cli_main
from milp.cli.main import build_parser
from milp.core.network import Network
from milp.core.slicing import parse_slice, slice_network
from milp.viz.plot import plot_region_file, shoelace_area
from nets import chained_net, random_mlp, un_relu_toy
from pictures import drawn_polygons, png_size


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

    root = Path(__file__).resolve().parents[2]
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

"""``--through``: planes through three given inputs, and ``--color-by argmax``: regions cut by predicted class.

Truth comes from forward passes of the original (unsliced) network at the inputs ``a + s (b - a) + t (c - a)``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from importers import save_onnx
from milp.cli.main import main
from milp.core.slicing import SliceError, plane_through
from milp.enumeration.zones import decision_pieces
from milp.io.points import parse_through
from milp.io.regionfiles import read_region_file
from nets import random_mlp


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("through")
    net = random_mlp(np.random.default_rng(4), [5, 8, 8, 3])
    path = folder / "net.onnx"
    save_onnx(net, path)
    points = np.random.default_rng(1).uniform(-1, 1, (6, 5))
    np.save(folder / "points.npy", points)
    np.savetxt(folder / "points.csv", points, delimiter=",")
    return net, path, folder, points


def test_the_plane_through_three_rows_of_a_file(model, capsys):
    net, path, folder, points = model
    for spec in (f"{folder / 'points.npy'}:1,3,4", f"{folder / 'points.csv'}:1,3,4",
                 ";".join(",".join(repr(float(v)) for v in points[k]) for k in (1, 3, 4))):
        through = parse_through(spec, 5)
        a, b, c = points[[1, 3, 4]]
        assert np.allclose(through.plane.inputs(np.array([[0, 0], [1, 0], [0, 1]])), [a, b, c], atol=1e-12)
    out = folder / "plane.jsonl"
    assert main(["regions", str(path), "--through", f"{folder / 'points.npy'}:1,3,4", "-o", str(out), "--quiet", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    content = read_region_file(out)
    assert summary["regions"] == len(content.regions) > 1 and content.complete
    assert content.header["box"] == {"lower": [-0.25, -0.25], "upper": [1.25, 1.25]}  # the default box shows all three
    assert content.header["through"]["labels"] == ["row 1", "row 3", "row 4"]
    # every sampled (s, t) lies in the region of the original network's pattern at a + s u + t v
    plane = plane_through(*points[[1, 3, 4]])
    st = np.random.default_rng(2).uniform(-0.25, 1.25, (3000, 2))
    patterns = net.forward(plane.inputs(st)).pattern()
    listed = {r.pattern: r for r in content.regions}
    for point, bits in zip(st, patterns):
        key = "".join("1" if b else "0" for b in bits)
        assert listed[key].contains(point, tol=1e-9)
    # the argmax colouring: the class of the piece that holds a sample is the original network's argmax there
    pieces = decision_pieces(content.regions)
    y = net(plane.inputs(st))
    classes = np.argmax(y, axis=1)
    top2 = np.sort(y, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-6  # not on a decision boundary
    for point, k in zip(st[clear], classes[clear]):
        holding = [p.label for p in pieces if np.all(p.A @ point <= p.b + 1e-9)]
        assert holding and set(holding) == {k}
    assert len({p.label for p in pieces}) > 1  # the plane crosses a decision boundary: the test can fail
    picture = folder / "plane.png"
    assert main(["plot", str(out), "-o", str(picture), "--color-by", "argmax"]) == 0
    assert picture.stat().st_size > 5000


@pytest.mark.parametrize("spec,words", [
    ("nowhere.npy:0,1,2", "does not exist"),
    ("{folder}/points.npy:0,1", "three rows"),
    ("{folder}/points.npy:0,1,99", "no row 99"),
    ("{folder}/points.npy", "has 6 rows"),
    ("1,2;3,4;5,6", "2 values"),
    ("1,2,3,4,5;1,2,3,4,5;0,0,0,0,0", "one line"),
    ("1,2,3,4,5;x,2,3,4,5;0,0,0,0,0", "comma-separated"),
])
def test_bad_through_specs_are_one_line_and_exit_2(model, capsys, spec, words):
    _, path, folder, _ = model
    code = main(["regions", str(path), "--through", spec.format(folder=folder), "--quiet"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.count("\n") == 1 and words in captured.err


def test_slice_and_through_together_are_refused(model, capsys):
    _, path, folder, _ = model
    code = main(["regions", str(path), "--through", f"{folder / 'points.npy'}:0,1,2", "--slice", "u=e0 v=e1", "--quiet"])
    assert code == 2 and "one of them" in capsys.readouterr().err


def test_collinear_points_are_refused():
    with pytest.raises(SliceError):
        plane_through([0, 0], [1, 1], [2, 2])

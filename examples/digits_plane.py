"""The exact decision regions of a trained digits classifier on the plane through three real test digits.

``digits_mlp.onnx`` (beside this file, made by ``digits_model.py``) is a 64 -> 128 -> 128 -> 10 ReLU MLP
trained on scikit-learn's 8x8 digits, pixels scaled to [0, 1]. Three test images of different classes
(a 3, a 5 and an 8, the three closest together among the first correctly classified ones)
``a``, ``b``, ``c`` span the plane ``x = a + s (b - a) + t (c - a)`` of the 64-pixel input space: the images
sit at ``(s, t) = (0, 0), (1, 0), (0, 1)``, and the box ``[-0.25, 1.25]^2`` shows them with a margin. On
that plane the network is piecewise affine; every linear region is listed exactly, and each is
coloured by the class the network predicts there, cut exactly where the prediction changes (the
cells ``y[k] >= y[j]`` of its affine output). The picture is the exact map of the classifier's
decisions between the three digits; the three images are marked with their labels.

Run ``python examples/digits_plane.py`` (some 1,300 regions, about 15 s on one core); it writes
``digits_plane.png`` beside itself and ``output/digits_plane.jsonl`` and ``output/digits_points.npy``. The
same from the command line::

    milp regions examples/digits_mlp.onnx --through output/digits_points.npy:0,1,2 -o plane.jsonl
    milp plot plane.jsonl -o plane.png --color-by argmax
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np

from importers import load_onnx
from milp import parse_box, regions
from milp.core.slicing import THROUGH_BOX, plane_through, slice_network
from milp.enumeration.zones import decision_pieces
from milp.io.regionfiles import RegionWriter
from milp.viz.plot import plot_region_file, save_figure

HERE = Path(__file__).resolve().parent
MODEL = HERE / "digits_mlp.onnx"
CLASSES = (3, 5, 8)  # digits the network could confuse: the plane runs between three of them
CANDIDATES = 15  # the first correctly classified test images of each class that are considered


def test_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The held-out images of ``digits_model.py``'s split: ``(x (n, 64), labels (n,), indices into the data (n,))``."""
    from sklearn.model_selection import train_test_split

    spec = importlib.util.spec_from_file_location("digits_model", HERE / "digits_model.py")
    digits_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(digits_model)
    x, labels = digits_model.digits()
    SEED = digits_model.SEED
    index = np.arange(len(labels))
    _, x_test, _, y_test, _, i_test = train_test_split(x, labels, index, test_size=0.25, random_state=SEED)
    return x_test, y_test, i_test


def pick(x: np.ndarray, labels: np.ndarray, predicted: np.ndarray) -> list[int]:
    """Positions in the test set of one image of each class in :data:`CLASSES`: among the first
    :data:`CANDIDATES` correctly classified images of each class, the three closest together (the
    smallest perimeter), so that the plane between them is where the classes meet."""
    import itertools

    candidates = [np.flatnonzero((labels == k) & (predicted == k))[:CANDIDATES] for k in CLASSES]
    perimeter = lambda t: sum(np.linalg.norm(x[i] - x[j]) for i, j in itertools.combinations(t, 2))  # noqa: E731
    return [int(i) for i in min(itertools.product(*candidates), key=perimeter)]


def main(out_dir=None) -> dict:
    """List the regions on the plane, colour them by predicted class, draw; returns the printed counts."""
    out = Path(out_dir) if out_dir is not None else HERE
    network = load_onnx(MODEL)
    x_test, y_test, i_test = test_digits()
    chosen = pick(x_test, y_test, np.argmax(network(x_test), axis=1))
    points = x_test[chosen]
    labels = [f"digit {y_test[k]} (image {i_test[k]})" for k in chosen]
    predicted = np.argmax(network(points), axis=1)
    plane = plane_through(*points)
    flat = slice_network(network, plane.origin, plane.u, plane.v)
    box = parse_box(THROUGH_BOX, 2)
    search = regions(flat, box)
    found = list(search)
    pieces = decision_pieces(found)
    classes = sorted({p.label for p in pieces})
    cut = len({p.pattern for p in pieces if sum(q.pattern == p.pattern for q in pieces) > 1})
    area = {k: sum(_area(p.vertices) for p in pieces if p.label == k) for k in classes}
    print(f"plane through test images {[int(i_test[k]) for k in chosen]} (digits {[int(y_test[k]) for k in chosen]}), "
          f"predicted {predicted.tolist()}; s, t in {THROUGH_BOX}")
    print(f"{len(found)} regions ({'complete' if search.complete else 'INCOMPLETE'} list, {search.stats.thin_regions} thin); "
          f"{cut} of them cut where the predicted class changes, {len(pieces)} decision pieces")
    print("area of the square [-0.25, 1.25]^2 (2.25) by predicted digit: "
          + ", ".join(f"{k}: {area[k]:.4f}" for k in classes))

    (out / "output").mkdir(parents=True, exist_ok=True)
    np.save(out / "output" / "digits_points.npy", points)
    region_file = out / "output" / "digits_plane.jsonl"
    header = {
        "model": str(MODEL),
        "model_sha256": hashlib.sha256(MODEL.read_bytes()).hexdigest(),
        "box": {"lower": box.lower.tolist(), "upper": box.upper.tolist()},
        "conditions": [],
        "neurons": flat.neuron_count,
        "widths": list(flat.widths),
        "input_dim": 2,
        "output_dim": flat.output_dim,
        "method": "tree",
        "tolerance": 1e-7,
        "input_names": ["s", "t"],
        "output_names": [f"digit {k}" for k in range(flat.output_dim)],
        "slice": plane.to_dict(),
        "through": {"points": points.tolist(), "labels": labels},
    }
    writer = RegionWriter(region_file, header)
    for region in found:
        writer.add(region)
    writer.close(search.complete, search.stats_dict())
    # what `milp plot output/digits_plane.jsonl -o digits_plane.png --color-by argmax` draws
    figure = plot_region_file(region_file, color_by="argmax",
                              title=f"{len(found)} exact regions on the plane through three test digits, by predicted class")
    picture = save_figure(figure, out / "digits_plane.png", dpi=72)  # 1,300 outlines: 72 dpi keeps the file small
    print(f"written: {picture} and {region_file}")
    return {
        "regions": len(found),
        "complete": search.complete,
        "pieces": len(pieces),
        "cut_regions": cut,
        "classes": classes,
        "area": area,
        "chosen": [int(i_test[k]) for k in chosen],
        "labels": [int(y_test[k]) for k in chosen],
        "predicted": predicted.tolist(),
        "region_file": region_file,
        "plane": plane,
    }


def _area(vertices) -> float:
    x, y = vertices[:, 0], vertices[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


if __name__ == "__main__":
    main()

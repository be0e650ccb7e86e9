"""The design notes' "un-ReLU" toy: where must x be for the first output feature to fire?

The network (``un_relu_toy.onnx`` beside this file) is ``f(x) = relu(U D relu(W x + b_W) + b_U)``
with ``W = U`` three unit vectors 120 degrees apart, ``b_W = -0.5``, ``b_U = -0.3`` and
``D = 0.5 [[1/2, 1/2, -sqrt(3)/2], [sqrt(3)/2, -sqrt(3)/2, 0]]``: 2 -> 3 -> 2 -> 3. The notes
walk the condition ``h_1 > 0`` (here ``y[0] > 0``) back through both ReLUs by hand and check
the result against 10,000 samples of ``[-5, 5]^2``. Here the exact zones come from the region
enumeration, and the picture puts the samples (left) beside them (right), as in the notes.

Run ``python examples/un_relu_toy.py``; it writes ``un_relu_toy.png`` beside itself and the
region file ``output/un_relu_toy.jsonl``. The same picture from the command line::

    milp regions examples/un_relu_toy.onnx --box -5:5 --where "y[0] > 0" -o zones.jsonl
    milp plot zones.jsonl -o zones.png --samples 10000
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from importers import load_onnx
from milp import merge_regions, parse_box, regions
from milp.io.regionfiles import RegionWriter
from milp.viz.plot import plot_region_file, sample_points, save_figure

HERE = Path(__file__).resolve().parent
MODEL = HERE / "un_relu_toy.onnx"
BOX = "-5:5"
CONDITION = "y[0] > 0"
SAMPLES = 10_000


def write_region_file(path: Path, network, box, conditions, found, complete: bool, stats: dict) -> None:
    """The region file ``milp regions -o`` would write for the same run."""
    header = {
        "model": str(MODEL),
        "model_sha256": hashlib.sha256(MODEL.read_bytes()).hexdigest(),
        "box": {"lower": box.lower.tolist(), "upper": box.upper.tolist()},
        "conditions": list(conditions),
        "neurons": network.neuron_count,
        "widths": list(network.widths),
        "input_dim": network.input_dim,
        "output_dim": network.output_dim,
        "method": "tree",
        "tolerance": 1e-7,
    }
    writer = RegionWriter(path, header)
    for region in found:
        writer.add(region)
    writer.close(complete, stats)


def main(out_dir=None, samples: int = SAMPLES) -> dict:
    """Enumerate the zones, compare with samples, draw the picture; returns the printed counts."""
    out = Path(out_dir) if out_dir is not None else HERE
    network = load_onnx(MODEL)
    box = parse_box(BOX, network.input_dim)

    search = regions(network, box, [CONDITION])
    zones = list(search)
    every = regions(network, box)
    all_regions = list(every)
    area = sum(z.volume for z in zones)
    print(f"{len(zones)} regions of [-5,5]^2 where {CONDITION} ({'complete' if search.complete else 'INCOMPLETE'} list), "
          f"total area {area:.4f} of {np.prod(box.widths):g}")
    print(f"{len(all_regions)} activation regions in the whole box (their areas add up to {sum(r.volume for r in all_regions):.6g})")
    for z in sorted(zones, key=lambda z: -z.volume):
        print(f"  pattern {z.pattern}  area {z.volume:8.4f}  {len(z.vertices)} vertices  interior point {np.round(z.interior_point, 3).tolist()}")
    merged = merge_regions(zones)  # the fewest convex pieces greedy merging of neighbours finds
    print(f"the {len(zones)} regions merge into {len(merged)} convex zones: "
          + "; ".join(f"{' + '.join(m.patterns)}" for m in merged))

    # The notes' check: sample the box, keep the points where the feature fires.
    firing = sample_points(network, box, [CONDITION], samples, seed=0)
    listed = {z.pattern for z in zones}
    patterns = ["".join("1" if b else "0" for b in row) for row in network.forward(firing).pattern()] if len(firing) else []
    inside = sum(p in listed for p in patterns)
    print(f"{len(firing)} of {samples} samples fire ({len(firing) / samples:.1%}; the exact regions cover {area / np.prod(box.widths):.1%}); "
          f"{inside} of them lie in a listed region")

    region_file = out / "output" / "un_relu_toy.jsonl"
    region_file.parent.mkdir(parents=True, exist_ok=True)
    write_region_file(region_file, network, box, [CONDITION], zones, search.complete, search.stats_dict())
    # exactly what `milp plot output/un_relu_toy.jsonl -o un_relu_toy.png --samples 10000` draws
    figure = plot_region_file(region_file, samples=samples, load_model=load_onnx)
    picture = save_figure(figure, out / "un_relu_toy.png")
    print(f"written: {picture} and {region_file}")
    return {
        "regions": len(zones),
        "zones": len(merged),
        "zone_patterns": [list(m.patterns) for m in merged],
        "zone_vertices": [m.vertices for m in merged],
        "all_regions": len(all_regions),
        "area": area,
        "samples": samples,
        "firing_samples": int(len(firing)),
        "samples_in_zones": int(inside),
    }


if __name__ == "__main__":
    main()

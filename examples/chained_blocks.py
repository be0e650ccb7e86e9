"""Chained blocks: a feature that fires only far from where one would sample.

Two up-projection / ReLU / down-projection blocks as in the design notes' chained latent
spaces: ``x (2) -> relu(U1 x + b1) (10) -> D (2) -> relu(U2 . + b2) (10) = y``. Weights are
random normals; the example walks seeds 0, 1, 2, ... and takes the first network whose output
feature ``y[0]`` provably never fires in ``[-4, 4]^2`` but does fire somewhere in ``[-6, 6]^2``
(both decided exactly by :func:`milp.search.queries.fires`). Then it shows the two sides:

* sampling 20,000 points of ``[-4, 4]^2`` finds no firing input (and cannot: the MILP proved it),
  so someone probing the usual range would call ``y[0]`` a dead feature;
* the exact region list over ``[-6, 6]^2`` finds its islands, each a polygon that does not meet
  ``[-4, 4]^2`` (the distance is computed by an LP per island).

Run ``python examples/chained_blocks.py``; it writes ``chained_blocks.png`` beside itself and
``output/chained_blocks.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.optimize import linprog

from milp import Network, fires, merge_regions, parse_box, regions
from milp.viz.plot import new_figure, plot_regions, save_figure

HERE = Path(__file__).resolve().parent
INNER, OUTER = "-4:4", "-6:6"
CONDITION = "y[0] > 0"
SAMPLES = 20_000


def build(seed: int) -> Network:
    """The chained blocks for one seed: 2 -> 10 -> (2) -> 10 with a ReLU output (the down-projection
    ``D`` is composed into the second up-projection, as the network form does for any linear layers)."""
    rng = np.random.default_rng(seed)
    up1, b1 = rng.standard_normal((10, 2)), rng.standard_normal(10) * 0.5
    down = rng.standard_normal((2, 10)) / 3
    up2, b2 = rng.standard_normal((10, 2)), rng.standard_normal(10)
    return Network.mlp([(up1, b1), (up2 @ down, b2)], output_relu=True)


def find_seed(first: int = 0, last: int = 500) -> int:
    """The first seed whose ``y[0]`` never fires in the inner box but fires in the outer one (exact).

    A firing sample of the inner box already rules a seed out (it is a checked witness); the
    remaining seeds are decided by two exact ``fires`` queries.
    """
    inner, outer = parse_box(INNER, 2), parse_box(OUTER, 2)
    probe = inner.sample(2000, np.random.default_rng(1))
    for seed in range(first, last):
        network = build(seed)
        if np.any(network(probe)[:, 0] > 0):
            continue
        if fires(network, inner, 1, 0).status == "never" and fires(network, outer, 1, 0).status == "fires":
            return seed
    raise RuntimeError(f"no seed in {first}..{last - 1} has an island outside {INNER}")


def sup_norm_distance(region) -> float:
    """``min ||x||_inf`` over the region's polygon (an LP): above 4 means it does not meet ``[-4, 4]^2``."""
    d = region.dim
    # variables (x, r): minimise r subject to A x <= b and -r <= x_i <= r
    A = np.block([[region.A, np.zeros((region.A.shape[0], 1))],
                  [np.eye(d), -np.ones((d, 1))],
                  [-np.eye(d), -np.ones((d, 1))]])
    b = np.concatenate([region.b, np.zeros(2 * d)])
    result = linprog(np.r_[np.zeros(d), 1.0], A_ub=A, b_ub=b, bounds=[(None, None)] * (d + 1), method="highs")
    if result.status != 0:
        raise RuntimeError(f"distance LP failed for region {region.pattern}: {result.message}")
    return float(result.fun)


def main(out_dir=None, samples: int = SAMPLES) -> dict:
    """Find the seed, compare sampling with the exact regions, draw; returns the printed counts."""
    out = Path(out_dir) if out_dir is not None else HERE
    inner, outer = parse_box(INNER, 2), parse_box(OUTER, 2)
    seed = find_seed()
    network = build(seed)
    print(f"seed {seed}: y[0] never fires in [-4,4]^2 (proved) but fires in [-6,6]^2 (checked witness)")

    inner_x = inner.sample(samples, np.random.default_rng(0))
    inner_firing = int(np.sum(network(inner_x)[:, 0] > 0))
    outer_x = outer.sample(samples, np.random.default_rng(0))
    outer_firing = int(np.sum(network(outer_x)[:, 0] > 0))
    print(f"sampling: {inner_firing} of {samples} points of [-4,4]^2 fire; {outer_firing} of {samples} points of [-6,6]^2 fire")

    search = regions(network, outer, [CONDITION])
    islands = list(search)
    inner_islands = list(regions(network, inner, [CONDITION]))
    everything = list(regions(network, outer))
    distances = [sup_norm_distance(r) for r in islands]
    area = sum(r.volume for r in islands)
    print(f"exact: {len(islands)} regions of [-6,6]^2 where {CONDITION} ({'complete' if search.complete else 'INCOMPLETE'}), "
          f"total area {area:.4f} ({area / np.prod(outer.widths):.2%} of the box); {len(inner_islands)} in [-4,4]^2; "
          f"{len(everything)} activation regions in all")
    zones = merge_regions(islands)
    print(f"the {len(islands)} firing regions merge into {len(zones)} convex zones")
    outside = sum(d > 4 for d in distances)
    print(f"{outside} of the {len(islands)} firing regions do not meet [-4,4]^2; the nearest point of any is at "
          f"||x||_inf = {min(distances):.4f}")
    for r, dist in sorted(zip(islands, distances), key=lambda p: p[1]):
        print(f"  pattern {r.pattern}  area {r.volume:.4f}  ||x||_inf >= {dist:.4f}  interior point {np.round(r.interior_point, 3).tolist()}")

    figure, (left, right) = new_figure(2, size=(5.0, 4.6))
    left.scatter(inner_x[:, 0], inner_x[:, 1], s=0.6, c="0.6", linewidths=0, rasterized=True)
    _frame_outer(left, inner, outer)
    left.set_title(f"sampling [-4,4]$^2$: {inner_firing} of {samples} points with {CONDITION}", fontsize=10)
    plot_regions(everything, outer, right, facecolor="white", edgecolor="0.75", linewidth=0.4)
    plot_regions(islands, outer, right, facecolor="crimson", edgecolor="black", linewidth=0.6)
    _frame_outer(right, inner, outer)
    right.set_title(f"exact: {len(islands)} regions with {CONDITION}, all outside [-4,4]$^2$" if outside == len(islands)
                    else f"exact: {len(islands)} regions with {CONDITION}", fontsize=10)
    picture = save_figure(figure, out / "chained_blocks.png")

    result = {
        "seed": seed,
        "regions": len(everything),
        "firing_regions": len(islands),
        "firing_zones": len(zones),
        "zone_area": sum(_polygon_area(z.vertices) for z in zones),
        "firing_regions_outside_inner": outside,
        "inner_firing_regions": len(inner_islands),
        "firing_area": area,
        "nearest_sup_norm": min(distances),
        "samples": samples,
        "inner_firing_samples": inner_firing,
        "outer_firing_samples": outer_firing,
    }
    summary = out / "output" / "chained_blocks.json"
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(json.dumps({**result, "islands": [r.to_dict() for r in islands]}, indent=1))
    print(f"written: {picture} and {summary}")
    return result


def _polygon_area(vertices) -> float:
    x, y = vertices[:, 0], vertices[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _frame_outer(ax, inner, outer) -> None:
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle(inner.lower, *inner.widths, fill=False, edgecolor="royalblue", linestyle="--", linewidth=1.2, zorder=6))
    ax.add_patch(Rectangle(outer.lower, *outer.widths, fill=False, edgecolor="black", linewidth=1.0, zorder=6))
    pad = 0.03 * outer.widths
    ax.set_xlim(outer.lower[0] - pad[0], outer.upper[0] + pad[0])
    ax.set_ylim(outer.lower[1] - pad[1], outer.upper[1] + pad[1])
    ax.set_aspect("equal")
    ax.set_xlabel("x[0]")
    ax.set_ylabel("x[1]")


if __name__ == "__main__":
    main()

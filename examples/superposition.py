"""Latent zones of the superposition toy: 6 features in a 2-D latent space.

The ReLU toy autoencoder of the design notes, ``y = relu(W^T W x + b)`` with ``n = 6`` features
and ``m = 2`` latent dimensions, at its symmetric solution: the columns of ``W`` are unit
vectors on a wheel (angles ``2 pi k / 6``) and the bias is negative (``-0.6``, just past
``-cos(2 pi / 6) = -0.5``, so a feature's own latent vector silences its neighbours).

The question lives in the latent space: the network ``h -> relu(W^T h + b)`` on a 2-D latent
``h`` in the box ``[-1.2, 1.2]^2``. Can each feature fire (:func:`milp.search.queries.fires`, exact), and
where? As in the notes, the latent space drawn is the hexagon spanned by the feature vectors
(the columns of ``W``), given to the enumeration as six linear conditions. The latent zones
are the regions of this one-layer network there, each labelled by the set of features that
fire; the zones where exactly one feature fires are where the notes'
"unique single positive value" holds, and each feature's own latent vector ``W e_k`` lies in
its own such zone (so ``e_k`` is reconstructed without interference).

Run ``python examples/superposition.py``; it writes ``superposition.png`` beside itself and
``output/superposition.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from milp import Network, fires, parse_box, reach, region_containing, regions
from milp.viz.plot import new_figure, plot_latent_zones, save_figure

HERE = Path(__file__).resolve().parent
FEATURES = 6
BIAS = -0.6
LATENT_BOX = "-1.2:1.2"


def wheel(features: int = FEATURES) -> np.ndarray:
    """``W`` of shape ``(2, features)``: unit columns at angles ``2 pi k / features``."""
    angles = 2 * np.pi * np.arange(features) / features
    return np.vstack([np.cos(angles), np.sin(angles)])


def decoder(W: np.ndarray, bias: float = BIAS) -> Network:
    """The latent-space network ``h -> relu(W^T h + b)``: 2 inputs, one ReLU layer of features."""
    return Network.mlp([(W.T, np.full(W.shape[1], bias))], output_relu=True,
                       input_names=("h[0]", "h[1]"), output_names=tuple(f"f{k}" for k in range(W.shape[1])))


def hexagon(features: int = FEATURES) -> list[str]:
    """The polygon whose corners are the feature vectors, as conditions ``n_j . h <= apothem`` on ``x[0], x[1]``."""
    half = np.pi / features
    apothem = float(np.cos(half))
    texts = []
    for j in range(features):
        c, s = float(np.cos(2 * half * j + half)), float(np.sin(2 * half * j + half))
        texts.append(f"{c!r}*x[0] + {s!r}*x[1] <= {apothem!r}")
    return texts


def active_set(pattern: str) -> str:
    names = [f"f{k}" for k, c in enumerate(pattern) if c == "1"]
    return "{" + ", ".join(names) + "}" if names else "none"


def main(out_dir=None) -> dict:
    """Ask where each feature fires in the latent box; returns the printed counts."""
    out = Path(out_dir) if out_dir is not None else HERE
    W = wheel()
    network = decoder(W)
    box = parse_box(LATENT_BOX, 2)

    firing, in_hexagon = [], []
    for k in range(FEATURES):
        result = fires(network, box, 0, k)
        firing.append(result.status == "fires")
        inside = reach(network, box, [*hexagon(), f"z0[{k}] > 0"])
        in_hexagon.append(inside.status == "sat")
        print(f"feature f{k}: {result.status} in [-1.2,1.2]^2 (max pre-activation {result.maximum:.4f} at h = "
              f"{np.round(result.witness, 4).tolist()}); in the hexagon: {inside.status}"
              + (f" (h = {np.round(inside.witness, 4).tolist()})" if inside.witness is not None else ""))

    search = regions(network, box, hexagon())
    zones = list(search)
    single = [z for z in zones if z.pattern.count("1") == 1]
    silent = [z for z in zones if "1" not in z.pattern]
    print(f"{len(zones)} latent zones in the hexagon of the features ({'complete' if search.complete else 'INCOMPLETE'}); "
          f"{len(single)} where exactly one feature fires; the silent zone has area {sum(z.volume for z in silent):.4f}")
    for z in sorted(zones, key=lambda z: (z.pattern.count("1"), z.pattern[::-1])):
        print(f"  {active_set(z.pattern):16s} area {z.volume:.4f}")

    clean = 0
    for k in range(FEATURES):
        zone = region_containing(network, box, W[:, k] * (1 - 1e-9), hexagon())  # a corner of the hexagon, nudged inside
        reconstruction = network(W[:, k])
        only_k = zone is not None and zone.pattern == "".join("1" if j == k else "0" for j in range(FEATURES))
        clean += only_k
        print(f"  W e_{k} = {np.round(W[:, k], 3).tolist()} lies in zone {active_set(zone.pattern) if zone else 'boundary'}; "
              f"relu(W^T W e_{k} + b) = {np.round(reconstruction, 3).tolist()}")
    print(f"{clean} of {FEATURES} features are reconstructed alone (their latent vector is in their own single-feature zone)")

    figure, (ax,) = new_figure(1, size=(6.4, 4.8))
    plot_latent_zones(W.T, np.full(FEATURES, BIAS), box, ax, zones=zones, where=hexagon(),
                      title=f"latent zones of relu(W$^T$h + b): {FEATURES} features, b = {BIAS}")
    picture = save_figure(figure, out / "superposition.png")

    result = {
        "zones": len(zones),
        "single_feature_zones": len(single),
        "features_firing": int(sum(firing)),
        "features_firing_in_hexagon": int(sum(in_hexagon)),
        "clean_features": int(clean),
    }
    summary = out / "output" / "superposition.json"
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(json.dumps({**result, "zone_list": [{"features": active_set(z.pattern), **z.to_dict()} for z in zones]}, indent=1))
    print(f"written: {picture} and {summary}")
    return result


if __name__ == "__main__":
    main()

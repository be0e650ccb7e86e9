"""A small torch network trained on a 2-D task, then asked exact questions.

Trains ``2 -> 16 -> 16 -> 1`` (ReLU) for a few seconds on two interleaved half-moons (fixed
seed, full-batch Adam), imports it with :func:`importers.from_torch` (checked against torch),
and asks over the box ``[-2.5, 2.5]^2``:

* which of the 32 hidden neurons can fire at all (:func:`milp.search.queries.fires`; a neuron that
  never fires is dead weight over the whole box, not just on the data);
* the exact range of the logit ``y[0]`` (:func:`milp.search.queries.output_range`);
* every activation region, and the regions where the network says "upper moon" (``y[0] > 0``).

Run ``python examples/torch_trained.py``; it writes ``torch_trained.png`` beside itself and the
region file ``output/torch_trained.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from importers import from_torch
from milp import fires, output_range, parse_box, regions
from milp.viz.plot import new_figure, plot_regions, save_figure

HERE = Path(__file__).resolve().parent
BOX = "-2.5:2.5"
CONDITION = "y[0] > 0"
SEED = 0


def moons(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half-circles with noise, centred on the origin: ``x (n, 2)``, labels ``(n,)`` in {0, 1}."""
    half = n // 2
    a = rng.uniform(0, np.pi, half)
    b = rng.uniform(0, np.pi, n - half)
    upper = np.column_stack([np.cos(a), np.sin(a)])
    lower = np.column_stack([1 - np.cos(b), 0.5 - np.sin(b)])
    x = np.vstack([upper, lower]) - np.array([0.5, 0.25])
    x += rng.normal(0, 0.12, x.shape)
    return x * 1.4, np.r_[np.ones(half), np.zeros(n - half)]


def train(seed: int = SEED, steps: int = 600):
    """The trained torch module and its data: ``(module, x, labels, accuracy)``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is faster and repeatable
    try:
        return _train(torch, seed, steps)
    finally:
        torch.set_num_threads(threads)


def _train(torch, seed: int, steps: int):
    torch.manual_seed(seed)
    x, labels = moons(400, np.random.default_rng(seed))
    model = torch.nn.Sequential(
        torch.nn.Linear(2, 16), torch.nn.ReLU(),
        torch.nn.Linear(16, 16), torch.nn.ReLU(),
        torch.nn.Linear(16, 1),
    )
    inputs = torch.tensor(x, dtype=torch.float32)
    targets = torch.tensor(labels, dtype=torch.float32)[:, None]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = float(((model(inputs) > 0).float() == targets).float().mean())
    return model.eval(), x, labels, accuracy


def main(out_dir=None) -> dict:
    """Train, import, query, plot; returns the printed counts (and, under ``"network"``, the imported network)."""
    out = Path(out_dir) if out_dir is not None else HERE
    model, x, labels, accuracy = train()
    box = parse_box(BOX, 2)
    network = from_torch(model, input_dim=2, box=box)
    print(f"trained 2-16-16-1 on {len(x)} points (seed {SEED}): training accuracy {accuracy:.1%}")

    dead = []
    for layer, width in enumerate(network.widths):
        for neuron in range(width):
            if fires(network, box, layer, neuron).status == "never":
                dead.append((layer, neuron))
    print(f"{network.neuron_count - len(dead)} of {network.neuron_count} hidden neurons can fire somewhere in [-2.5,2.5]^2; "
          f"never: {', '.join(f'h{l}[{k}]' for l, k in dead) or 'none'}")

    logit = output_range(network, box, [0]).outputs[0]
    print(f"logit y[0] over the box: exact range [{logit.min:.4f}, {logit.max:.4f}], "
          f"min at {np.round(logit.argmin, 4).tolist()}, max at {np.round(logit.argmax, 4).tolist()}")

    everything = list(regions(network, box))
    search = regions(network, box, [CONDITION])
    upper = list(search)
    area = sum(r.volume for r in upper)
    print(f"{len(everything)} activation regions in the box; {len(upper)} of them (or parts) where {CONDITION} "
          f"({'complete' if search.complete else 'INCOMPLETE'}), total area {area:.4f} of {np.prod(box.widths):g}")

    figure, (left, right) = new_figure(2, size=(4.8, 4.2))
    bound = max(abs(logit.min), abs(logit.max))
    # 16 level bands, symmetric about 0: the edge between the palest red and palest blue is y[0] = 0
    plot_regions(everything, box, left, color_by="y", cmap="coolwarm", value_range=(-bound, bound),
                 title=f"logit y[0] on its {len(everything)} linear pieces")
    plot_regions(upper, box, right, title=f"{len(upper)} regions where {CONDITION}")
    for ax in (left, right):
        ax.scatter(x[labels == 1, 0], x[labels == 1, 1], s=5, c="white", edgecolors="black", linewidths=0.4, zorder=7)
        ax.scatter(x[labels == 0, 0], x[labels == 0, 1], s=5, c="black", linewidths=0, zorder=7)
    picture = save_figure(figure, out / "torch_trained.png", dpi=80)

    result = {
        "regions": len(everything),
        "positive_regions": len(upper),
        "positive_area": area,
        "dead_neurons": len(dead),
        "logit_min": logit.min,
        "logit_max": logit.max,
        "accuracy": accuracy,
    }
    summary = out / "output" / "torch_trained.json"
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(json.dumps({**result, "dead": dead, "regions_where": [r.to_dict() for r in upper]}))
    print(f"written: {picture} and {summary}")
    return {**result, "network": network}


if __name__ == "__main__":
    main()

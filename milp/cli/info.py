"""``milp info``: layers, widths, ReLU neurons; with --box, unstable neurons per bound method."""

from __future__ import annotations

import time

from milp.cli.common import BOUND_METHODS, add_common, load_model, print_answer

EPILOG = "example:\n  milp info model.onnx --box -1:1 --json"


def run(args) -> int:
    from milp.core.box import parse_box
    from milp.search.tighten import pre_activation_bounds

    network, _ = load_model(args.model, check=not args.no_check)
    payload = {
        "model": str(args.model), "input_dim": network.input_dim, "output_dim": network.output_dim,
        "widths": list(network.widths), "neurons": network.neuron_count,
    }
    lines = [network.describe()]
    if args.box:
        box = parse_box(args.box, network.input_dim)
        lines.append(f"\nunstable neurons over the box (of {network.neuron_count}):")
        payload["unstable"] = {}
        for method in BOUND_METHODS:
            started = time.perf_counter()
            bounds = pre_activation_bounds(network, box, method)
            seconds = time.perf_counter() - started
            per_layer = [int(bounds.unstable(l).sum()) for l in range(len(network.widths))]
            payload["unstable"][method] = {"count": bounds.unstable_count, "per_layer": per_layer, "seconds": seconds}
            lines.append(f"  {method:9s} {bounds.unstable_count:6d}   per layer: {', '.join(map(str, per_layer))}   ({seconds:.3f} s)")
    print_answer(args, payload, "\n".join(lines))
    return 0


def register(command) -> None:
    p = command("info", "layers, widths, ReLU neurons; with --box, unstable neurons per bound method", EPILOG)
    add_common(p, needs_box=False)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=run)

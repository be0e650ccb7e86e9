"""``milp simplify``: a smaller ONNX model, the same function on the box, with the proof."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from milp.cli.common import CliError, add_common, add_solver, box_for, fmt, load_model, print_answer

EPILOG = (
    "example:\n"
    "  milp simplify examples/digits_mlp.onnx --box 0:1 -o digits_small.onnx\n"
    "removes the neurons proved never active on the box, folds those proved always active into the maps\n"
    "around them and writes the smaller model with the original's input and output names and shapes. The\n"
    "stability proofs are the proof that the two agree on the box; --prove also proves it directly (the exact\n"
    "range of their difference). Both files are then run by onnxruntime at random points, the witnesses and\n"
    "the points where they came closest to disagreeing, and the largest difference is printed."
)


def run(args) -> int:
    from importers import OnnxReference, save_onnx
    from milp.core.options import SolverOptions
    from milp.search.simplify import simplify

    if not args.output:
        raise CliError("say where to write the smaller model: -o SMALL.onnx")
    if Path(args.output).resolve() == Path(args.model).resolve():
        raise CliError("-o names the model itself; write the smaller model to another file")
    network, reference = load_model(args.model, check=not args.no_check)
    box = box_for(args, network, reference)
    result = simplify(network, box, prove=args.prove, bounds=args.bounds, options=SolverOptions(threads=args.threads),
                      time_limit=args.time_limit, stop=args.stop, reference=reference, samples=args.samples)
    save_onnx(result.network, args.output, like=args.model)
    # the independent check: onnxruntime on both files, at random and adversarially chosen points
    small = OnnxReference(args.output)
    points = result.check_points
    gap = np.abs(reference(points) - small(points))
    worst = int(np.argmax(gap.max(axis=1)))
    payload = {**result.to_json(), "output": str(args.output), "onnxruntime_points": int(points.shape[0]),
               "onnxruntime_max_difference": float(gap.max())}
    counts = result.report.counts()
    lines = [
        f"neurons: {sum(result.widths_before)} -> {sum(result.widths_after)}   "
        f"(widths {list(result.widths_before)} -> {list(result.widths_after)})",
        f"never active {counts['never']} (removed), always active {counts['always']} (folded), "
        f"fires {counts['fires']} (kept), unknown {counts['unknown']} (kept)",
        "agreement on the box: " + {
            "proved": f"proved, largest |difference| {fmt(result.max_difference)} (exact range of the difference)",
            "unknown": "not proved directly before the time limit (each removal rests on its stability proof)",
            "skipped": "each removal rests on its stability proof (--prove also proves the agreement directly)",
        }[result.equivalence],
        f"onnxruntime on both models at {points.shape[0]} points (random, corners, witnesses, closest to disagreeing): "
        f"largest |difference| {gap.max():.3g}" + (f" at {fmt(points[worst])}" if points.shape[1] <= 8 else ""),
        f"written to {args.output}   ({result.seconds:.3f} s)",
    ]
    print_answer(args, payload, "\n".join(lines))
    return 0


def register(command) -> None:
    p = command("simplify", "remove the neurons that are stable on the box and write a smaller ONNX model that is the same "
                            "function there", EPILOG)
    add_common(p)
    p.add_argument("-o", "--output", default=None, metavar="SMALL.onnx", help="where to write the smaller model")
    p.add_argument("--prove", action="store_true",
                   help="also prove directly that the two models agree: the exact range of their difference over the box, "
                        "one query over both networks (it can take long on deep networks; give --time-limit)")
    p.add_argument("--samples", type=int, default=1000, help="random points for the onnxruntime check (default 1000)")
    add_solver(p)
    p.set_defaults(run=run)

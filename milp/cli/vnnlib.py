"""``milp vnnlib``: answer a VNN-LIB property like a verifier of the competition (sat / unsat / timeout)."""

from __future__ import annotations

import json
from pathlib import Path

from milp.cli.common import CliError, load_model

EPILOG = (
    "examples:\n"
    "  milp vnnlib ACASXU_run2a_1_1_batch_2000.onnx prop_1.vnnlib --timeout 116 --results out.txt\n"
    "  milp vnnlib net.onnx prop.vnnlib --json\n"
    "prints sat (then the counterexample ((X_0 v) ... (Y_0 v) ...)), unsat, timeout or unknown; exit code 0 for\n"
    "any of these, 2 for bad input (the --results file then says error)"
)


def run(args) -> int:
    """``milp vnnlib MODEL PROPERTY``: print the result word (and for sat the counterexample)."""
    from milp.io.vnnlib import VnnlibError, read_vnnlib
    from milp.search.verify import verify

    try:
        network, reference = load_model(args.model)
        prop_path = Path(args.property)
        if not prop_path.exists():
            raise CliError(f"property file {args.property!r} does not exist")
        try:
            prop = read_vnnlib(prop_path, network.input_dim, network.output_dim)
        except VnnlibError as error:
            raise CliError(f"{args.property}: {error}") from None
        verdict = verify(network, prop, timeout=args.timeout, reference=reference, seed=args.seed, stop=args.stop)
    except Exception:
        if args.results:
            Path(args.results).write_text("error\n")
        raise
    text = verdict.counterexample_text()
    if args.results:
        Path(args.results).write_text(text + "\n")
    print(json.dumps(verdict.to_json()) if args.json else text, file=args.out)
    return 0


def register(command) -> None:
    p = command("vnnlib", "does the network satisfy a VNN-LIB property? sat (with a checked counterexample), unsat, timeout", EPILOG)
    p.add_argument("model", help="an ONNX file")
    p.add_argument("property", help="a VNN-LIB file (.vnnlib, or .vnnlib.gz)")
    p.add_argument("--timeout", type=float, default=None, metavar="S", help="seconds for the whole answer; past it the answer is 'timeout' (default: none)")
    p.add_argument("--results", default=None, metavar="FILE", help="also write the answer to FILE in the competition's format")
    p.add_argument("--json", action="store_true", help='print one JSON object: {"result", "counterexample", "seconds", ...}')
    p.add_argument("--seed", type=int, default=0, help="seed of the random search (default 0)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="threads for numpy's BLAS (default 1; more helps only when nothing else runs)")
    p.set_defaults(run=run)

"""``milp vnnlib``: answer a VNN-LIB query like a verifier of the competition (sat / unsat / timeout).

VNN-LIB 1.0 properties (``declare-const X_i``) are read by :mod:`milp.io.vnnlib`; VNN-LIB 2.0 queries
(``(vnnlib-version <2.0>)``, networks declared by name) by the standard's ``vnnlib`` parser through
:mod:`milp.io.vnnlib2`, with the networks given as ``--network NAME=FILE`` as the standard's command line
does (or as the one model before the query when it declares one network).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from milp.cli.common import CliError, load_model

EPILOG = (
    "examples:\n"
    "  milp vnnlib ACASXU_run2a_1_1_batch_2000.onnx prop_1.vnnlib --timeout 116 --results out.txt\n"
    "  milp vnnlib net.onnx prop.vnnlib --json\n"
    "  milp vnnlib mnist-net_256x4.onnx prop_0_0.05.vnnlib --timeout 300 --workers 2\n"
    "  milp vnnlib equivalence.vnnlib --network original=acas.onnx --network pruned=acas_small.onnx   (VNN-LIB 2.0)\n"
    "prints sat (then the counterexample), unsat, timeout or unknown; exit code 0 for any of these, 2 for bad\n"
    "input (the --results file then says error). For a VNN-LIB 1.0 property the counterexample is the\n"
    "competition's ((X_0 v) ... (Y_0 v) ...); for a 2.0 query, the standard's: each declared tensor as\n"
    "'NAME TYPE [DIMS]' and its values, one per line, and 'timed-out' for a timeout."
)


def _networks(specs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise CliError(f"--network {spec!r}: expected NAME=FILE, e.g. --network classifier=model.onnx")
        if name in out:
            raise CliError(f"--network {name} is given twice")
        out[name] = path
    return out


def _version2(args, prop_path: Path, models: dict[str, str]):
    """A VNN-LIB 2.0 query: ``(verdict, joint query)``."""
    from importers import OnnxReference, load_onnx_nodes
    from milp.io.vnnlib import VnnlibError
    from milp.io.vnnlib2 import Implementation, build_joint, read_vnnlib2
    from milp.search.branch import Settings
    from milp.search.verify import SEVERAL_NETWORKS, verify

    try:
        query = read_vnnlib2(prop_path)
    except VnnlibError as error:
        raise CliError(str(error)) from None
    declared = query.implemented()
    if args.model is not None:
        if models:
            raise CliError("give the networks either as one MODEL before the query or as --network NAME=FILE, not both")
        if len(declared) != 1:
            raise CliError(f"the query declares {len(declared)} networks ({', '.join(declared)}): give each as --network NAME=FILE")
        models = {declared[0]: args.model}
    for name in declared:
        if name not in models:
            raise CliError(f"network {name!r} is declared in the query but not given: add --network {name}=FILE")
    for name in models:
        if name not in declared:
            equal = [n.equal_to for n in query.networks if n.name == name]
            why = f" (it is equal-to {equal[0]!r}, which gives its model)" if equal and equal[0] else ""
            raise CliError(f"--network {name}: the query declares no network {name!r} that needs a model{why}")
    implementations, references = {}, {}
    for decl in query.networks:
        source = decl.equal_to or decl.name
        path = models[source]
        if not Path(path).exists():
            raise CliError(f"model file {path!r} of network {source!r} does not exist")
        names = [h.onnx_name for h in decl.hidden]
        network, hidden = load_onnx_nodes(path, names)
        reference = OnnxReference(path, extra_outputs=names)
        implementations[decl.name] = Implementation(network, hidden, np.dtype(reference.dtype).name)
        references[decl.name] = reference
    try:
        joint = build_joint(query, implementations)
    except VnnlibError as error:
        raise CliError(f"{prop_path}: {error}") from None
    settings = _with_workers(SEVERAL_NETWORKS if len(query.networks) > 1 else Settings(), args)
    verdict = verify(joint.network, joint.prop, timeout=args.timeout, reference=joint.reference(references), seed=args.seed,
                     stop=args.stop, settings=settings)
    return verdict, joint


def _query_text(path: Path) -> str:
    """The query file's text; one line naming the file when it is not text (and, for a model file, the order)."""
    from milp.io.vnnlib import VnnlibError, vnnlib_text

    try:
        return vnnlib_text(path)
    except VnnlibError as error:
        hint = " (the model goes first: milp vnnlib MODEL PROPERTY)" if path.suffix.lower() == ".onnx" else ""
        raise CliError(f"query file {error}{hint}") from None


def _with_workers(settings, args):
    """The search's settings with the processes the user gave (``--workers``; 0 or none: one per core)."""
    return replace(settings, refine_workers=args.workers or os.cpu_count() or 1)


def run(args) -> int:
    """``milp vnnlib [MODEL] QUERY [--network NAME=FILE ...]``: print the result word (and for sat the counterexample)."""
    from milp.io.vnnlib import VnnlibError, read_vnnlib
    from milp.io.vnnlib2 import is_vnnlib2
    from milp.search.branch import Settings
    from milp.search.verify import verify

    if args.timeout is not None and args.timeout <= 0:
        raise CliError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    files = list(args.files)
    if len(files) > 2:
        raise CliError(f"expected [MODEL] QUERY, got {len(files)} files (networks of a VNN-LIB 2.0 query go in --network NAME=FILE)")
    args.model, query_file = (files[0], files[1]) if len(files) == 2 else (None, files[0])
    try:
        models = _networks(args.network)
        prop_path = Path(query_file)
        if not prop_path.exists():
            raise CliError(f"query file {query_file!r} does not exist")
        head = _query_text(prop_path)
        if is_vnnlib2(head):
            verdict, joint = _version2(args, prop_path, models)
            word = "timed-out" if verdict.result == "timeout" else verdict.result
            text = word if verdict.result != "sat" else word + "\n" + joint.assignment_text(verdict.x, verdict.y)
            payload = verdict.to_json()
            payload["result"] = word
            if verdict.result == "sat":
                payload["assignment"] = {t.name: v.tolist() for t, v in joint.assignment(verdict.x, verdict.y)}
        else:
            if models or args.model is None:
                raise CliError(f"{query_file} is a VNN-LIB 1.0 property: give the model before it (milp vnnlib MODEL PROPERTY)")
            network, reference = load_model(args.model)
            try:
                prop = read_vnnlib(prop_path, network.input_dim, network.output_dim)
            except VnnlibError as error:
                raise CliError(f"{query_file}: {error}") from None
            verdict = verify(network, prop, timeout=args.timeout, reference=reference, seed=args.seed, stop=args.stop,
                             settings=_with_workers(Settings(), args))
            text, payload = verdict.counterexample_text(), verdict.to_json()
    except Exception:
        if args.results:
            try:
                Path(args.results).write_text("error\n")
            except OSError:
                pass  # the first error is the one to report
        raise
    if args.results:
        Path(args.results).write_text(text + "\n")
    print(json.dumps(payload) if args.json else text, file=args.out)
    return 0


def register(command) -> None:
    p = command("vnnlib", "does the network satisfy a VNN-LIB property? sat (with a checked counterexample), unsat, timeout", EPILOG)
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="MODEL QUERY: an ONNX file and a VNN-LIB file (.vnnlib, or .vnnlib.gz); or QUERY alone, a VNN-LIB "
                        "2.0 query whose networks are given with --network")
    p.add_argument("--network", action="append", default=[], metavar="NAME=FILE",
                   help="the ONNX file of a network the VNN-LIB 2.0 query declares by NAME (repeat for each network "
                        "not declared equal-to another)")
    p.add_argument("--timeout", type=float, default=None, metavar="S", help="seconds for the whole answer; past it the answer is 'timeout' (default: none)")
    p.add_argument("--results", default=None, metavar="FILE", help="also write the answer to FILE in the competition's format")
    p.add_argument("--json", action="store_true", help='print one JSON object: {"result", "counterexample", "seconds", ...}')
    p.add_argument("--seed", type=int, default=0, help="seed of the random search (default 0)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="threads for numpy's BLAS (default 1; more helps only when nothing else runs)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes for one answer, 0 = one per core (the default). On more than 8 inputs, a search "
                        "still open after 5 s tightens every layer's bounds neuron by neuron, and shares those "
                        "searches among them; with 2 or more, a whole-box MILP per disjunct then runs in a second "
                        "process beside the restarted search")
    p.set_defaults(run=run)

"""What every command shares: option groups, the box, answer printing, number formatting."""

from __future__ import annotations

import argparse
import json

import numpy as np

from milp.core.box import Box, parse_box
from milp.core.errors import InputError
from milp.core.network import Network
from milp.search.tighten import BOUND_METHODS

__all__ = ["CliError", "CONDITION_HELP", "add_common", "add_threads", "add_solver", "add_pyomo_solver", "box_for",
           "print_answer", "fmt", "pyomo_solver", "load_model", "BOUND_METHODS"]



class CliError(InputError):
    """Bad input from the command line: reported as one line, exit code 2."""


def load_model(path: str, box: Box | None = None, check: bool = True):
    """``(network, reference)`` for a model file (see :func:`importers.load_model`)."""
    from importers import load_model as load

    return load(path, box=box, check=check)


def pyomo_solver(args) -> str | None:
    """The Pyomo solver named by --solver, or None for the built-in HiGHS path."""
    name = getattr(args, "solver", None)
    if name is None:
        return None
    import logging

    import pyomo.environ as pyo

    pyomo_log = logging.getLogger("pyomo")
    level = pyomo_log.level
    pyomo_log.setLevel(logging.CRITICAL)  # an unknown name logs a traceback; one line below says it all
    try:
        available = bool(pyo.SolverFactory(name).available(exception_flag=False))
    except Exception:
        available = False
    finally:
        pyomo_log.setLevel(level)
    if not available:
        raise CliError(f"--solver {name!r}: Pyomo has no such solver available on this machine (try highs, appsi_highs, glpk, cbc, gurobi)")
    return name


def print_answer(args, payload: dict, human: str) -> None:
    """The command's answer: one JSON object with --json, else the human-readable text."""
    print(json.dumps(payload) if args.json else human, file=args.out)


def fmt(x) -> str:
    """A number or a vector, briefly."""
    if x is None:
        return "-"
    if isinstance(x, (list, tuple, np.ndarray)):
        return "[" + ", ".join(f"{v:.6g}" for v in np.asarray(x).reshape(-1)) + "]"
    return f"{x:.9g}"


def box_for(args, network: Network, reference=None) -> Box:
    """The --box for ``network``; within the range of the reference model's input type when it has one
    (a float32 model cannot take an input beyond 3.4e38)."""
    if not args.box:
        raise CliError("an input box is required (big-M needs bounds): --box lo:hi or --box lo1:hi1,lo2:hi2,...")
    box = parse_box(args.box, network.input_dim)
    dtype = getattr(reference, "dtype", None)
    if dtype is not None and np.issubdtype(dtype, np.floating):
        largest = float(np.finfo(dtype).max)
        reach = float(max(np.abs(box.lower).max(initial=0.0), np.abs(box.upper).max(initial=0.0)))
        if reach > largest:
            raise CliError(f"--box reaches {reach:.3g}, beyond the range of the model's {np.dtype(dtype).name} input ({largest:.3g})")
    return box


CONDITION_HELP = (
    "a linear condition over x[i] (inputs), y[i] (outputs), h<L>[k] (ReLU layer L's output) and z<L>[k] "
    "(its pre-activation), e.g. \"y[0] - 2*y[1] > 0.5\"; repeat for a conjunction; > and < are strict"
)


def add_common(p: argparse.ArgumentParser, needs_box: bool = True) -> None:
    p.add_argument("model", help="an ONNX file")
    p.add_argument(
        "--box",
        help="input box: lo:hi for every input, or lo1:hi1,lo2:hi2,... one per input (lo == hi fixes an input)"
        + ("" if needs_box else "; with it, info reports unstable neurons per bound method"),
    )
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime check of the imported network")


def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="threads per process for numpy's BLAS and HiGHS (default 1: parallelism here is processes)")


def add_solver(p: argparse.ArgumentParser) -> None:
    p.add_argument("--time-limit", type=float, default=None, metavar="S", help="seconds; past it the answer is 'unknown'")
    add_threads(p)
    p.add_argument("--bounds", choices=BOUND_METHODS, default="symbolic", help="pre-activation bound method for the MILP (default symbolic)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def add_pyomo_solver(p: argparse.ArgumentParser) -> None:
    p.add_argument("--solver", default=None, metavar="NAME",
                   help="solve the whole big-M MILP through this Pyomo solver (highs, gurobi, cbc, ...) instead of the "
                        "built-in HiGHS search; its answer is re-checked the same way")

"""Where the benchmark data is: one rule for every script in ``benchmarks/``.

The rule: the environment variable ``MILP_BENCHMARKS`` names a folder holding ``acasxu/``
and/or ``mnist_fc/`` (VNN-COMP layout: ``instances.csv``, ``onnx/``, ``vnnlib/``); without it
(or when it is empty) the folder is ``../shared/benchmarks`` beside the checkout. A script
that takes a benchmark folder on its command line uses that folder instead.

A script that cannot run without the data calls :func:`require`, which, when the folder or one
of its expected files is missing, prints one line on stderr (the folder looked for, what is
missing, how to point at a copy) and exits with status 2. A script for which the data is
optional calls :func:`find` and prints :func:`skip_message` instead.

The tests (``tests/conftest.py``) and ``examples/acasxu.py`` state the same rule.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV = "MILP_BENCHMARKS"
CHECKOUT = Path(__file__).resolve().parent.parent
DEFAULT = CHECKOUT.parent / "shared" / "benchmarks"
EXPECTED = ("instances.csv", "onnx/")
ACAS_NETWORK = "onnx/ACASXU_run2a_1_1_batch_2000.onnx"
TITLES = {"acasxu": "ACAS Xu", "mnist_fc": "mnist_fc"}


def root() -> Path:
    """The folder holding the benchmarks: ``$MILP_BENCHMARKS``, else ``../shared/benchmarks`` beside the checkout."""
    given = os.environ.get(ENV, "").strip()
    return Path(given).expanduser().resolve() if given else DEFAULT


def origin() -> str:
    """How :func:`root` was chosen, for messages."""
    given = os.environ.get(ENV, "").strip()
    return f"from {ENV}={given}" if given else f"the default ../shared/benchmarks beside the checkout, as {ENV} is not set"


def missing(folder: Path, needs: tuple[str, ...] = EXPECTED) -> list[str]:
    """What of ``needs`` (paths relative to ``folder``) is absent; ``["the folder itself"]`` if it is."""
    if not folder.is_dir():
        return ["the folder itself"]
    return [need for need in needs if not (folder / need).exists()]


def find(name: str, folder: Path | str | None = None, needs: tuple[str, ...] = EXPECTED) -> tuple[Path, str | None]:
    """``(folder, problem)``: the benchmark folder ``name`` (``acasxu``, ``mnist_fc``), or ``folder`` when
    given, and ``None`` if it holds ``needs``, else one sentence naming the folder and what is missing."""
    if folder is not None:
        where, how = Path(folder).expanduser().resolve(), "given on the command line"
    else:
        where, how = root() / name, origin()
    absent = missing(where, needs)
    if not absent:
        return where, None
    what = "the folder does not exist" if absent == ["the folder itself"] else "missing " + ", ".join(absent)
    return where, f"{TITLES.get(name, name)} benchmark not found at {where} ({how}): {what}"


def hint(name: str, usage: str | None = None, given: tuple[str, ...] = ()) -> str:
    """How to point at a copy of benchmark ``name``; ``given``: what the folder named on the command line lacked."""
    variable = f"{ENV}=/path/to/benchmarks (the folder holding {name}/)"
    if given:
        holding = "holding " + " and ".join(given)
        return f"pass the folder {holding}{f' ({usage})' if usage else ''}, or leave it out and set {variable}"
    return f"set {variable}" + (f" or run {usage}" if usage else "")


def require(name: str, folder: Path | str | None = None, needs: tuple[str, ...] = EXPECTED, usage: str | None = None) -> Path:
    """The benchmark folder ``name`` (or ``folder``), checked; otherwise one line on stderr and exit status 2.

    ``usage`` shows how to pass the folder on the script's command line, e.g.
    ``python benchmarks/acasxu.py /path/to/acasxu``.
    """
    where, problem = find(name, folder, needs)
    if problem is None:
        return where
    print(f"{Path(sys.argv[0]).name}: error: {problem}; {hint(name, usage, given=needs if folder is not None else ())}", file=sys.stderr)
    raise SystemExit(2)


def skip_message(problem: str, skipped: str, name: str = "acasxu") -> str:
    """The line an optional rung prints when its data is absent."""
    return f"{skipped}: {problem}; {hint(name)}"

"""The ``milp`` command line: a thin layer over the public API.

Every command takes ``--json`` and then prints one JSON object on stdout; stdout carries
answers only (whatever a library prints goes to stderr, see :mod:`milp.core.runtime`). Exit code 0
for an answer (including unsat / never / unknown), 2 for bad input (one line on stderr), 1 for
an internal failure (a bug: the message says so), 130 after Ctrl-C. In ``fires``, ``reach``,
``range`` and ``vnnlib`` the first Ctrl-C stops the search, even inside a long HiGHS solve, and
the answer so far (``unknown`` with the bounds proved) is printed; a second one stops at once.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
from typing import Sequence

from milp.cli import info, plot, queries, regions, simplify, vnnlib
from milp.cli.common import CliError
from milp.core.errors import REPORT_HINT, InputError
from milp.core.options import check_count, check_seconds, check_threads, check_tolerance
from milp.core.runtime import answers_on_stdout, limit_threads

__all__ = ["main", "build_parser"]

# Each command module adds its parser(s) through register(command); a new command is one entry.
COMMANDS = (info, queries, regions, simplify, vnnlib, plot)

# Options whose values may start with "-" (argparse would take "-5:5" for an option).
_VALUE_OPTIONS = ("--box", "--where", "--slice", "--through")


def _join_values(argv: Sequence[str]) -> list[str]:
    out, i = [], 0
    argv = list(argv)
    while i < len(argv):
        arg = argv[i]
        # a value may start with "-" ("-5:5"), never with "--" (the option's value is missing)
        if arg in _VALUE_OPTIONS and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out.append(f"{arg}={argv[i + 1]}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2), as every other input error."""

    def error(self, message: str):
        raise CliError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="milp",
        description="Exact questions about ReLU networks, answered by mixed-integer linear programming.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  milp fires model.onnx --box -5:5 --layer 1 --neuron 0",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help: str, epilog: str | None = None) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)

    for module in COMMANDS:
        module.register(command)
    return parser


# Every option value is checked here, once, with the same checks the Python API uses.
_OPTION_CHECKS = (
    ("time_limit", "--time-limit", check_seconds),
    ("timeout", "--timeout", check_seconds),
    ("threads", "--threads", check_threads),
    ("max_regions", "--max-regions", lambda v, n: check_count(v, n, 1)),
    ("workers", "--workers", lambda v, n: check_count(v, n, 0)),
    ("samples", "--samples", lambda v, n: check_count(v, n, 1)),
    ("seed", "--seed", lambda v, n: check_count(v, n, 0)),
    ("tol", "--tol", check_tolerance),
)

# Commands whose long solves a first Ctrl-C stops, printing the answer so far.
_STOPPABLE = ("fires", "reach", "range", "simplify", "vnnlib")


def _check_options(args) -> None:
    for attribute, flag, check in _OPTION_CHECKS:
        if hasattr(args, attribute):
            setattr(args, attribute, check(getattr(args, attribute), flag))


def _run(args) -> int:
    """Run the parsed command; stdout already carries answers only (``args.out``)."""
    _check_options(args)
    limit_threads(getattr(args, "threads", 1))
    args.stop = threading.Event()
    previous = None
    # A shell starts background jobs with SIGINT ignored; Ctrl-C at the terminal is then not for us.
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if args.command in _STOPPABLE and not ignored and threading.current_thread() is threading.main_thread():
        def on_interrupt(signum, frame):
            if args.stop.is_set():
                raise KeyboardInterrupt  # a second Ctrl-C: stop at once
            args.stop.set()
            print("milp: stopping (Ctrl-C again to stop at once)", file=sys.stderr)

        previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        code = int(args.run(args) or 0)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return 130 if args.stop.is_set() else code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    >>> # main(["fires", "model.onnx", "--box", "-5:5", "--layer", "1", "--neuron", "0", "--json"])
    """
    argv = _join_values(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)  # --help prints here, on stdout
    except CliError as error:
        print(f"milp: error: {error}", file=sys.stderr)
        return 2
    with answers_on_stdout() as out:
        args.out = out
        try:
            return _run(args)
        except (InputError, OSError) as error:  # the user's input or files: one line
            print(f"milp: error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("milp: interrupted", file=sys.stderr)
            return 130
        except Exception as error:  # anything else is ours
            if os.environ.get("MILP_TRACEBACK"):
                traceback.print_exc(file=sys.stderr)
            print(f"milp: internal error: {type(error).__name__}: {error} ({REPORT_HINT})", file=sys.stderr)
            return 1

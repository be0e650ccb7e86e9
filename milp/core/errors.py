"""The project's exceptions: whose fault it is decides the exit code.

* :class:`InputError` — the user's input cannot be used (a bad box, an unknown neuron, an
  unsupported ONNX op, a corrupt file, an option out of range). The command line prints its
  message as one line and exits 2. Every module's own error (``BoxError``, ``QueryError``,
  ``ModelImportError``, ...) derives from it, and from ``ValueError`` for callers that catch that.
* :class:`InternalError` — a broken invariant or a solver in a state it should never reach:
  a bug in this project (or in a library under it), never the user's fault. The command line
  says so, asks for a report, and exits 1.
"""

from __future__ import annotations

__all__ = ["MilpError", "InputError", "InternalError", "SolverStatusError", "NumericRangeError", "REPORT_HINT"]

REPORT_HINT = "this is a bug in milp, not a problem with your input; please report it with the command you ran (MILP_TRACEBACK=1 prints the traceback)"


class MilpError(Exception):
    """Base of every exception this project raises on purpose."""


class InputError(MilpError, ValueError):
    """Input that cannot be used: reported to the user as one line (exit code 2)."""


class NumericRangeError(InputError):
    """A model whose numbers span more than the solver can decide reliably (e.g. a box of +-1e10)."""


class InternalError(MilpError, RuntimeError):
    """A bug: an invariant broken, or a solver in a state it should never reach (exit code 1)."""


class SolverStatusError(InternalError):
    """The solver answered with a status the project does not know or cannot use."""

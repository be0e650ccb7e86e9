"""Inputs from files or text: the three points of ``--through`` (a plane through real inputs).

A points text names three inputs, in one of two forms::

    digits.npy:3,17,42          rows 3, 17 and 42 (counted from 0) of a .npy array (n, input_dim)
    test.csv:0,1,2              rows of a comma-separated file of numbers (no header; one input per row)
    digits.npy                  a file of exactly three rows
    0,0,1;1,0,1;0,1,1           three inline vectors, separated by ';'

:func:`parse_through` reads them and returns the plane through them
(:func:`milp.core.slicing.plane_through`) with a label per point (``row 3`` or ``a``, ``b``, ``c``).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from milp.core.slicing import Slice, SliceError, plane_through

__all__ = ["ThroughPlane", "parse_through", "load_rows", "THROUGH_HELP"]

THROUGH_HELP = (
    "cut the plane through three inputs: FILE.npy:i,j,k or FILE.csv:i,j,k (rows counted from 0), a file of three rows, "
    'or three inline vectors "a1,a2,...;b1,...;c1,..."; the points sit at (s,t) = (0,0), (1,0), (0,1) and --box '
    "(the box of s and t) defaults to -0.25:1.25, e.g. --through digits.npy:3,17,42"
)


@dataclass(frozen=True)
class ThroughPlane:
    """The plane through three inputs: ``plane`` (:class:`~milp.core.slicing.Slice`), ``points`` (3, input_dim)
    and ``labels`` (3 texts: ``row i`` for file rows, else ``a``, ``b``, ``c``)."""

    plane: Slice
    points: np.ndarray
    labels: tuple[str, str, str]

    def to_dict(self) -> dict:
        """JSON-ready, for a region file's header (``through``)."""
        return {"points": self.points.tolist(), "labels": list(self.labels)}


def load_rows(path, rows=None) -> np.ndarray:
    """Rows of a ``.npy`` or ``.csv`` file of numbers as ``(k, n)`` floats; all rows when ``rows`` is None."""
    path = Path(path)
    if not path.exists():
        raise SliceError(f"points file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise SliceError(f"points file {str(path)!r}: use a .npy or .csv file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy's warning on an empty file: the check below says it
            if suffix == ".npy":
                data = np.load(path, allow_pickle=False)
            else:
                data = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    except (OSError, ValueError, EOFError) as error:
        text = str(error)
        why = "it holds Python objects, not numbers" if "Object arrays" in text else "not a numpy array file" if suffix == ".npy" and "pickle" in text else text
        raise SliceError(f"points file {str(path)!r} cannot be read as numbers: {why}") from None
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)) or data.size == 0:
        raise SliceError(f"points file {str(path)!r} holds {'no numbers' if data.size == 0 else f'{data.dtype} values'}: it needs real numbers")
    data = np.asarray(data, dtype=np.float64)
    if data.ndim == 1:
        data = data.reshape(1, -1)
    if data.ndim != 2:
        data = data.reshape(data.shape[0], -1)  # e.g. images (n, 8, 8): one flattened input per row
    if rows is None:
        return data
    for r in rows:
        if not 0 <= r < data.shape[0]:
            raise SliceError(f"points file {str(path)!r} has {data.shape[0]} rows (0..{data.shape[0] - 1}); there is no row {r}")
    return data[list(rows)]


def parse_through(text: str, input_dim: int) -> ThroughPlane:
    """The plane through the three inputs named by ``text`` (see the module docstring), each of ``input_dim`` values.

    >>> parse_through("0,0,1;1,0,1;0,1,1", 3).plane.v
    array([0., 1., 0.])
    """
    text = str(text or "").strip()
    if not text:
        raise SliceError('--through needs three points: FILE.npy:i,j,k, FILE.csv:i,j,k or "a1,a2,..;b1,..;c1,.."')
    match = re.fullmatch(r"(.+\.(?:npy|csv))(?::([0-9,\s]+))?", text, flags=re.IGNORECASE)
    if match:
        rows = None
        if match.group(2) is not None:
            rows = [int(r) for r in match.group(2).replace(" ", "").split(",") if r]
            if len(rows) != 3:
                raise SliceError(f"--through {text!r}: name three rows, e.g. {match.group(1)}:3,17,42")
        points = load_rows(match.group(1), rows)
        if rows is None and points.shape[0] != 3:
            raise SliceError(f"--through {text!r}: the file has {points.shape[0]} rows; name three, e.g. {match.group(1)}:0,1,2")
        labels = tuple(f"row {r}" for r in (rows if rows is not None else range(3)))
    else:
        parts = [p.strip() for p in text.split(";")]
        if len(parts) != 3:
            raise SliceError(f"--through {text!r}: give three vectors separated by ';' (or FILE.npy:i,j,k)")
        try:
            points = np.array([[float(v) for v in p.split(",")] for p in parts], dtype=np.float64)
        except ValueError:
            raise SliceError(f"--through {text!r}: vectors are comma-separated numbers, or name a .npy/.csv file") from None
        labels = ("a", "b", "c")
    if points.shape[1] != input_dim:
        raise SliceError(f"--through: the points have {points.shape[1]} values but the network has {input_dim} inputs")
    return ThroughPlane(plane_through(*points), points, labels)

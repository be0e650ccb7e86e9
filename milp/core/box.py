"""The input box: per-input lower and upper bounds, required by every query (big-M needs bounds)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from milp.core.errors import InputError

__all__ = ["Box", "BoxError", "parse_box"]


class BoxError(InputError):
    """A missing, malformed, inverted or wrong-length input box."""


@dataclass(frozen=True)
class Box:
    """``lower <= x <= upper``, both of shape ``(input_dim,)``; ``lower == upper`` fixes an input."""

    lower: np.ndarray
    upper: np.ndarray

    def __post_init__(self) -> None:
        lower = np.array(self.lower, dtype=np.float64).reshape(-1)
        upper = np.array(self.upper, dtype=np.float64).reshape(-1)
        if lower.shape != upper.shape:
            raise BoxError(f"box has {lower.size} lower and {upper.size} upper bounds")
        if lower.size == 0:
            raise BoxError("box is empty: give one lo:hi per input")
        if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))):
            raise BoxError("box bounds must be finite numbers (big-M needs bounded inputs)")
        inverted = np.flatnonzero(lower > upper)
        if inverted.size:
            i = int(inverted[0])
            raise BoxError(f"box is inverted for input {i}: lower {lower[i]:g} > upper {upper[i]:g}")
        lower.setflags(write=False)
        upper.setflags(write=False)
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)

    @property
    def dim(self) -> int:
        return int(self.lower.size)

    @property
    def center(self) -> np.ndarray:
        return (self.lower + self.upper) / 2

    @property
    def widths(self) -> np.ndarray:
        return self.upper - self.lower

    def check_dim(self, input_dim: int) -> "Box":
        """Return self, or raise when the box does not have ``input_dim`` entries."""
        if self.dim != input_dim:
            raise BoxError(f"box has {self.dim} intervals but the network has {input_dim} inputs")
        return self

    def contains(self, x, tolerance: float = 0.0) -> bool:
        x = np.asarray(x, dtype=np.float64)
        return bool(np.all(x >= self.lower - tolerance) and np.all(x <= self.upper + tolerance))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` uniform points, shape ``(n, dim)``."""
        return self.lower + rng.random((n, self.dim)) * self.widths

    def to_text(self) -> str:
        return ",".join(f"{lo:.17g}:{hi:.17g}" for lo, hi in zip(self.lower, self.upper))


def parse_box(text: str | None, input_dim: int | None = None) -> Box:
    """Parse ``lo:hi`` (every input) or ``lo1:hi1,lo2:hi2,...`` (one per input).

    >>> parse_box("-5:5", 2).upper
    array([5., 5.])
    >>> parse_box("-1:1,0:0.5").lower
    array([-1.,  0.])
    """
    if text is None or not str(text).strip():
        raise BoxError("an input box is required, e.g. --box -1:1 or --box -1:1,0:0.5")
    parts = [p.strip() for p in str(text).replace(";", ",").split(",")]
    lows, highs = [], []
    for i, part in enumerate(parts):
        pieces = part.split(":")
        if len(pieces) != 2:
            raise BoxError(f"box entry {i} is {part!r}; write lo:hi, e.g. -1:1")
        try:
            lo, hi = float(pieces[0]), float(pieces[1])
        except ValueError:
            raise BoxError(f"box entry {i} is {part!r}; lo and hi must be numbers") from None
        lows.append(lo)
        highs.append(hi)
    if len(parts) == 1 and input_dim is not None:
        lows, highs = lows * input_dim, highs * input_dim
    box = Box(np.array(lows), np.array(highs))
    if input_dim is not None:
        box.check_dim(input_dim)
    return box

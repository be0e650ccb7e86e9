"""One activation region as a value: the polytope ``{x : A x <= b}`` and the network's affine map on it.

Built by :mod:`milp.enumeration.geometry`, written and read by :mod:`milp.io.regionfiles`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from milp.core.patterns import PatternError

__all__ = ["Region", "Zone", "Neighbour", "PolytopeError"]


class PolytopeError(PatternError):
    """A pattern, point or region description that does not fit the network or the box."""


@dataclass(frozen=True, eq=False)
class Region:
    """One activation region: the polytope ``{x : A x <= b}`` where the network is the affine map ``affine``.

    ``pattern`` one '0'/'1' per ReLU neuron; ``A (k, d)`` and ``b (k,)`` the facets (unit rows in
    the free inputs; box faces included where they bound the region, and both faces of
    every fixed input); ``interior_point (d,)`` a point inside and ``radius`` a ball around it that
    lies in the region (``inf`` when every input is fixed): the Chebyshev centre and its ball for a
    region built from its pattern; the enumeration may give the mean of the vertices instead, with
    its ball, when that ball is wider than the tolerance (a region either way); ``affine = (C (m, d), d (m,))`` with ``y = C x + d`` on
    the region; ``vertices`` (v, d) for 1 to 3 free inputs (for 2, counter-clockwise in the
    free coordinates), else None; ``volume`` the length, area or volume in the free
    coordinates for 1 to 3 free inputs, else None. Regions compare by identity.
    """

    pattern: str
    A: np.ndarray
    b: np.ndarray
    interior_point: np.ndarray
    radius: float
    affine: tuple[np.ndarray, np.ndarray]
    vertices: np.ndarray | None = None
    volume: float | None = None
    thin: bool = False

    def __post_init__(self) -> None:
        point = _frozen(self.interior_point).reshape(-1)
        d = point.size
        A, b = _frozen(self.A).reshape(-1, d), _frozen(self.b).reshape(-1)
        C, offset = _frozen(self.affine[0]), _frozen(self.affine[1]).reshape(-1)
        C = C.reshape(offset.size, d)
        if A.shape[0] != b.size:
            raise PolytopeError(f"region has {A.shape[0]} rows in A but {b.size} in b")
        if not all(np.all(np.isfinite(v)) for v in (A, b, point, C, offset)):
            raise PolytopeError("region has a non-finite number in A, b, its interior point or its affine map")
        if set(self.pattern) - {"0", "1"}:
            raise PolytopeError(f"pattern {self.pattern!r} may hold only '0' and '1'")
        object.__setattr__(self, "interior_point", point)
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "affine", (C, offset))
        object.__setattr__(self, "radius", float(self.radius))
        if self.vertices is not None:
            object.__setattr__(self, "vertices", _frozen(self.vertices).reshape(-1, d))
        if self.volume is not None:
            object.__setattr__(self, "volume", float(self.volume))

    @property
    def dim(self) -> int:
        return int(self.interior_point.size)

    def contains(self, x, tol: float = 1e-9):
        """Whether ``A x <= b + tol`` (``tol`` is a distance: rows have unit norm in the free inputs).
        One point (d,) gives a bool, a batch (n, d) a bool array (n,)."""
        x = np.asarray(x, dtype=np.float64)
        inside = np.all(np.atleast_2d(x) @ self.A.T <= self.b + tol, axis=1)
        return bool(inside[0]) if x.ndim == 1 else inside

    def output_at(self, x) -> np.ndarray:
        """``C x + d`` (the network's output wherever ``x`` lies in the region): (m,) for one point, (n, m) for a batch."""
        C, offset = self.affine
        return np.asarray(x, dtype=np.float64) @ C.T + offset

    def to_dict(self) -> dict:
        """A JSON-ready dict (lists of floats, full precision); :meth:`from_dict` reads it back."""
        return {
            "pattern": self.pattern,
            "A": self.A.tolist(),
            "b": self.b.tolist(),
            "interior_point": self.interior_point.tolist(),
            "radius": self.radius,
            "affine": {"C": self.affine[0].tolist(), "d": self.affine[1].tolist()},
            "vertices": None if self.vertices is None else self.vertices.tolist(),
            "volume": self.volume,
            "thin": self.thin,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Region":
        """The region written by :meth:`to_dict` (extra keys such as ``type`` are ignored)."""
        try:
            return cls(
                pattern=str(data["pattern"]),
                A=np.array(data["A"], dtype=np.float64),
                b=np.array(data["b"], dtype=np.float64),
                interior_point=np.array(data["interior_point"], dtype=np.float64),
                radius=float(data["radius"]),
                affine=(np.array(data["affine"]["C"], dtype=np.float64), np.array(data["affine"]["d"], dtype=np.float64)),
                vertices=None if data.get("vertices") is None else np.array(data["vertices"], dtype=np.float64),
                volume=None if data.get("volume") is None else float(data["volume"]),
                thin=bool(data.get("thin", False)),  # files written before thin regions were listed have none
            )
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, PolytopeError):
                raise
            why = f"it has no {error} entry" if isinstance(error, KeyError) else f"{type(error).__name__}: {error}"
            raise PolytopeError(f"not a region description: {why}") from None


@dataclass(frozen=True, eq=False)
class Zone:
    """A convex union of regions: the polytope ``{x : A x <= b}``, which equals the union of the regions
    whose patterns it lists.

    ``patterns`` the regions it covers (each region in exactly one zone); ``A (k, d)`` and ``b (k,)`` its
    facets (unit rows in the free inputs, as a region's); ``interior_point (d,)`` its Chebyshev centre and
    ``radius`` its ball; ``vertices`` (v, d) counter-clockwise when two inputs are free, else None.
    Built by :func:`milp.enumeration.zones.merge_regions`.
    """

    patterns: tuple[str, ...]
    A: np.ndarray
    b: np.ndarray
    interior_point: np.ndarray
    radius: float
    vertices: np.ndarray | None = None

    def __post_init__(self) -> None:
        point = _frozen(self.interior_point).reshape(-1)
        d = point.size
        A, b = _frozen(self.A).reshape(-1, d), _frozen(self.b).reshape(-1)
        if A.shape[0] != b.size:
            raise PolytopeError(f"zone has {A.shape[0]} rows in A but {b.size} in b")
        if not self.patterns:
            raise PolytopeError("a zone covers at least one region")
        object.__setattr__(self, "patterns", tuple(str(p) for p in self.patterns))
        object.__setattr__(self, "interior_point", point)
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "radius", float(self.radius))
        if self.vertices is not None:
            object.__setattr__(self, "vertices", _frozen(self.vertices).reshape(-1, d))

    def contains(self, x, tol: float = 1e-9):
        """Whether ``A x <= b + tol``: a bool for one point (d,), a bool array (n,) for a batch (n, d)."""
        x = np.asarray(x, dtype=np.float64)
        inside = np.all(np.atleast_2d(x) @ self.A.T <= self.b + tol, axis=1)
        return bool(inside[0]) if x.ndim == 1 else inside

    def to_dict(self) -> dict:
        """A JSON-ready dict; :meth:`from_dict` reads it back."""
        return {
            "patterns": list(self.patterns),
            "A": self.A.tolist(),
            "b": self.b.tolist(),
            "interior_point": self.interior_point.tolist(),
            "radius": self.radius,
            "vertices": None if self.vertices is None else self.vertices.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Zone":
        try:
            return cls(
                patterns=tuple(str(p) for p in data["patterns"]),
                A=np.array(data["A"], dtype=np.float64),
                b=np.array(data["b"], dtype=np.float64),
                interior_point=np.array(data["interior_point"], dtype=np.float64),
                radius=float(data["radius"]),
                vertices=None if data.get("vertices") is None else np.array(data["vertices"], dtype=np.float64),
            )
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, PolytopeError):
                raise
            raise PolytopeError(f"not a zone description: {type(error).__name__}: {error}") from None


@dataclass(frozen=True)
class Neighbour:
    """Two listed regions that share a facet: ``region`` (a pattern), the row ``facet`` of its ``A`` whose
    hyperplane they share, and ``neighbour`` (a pattern) on the other side. A facet may have several
    neighbours (pieces of it), and the relation is listed from both sides.
    Built by :func:`milp.enumeration.zones.adjacency`."""

    region: str
    facet: int
    neighbour: str

    def to_dict(self) -> dict:
        return {"region": self.region, "facet": self.facet, "neighbour": self.neighbour}

    @classmethod
    def from_dict(cls, data: dict) -> "Neighbour":
        try:
            return cls(str(data["region"]), int(data["facet"]), str(data["neighbour"]))
        except (KeyError, TypeError, ValueError) as error:
            raise PolytopeError(f"not a neighbour description: {type(error).__name__}: {error}") from None


def _frozen(value) -> np.ndarray:
    array = np.array(value, dtype=np.float64)
    array.setflags(write=False)
    return array



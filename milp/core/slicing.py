"""A network restricted to a 2-D plane of its input space, for pictures of high-dimensional inputs.

The plane is ``x = origin + s * u + t * v`` (``origin``, ``u``, ``v`` of shape ``(input_dim,)``).
:func:`slice_network` returns the network of ``(s, t)``: every map that reads the input
(source 0) with weight ``W`` and bias ``c`` reads ``(s, t)`` with weight ``W @ [u v]`` and bias
``c + W @ origin``; maps over ReLU outputs are unchanged. So the sliced network computes the
same pre-activations, outputs and activation pattern at ``(s, t)`` as the original does at
``x``, and its regions are the original's regions cut by the plane (a region of the slice is
the intersection of the plane with the region of the same pattern).

Text form (``--slice`` on the command line), parts separated by spaces or ``;``::

    x0=0.1,0,0,0.5,0.5 u=1,0,0,0,0 v=0,1,0,0,0
    u=e0 v=e3                    # unit vectors of inputs 0 and 3; x0 defaults to all zeros
    origin=0,0,1 u=1,1,0 v=0,0.5,-1

``x0`` (or ``origin``) is the point at ``s = t = 0``; ``u`` and ``v`` are the directions of ``s``
and ``t``, each a comma-separated list of ``input_dim`` numbers or ``e<i>``. ``u`` and ``v``
must be linearly independent. The box of a sliced run (``--box``) is then the box of
``(s, t)``, and ``x[0]``, ``x[1]`` in its conditions are ``s`` and ``t``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from milp.core.errors import InputError
from milp.core.network import Affine, Network

__all__ = ["Slice", "SliceError", "parse_slice", "plane_through", "slice_network", "SLICE_HELP", "THROUGH_BOX"]

# The (s, t) box of a plane through three points when none is given: (0,0), (1,0), (0,1) and a margin.
THROUGH_BOX = "-0.25:1.25"

SLICE_HELP = (
    'restrict the input to the plane x = x0 + s*u + t*v, e.g. "x0=0.1,0,0,0.5,0.5 u=1,0,0,0,0 v=0,1,0,0,0" '
    '(or "u=e0 v=e3": unit vectors, x0 defaults to 0); --box then gives the ranges of s and t, '
    "and x[0], x[1] in conditions are s and t"
)

_UNIT = re.compile(r"^e(\d+)$")


class SliceError(InputError):
    """A plane that cannot slice the network: bad text, wrong lengths, or parallel directions."""


@dataclass(frozen=True)
class Slice:
    """The plane ``x = origin + s * u + t * v``; ``origin``, ``u``, ``v`` of shape ``(input_dim,)``."""

    origin: np.ndarray
    u: np.ndarray
    v: np.ndarray

    def __post_init__(self) -> None:
        vectors = {}
        for name in ("origin", "u", "v"):
            value = np.array(getattr(self, name), dtype=np.float64).reshape(-1)
            if not np.all(np.isfinite(value)):
                raise SliceError(f"slice {name} has a non-finite value: {value.tolist()}")
            value.setflags(write=False)
            vectors[name] = value
            object.__setattr__(self, name, value)
        sizes = {name: value.size for name, value in vectors.items()}
        if len(set(sizes.values())) != 1 or sizes["u"] == 0:
            raise SliceError(f"slice vectors must have one entry per input; got x0: {sizes['origin']}, u: {sizes['u']}, v: {sizes['v']}")
        basis = np.column_stack([vectors["u"], vectors["v"]])
        singular = np.linalg.svd(basis, compute_uv=False)
        if singular[-1] <= 1e-12 * max(singular[0], 1e-300):
            raise SliceError("slice directions u and v are parallel (or zero): they must span a plane")

    @property
    def input_dim(self) -> int:
        return int(self.origin.size)

    @property
    def basis(self) -> np.ndarray:
        """``[u v]``, shape ``(input_dim, 2)``."""
        return np.column_stack([self.u, self.v])

    def inputs(self, st) -> np.ndarray:
        """The original inputs at plane coordinates ``st``: (2,) -> (input_dim,), (n, 2) -> (n, input_dim)."""
        st = np.asarray(st, dtype=np.float64)
        if st.shape[-1] != 2:
            raise SliceError(f"plane coordinates must have 2 entries (s, t), got shape {st.shape}")
        return self.origin + st @ self.basis.T

    def to_dict(self) -> dict:
        """JSON-ready (for a region file's header); :func:`parse_slice` reads it back."""
        return {"origin": self.origin.tolist(), "u": self.u.tolist(), "v": self.v.tolist()}

    def to_text(self) -> str:
        join = lambda a: ",".join(f"{x:.17g}" for x in a)  # noqa: E731
        return f"x0={join(self.origin)} u={join(self.u)} v={join(self.v)}"


def _vector(key: str, text: str, input_dim: int | None) -> np.ndarray | tuple[str, int]:
    unit = _UNIT.match(text)
    if unit:
        index = int(unit.group(1))
        if input_dim is None:
            return ("unit", index)
        if not 0 <= index < input_dim:
            raise SliceError(f"slice {key}={text}: there is no input {index} (the network has {input_dim}: 0..{input_dim - 1})")
        e = np.zeros(input_dim)
        e[index] = 1.0
        return e
    try:
        values = np.array([float(part) for part in text.split(",")], dtype=np.float64)
    except ValueError:
        raise SliceError(f"slice {key}={text!r}: write comma-separated numbers, e.g. {key}=1,0,0, or e<i> for a unit vector") from None
    if input_dim is not None and values.size != input_dim:
        raise SliceError(f"slice {key} has {values.size} entries but the network has {input_dim} inputs")
    return values


def parse_slice(text, input_dim: int | None = None) -> Slice:
    """Parse a plane: ``"x0=0.1,0,0 u=1,0,0 v=0,1,0"``, ``"u=e0 v=e2"`` (see the module docstring),
    or the dict of :meth:`Slice.to_dict`. ``input_dim`` checks lengths and is needed for ``e<i>``
    and a missing ``x0``.

    >>> parse_slice("x0=0,0,1 u=e0 v=e1", 3).v
    array([0., 1., 0.])
    """
    if isinstance(text, Slice):
        found = text
    elif isinstance(text, dict):
        try:
            found = Slice(text["origin"], text["u"], text["v"])
        except KeyError as missing:
            raise SliceError(f"slice description lacks {missing}") from None
    else:
        if text is None or not str(text).strip():
            raise SliceError('empty slice: give e.g. "x0=0,0,0 u=1,0,0 v=0,1,0"')
        parts: dict[str, str] = {}
        for item in re.split(r"[\s;]+", str(text).strip()):
            key, sep, value = item.partition("=")
            key = "x0" if key.strip() == "origin" else key.strip()
            if not sep or key not in ("x0", "u", "v") or not value.strip():
                raise SliceError(f"slice part {item!r}: write x0=..., u=... and v=... (e.g. u=1,0,0 or u=e0)")
            if key in parts:
                raise SliceError(f"slice gives {key} twice")
            parts[key] = value.strip()
        for key in ("u", "v"):
            if key not in parts:
                raise SliceError(f"slice needs {key}=... (a direction: comma-separated numbers or e<i>)")
        dim = input_dim
        if dim is None:
            sized = [_vector(k, parts[k], None) for k in parts]
            sizes = {v.size for v in sized if isinstance(v, np.ndarray)}
            if len(sizes) != 1:
                raise SliceError("slice: give the input dimension (write at least one vector as numbers)" if not sizes
                                 else f"slice vectors have different lengths: {sorted(sizes)}")
            dim = sizes.pop()
        vectors = {k: _vector(k, parts[k], dim) for k in parts}
        origin = vectors.get("x0", np.zeros(dim))
        found = Slice(origin, vectors["u"], vectors["v"])
    if input_dim is not None and found.input_dim != input_dim:
        raise SliceError(f"slice has {found.input_dim} entries per vector but the network has {input_dim} inputs")
    return found


def plane_through(a, b, c) -> Slice:
    """The plane through three inputs (each (input_dim,)): ``origin = a``, ``u = b - a``, ``v = c - a``, so the
    points sit at ``(s, t) = (0, 0), (1, 0), (0, 1)``. Raises :class:`SliceError` when they lie on one line.

    >>> plane_through([0, 0, 1], [1, 0, 1], [0, 1, 1]).u
    array([1., 0., 0.])
    """
    points = []
    for name, point in zip("abc", (a, b, c)):
        value = np.array(point, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(value)):
            raise SliceError(f"point {name} of the plane has a non-finite value")
        points.append(value)
    if len({p.size for p in points}) != 1:
        raise SliceError(f"the three points have different lengths: {[p.size for p in points]}")
    a, b, c = points
    basis = np.column_stack([b - a, c - a])
    singular = np.linalg.svd(basis, compute_uv=False)
    if singular[-1] <= 1e-12 * max(singular[0], 1e-300):
        raise SliceError("the three points lie on one line (or coincide): they do not span a plane")
    return Slice(a, b - a, c - a)


def _restrict(affine: Affine, origin: np.ndarray, basis: np.ndarray) -> Affine:
    """``affine`` with its input term ``W x`` replaced by ``(W basis) st + W origin``."""
    terms, bias = [], affine.bias.copy()
    for source, weight in affine.terms:
        if source == 0:
            terms.append((0, weight @ basis))
            bias = bias + weight @ origin
        else:
            terms.append((source, weight))
    return Affine(tuple(terms), bias)


def slice_network(network: Network, origin, u, v) -> Network:
    """The network of ``(s, t)`` on the plane ``x = origin + s * u + t * v`` (a 2-input network).

    Its pre-activations, outputs and activation pattern at ``(s, t)`` are the original's at
    ``x`` (up to float64 rounding of ``W @ [u v]`` and ``W @ origin``), so its regions are the
    original regions restricted to the plane. Inputs are named ``s`` and ``t``.

    >>> # flat = slice_network(net, origin=np.zeros(5), u=np.eye(5)[0], v=np.eye(5)[1])
    """
    plane = Slice(origin, u, v)
    if plane.input_dim != network.input_dim:
        raise SliceError(f"slice has {plane.input_dim} entries per vector but the network has {network.input_dim} inputs")
    basis = plane.basis
    layers = tuple(_restrict(layer, plane.origin, basis) for layer in network.relu_layers)
    output = _restrict(network.output, plane.origin, basis)
    description = f"{network.source_description or 'network'} on the plane {plane.to_text()}"
    return Network(2, layers, output, input_names=("s", "t"), output_names=network.output_names, source_description=description)

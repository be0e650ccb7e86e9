"""A ReLU network as float64 affine maps over earlier values.

Every network this project handles — a plain MLP, an MLP with residual blocks
(``x + W2 relu(W1 x + b1) + b2``), a network ending in a ReLU — is written in one
canonical form. The *sources* of the network are numbered::

    source 0      the input x                       (input_dim,)
    source l + 1  h_l = relu(z_l), ReLU layer l      (width of layer l,)

ReLU layer ``l`` has the pre-activation ``z_l = sum_s W[s] @ source_s + bias`` over
sources ``s <= l`` (an :class:`Affine`), and the network output is one more
:class:`Affine` over any sources. A plain MLP uses one source per map (the previous
layer); a residual stream simply keeps terms on older sources. Because all the maps
between ReLUs are composed into one, consecutive linear layers cost nothing.

ReLU layers are counted from 0 in evaluation order; ``h<L>[k]`` and ``z<L>[k]`` in
conditions refer to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numbers

import numpy as np

from milp.core.errors import InputError

__all__ = ["Affine", "Network", "Trace", "NetworkError", "layer_choices"]


def layer_choices(count: int) -> str:
    """A network's ReLU layers for a message naming one it lacks: ``"3 (0..2)"``, or ``"none"``."""
    return f"{count} (0..{count - 1})" if count else "none"


class NetworkError(InputError):
    """A network whose shapes or values are not valid."""


def _as_matrix(value, what: str) -> np.ndarray:
    array = np.array(value, dtype=np.float64)
    if array.ndim != 2:
        raise NetworkError(f"{what} must be a matrix, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise NetworkError(f"{what} has a non-finite value {array[tuple(bad)]} at index {tuple(int(i) for i in bad)}")
    array.setflags(write=False)
    return array


def _as_vector(value, what: str) -> np.ndarray:
    array = np.array(value, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(array)):
        bad = int(np.argwhere(~np.isfinite(array))[0][0])
        raise NetworkError(f"{what} has a non-finite value {array[bad]} at index {bad}")
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class Affine:
    """``out = sum_s terms[s] @ source_s + bias``.

    ``terms`` is a tuple of ``(source, matrix)`` pairs, sources in increasing order,
    each matrix of shape ``(out_dim, dim(source))``; ``bias`` has shape ``(out_dim,)``.
    """

    terms: tuple[tuple[int, np.ndarray], ...]
    bias: np.ndarray

    def __post_init__(self) -> None:
        bias = _as_vector(self.bias, "bias")
        object.__setattr__(self, "bias", bias)
        merged: dict[int, np.ndarray] = {}
        for source, matrix in self.terms:
            source = int(source)
            if source < 0:
                raise NetworkError(f"source index must be >= 0, got {source}")
            matrix = _as_matrix(matrix, f"weight on source {source}")
            if matrix.shape[0] != bias.shape[0]:
                raise NetworkError(
                    f"weight on source {source} has {matrix.shape[0]} rows but the bias has {bias.shape[0]} entries"
                )
            if source in merged:
                if merged[source].shape != matrix.shape:
                    raise NetworkError(f"two weights on source {source} with shapes {merged[source].shape} and {matrix.shape}")
                matrix = merged[source] + matrix
                matrix.setflags(write=False)
            merged[source] = matrix
        object.__setattr__(self, "terms", tuple(sorted(merged.items())))

    @property
    def out_dim(self) -> int:
        return int(self.bias.shape[0])

    @property
    def sources(self) -> tuple[int, ...]:
        return tuple(s for s, _ in self.terms)

    def __neg__(self) -> "Affine":
        """``-out``: the form whose maximum is the minimum of this one, negated."""
        return Affine(tuple((s, -w) for s, w in self.terms), -self.bias)

    def rows(self, index) -> "Affine":
        """The map of the rows ``index`` (an index array or a slice) only."""
        return Affine(tuple((s, np.atleast_2d(m[index])) for s, m in self.terms), np.atleast_1d(self.bias[index]))

    def weight(self, source: int) -> np.ndarray | None:
        """The matrix on ``source``, or None when the map does not read it."""
        for s, matrix in self.terms:
            if s == source:
                return matrix
        return None

    @staticmethod
    def stack(forms: Sequence["Affine"]) -> "Affine":
        """The rows of several maps, one above the other (a source a map does not read gets zeros)."""
        dims = {s: m.shape[1] for form in forms for s, m in form.terms}
        terms = tuple(
            (s, np.vstack([form.weight(s) if form.weight(s) is not None else np.zeros((form.out_dim, dim)) for form in forms]))
            for s, dim in sorted(dims.items())
        )
        return Affine(terms, np.concatenate([form.bias for form in forms]))

    def apply(self, values: Sequence[np.ndarray]) -> np.ndarray:
        """Evaluate on a batch: ``values[s]`` has shape ``(n, dim(s))``; returns ``(n, out_dim)``."""
        out = np.broadcast_to(self.bias, (values[0].shape[0], self.out_dim)).copy()
        for source, matrix in self.terms:
            out += values[source] @ matrix.T
        return out


def is_active(z):
    """A neuron's phase from its pre-activation ``z`` (a number or an array): active when ``z > 0``.

    The project's one rule for ``z == 0`` exactly: inactive (phase 0, pattern bit '0'). Both
    phases give the same output there, so the choice only has to be made the same way everywhere.
    """
    return z > 0


@dataclass(frozen=True)
class Trace:
    """Every value of a forward pass on a batch of ``n`` inputs.

    ``pre_activations[l]`` and ``activations[l]`` have shape ``(n, width_l)``;
    ``output`` has shape ``(n, output_dim)``.
    """

    inputs: np.ndarray
    pre_activations: tuple[np.ndarray, ...]
    activations: tuple[np.ndarray, ...]
    output: np.ndarray

    def masks(self) -> list[np.ndarray]:
        """Each ReLU layer's phases, ``(n, width)`` bools, True where ``z > 0``.

        The project's one rule for a neuron exactly at ``z == 0``: inactive (phase 0). Both
        phases give the same output there, so the choice only has to be the same everywhere.
        """
        return [is_active(z) for z in self.pre_activations]

    def pattern(self) -> np.ndarray:
        """Activation pattern, shape ``(n, neuron_count)``: the layers' :meth:`masks` side by side."""
        if not self.pre_activations:
            return np.zeros((self.inputs.shape[0], 0), dtype=bool)
        return np.concatenate(self.masks(), axis=1)


@dataclass(frozen=True)
class Network:
    """A ReLU network in canonical form (see the module docstring).

    ``relu_layers[l]`` is the pre-activation map of ReLU layer ``l`` (it may read sources
    ``0..l``); ``output`` reads any sources ``0..len(relu_layers)``.
    ``input_names``/``output_names`` are optional labels for plots and messages.
    """

    input_dim: int
    relu_layers: tuple[Affine, ...]
    output: Affine
    input_names: tuple[str, ...] | None = None
    output_names: tuple[str, ...] | None = None
    source_description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if int(self.input_dim) < 1:
            raise NetworkError(f"input dimension must be at least 1, got {self.input_dim}")
        object.__setattr__(self, "input_dim", int(self.input_dim))
        object.__setattr__(self, "relu_layers", tuple(self.relu_layers))
        dims = [self.input_dim]
        for index, layer in enumerate(self.relu_layers):
            self._check_reads(layer, dims, f"ReLU layer {index}")
            dims.append(layer.out_dim)
        self._check_reads(self.output, dims, "the output")
        if self.output.out_dim < 1:
            raise NetworkError("the network has no output")
        if self.input_names is not None and len(self.input_names) != self.input_dim:
            raise NetworkError(f"{len(self.input_names)} input names for {self.input_dim} inputs")
        if self.output_names is not None and len(self.output_names) != self.output.out_dim:
            raise NetworkError(f"{len(self.output_names)} output names for {self.output.out_dim} outputs")

    @staticmethod
    def _check_reads(layer: Affine, dims: list[int], what: str) -> None:
        for source, matrix in layer.terms:
            if source >= len(dims):
                raise NetworkError(f"{what} reads source {source}, which is not computed before it")
            if matrix.shape[1] != dims[source]:
                name = "the input" if source == 0 else f"ReLU layer {source - 1}"
                raise NetworkError(f"{what} has a weight with {matrix.shape[1]} columns but {name} has {dims[source]} values")

    # ----------------------------------------------------------------- building
    @classmethod
    def mlp(cls, layers: Iterable[tuple[np.ndarray, np.ndarray]], output_relu: bool = False, **kwargs) -> "Network":
        """A plain MLP from ``[(W1, b1), (W2, b2), ...]`` with a ReLU after every layer but the last.

        With ``output_relu=True`` the last layer is followed by a ReLU too, and the output
        is that ReLU layer's value. ``W`` has shape ``(out, in)`` like ``torch.nn.Linear``.

        >>> net = Network.mlp([(np.eye(2), np.zeros(2)), (np.ones((1, 2)), np.zeros(1))])
        >>> net.widths
        (2,)
        """
        layers = [(_as_matrix(w, f"weight of layer {i}"), _as_vector(b, f"bias of layer {i}")) for i, (w, b) in enumerate(layers)]
        if not layers:
            raise NetworkError("an MLP needs at least one layer")
        relu_count = len(layers) if output_relu else len(layers) - 1
        relu_layers = tuple(Affine(((i, w),), b) for i, (w, b) in enumerate(layers[:relu_count]))
        if output_relu:
            width = layers[-1][0].shape[0]
            output = Affine(((relu_count, np.eye(width)),), np.zeros(width))
        else:
            w, b = layers[-1]
            output = Affine(((relu_count, w),), b)
        return cls(layers[0][0].shape[1], relu_layers, output, **kwargs)

    # ------------------------------------------------------------------ queries
    @property
    def widths(self) -> tuple[int, ...]:
        """Neurons in each ReLU layer."""
        return tuple(layer.out_dim for layer in self.relu_layers)

    @property
    def neuron_count(self) -> int:
        return int(sum(self.widths))

    @property
    def output_dim(self) -> int:
        return self.output.out_dim

    @property
    def source_dims(self) -> tuple[int, ...]:
        return (self.input_dim, *self.widths)

    def neuron_offsets(self) -> np.ndarray:
        """Start of each ReLU layer in the flat pattern, shape ``(layers + 1,)``."""
        return np.concatenate([[0], np.cumsum(self.widths)]).astype(int)

    def unread_neurons(self) -> np.ndarray:
        """The neurons whose activation no later ReLU layer reads (only the output may), as a bool mask
        in pattern order, shape ``(neurons,)``: in an MLP, the last ReLU layer."""
        read = [np.zeros(width, dtype=bool) for width in self.widths]
        for affine in self.relu_layers:
            for source, matrix in affine.terms:
                if source > 0:
                    read[source - 1] |= np.any(matrix != 0, axis=0)
        return ~np.concatenate(read) if read else np.zeros(0, dtype=bool)

    def below(self, layer: int, output: Affine | None = None) -> "Network":
        """The ReLU layers before ``layer``, with ``output`` as output (default: ``layer``'s
        pre-activation): the network a question about that layer's neurons reads."""
        # with its own output, every ReLU layer may be kept (layer == depth)
        depth = len(self.relu_layers) + (output is not None)
        if isinstance(layer, bool) or not isinstance(layer, numbers.Integral) or not 0 <= layer < depth:
            raise NetworkError(f"there is no ReLU layer {layer!r}: the network has {layer_choices(len(self.relu_layers))}")
        return Network(self.input_dim, self.relu_layers[:layer], self.relu_layers[layer] if output is None else output)

    def is_residual(self) -> bool:
        """True when some map reads a source other than the one just before it."""
        maps = (*self.relu_layers, self.output)
        return any(layer.sources != (index,) for index, layer in enumerate(maps))

    def forward(self, x) -> Trace:
        """Run a batch ``x`` of shape ``(n, input_dim)`` (or one input ``(input_dim,)``) in float64."""
        x = np.asarray(x, dtype=np.float64)
        single = x.ndim == 1
        x = np.atleast_2d(x)
        if x.shape[1] != self.input_dim:
            raise NetworkError(f"input has {x.shape[1]} values, the network takes {self.input_dim}")
        values = [x]
        pre, post = [], []
        for layer in self.relu_layers:
            z = layer.apply(values)
            h = np.maximum(z, 0.0)
            pre.append(z)
            post.append(h)
            values.append(h)
        y = self.output.apply(values)
        trace = Trace(x, tuple(pre), tuple(post), y)
        if single:
            trace = Trace(x[0], tuple(z[0] for z in pre), tuple(h[0] for h in post), y[0])
        return trace

    def __call__(self, x) -> np.ndarray:
        return self.forward(x).output

    def describe(self) -> str:
        """A few lines for ``milp info``."""
        lines = [f"input: {self.input_dim}", f"output: {self.output_dim}"]
        lines.append(f"ReLU layers: {len(self.relu_layers)} ({self.neuron_count} neurons)")
        for index, layer in enumerate(self.relu_layers):
            reads = ", ".join("x" if s == 0 else f"h{s - 1}" for s in layer.sources)
            lines.append(f"  layer {index}: {layer.out_dim} neurons, z{index} = affine({reads})")
        reads = ", ".join("x" if s == 0 else f"h{s - 1}" for s in self.output.sources)
        lines.append(f"  output: y = affine({reads})")
        lines.append(f"residual connections: {'yes' if self.is_residual() else 'no'}")
        return "\n".join(lines)

"""Symbolic tensors shared by the importers: affine expressions and the ReLU layers behind them.

An importer walks a model once, from its input to its output. Every tensor that depends on
the input is an :class:`Expr`, an affine function of the network's *sources* (source 0
is the input, source ``k >= 1`` is the output of the k-th ReLU layer, as in
:mod:`milp.core.network`). A :class:`Builder` holds the ReLU layers created so far:
``Builder.relu`` turns an expression into a new layer and returns that layer's source,
and ``Builder.network`` closes the walk with the output expression.

Shapes are per sample (no batch axis) and tensors are flattened in C order, so a reshape
only relabels an expression. Operations an expression cannot represent raise
:class:`Unsupported`, which the ONNX loader reports for the node that caused it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from milp.core.network import Affine, Network

__all__ = ["Expr", "Builder", "Unsupported"]


class Unsupported(Exception):
    """An operation that cannot be imported (a shape mismatch, a non-affine product, ...).

    The ONNX loader collects it per node and never shows it as a traceback.
    """


@dataclass(frozen=True)
class Expr:
    """A tensor affine in the sources: ``value = sum_s parts[s] @ source_s + bias``.

    * ``shape`` — the tensor's shape for one sample (a tuple of ints, possibly empty);
    * ``bias`` — a float64 array of shape ``shape``;
    * ``parts[s]`` — for each source ``s`` the tensor depends on, a float64 array of shape
      ``(*shape, dim(source s))`` whose last axis is contracted with the flattened source,
      or ``None`` for the identity on source ``s`` (the tensor *is* that source, reshaped
      in C order, so ``prod(shape) == dim(source s)``).

    A constant is an ``Expr`` with no parts. Every operation returns a new ``Expr``.
    """

    shape: tuple[int, ...]
    parts: dict[int, np.ndarray | None]
    bias: np.ndarray

    @property
    def size(self) -> int:
        """The number of elements for one sample, ``prod(shape)``."""
        return int(np.prod(self.shape, dtype=np.int64))

    def dense(self, source: int) -> np.ndarray:
        """``parts[source]`` as an array of shape ``(*shape, dim(source))``, the identity made explicit."""
        part = self.parts[source]
        if part is None:
            part = np.eye(self.size).reshape(*self.shape, self.size)
        return part

    def _new(self, shape, parts, bias) -> "Expr":
        return Expr(tuple(int(d) for d in shape), parts, np.asarray(bias, dtype=np.float64))

    # ---------------------------------------------------------------- shape only
    def reshape(self, shape) -> "Expr":
        """The same values with shape ``shape`` (same number of elements, C order)."""
        shape = tuple(int(d) for d in shape)
        if int(np.prod(shape, dtype=np.int64)) != self.size:
            raise Unsupported(f"cannot reshape {list(self.shape)} to {list(shape)}")
        parts = {s: None if p is None else p.reshape(*shape, p.shape[-1]) for s, p in self.parts.items()}
        return self._new(shape, parts, self.bias.reshape(shape))

    def transpose_last2(self) -> "Expr":
        """The transpose of a matrix: shape ``(m, n)`` becomes ``(n, m)``."""
        if len(self.shape) != 2:
            raise Unsupported(f"expected a matrix, got shape {list(self.shape)}")
        shape = (self.shape[1], self.shape[0])
        if 1 in self.shape:  # swapping with a unit axis keeps the C order
            return self.reshape(shape)
        parts = {s: np.swapaxes(self.dense(s), 0, 1) for s in self.parts}
        return self._new(shape, parts, self.bias.T)

    def broadcast_to(self, shape) -> "Expr":
        """The values broadcast to ``shape`` with numpy rules."""
        shape = tuple(int(d) for d in shape)
        if shape == self.shape:
            return self
        if int(np.prod(shape, dtype=np.int64)) == self.size:  # only unit axes added
            return self.reshape(shape)
        parts = {s: np.broadcast_to(self.dense(s), (*shape, self.dense(s).shape[-1])) for s in self.parts}
        return self._new(shape, parts, np.broadcast_to(self.bias, shape))

    # ------------------------------------------------------------------- affine
    def add(self, other: "Expr") -> "Expr":
        """``self + other`` with numpy broadcasting; terms on the same source are merged."""
        shape = np.broadcast_shapes(self.shape, other.shape)
        a, b = self.broadcast_to(shape), other.broadcast_to(shape)
        parts = dict(a.parts)
        for s, p in b.parts.items():
            parts[s] = p if s not in parts else a.dense(s) + b.dense(s)
        return self._new(shape, parts, a.bias + b.bias)

    def add_const(self, c: np.ndarray) -> "Expr":
        """``self + c`` for a constant array ``c`` broadcastable with ``shape``."""
        c = np.asarray(c, dtype=np.float64)
        shape = np.broadcast_shapes(self.shape, c.shape)
        a = self.broadcast_to(shape)
        return self._new(shape, a.parts, a.bias + c)

    def scale(self, c: np.ndarray, divide: bool = False) -> "Expr":
        """Elementwise ``self * c`` (or ``self / c``) with a constant ``c`` broadcastable with ``shape``.

        Division by zero is not raised here; it leaves non-finite values (see :meth:`is_finite`).
        """
        c = np.asarray(c, dtype=np.float64)
        shape = np.broadcast_shapes(self.shape, c.shape)
        a = self.broadcast_to(shape)
        op = np.divide if divide else np.multiply
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # reported by is_finite
            parts = {s: op(a.dense(s), c[..., None]) for s in a.parts}
            bias = op(a.bias, c)
        return self._new(shape, parts, bias)

    def matmul(self, c: np.ndarray, var_left: bool) -> "Expr":
        """``self @ c`` (``var_left``) or ``c @ self`` with numpy/ONNX MatMul semantics.

        ``c`` is a constant array of at least one dimension; the result's shape is that
        of ``np.matmul`` on arrays of the operands' shapes.
        """
        c = np.asarray(c, dtype=np.float64)
        if c.ndim == 0 or len(self.shape) == 0:
            raise Unsupported("MatMul of a scalar")
        bias = np.matmul(self.bias, c) if var_left else np.matmul(c, self.bias)
        shape = bias.shape
        parts = {}
        # A vector times a matrix (the usual layer) is one matrix product per part.
        row_vector = c.ndim == 2 and var_left and all(d == 1 for d in self.shape[:-1])
        column_vector = c.ndim == 2 and not var_left and self.shape in ((self.size,), (self.size, 1))
        for s, p in self.parts.items():
            if row_vector:  # y[j] = sum_l x[l] c[l, j]
                parts[s] = (c.T if p is None else c.T @ p.reshape(self.size, -1)).reshape(*shape, -1)
            elif column_vector:  # y[i] = sum_l c[i, l] x[l]
                parts[s] = (c if p is None else c @ p.reshape(self.size, -1)).reshape(*shape, -1)
            else:
                parts[s] = self._matmul_dense(self.dense(s), c, var_left).reshape(*shape, -1)
        return self._new(shape, parts, bias)

    def _matmul_dense(self, p: np.ndarray, c: np.ndarray, var_left: bool) -> np.ndarray:
        # The column axis of p becomes a batch axis of np.matmul; 1-D operands are promoted
        # to matrices like numpy does, and the caller reshapes the unit axes away.
        if len(self.shape) == 1:
            p = p[None, :, :] if var_left else p[:, None, :]
        c = (c[:, None] if var_left else c[None, :]) if c.ndim == 1 else c
        p = np.moveaxis(p, -1, -3)
        c = c[..., None, :, :]
        out = np.matmul(p, c) if var_left else np.matmul(c, p)
        return np.moveaxis(out, -3, -1)

    def is_finite(self) -> bool:
        """Whether every coefficient and bias entry is finite."""
        return bool(np.all(np.isfinite(self.bias))) and all(p is None or bool(np.all(np.isfinite(p))) for p in self.parts.values())


class Builder:
    """The ReLU layers created so far; sources are numbered as in :mod:`milp.core.network`.

    * ``input_dim`` — the flattened input width, ``prod(input_shape)``;
    * ``input`` — the :class:`Expr` of the input: shape ``input_shape``, the identity on source 0;
    * ``layers`` — one :class:`~milp.core.network.Affine` per ReLU layer, in creation order:
      ``layers[k - 1]`` is the pre-activation of source ``k``, a vector of that layer's width.
    """

    def __init__(self, input_shape: tuple[int, ...]) -> None:
        self.input_dim = int(np.prod(input_shape, dtype=np.int64))
        self.layers: list[Affine] = []
        self.input = Expr(tuple(input_shape), {0: None}, np.zeros(input_shape))

    def affine(self, expr: Expr) -> Affine:
        """The flat ``Affine`` of an expression; all-zero terms are dropped.

        Each term's matrix has shape ``(expr.size, dim(source))``; the bias has shape ``(expr.size,)``.
        """
        size = expr.size
        terms = []
        for s in sorted(expr.parts):
            matrix = expr.dense(s).reshape(size, -1)
            if np.any(matrix):
                terms.append((s, matrix))
        return Affine(tuple(terms), expr.bias.reshape(size))

    def relu(self, expr: Expr) -> Expr:
        """``relu(expr)``: a new ReLU layer on ``expr``, returned as the identity on its source (shape ``expr.shape``)."""
        # relu of a ReLU layer's own value is that value: no new layer needed.
        if len(expr.parts) == 1 and not np.any(expr.bias):
            (s, part), = expr.parts.items()
            if s > 0 and part is None:
                return expr
        self.layers.append(self.affine(expr))
        source = len(self.layers)
        return Expr(expr.shape, {source: None}, np.zeros(expr.shape))

    def network(self, output: Expr, **kwargs) -> Network:
        """The :class:`~milp.core.network.Network` with the layers so far and output ``output`` (flattened).

        ``kwargs`` are passed to ``Network`` (names, ``source_description``); it raises
        :class:`~milp.core.network.NetworkError` for an invalid network.
        """
        return Network(self.input_dim, tuple(self.layers), self.affine(output), **kwargs)

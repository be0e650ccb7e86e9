"""Linear conditions over a network's values, parsed from text such as ``"y[0] - y[1] >= 0.2"``.

Names: ``x[i]`` input i, ``y[i]`` output i, ``h<L>[k]`` output of ReLU layer L (counted
from 0 in evaluation order), ``z<L>[k]`` its pre-activation. Expressions use numbers,
``+ - *`` (and ``/`` by a number) and compare with ``< <= > >=``; ``>`` and ``<`` are strict.
A chain ``0 <= x[0] <= 1`` is two conditions.

Every condition is compiled to ``expression >= 0`` (or ``> 0`` when strict), where the
expression is a one-row :class:`~milp.core.network.Affine` over the network's sources (input and
ReLU outputs): ``z`` and ``y`` are replaced by the affine maps that compute them. So a
condition is linear in the MILP's variables whatever names it uses.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass

import numpy as np

from milp.core.errors import InputError
from milp.core.network import Affine, Network, NetworkError, layer_choices

__all__ = ["Condition", "ConditionError", "parse_conditions", "value_form", "evaluate"]


class ConditionError(InputError):
    """A condition that cannot be parsed or names a value the network does not have."""


@dataclass(frozen=True)
class Condition:
    """``expression(sources) >= 0``, or ``> 0`` when ``strict``; ``expression.out_dim == 1``."""

    expression: Affine
    strict: bool
    text: str

    def slack(self, network: Network, x) -> np.ndarray:
        """``expression`` at a batch of inputs ``x`` (n, input_dim): shape (n,). Holds where >= 0 (> 0 if strict)."""
        trace = network.forward(np.atleast_2d(x))
        return self.expression.apply([trace.inputs, *trace.activations])[:, 0]

    def holds(self, network: Network, x, tolerance: float = 0.0) -> np.ndarray:
        """Whether the condition holds at each input (non-strict ones up to ``tolerance``)."""
        s = self.slack(network, x)
        return s > 0 if self.strict else s >= -tolerance


_NAME = re.compile(r"^(x|y|h(\d+)|z(\d+))$")


def value_form(network: Network, name: str, index: int) -> Affine:
    """The one-row affine map over sources that computes ``name[index]``.

    >>> # value_form(net, "z1", 3) is row 3 of ReLU layer 1's pre-activation map.
    """
    match = _NAME.match(name)
    if not match:
        raise ConditionError(f"unknown name {name!r}: use x[i], y[i], h<L>[k] or z<L>[k]")
    index = int(index)

    def unit(source: int, dim: int) -> Affine:
        if not 0 <= index < dim:
            raise ConditionError(f"{name}[{index}] does not exist: {name} has {dim} entries (0..{dim - 1})")
        row = np.zeros((1, dim))
        row[0, index] = 1.0
        return Affine(((source, row),), np.zeros(1))

    def row_of(affine: Affine, dim: int) -> Affine:
        if not 0 <= index < dim:
            raise ConditionError(f"{name}[{index}] does not exist: {name} has {dim} entries (0..{dim - 1})")
        return Affine(tuple((s, w[index : index + 1]) for s, w in affine.terms), affine.bias[index : index + 1])

    if name == "x":
        return unit(0, network.input_dim)
    if name == "y":
        return row_of(network.output, network.output_dim)
    layer = int(match.group(2) if match.group(2) is not None else match.group(3))
    if not 0 <= layer < len(network.relu_layers):
        count = len(network.relu_layers)
        raise ConditionError(f"{name}[{index}]: there is no ReLU layer {layer} (the network has {layer_choices(count)})")
    if name.startswith("h"):
        return unit(layer + 1, network.widths[layer])
    return row_of(network.relu_layers[layer], network.widths[layer])


def _scale(form: Affine, factor: float) -> Affine:
    return Affine(tuple((s, w * factor) for s, w in form.terms), form.bias * factor)


def _add(a: Affine, b: Affine) -> Affine:
    return Affine(a.terms + b.terms, a.bias + b.bias)


def _constant(value: float) -> Affine:
    return Affine((), np.array([float(value)]))


def _is_constant(form: Affine) -> bool:
    return all(not np.any(w) for _, w in form.terms)


def _quoted(text: str, limit: int = 120) -> str:
    """A condition's text for a one-line message: quoted, and its middle left out when long."""
    return repr(text if len(text) <= limit else f"{text[: limit // 2]} ... {text[-limit // 2:]}")


class _Compiler:
    def __init__(self, network: Network, text: str):
        self.network = network
        self.text = text

    def fail(self, why: str) -> ConditionError:
        return ConditionError(f"condition {_quoted(self.text)}: {why}")

    def compile(self, node: ast.AST) -> Affine:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            try:
                finite = math.isfinite(float(node.value))
            except OverflowError:  # an integer beyond float's range
                finite = False
            if not finite:
                number = ast.get_source_segment(self.text, node) or str(node.value)
                raise self.fail(f"{number if len(number) <= 40 else _quoted(number, 40)} is not a finite number")
            return _constant(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = self.compile(node.operand)
            return _scale(inner, -1.0) if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp):
            left, right = self.compile(node.left), self.compile(node.right)
            if isinstance(node.op, ast.Add):
                return _add(left, right)
            if isinstance(node.op, ast.Sub):
                return _add(left, _scale(right, -1.0))
            if isinstance(node.op, ast.Mult):
                if _is_constant(left):
                    return _scale(right, float(left.bias[0]))
                if _is_constant(right):
                    return _scale(left, float(right.bias[0]))
                raise self.fail("a product of two network values is not linear")
            if isinstance(node.op, ast.Div):
                if _is_constant(right) and right.bias[0] != 0:
                    return _scale(left, 1.0 / float(right.bias[0]))
                raise self.fail("divide only by a non-zero number")
            raise self.fail(f"operator {type(node.op).__name__} is not supported (use + - * /)")
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            index_node = node.slice
            if isinstance(index_node, ast.UnaryOp) and isinstance(index_node.op, ast.USub):
                raise self.fail("indices count from 0 and cannot be negative")
            if not (isinstance(index_node, ast.Constant) and isinstance(index_node.value, int)):
                raise self.fail(f"{node.value.id}[...] needs a whole-number index")
            try:
                return value_form(self.network, node.value.id, index_node.value)
            except ConditionError as error:
                raise self.fail(str(error)) from None
        if isinstance(node, ast.Name):
            if node.id.lower() in ("nan", "inf", "infinity"):
                raise self.fail(f"{node.id} is not a finite number")
            raise self.fail(f"{node.id!r} needs an index, e.g. {node.id}[0]")
        raise self.fail(f"cannot read {ast.unparse(node)!r}")


def parse_conditions(network: Network, texts) -> tuple[Condition, ...]:
    """Parse one text or a list of texts into a conjunction of conditions.

    >>> # parse_conditions(net, ["y[0] - y[1] >= 0.2", "h1[3] > 0"])
    """
    if texts is None:
        return ()
    if isinstance(texts, str):
        texts = [texts]
    conditions: list[Condition] = []
    for text in texts:
        if isinstance(text, Condition):
            conditions.append(text)
            continue
        source = str(text).strip()
        try:
            tree = ast.parse(source, mode="eval").body
        except SyntaxError:
            raise ConditionError(f"condition {_quoted(source)}: not a linear inequality such as 'y[0] - y[1] >= 0.2'") from None
        if isinstance(tree, (ast.BoolOp, ast.Tuple)):
            raise ConditionError(f"condition {_quoted(source)}: give one inequality per --where (repeat it for a conjunction)")
        if not isinstance(tree, ast.Compare):
            raise ConditionError(f"condition {_quoted(source)}: needs a comparison (< <= > >=)")
        compiler = _Compiler(network, source)
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # an overflow makes a non-finite coefficient, refused just below
                operands = [compiler.compile(tree.left), *(compiler.compile(c) for c in tree.comparators)]
                expressions = []
                for op, left, right in zip(tree.ops, operands, operands[1:]):
                    if isinstance(op, (ast.GtE, ast.Gt)):
                        expressions.append((op, _add(left, _scale(right, -1.0))))
                    elif isinstance(op, (ast.LtE, ast.Lt)):
                        expressions.append((op, _add(right, _scale(left, -1.0))))
                    else:
                        raise ConditionError(f"condition {_quoted(source)}: use < <= > >= (not {type(op).__name__})")
        except NetworkError:  # an Affine with a non-finite coefficient
            raise ConditionError(f"condition {_quoted(source)}: a coefficient overflows (beyond 1.8e308)") from None
        for op, expression in expressions:
            if _is_constant(expression):
                raise ConditionError(f"condition {_quoted(source)}: no network value is left in it (it compares numbers only)")
            conditions.append(Condition(expression, isinstance(op, (ast.Gt, ast.Lt)), source))
    return tuple(conditions)


def evaluate(network: Network, conditions, x, tolerance: float = 0.0) -> np.ndarray:
    """True where every condition holds, for a batch ``x`` (n, input_dim); shape (n,)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    ok = np.ones(x.shape[0], dtype=bool)
    for condition in conditions:
        ok &= condition.holds(network, x, tolerance)
    return ok

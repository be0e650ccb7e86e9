"""Load an ONNX model into a :class:`milp.core.network.Network`.

The graph is walked symbolically. Every tensor is either a constant (a numpy array) or
an :class:`_Expr`, an affine function of the network's sources; ``Relu`` of an affine
tensor starts a new ReLU layer and yields the identity on that layer's source. Adding
two tensors that both depend on the input merges their terms, so residual blocks come
out as terms on older sources, and consecutive linear operators compose into one map.

Shapes are tracked per sample: a symbolic batch dimension counts as 1, and a tensor is
flattened in C order, so reshapes of any kind only relabel it. Nodes whose inputs are
all constants are folded with the ONNX reference evaluator, whatever their operator.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from milp.core.network import Affine, Network, NetworkError

from .reference import ModelImportError, OnnxReference, as_box, check_against, tolerance_for

__all__ = ["load_onnx", "SUPPORTED_OPS", "ModelImportError"]

# Operators accepted on tensors that depend on the input. Any operator is accepted when
# all its inputs are constants (it is evaluated once while loading).
SUPPORTED_OPS = (
    "Add", "BatchNormalization", "Cast", "Constant", "Div", "Dropout", "Flatten", "Gemm",
    "Identity", "MatMul", "Mul", "Neg", "Relu", "Reshape", "Shape", "Squeeze", "Sub", "Unsqueeze",
)

_FLOAT_TYPES = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}  # ONNX TensorProto elem types
_PRECISION = ["float64", "float32", "float16", "bfloat16"]  # from finest to coarsest

# Metadata keys written by save_onnx so that names survive a round trip.
INPUT_NAMES_KEY = "milp.input_names"
OUTPUT_NAMES_KEY = "milp.output_names"


class _Unsupported(Exception):
    """One node that cannot be imported; collected, never shown as a traceback."""


@dataclass(frozen=True)
class _Expr:
    """A tensor affine in the sources: ``value = sum_s parts[s] @ source_s + bias``.

    ``shape`` is the tensor's shape for one sample; ``bias`` has that shape;
    ``parts[s]`` has shape ``(*shape, dim(source s))``, or is None for the identity on
    source ``s`` (the tensor *is* that source, flattened in C order).
    """

    shape: tuple[int, ...]
    parts: dict[int, np.ndarray | None]
    bias: np.ndarray

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def dense(self, source: int) -> np.ndarray:
        part = self.parts[source]
        if part is None:
            part = np.eye(self.size).reshape(*self.shape, self.size)
        return part

    def _new(self, shape, parts, bias) -> "_Expr":
        return _Expr(tuple(int(d) for d in shape), parts, np.asarray(bias, dtype=np.float64))

    # ---------------------------------------------------------------- shape only
    def reshape(self, shape) -> "_Expr":
        shape = tuple(int(d) for d in shape)
        if int(np.prod(shape, dtype=np.int64)) != self.size:
            raise _Unsupported(f"cannot reshape {list(self.shape)} to {list(shape)}")
        parts = {s: None if p is None else p.reshape(*shape, p.shape[-1]) for s, p in self.parts.items()}
        return self._new(shape, parts, self.bias.reshape(shape))

    def transpose_last2(self) -> "_Expr":
        if len(self.shape) != 2:
            raise _Unsupported(f"expected a matrix, got shape {list(self.shape)}")
        shape = (self.shape[1], self.shape[0])
        if 1 in self.shape:  # swapping with a unit axis keeps the C order
            return self.reshape(shape)
        parts = {s: np.swapaxes(self.dense(s), 0, 1) for s in self.parts}
        return self._new(shape, parts, self.bias.T)

    def broadcast_to(self, shape) -> "_Expr":
        shape = tuple(int(d) for d in shape)
        if shape == self.shape:
            return self
        if int(np.prod(shape, dtype=np.int64)) == self.size:  # only unit axes added
            return self.reshape(shape)
        parts = {s: np.broadcast_to(self.dense(s), (*shape, self.dense(s).shape[-1])) for s in self.parts}
        return self._new(shape, parts, np.broadcast_to(self.bias, shape))

    # ------------------------------------------------------------------- affine
    def add(self, other: "_Expr") -> "_Expr":
        shape = np.broadcast_shapes(self.shape, other.shape)
        a, b = self.broadcast_to(shape), other.broadcast_to(shape)
        parts = dict(a.parts)
        for s, p in b.parts.items():
            parts[s] = p if s not in parts else a.dense(s) + b.dense(s)
        return self._new(shape, parts, a.bias + b.bias)

    def add_const(self, c: np.ndarray) -> "_Expr":
        c = np.asarray(c, dtype=np.float64)
        shape = np.broadcast_shapes(self.shape, c.shape)
        a = self.broadcast_to(shape)
        return self._new(shape, a.parts, a.bias + c)

    def scale(self, c: np.ndarray, divide: bool = False) -> "_Expr":
        """Elementwise ``self * c`` (or ``self / c``) with a constant ``c``."""
        c = np.asarray(c, dtype=np.float64)
        shape = np.broadcast_shapes(self.shape, c.shape)
        a = self.broadcast_to(shape)
        op = np.divide if divide else np.multiply
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # reported by is_finite
            parts = {s: op(a.dense(s), c[..., None]) for s in a.parts}
            bias = op(a.bias, c)
        return self._new(shape, parts, bias)

    def matmul(self, c: np.ndarray, var_left: bool) -> "_Expr":
        """``self @ c`` (``var_left``) or ``c @ self`` with numpy/ONNX MatMul semantics."""
        c = np.asarray(c, dtype=np.float64)
        if c.ndim == 0 or len(self.shape) == 0:
            raise _Unsupported("MatMul of a scalar")
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
        return bool(np.all(np.isfinite(self.bias))) and all(p is None or bool(np.all(np.isfinite(p))) for p in self.parts.values())


class _Builder:
    """The ReLU layers created so far; sources are numbered as in :mod:`milp.core.network`."""

    def __init__(self, input_shape: tuple[int, ...]) -> None:
        self.input_dim = int(np.prod(input_shape, dtype=np.int64))
        self.layers: list[Affine] = []
        self.input = _Expr(tuple(input_shape), {0: None}, np.zeros(input_shape))

    def affine(self, expr: _Expr) -> Affine:
        """The flat ``Affine`` of an expression; all-zero terms are dropped."""
        size = expr.size
        terms = []
        for s in sorted(expr.parts):
            matrix = expr.dense(s).reshape(size, -1)
            if np.any(matrix):
                terms.append((s, matrix))
        return Affine(tuple(terms), expr.bias.reshape(size))

    def relu(self, expr: _Expr) -> _Expr:
        # relu of a ReLU layer's own value is that value: no new layer needed.
        if len(expr.parts) == 1 and not np.any(expr.bias):
            (s, part), = expr.parts.items()
            if s > 0 and part is None:
                return expr
        self.layers.append(self.affine(expr))
        source = len(self.layers)
        return _Expr(expr.shape, {source: None}, np.zeros(expr.shape))

    def network(self, output: _Expr, **kwargs) -> Network:
        return Network(self.input_dim, tuple(self.layers), self.affine(output), **kwargs)


# ------------------------------------------------------------------------- reading
def _read_model(path):
    import onnx

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelImportError(f"no such model file: {path}")
    try:
        model = onnx.load(path)
    except Exception as error:  # protobuf DecodeError, external data errors, ...
        raise ModelImportError(f"{path} is not a readable ONNX model ({type(error).__name__}: {error})") from None
    if not model.HasField("graph") or not model.graph.output:
        raise ModelImportError(f"{path} is not a readable ONNX model (no graph or no graph output)")
    return model


def _to_array(tensor) -> np.ndarray:
    from onnx import numpy_helper

    return numpy_helper.to_array(tensor)


def _opset(model) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 1


def _attributes(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _node_label(node, index: int) -> str:
    name = f"'{node.name}'" if node.name else f"#{index}"
    outputs = ", ".join(f"'{o}'" for o in node.output if o)
    return f"node {name} ({node.op_type}, output {outputs})"


def _input_shape(value_info, path: str) -> tuple[tuple[int, ...], str]:
    tensor_type = value_info.type.tensor_type
    if not value_info.type.HasField("tensor_type"):
        raise ModelImportError(f"{path}: the input '{value_info.name}' is not a tensor")
    dtype = _FLOAT_TYPES.get(tensor_type.elem_type)
    if dtype is None:
        raise ModelImportError(f"{path}: the input '{value_info.name}' is not a floating-point tensor")
    if not tensor_type.HasField("shape"):
        raise ModelImportError(f"{path}: the input '{value_info.name}' has no shape")
    shape = []
    for axis, dim in enumerate(tensor_type.shape.dim):
        if dim.HasField("dim_value") and dim.dim_value > 0:
            shape.append(int(dim.dim_value))
        elif axis == 0:
            shape.append(1)  # symbolic batch dimension: one sample
        else:
            raise ModelImportError(
                f"{path}: the input '{value_info.name}' has a symbolic dimension at axis {axis}; only the batch axis 0 may be symbolic"
            )
    return tuple(shape), dtype


def _needed_nodes(graph) -> list[int]:
    """Indices of the nodes the graph output depends on, in graph order."""
    producer = {}
    for index, node in enumerate(graph.node):
        for name in node.output:
            if name:
                producer[name] = index
    needed, stack = set(), [graph.output[0].name]
    while stack:
        index = producer.get(stack.pop())
        if index is None or index in needed:
            continue
        needed.add(index)
        stack.extend(name for name in graph.node[index].input if name)
    return sorted(needed)


# ---------------------------------------------------------------------------- ops
def _axes(node, values, attrs, opset: int):
    if opset >= 13 and len(node.input) > 1 and node.input[1]:
        axes = values[node.input[1]]
        if isinstance(axes, _Expr):
            raise _Unsupported("the axes input must be a constant")
        return [int(a) for a in np.asarray(axes).reshape(-1)]
    return [int(a) for a in attrs["axes"]] if "axes" in attrs else None


def _reshape_target(shape: tuple[int, ...], target, allowzero: bool) -> tuple[int, ...]:
    target = [int(d) for d in np.asarray(target).reshape(-1)]
    out = [shape[i] if (d == 0 and not allowzero and i < len(shape)) else d for i, d in enumerate(target)]
    if out.count(-1) > 1:
        raise _Unsupported(f"reshape target {target} has more than one -1")
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1], dtype=np.int64))
        size = int(np.prod(shape, dtype=np.int64))
        if known == 0 or size % known:
            raise _Unsupported(f"cannot reshape {list(shape)} to {target}")
        out[out.index(-1)] = size // known
    return tuple(out)


def _const(values, name: str) -> np.ndarray:
    value = values[name]
    if isinstance(value, _Expr):
        raise _Unsupported(f"input '{name}' must be a constant, but it depends on the model input")
    array = np.asarray(value)
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise _Unsupported(f"input '{name}' has a non-finite value {array[bad]} at index {bad}")
    return array.astype(np.float64) if array.dtype.kind == "f" else array


def _apply(node, values, builder: _Builder, opset: int):
    """The outputs of one node with at least one input that depends on the model input."""
    op, attrs, ins = node.op_type, _attributes(node), list(node.input)
    x = values[ins[0]] if ins and ins[0] else None

    def const(i):
        return _const(values, ins[i])

    if op in ("Identity", "Cast", "Dropout"):
        if op == "Cast" and _FLOAT_TYPES.get(int(attrs.get("to", 0))) is None:
            raise _Unsupported("Cast to a non-floating-point type")
        if op == "Dropout":
            training = attrs.get("training_mode", 0) or (len(ins) > 2 and ins[2] and bool(np.asarray(const(2)).any()))
            if training:
                raise _Unsupported("Dropout in training mode")
            return [x, np.ones(x.shape, dtype=bool)][: len(node.output)]
        return [x]
    if op == "Relu":
        return [builder.relu(x)]
    if op == "Neg":
        return [x.scale(np.array(-1.0))]
    if op in ("Add", "Sub", "Mul", "Div"):
        if "axis" in attrs or attrs.get("broadcast", 0):
            raise _Unsupported("legacy broadcasting with an axis attribute")
        a, b = values[ins[0]], values[ins[1]]
        a_var, b_var = isinstance(a, _Expr), isinstance(b, _Expr)
        if op == "Add":
            return [a.add(b) if a_var and b_var else (a.add_const(const(1)) if a_var else b.add_const(const(0)))]
        if op == "Sub":
            if a_var and b_var:
                return [a.add(b.scale(np.array(-1.0)))]
            return [a.add_const(-const(1)) if a_var else b.scale(np.array(-1.0)).add_const(const(0))]
        if a_var and b_var:
            raise _Unsupported(f"{op} of two tensors that both depend on the input is not affine")
        if op == "Mul":
            return [a.scale(const(1)) if a_var else b.scale(const(0))]
        if not a_var:
            raise _Unsupported("division by a tensor that depends on the input is not affine")
        return [a.scale(const(1), divide=True)]
    if op == "MatMul":
        a_var = isinstance(values[ins[0]], _Expr)
        if a_var and isinstance(values[ins[1]], _Expr):
            raise _Unsupported("MatMul of two tensors that both depend on the input is not affine")
        return [values[ins[0]].matmul(const(1), True) if a_var else values[ins[1]].matmul(const(0), False)]
    if op == "Gemm":
        a_var, b_var = isinstance(values[ins[0]], _Expr), isinstance(values[ins[1]], _Expr)
        if a_var and b_var:
            raise _Unsupported("Gemm of two tensors that both depend on the input is not affine")
        alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        if a_var:
            a = values[ins[0]].transpose_last2() if attrs.get("transA", 0) else values[ins[0]]
            b = const(1).T if attrs.get("transB", 0) else const(1)
            y = a.matmul(b, True)
        else:
            a = const(0).T if attrs.get("transA", 0) else const(0)
            b = values[ins[1]].transpose_last2() if attrs.get("transB", 0) else values[ins[1]]
            y = b.matmul(a, False)
        if alpha != 1.0:
            y = y.scale(np.array(alpha))
        if len(ins) > 2 and ins[2]:
            c = values[ins[2]]
            y = y.add(c.scale(np.array(beta))) if isinstance(c, _Expr) else y.add_const(beta * const(2))
        return [y]
    if op == "Flatten":
        axis = int(attrs.get("axis", 1))
        axis = axis + len(x.shape) if axis < 0 else axis
        if not 0 <= axis <= len(x.shape):
            raise _Unsupported(f"Flatten axis {attrs.get('axis')} out of range for shape {list(x.shape)}")
        outer = int(np.prod(x.shape[:axis], dtype=np.int64))
        return [x.reshape((outer, x.size // outer if outer else 0))]
    if op == "Reshape":
        if len(ins) < 2:
            raise _Unsupported("Reshape without a shape input (opset < 5)")
        return [x.reshape(_reshape_target(x.shape, const(1), bool(attrs.get("allowzero", 0))))]
    if op == "Squeeze":
        axes = _axes(node, values, attrs, opset)
        rank = len(x.shape)
        if axes is None:
            axes = [i for i, d in enumerate(x.shape) if d == 1]
        axes = {a + rank if a < 0 else a for a in axes}
        if any(not 0 <= a < rank or x.shape[a] != 1 for a in axes):
            raise _Unsupported(f"cannot squeeze axes {sorted(axes)} of shape {list(x.shape)}")
        return [x.reshape([d for i, d in enumerate(x.shape) if i not in axes])]
    if op == "Unsqueeze":
        axes = _axes(node, values, attrs, opset)
        if axes is None:
            raise _Unsupported("Unsqueeze without axes")
        rank = len(x.shape) + len(axes)
        axes = sorted(a + rank if a < 0 else a for a in axes)
        shape = list(x.shape)
        for a in axes:
            shape.insert(a, 1)
        return [x.reshape(shape)]
    if op == "Shape":
        shape = np.array(x.shape, dtype=np.int64)
        start, end = attrs.get("start", 0), attrs.get("end", None)
        return [shape[start:end]]
    if op == "BatchNormalization":
        if attrs.get("training_mode", 0) or len([o for o in node.output if o]) > 1:
            raise _Unsupported("BatchNormalization in training mode")
        if attrs.get("spatial", 1) == 0:
            raise _Unsupported("BatchNormalization with spatial=0")
        if len(x.shape) < 2:
            raise _Unsupported(f"BatchNormalization needs a (batch, channel, ...) tensor, got shape {list(x.shape)}")
        scale, shift, mean, var = (const(i) for i in range(1, 5))
        eps = float(attrs.get("epsilon", 1e-5))
        axis_shape = (x.shape[1],) + (1,) * (len(x.shape) - 2)
        factor = (scale / np.sqrt(var + eps)).reshape(axis_shape)
        return [x.add_const(-mean.reshape(axis_shape)).scale(factor).add_const(shift.reshape(axis_shape))]
    raise _Unsupported("unsupported operator")


def _fold(node, values, opset: int) -> list[np.ndarray]:
    """Evaluate a node whose inputs are all constants with the ONNX reference evaluator."""
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    # A one-node model, so that the node is read with the model's opset.
    names = [name for name in node.input if name]
    graph = helper.make_graph(
        [node], "fold",
        [helper.make_tensor_value_info(name, TensorProto.UNDEFINED, None) for name in names],
        [helper.make_tensor_value_info(name, TensorProto.UNDEFINED, None) for name in node.output if name],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    try:
        outputs = ReferenceEvaluator(model).run(None, {name: values[name] for name in names})
    except Exception as error:  # the evaluator raises many kinds of errors for ops it lacks
        raise _Unsupported(f"cannot evaluate this constant node ({type(error).__name__}: {error})") from None
    outputs = iter(np.asarray(v) for v in outputs)
    return [next(outputs) if name else None for name in node.output]


def _input_dependent(graph, input_name: str) -> set[str]:
    """Names of the tensors that depend on the graph input (structurally)."""
    dependent = {input_name}
    for node in graph.node:  # ONNX nodes are topologically sorted
        if any(name in dependent for name in node.input):
            dependent.update(name for name in node.output if name)
    return dependent


def _convert(model, path: str) -> tuple[Network, str]:
    """The network of a model, and the coarsest floating-point type its computation uses."""
    graph = model.graph
    opset = _opset(model)
    values: dict[str, object] = {}
    for tensor in graph.initializer:
        try:
            values[tensor.name] = _to_array(tensor)
        except Exception as error:  # unknown element types, missing external data, ...
            raise ModelImportError(f"{path}: cannot read the initializer '{tensor.name}' ({type(error).__name__}: {error})") from None
    real_inputs = [v for v in graph.input if v.name not in values]
    if len(real_inputs) != 1 or len(graph.output) != 1:
        raise ModelImportError(
            f"{path}: the model must have exactly one input and one output, "
            f"it has {len(real_inputs)} inputs ({', '.join(v.name for v in real_inputs)}) and {len(graph.output)} outputs"
        )
    input_shape, input_dtype = _input_shape(real_inputs[0], path)
    precisions = {input_dtype}
    output_type = _FLOAT_TYPES.get(graph.output[0].type.tensor_type.elem_type)
    if output_type:
        precisions.add(output_type)
    builder = _Builder(input_shape)
    values[real_inputs[0].name] = builder.input
    dependent = _input_dependent(graph, real_inputs[0].name)
    unknown = object()  # a value that could not be computed
    failed: set[str] = set()  # outputs of nodes already reported; their users are not reported again
    problems = []
    for index in _needed_nodes(graph):
        node = graph.node[index]
        label = _node_label(node, index)
        inputs = [values.get(name, unknown) if name else None for name in node.input]
        if any(v is unknown for v in inputs):
            undefined = [name for name, v in zip(node.input, inputs) if v is unknown and name not in failed]
            if undefined:
                problems.append(f"{label}: input {', '.join(repr(n) for n in undefined)} is not defined in the graph")
            elif (node.op_type not in SUPPORTED_OPS or node.domain not in ("", "ai.onnx")) and any(
                name in dependent for name in node.input
            ):
                problems.append(f"{label}: unsupported operator")
            outputs = [unknown] * len(node.output)
        else:
            try:
                if node.domain not in ("", "ai.onnx"):
                    raise _Unsupported(f"operator from the domain '{node.domain}'")
                if any(isinstance(v, _Expr) for v in inputs):
                    outputs = _apply(node, values, builder, opset)
                    if node.op_type == "Cast":
                        precisions.add(_FLOAT_TYPES[int(_attributes(node)["to"])])
                    for out in outputs:
                        if isinstance(out, _Expr) and not out.is_finite():
                            raise _Unsupported("produces non-finite values (overflow or division by zero)")
                else:
                    outputs = _fold(node, values, opset)
            except _Unsupported as reason:
                problems.append(f"{label}: {reason}")
                outputs = [unknown] * len(node.output)
            except (NetworkError, ValueError, IndexError, KeyError, TypeError) as error:
                problems.append(f"{label}: {type(error).__name__}: {error}")
                outputs = [unknown] * len(node.output)
        for name, value in zip(node.output, outputs):
            if name:
                values[name] = value
                if value is unknown:
                    failed.add(name)
    if problems:
        # one line, every problem named; the supported list only when an operator is the problem
        ops = any(p.endswith("unsupported operator") or "operator from the domain" in p for p in problems)
        raise ModelImportError(
            f"cannot import {path}: " + "; ".join(problems)
            + (f" (supported on input-dependent tensors: {', '.join(SUPPORTED_OPS)}; any operator on constants)" if ops else "")
        )
    output = values.get(graph.output[0].name, unknown)
    if output is unknown:
        raise ModelImportError(f"{path}: the graph output '{graph.output[0].name}' is not computed by any node")
    if not isinstance(output, _Expr):
        array = np.asarray(output, dtype=np.float64)
        output = _Expr(array.shape, {}, array)
    names = {key: json.loads(value) for key, value in ((p.key, p.value) for p in model.metadata_props)
             if key in (INPUT_NAMES_KEY, OUTPUT_NAMES_KEY)}
    input_names = names.get(INPUT_NAMES_KEY)
    output_names = names.get(OUTPUT_NAMES_KEY)
    if input_names is not None and len(input_names) != builder.input_dim:
        input_names = None
    if output_names is not None and len(output_names) != output.size:
        output_names = None
    try:
        network = builder.network(
            output,
            input_names=tuple(input_names) if input_names else None,
            output_names=tuple(output_names) if output_names else None,
            source_description=path,
        )
    except NetworkError as error:
        raise ModelImportError(f"cannot import {path}: {error}") from None
    coarsest = max(precisions, key=_PRECISION.index)
    return network, coarsest


def load_onnx(path, box=None, check: bool = True, samples: int = 256, seed: int = 0) -> Network:
    """Load the ReLU network of an ONNX file.

    The model needs one floating-point input (a symbolic batch axis 0 is allowed) and one
    output; inputs and outputs are flattened in C order. With ``check`` the network is
    compared with onnxruntime on ``samples`` random inputs (uniform in ``box`` — a
    :class:`milp.core.box.Box`, a ``(lower, upper)`` pair or box text — else standard normal).
    Raises :class:`ModelImportError` naming every unsupported node, for an unreadable
    file, for non-finite weights, and when the check fails.
    """
    path = os.fspath(path)
    model = _read_model(path)
    network, precision = _convert(model, path)
    if check:
        check_against(
            network,
            OnnxReference(path),
            box=as_box(box, network.input_dim),
            samples=samples,
            seed=seed,
            tolerance=tolerance_for(precision),
            what=f"onnxruntime on {path}",
        )
    return network

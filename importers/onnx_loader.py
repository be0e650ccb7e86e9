"""Load an ONNX model into a :class:`milp.core.network.Network`.

The graph is walked symbolically. Every tensor is either a constant (a numpy array) or
an :class:`~importers.graph.Expr`, an affine function of the network's sources; ``Relu``
of an affine tensor starts a new ReLU layer and yields the identity on that layer's
source. Adding two tensors that both depend on the input merges their terms, so residual
blocks come out as terms on older sources, and consecutive linear operators compose into
one map.

Operators on tensors that depend on the input are handled by ``_HANDLERS``, a registry
from operator name to handler; ``SUPPORTED_OPS`` lists its keys. Supporting a new
operator means writing one handler ``(call: _Call) -> list of outputs`` and adding its entry.

Shapes are tracked per sample: a symbolic batch dimension counts as 1, and a tensor is
flattened in C order, so reshapes of any kind only relabel it. Nodes whose inputs are
all constants are folded with the ONNX reference evaluator, whatever their operator.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from milp.core.network import Affine, Network, NetworkError
from milp.core.options import check_count

from .graph import Builder, Expr, Unsupported
from .reference import ModelImportError, OnnxReference, as_box, check_against, tolerance_for

__all__ = ["load_onnx", "load_onnx_nodes", "SUPPORTED_OPS", "ModelImportError"]

_FLOAT_TYPES = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}  # ONNX TensorProto elem types
_PRECISION = ["float64", "float32", "float16", "bfloat16"]  # from finest to coarsest

# Metadata keys written by save_onnx so that names survive a round trip.
INPUT_NAMES_KEY = "milp.input_names"
OUTPUT_NAMES_KEY = "milp.output_names"


# ------------------------------------------------------------------------- reading
def _read_model(path):
    import onnx

    path = os.fspath(path)
    if os.path.isdir(path):
        raise ModelImportError(f"{path} is a directory, not a model file")
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
            shape.append(1)  # symbolic batch dimension (or -1, "any"): one sample
        elif dim.HasField("dim_value"):
            raise ModelImportError(f"{path}: the input '{value_info.name}' has a dimension of {dim.dim_value} at axis {axis}")
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
def _reshape_target(shape: tuple[int, ...], target, allowzero: bool) -> tuple[int, ...]:
    target = [int(d) for d in np.asarray(target).reshape(-1)]
    out = [shape[i] if (d == 0 and not allowzero and i < len(shape)) else d for i, d in enumerate(target)]
    if out.count(-1) > 1:
        raise Unsupported(f"reshape target {target} has more than one -1")
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1], dtype=np.int64))
        size = int(np.prod(shape, dtype=np.int64))
        if known == 0 or size % known:
            raise Unsupported(f"cannot reshape {list(shape)} to {target}")
        out[out.index(-1)] = size // known
    return tuple(out)


def _const(values, name: str) -> np.ndarray:
    value = values[name]
    if isinstance(value, Expr):
        raise Unsupported(f"input '{name}' must be a constant, but it depends on the model input")
    array = np.asarray(value)
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise Unsupported(f"input '{name}' has a non-finite value {array[bad]} at index {bad}")
    return array.astype(np.float64) if array.dtype.kind == "f" else array


@dataclass(frozen=True)
class _Call:
    """One node applied to its input values: what an operator handler reads.

    ``x`` is the value of the first input (None when the node has none); ``values`` maps
    every tensor name computed so far to a numpy array or an :class:`Expr`.
    """

    node: object
    values: dict
    builder: Builder
    opset: int
    attrs: dict
    ins: list
    x: object

    @property
    def op(self) -> str:
        return self.node.op_type

    def value(self, i: int):
        """The value of input ``i``: a numpy array or an :class:`Expr`."""
        return self.values[self.ins[i]]

    def const(self, i: int) -> np.ndarray:
        """The value of input ``i``, which must be a finite constant (float64 if floating)."""
        return _const(self.values, self.ins[i])


def _not_both_dependent(call: _Call, a_var: bool, b_var: bool) -> None:
    if a_var and b_var:
        raise Unsupported(f"{call.op} of two tensors that both depend on the input is not affine")


# Handlers: one per operator (or family), each returning the node's outputs in order.
def _identity(call: _Call) -> list:
    return [call.x]


def _cast(call: _Call) -> list:
    if _FLOAT_TYPES.get(int(call.attrs.get("to", 0))) is None:
        raise Unsupported("Cast to a non-floating-point type")
    return [call.x]


def _dropout(call: _Call) -> list:
    ins = call.ins
    training = call.attrs.get("training_mode", 0) or (len(ins) > 2 and ins[2] and bool(np.asarray(call.const(2)).any()))
    if training:
        raise Unsupported("Dropout in training mode")
    return [call.x, np.ones(call.x.shape, dtype=bool)][: len(call.node.output)]


def _constant(call: _Call) -> list:
    # A Constant node has no inputs, so it is always folded before reaching here.
    return _fold(call.node, call.values, call.opset)


def _relu(call: _Call) -> list:
    return [call.builder.relu(call.x)]


def _neg(call: _Call) -> list:
    return [call.x.scale(np.array(-1.0))]


def _operands(call: _Call) -> tuple:
    """``(a, b, a_var, b_var)`` of an elementwise Add/Sub/Mul/Div; ``*_var`` says an operand is an Expr."""
    if "axis" in call.attrs or call.attrs.get("broadcast", 0):
        raise Unsupported("legacy broadcasting with an axis attribute")
    a, b = call.value(0), call.value(1)
    return a, b, isinstance(a, Expr), isinstance(b, Expr)


def _add(call: _Call) -> list:
    a, b, a_var, b_var = _operands(call)
    return [a.add(b) if a_var and b_var else (a.add_const(call.const(1)) if a_var else b.add_const(call.const(0)))]


def _sub(call: _Call) -> list:
    a, b, a_var, b_var = _operands(call)
    if a_var and b_var:
        return [a.add(b.scale(np.array(-1.0)))]
    return [a.add_const(-call.const(1)) if a_var else b.scale(np.array(-1.0)).add_const(call.const(0))]


def _mul(call: _Call) -> list:
    a, b, a_var, b_var = _operands(call)
    _not_both_dependent(call, a_var, b_var)
    return [a.scale(call.const(1)) if a_var else b.scale(call.const(0))]


def _div(call: _Call) -> list:
    a, b, a_var, b_var = _operands(call)
    _not_both_dependent(call, a_var, b_var)
    if not a_var:
        raise Unsupported("division by a tensor that depends on the input is not affine")
    return [a.scale(call.const(1), divide=True)]


def _matmul(call: _Call) -> list:
    a_var = isinstance(call.value(0), Expr)
    _not_both_dependent(call, a_var, isinstance(call.value(1), Expr))
    return [call.value(0).matmul(call.const(1), True) if a_var else call.value(1).matmul(call.const(0), False)]


def _gemm(call: _Call) -> list:
    attrs, ins = call.attrs, call.ins
    a_var, b_var = isinstance(call.value(0), Expr), isinstance(call.value(1), Expr)
    _not_both_dependent(call, a_var, b_var)
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    if a_var:
        a = call.value(0).transpose_last2() if attrs.get("transA", 0) else call.value(0)
        b = call.const(1).T if attrs.get("transB", 0) else call.const(1)
        y = a.matmul(b, True)
    else:
        a = call.const(0).T if attrs.get("transA", 0) else call.const(0)
        b = call.value(1).transpose_last2() if attrs.get("transB", 0) else call.value(1)
        y = b.matmul(a, False)
    if alpha != 1.0:
        y = y.scale(np.array(alpha))
    if len(ins) > 2 and ins[2]:
        c = call.value(2)
        y = y.add(c.scale(np.array(beta))) if isinstance(c, Expr) else y.add_const(beta * call.const(2))
    return [y]


def _flatten(call: _Call) -> list:
    x = call.x
    axis = int(call.attrs.get("axis", 1))
    axis = axis + len(x.shape) if axis < 0 else axis
    if not 0 <= axis <= len(x.shape):
        raise Unsupported(f"Flatten axis {call.attrs.get('axis')} out of range for shape {list(x.shape)}")
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    return [x.reshape((outer, x.size // outer if outer else 0))]


def _reshape(call: _Call) -> list:
    if len(call.ins) < 2:
        raise Unsupported("Reshape without a shape input (opset < 5)")
    return [call.x.reshape(_reshape_target(call.x.shape, call.const(1), bool(call.attrs.get("allowzero", 0))))]


def _axes(call: _Call):
    """The axes of Squeeze/Unsqueeze: an input from opset 13, an attribute before; None if absent."""
    node = call.node
    if call.opset >= 13 and len(node.input) > 1 and node.input[1]:
        axes = call.values[node.input[1]]
        if isinstance(axes, Expr):
            raise Unsupported("the axes input must be a constant")
        return [int(a) for a in np.asarray(axes).reshape(-1)]
    return [int(a) for a in call.attrs["axes"]] if "axes" in call.attrs else None


def _squeeze(call: _Call) -> list:
    x = call.x
    axes = _axes(call)
    rank = len(x.shape)
    if axes is None:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    axes = {a + rank if a < 0 else a for a in axes}
    if any(not 0 <= a < rank or x.shape[a] != 1 for a in axes):
        raise Unsupported(f"cannot squeeze axes {sorted(axes)} of shape {list(x.shape)}")
    return [x.reshape([d for i, d in enumerate(x.shape) if i not in axes])]


def _unsqueeze(call: _Call) -> list:
    axes = _axes(call)
    if axes is None:
        raise Unsupported("Unsqueeze without axes")
    rank = len(call.x.shape) + len(axes)
    axes = sorted(a + rank if a < 0 else a for a in axes)
    shape = list(call.x.shape)
    for a in axes:
        shape.insert(a, 1)
    return [call.x.reshape(shape)]


def _shape(call: _Call) -> list:
    shape = np.array(call.x.shape, dtype=np.int64)
    start, end = call.attrs.get("start", 0), call.attrs.get("end", None)
    return [shape[start:end]]


def _batch_normalization(call: _Call) -> list:
    x, attrs = call.x, call.attrs
    if attrs.get("training_mode", 0) or len([o for o in call.node.output if o]) > 1:
        raise Unsupported("BatchNormalization in training mode")
    if attrs.get("spatial", 1) == 0:
        raise Unsupported("BatchNormalization with spatial=0")
    if len(x.shape) < 2:
        raise Unsupported(f"BatchNormalization needs a (batch, channel, ...) tensor, got shape {list(x.shape)}")
    scale, shift, mean, var = (call.const(i) for i in range(1, 5))
    eps = float(attrs.get("epsilon", 1e-5))
    axis_shape = (x.shape[1],) + (1,) * (len(x.shape) - 2)
    factor = (scale / np.sqrt(var + eps)).reshape(axis_shape)
    return [x.add_const(-mean.reshape(axis_shape)).scale(factor).add_const(shift.reshape(axis_shape))]


# Operators accepted on tensors that depend on the input, with their handlers. Any
# operator is accepted when all its inputs are constants (it is evaluated once while loading).
_HANDLERS: dict[str, Callable[[_Call], list]] = {
    "Add": _add,
    "BatchNormalization": _batch_normalization,
    "Cast": _cast,
    "Constant": _constant,
    "Div": _div,
    "Dropout": _dropout,
    "Flatten": _flatten,
    "Gemm": _gemm,
    "Identity": _identity,
    "MatMul": _matmul,
    "Mul": _mul,
    "Neg": _neg,
    "Relu": _relu,
    "Reshape": _reshape,
    "Shape": _shape,
    "Squeeze": _squeeze,
    "Sub": _sub,
    "Unsqueeze": _unsqueeze,
}

SUPPORTED_OPS = tuple(sorted(_HANDLERS))


def _apply(node, values, builder: Builder, opset: int):
    """The outputs of one node with at least one input that depends on the model input."""
    attrs, ins = _attributes(node), list(node.input)
    x = values[ins[0]] if ins and ins[0] else None
    handler = _HANDLERS.get(node.op_type)
    if handler is None:
        raise Unsupported("unsupported operator")
    return handler(_Call(node, values, builder, opset, attrs, ins, x))


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
        raise Unsupported(f"cannot evaluate this constant node ({type(error).__name__}: {error})") from None
    outputs = iter(np.asarray(v) for v in outputs)
    return [next(outputs) if name else None for name in node.output]


def _input_dependent(graph, input_name: str) -> set[str]:
    """Names of the tensors that depend on the graph input (structurally)."""
    dependent = {input_name}
    for node in graph.node:  # ONNX nodes are topologically sorted
        if any(name in dependent for name in node.input):
            dependent.update(name for name in node.output if name)
    return dependent


def _convert(model, path: str, keep: Sequence[str] = ()) -> tuple[Network, str, dict[str, Affine]]:
    """The network of a model, the coarsest floating-point type its computation uses, and the affine
    map (over the network's sources) of each tensor named in ``keep``."""
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
    builder = Builder(input_shape)
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
                    raise Unsupported(f"operator from the domain '{node.domain}'")
                if any(isinstance(v, Expr) for v in inputs):
                    outputs = _apply(node, values, builder, opset)
                    if node.op_type == "Cast":
                        precisions.add(_FLOAT_TYPES[int(_attributes(node)["to"])])
                    for out in outputs:
                        if isinstance(out, Expr) and not out.is_finite():
                            raise Unsupported("produces non-finite values (overflow or division by zero)")
                else:
                    outputs = _fold(node, values, opset)
            except Unsupported as reason:
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
    if not isinstance(output, Expr):
        array = np.asarray(output, dtype=np.float64)
        output = Expr(array.shape, {}, array)
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
    kept = {}
    for name in keep:
        value = values.get(name, unknown)
        if value is unknown:
            produced = [out for node in graph.node for out in node.output if out]
            if name not in produced and name != real_inputs[0].name:
                listed = ", ".join(repr(n) for n in produced[:12]) + (", ..." if len(produced) > 12 else "")
                raise ModelImportError(f"{path} has no tensor named {name!r} (node outputs: {listed})")
            raise ModelImportError(f"{path}: the tensor {name!r} is not computed on the way to the output")
        if not isinstance(value, Expr):
            array = np.asarray(value, dtype=np.float64)
            value = Expr(array.shape, {}, array)
        kept[name] = builder.affine(value)
    return network, coarsest, kept


def load_onnx(path, box=None, check: bool = True, samples: int = 256, seed: int = 0) -> Network:
    """Load the ReLU network of an ONNX file.

    The model needs one floating-point input (a symbolic batch axis 0 is allowed) and one
    output; inputs and outputs are flattened in C order. With ``check`` the network is
    compared with onnxruntime on ``samples`` random inputs (uniform in ``box`` — a
    :class:`milp.core.box.Box`, a ``(lower, upper)`` pair or box text — else standard normal).
    Raises :class:`ModelImportError` naming every unsupported node, for an unreadable
    file, for non-finite weights, and when the check fails.
    """
    samples, seed = check_count(samples, "samples", 0, allow_none=False), check_count(seed, "seed", 0)
    path = os.fspath(path)
    model = _read_model(path)
    network, precision, _ = _convert(model, path)
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


def load_onnx_nodes(path, names: Sequence[str], box=None, check: bool = True) -> tuple[Network, dict[str, Affine]]:
    """The network of an ONNX file and the affine map of each named tensor inside it.

    ``names`` are ONNX tensor names (the outputs of nodes, as VNN-LIB 2.0's ``declare-hidden`` gives
    them). Each map reads the network's sources (:mod:`milp.core.network`): the output of a ``Relu``
    node is a ReLU layer's value, its input the pre-activation, and any other tensor is an affine map
    of earlier ones. Raises :class:`ModelImportError` for a name that is not a tensor of the model.
    """
    path = os.fspath(path)
    model = _read_model(path)
    network, precision, kept = _convert(model, path, tuple(names))
    if check:
        check_against(network, OnnxReference(path), box=as_box(box, network.input_dim), samples=256, seed=0,
                      tolerance=tolerance_for(precision), what=f"onnxruntime on {path}")
    return network, kept

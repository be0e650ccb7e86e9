"""Write a :class:`milp.core.network.Network` as an ONNX model (Gemm, MatMul, Add and Relu only)."""

from __future__ import annotations

import json
import os

import numpy as np

from milp.core.network import Network

from .onnx_loader import INPUT_NAMES_KEY, OUTPUT_NAMES_KEY
from .reference import ModelImportError

__all__ = ["save_onnx"]


def save_onnx(network: Network, path, opset: int = 17, dtype=np.float32, like=None) -> None:
    """Write ``network`` to ``path`` as an ONNX model with weights of type ``dtype``.

    The input is ``x`` of shape ``["batch", input_dim]``, the output ``y`` of shape
    ``["batch", output_dim]``. With ``like`` (the path of another ONNX model with one input and one
    output of the same sizes), the input and output take that model's names, shapes and element
    type instead, through a Reshape at each end, so the file is a drop-in replacement for it. Each map ``sum_s W_s @ source_s + b`` becomes one Gemm
    (first term, with the bias) plus a MatMul and an Add per further term, so residual
    terms and an output ReLU are written as they are. ``dtype`` is float32 or float64;
    float32 rounds the weights. Input and output names are kept in the model metadata.
    """
    from onnx import TensorProto, helper, numpy_helper, save_model

    signature = _signature(like, network) if like is not None else None
    if signature is not None:
        dtype = signature["dtype"]
    dtype = np.dtype(dtype)
    elem_types = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}
    if dtype not in elem_types:
        raise ModelImportError(f"save_onnx writes float32 or float64 weights, not {dtype.name}")
    if int(opset) < 11:
        raise ModelImportError(f"save_onnx needs opset 11 or later, got {opset}")
    elem = elem_types[dtype]
    nodes, initializers = [], []

    def tensor(name: str) -> str:
        # inside a model that takes another's signature, our names must not meet its input and output names
        return name if signature is None else f"milp/{name}"

    def constant(name: str, array: np.ndarray, as_type=None) -> str:
        with np.errstate(over="ignore"):  # refused just below
            cast = np.ascontiguousarray(array, dtype=as_type or dtype)
        if np.issubdtype(cast.dtype, np.floating) and not np.all(np.isfinite(cast)):
            raise ModelImportError(f"save_onnx: {name} has a value beyond the range of {cast.dtype.name}")
        initializers.append(numpy_helper.from_array(cast, tensor(name)))
        return tensor(name)

    def write_map(layer, prefix: str, out: str) -> None:
        sources = [tensor("x")] + [tensor(f"h{l}") for l in range(len(network.relu_layers))]
        terms = list(layer.terms) or [(0, np.zeros((layer.out_dim, network.input_dim)))]
        first_out = out if len(terms) == 1 else tensor(f"{prefix}_term0")
        source, matrix = terms[0]
        bias = constant(f"{prefix}_bias", layer.bias)
        nodes.append(helper.make_node("Gemm", [sources[source], constant(f"{prefix}_W{source}", matrix), bias],
                                      [first_out], name=f"{prefix}_gemm{source}", transB=1))
        total = first_out
        for k, (source, matrix) in enumerate(terms[1:], start=1):
            product = tensor(f"{prefix}_term{k}")
            nodes.append(helper.make_node("MatMul", [sources[source], constant(f"{prefix}_W{source}T", matrix.T)],
                                          [product], name=f"{prefix}_matmul{source}"))
            summed = out if k == len(terms) - 1 else tensor(f"{prefix}_sum{k}")
            nodes.append(helper.make_node("Add", [total, product], [summed], name=f"{prefix}_add{source}"))
            total = summed

    inputs = [helper.make_tensor_value_info("x", elem, ["batch", network.input_dim])]
    outputs = [helper.make_tensor_value_info("y", elem, ["batch", network.output_dim])]
    if signature is not None:
        # the other model's tensors at both ends, flattened to (batch, dim) inside
        inputs = [helper.make_tensor_value_info(signature["input"], elem, signature["input_shape"])]
        outputs = [helper.make_tensor_value_info(signature["output"], elem, signature["output_shape"])]
        nodes.append(helper.make_node("Reshape", [signature["input"], constant("x_shape", np.array([-1, network.input_dim]), np.int64)],
                                      [tensor("x")], name="flatten_input"))
    for l, layer in enumerate(network.relu_layers):
        write_map(layer, f"layer{l}", tensor(f"z{l}"))
        nodes.append(helper.make_node("Relu", [tensor(f"z{l}")], [tensor(f"h{l}")], name=f"relu{l}"))
    write_map(network.output, "output", "y" if signature is None else tensor("y"))
    if signature is not None:
        shape = [d if isinstance(d, int) else -1 for d in signature["output_shape"]]
        nodes.append(helper.make_node("Reshape", [tensor("y"), constant("y_shape", np.array(shape), np.int64)],
                                      [signature["output"]], name="shape_output"))
    graph = helper.make_graph(nodes, "milp_network", inputs, outputs, initializer=initializers)
    opsets = [helper.make_opsetid("", int(opset))]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="milp",
                              ir_version=helper.find_min_ir_version_for(opsets))
    names = {INPUT_NAMES_KEY: network.input_names, OUTPUT_NAMES_KEY: network.output_names}
    helper.set_model_props(model, {key: json.dumps(list(v)) for key, v in names.items() if v is not None})
    save_model(model, os.fspath(path))


def _signature(path, network: Network) -> dict:
    """The input and output names, shapes (ints, or strings for symbolic axes) and element type of an ONNX file."""
    from onnx import TensorProto, load_model

    model = load_model(os.fspath(path), load_external_data=False)
    constants = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in constants]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise ModelImportError(f"{path}: a model to copy the signature of needs one input and one output")
    numpy_types = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64}

    def shape_of(value) -> list:
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "batch") for d in value.type.tensor_type.shape.dim]

    def size(shape) -> int:
        return int(np.prod([d for d in shape if isinstance(d, int)], dtype=np.int64))

    source, target = inputs[0], model.graph.output[0]
    input_shape, output_shape = shape_of(source), shape_of(target)
    if size(input_shape) != network.input_dim or size(output_shape) != network.output_dim:
        raise ModelImportError(f"{path}: its input and output sizes {input_shape} -> {output_shape} do not match "
                               f"the network's {network.input_dim} -> {network.output_dim}")
    elem = source.type.tensor_type.elem_type
    if elem not in numpy_types:
        raise ModelImportError(f"{path}: only float and double models can be copied, not element type {elem}")
    return {"input": source.name, "input_shape": input_shape, "output": target.name, "output_shape": output_shape,
            "dtype": numpy_types[elem]}

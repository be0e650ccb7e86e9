"""Write a :class:`milp.core.network.Network` as an ONNX model (Gemm, MatMul, Add and Relu only)."""

from __future__ import annotations

import json
import os

import numpy as np

from milp.core.network import Network

from .onnx_loader import INPUT_NAMES_KEY, OUTPUT_NAMES_KEY
from .reference import ModelImportError

__all__ = ["save_onnx"]


def save_onnx(network: Network, path, opset: int = 17, dtype=np.float32) -> None:
    """Write ``network`` to ``path`` as an ONNX model with weights of type ``dtype``.

    The input is ``x`` of shape ``["batch", input_dim]``, the output ``y`` of shape
    ``["batch", output_dim]``. Each map ``sum_s W_s @ source_s + b`` becomes one Gemm
    (first term, with the bias) plus a MatMul and an Add per further term, so residual
    terms and an output ReLU are written as they are. ``dtype`` is float32 or float64;
    float32 rounds the weights. Input and output names are kept in the model metadata.
    """
    from onnx import TensorProto, helper, numpy_helper, save_model

    dtype = np.dtype(dtype)
    elem_types = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}
    if dtype not in elem_types:
        raise ModelImportError(f"save_onnx writes float32 or float64 weights, not {dtype.name}")
    if int(opset) < 11:
        raise ModelImportError(f"save_onnx needs opset 11 or later, got {opset}")
    elem = elem_types[dtype]
    nodes, initializers = [], []

    def constant(name: str, array: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=dtype), name))
        return name

    def write_map(layer, prefix: str, out: str) -> None:
        sources = ["x"] + [f"h{l}" for l in range(len(network.relu_layers))]
        terms = list(layer.terms) or [(0, np.zeros((layer.out_dim, network.input_dim)))]
        first_out = out if len(terms) == 1 else f"{prefix}_term0"
        source, matrix = terms[0]
        bias = constant(f"{prefix}_bias", layer.bias)
        nodes.append(helper.make_node("Gemm", [sources[source], constant(f"{prefix}_W{source}", matrix), bias],
                                      [first_out], name=f"{prefix}_gemm{source}", transB=1))
        total = first_out
        for k, (source, matrix) in enumerate(terms[1:], start=1):
            product = f"{prefix}_term{k}"
            nodes.append(helper.make_node("MatMul", [sources[source], constant(f"{prefix}_W{source}T", matrix.T)],
                                          [product], name=f"{prefix}_matmul{source}"))
            summed = out if k == len(terms) - 1 else f"{prefix}_sum{k}"
            nodes.append(helper.make_node("Add", [total, product], [summed], name=f"{prefix}_add{source}"))
            total = summed

    for l, layer in enumerate(network.relu_layers):
        write_map(layer, f"layer{l}", f"z{l}")
        nodes.append(helper.make_node("Relu", [f"z{l}"], [f"h{l}"], name=f"relu{l}"))
    write_map(network.output, "output", "y")
    graph = helper.make_graph(
        nodes,
        "milp_network",
        [helper.make_tensor_value_info("x", elem, ["batch", network.input_dim])],
        [helper.make_tensor_value_info("y", elem, ["batch", network.output_dim])],
        initializer=initializers,
    )
    opsets = [helper.make_opsetid("", int(opset))]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="milp",
                              ir_version=helper.find_min_ir_version_for(opsets))
    names = {INPUT_NAMES_KEY: network.input_names, OUTPUT_NAMES_KEY: network.output_names}
    helper.set_model_props(model, {key: json.dumps(list(v)) for key, v in names.items() if v is not None})
    save_model(model, os.fspath(path))

"""Tiny networks and ONNX graphs for tests (built in code; no model files are stored)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save_model

from milp.core.network import Affine, Network


def random_mlp(rng: np.random.Generator, sizes, output_relu: bool = False) -> Network:
    """A plain MLP with layer sizes ``sizes = [input, hidden..., output]`` and normal weights."""
    layers = [(rng.standard_normal((m, n)), rng.standard_normal(m)) for n, m in zip(sizes[:-1], sizes[1:])]
    return Network.mlp(layers, output_relu=output_relu)


def random_residual(rng: np.random.Generator, input_dim: int, hidden: int, blocks: int, output_dim: int,
                    output_relu: bool = False) -> Network:
    """``x -> x + W2 relu(W1 x + b1) + b2`` repeated ``blocks`` times, then a linear head.

    The residual stream is an affine map over the input and every block's ReLU layer.
    With ``output_relu`` the head is followed by one more ReLU layer.
    """
    stream = Affine(((0, np.eye(input_dim)),), np.zeros(input_dim))
    layers = []
    for _ in range(blocks):
        w1, b1 = rng.standard_normal((hidden, input_dim)), rng.standard_normal(hidden)
        layers.append(Affine(tuple((s, w1 @ m) for s, m in stream.terms), w1 @ stream.bias + b1))
        w2, b2 = rng.standard_normal((input_dim, hidden)), rng.standard_normal(input_dim)
        stream = Affine((*stream.terms, (len(layers), w2)), stream.bias + b2)
    head_w, head_b = rng.standard_normal((output_dim, input_dim)), rng.standard_normal(output_dim)
    head = Affine(tuple((s, head_w @ m) for s, m in stream.terms), head_w @ stream.bias + head_b)
    if output_relu:
        layers.append(head)
        head = Affine(((len(layers), np.eye(output_dim)),), np.zeros(output_dim))
    return Network(input_dim, tuple(layers), head)


def onnx_file(path, nodes, initializers: dict, input_shape, output_shape, *, opset: int = 17,
              elem_type: int = TensorProto.FLOAT, input_name: str = "x", output_name: str = "y") -> str:
    """Save a one-input, one-output ONNX graph; ``initializers`` maps names to numpy arrays."""
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info(input_name, elem_type, list(input_shape))],
        [helper.make_tensor_value_info(output_name, elem_type, list(output_shape) if output_shape is not None else None)],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()],
    )
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets))
    save_model(model, str(path))
    return str(path)

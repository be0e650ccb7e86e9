"""Tiny networks, ONNX graphs and VNN-LIB texts for tests (built in code; no model files are stored).

A plain helper module (``tests`` is on pytest's ``pythonpath``): ``from nets import un_relu_toy``.
Each named network's docstring draws its weights.
"""

from __future__ import annotations

import functools

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save_model

from milp.core.box import Box, parse_box
from milp.core.network import Affine, Network

SQ3 = np.sqrt(3.0)


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


# ------------------------------------------------------------------ named networks
def un_relu_toy() -> Network:
    """The design notes' toy ``f(x) = relu(U D relu(W x + b_W) + b_U)``, W = U three unit vectors 120 deg apart::

        x (2) --W, b_W=-0.5--> relu (3) --U D, b_U=-0.3--> relu (3) = y
    """
    W = np.array([[1.0, 0.0], [-0.5, SQ3 / 2], [-0.5, -SQ3 / 2]])
    D = 0.5 * np.array([[0.5, 0.5, -SQ3 / 2], [SQ3 / 2, -SQ3 / 2, 0.0]])
    return Network.mlp([(W, np.full(3, -0.5)), (W @ D, np.full(3, -0.3))], output_relu=True)


def chained_net(seed: int = 0) -> Network:
    """Two up-projection / ReLU / down-projection blocks as in the design notes: 2 -> 10 -> 2 -> 10, ReLU output::

        x (2) --up1 (10x2), b1--> relu (10) --up2 @ down (10x10), b2--> relu (10) = y

    from ``default_rng(seed)``: ``up1, up2`` standard normal, ``down`` (2x10) standard normal / 3,
    ``b1, b2`` normal with scale 0.5.
    """
    rng = np.random.default_rng(seed)
    up1, b1 = rng.standard_normal((10, 2)), rng.standard_normal(10) * 0.5
    down = rng.standard_normal((2, 10)) / 3
    up2, b2 = rng.standard_normal((10, 2)), rng.standard_normal(10) * 0.5
    return Network.mlp([(up1, b1), (up2 @ down, b2)], output_relu=True)


def residual_net(rng: np.random.Generator) -> Network:
    """Hand-built residual net, 2 inputs, standard normal weights and biases from ``rng``::

        z0 = W0 x + b0                 (5 neurons)
        z1 = U x + W1 h0 + b1          (4 neurons: reads the input and h0)
        y  = V x + W2 h1 + c           (2 outputs: reads the input and h1)
    """
    layer0 = Affine(((0, rng.standard_normal((5, 2))),), rng.standard_normal(5))
    layer1 = Affine(((0, rng.standard_normal((4, 2))), (1, rng.standard_normal((4, 5)))), rng.standard_normal(4))
    output = Affine(((0, rng.standard_normal((2, 2))), (2, rng.standard_normal((2, 4)))), rng.standard_normal(2))
    return Network(2, (layer0, layer1), output)


# four small nets of 2 inputs for the pattern and polytope tests (the ``small_net`` fixture of conftest.py)::
#
#     mlp              2 -> 6 -> 5 -> 2                    random_mlp
#     residual         residual_net above (5 + 4 neurons)
#     residual_blocks  x + W2 relu(W1 x + b1) + b2, twice, 4 neurons each, 1 output   random_residual
#     output_relu      2 -> 5 -> relu(3)                   random_mlp with a ReLU output
SMALL_NETS = {
    "mlp": lambda rng: random_mlp(rng, [2, 6, 5, 2]),
    "residual": residual_net,
    "residual_blocks": lambda rng: random_residual(rng, 2, 4, 2, 1),
    "output_relu": lambda rng: random_mlp(rng, [2, 5, 3], output_relu=True),
}


def deep_net() -> tuple[Network, Box]:
    """2-16-16-16-1, about 500 regions over [-1, 1]^2: enough work to re-split with a short task budget::

        x (2) --> relu (16) --> relu (16) --> relu (16) --> y (1)      random_mlp(default_rng(1))
    """
    return random_mlp(np.random.default_rng(1), [2, 16, 16, 16, 1]), parse_box("-1:1", 2)


@functools.lru_cache(maxsize=None)
def deep_truth() -> frozenset:
    """The patterns of :func:`deep_net` over its box as one process lists them (computed once)."""
    from milp.enumeration.engines import regions

    net, box = deep_net()
    return frozenset(r.pattern for r in regions(net, box))


def tiny_net() -> tuple[Network, Box, list[str]]:
    """2-5-5-2 over [-1.5, 1.5]^2 with the condition ``y[0] > 0``: small enough for the brute-force oracle::

        x (2) --> relu (5) --> relu (5) --> y (2)      random_mlp(default_rng(7))
    """
    return random_mlp(np.random.default_rng(7), [2, 5, 5, 2]), parse_box("-1.5:1.5", 2), ["y[0] > 0"]


def island_network(centre: np.ndarray, steep: float) -> Network:
    """``y = relu(1 - steep * |x - centre|_1)``: positive only on a tiny diamond, flat zero elsewhere::

        x (d) --[steep I; -steep I], steep [-centre; centre]--> relu (2d) --(-1 ... -1), 1--> relu (1) --1, 0--> y
    """
    d = centre.size
    w1 = np.vstack([np.eye(d), -np.eye(d)]) * steep
    b1 = np.concatenate([-centre, centre]) * steep
    w2 = -np.ones((1, 2 * d))
    return Network.mlp([(w1, b1), (w2, np.ones(1)), (np.ones((1, 1)), np.zeros(1))])


# ------------------------------------------------------------------ VNN-LIB texts
def property_text(n_in: int, n_out: int, box, disjuncts) -> str:
    """A VNN-LIB text: ``box`` [(lo, hi)] per input; each disjunct a list of (coefficients, rhs) meaning c . y <= rhs."""
    lines = [f"(declare-const X_{i} Real)" for i in range(n_in)] + [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    for i, (lo, hi) in enumerate(box):
        lines += [f"(assert (>= X_{i} {float(lo)!r}))", f"(assert (<= X_{i} {float(hi)!r}))"]

    def row(c, rhs):
        terms = " ".join(f"(* {float(v)!r} Y_{j})" for j, v in enumerate(c) if v != 0)
        return f"(<= (+ {terms}) {float(rhs)!r})"

    branches = ["(and " + " ".join(row(c, rhs) for c, rhs in d) + ")" for d in disjuncts]
    lines.append("(assert (or " + " ".join(branches) + "))")
    return "\n".join(lines) + "\n"

"""Importers against their frameworks: every network is compared with onnxruntime or torch."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

import importers
from importers import ModelImportError, OnnxReference, load_onnx, save_onnx
from importers.reference import check_against
from milp.core.box import Box
from milp.core.network import Network
from nets import onnx_file, random_mlp, random_residual

from conftest import ACASXU, ACASXU_SKIP  # $MILP_BENCHMARKS/acasxu, else ../shared/benchmarks/acasxu


def assert_same(net: Network, reference, n: int = 64, seed: int = 1, tol: float = 1e-4, box: Box | None = None):
    """``net`` and ``reference`` agree on ``n`` random inputs within ``tol * (1 + max |y|)``."""
    rng = np.random.default_rng(seed)
    x = box.sample(n, rng) if box is not None else rng.standard_normal((n, net.input_dim))
    y_ref = reference(x)
    y = net(x)
    assert y.shape == y_ref.shape
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=tol * (1 + np.abs(y_ref).max()))


def load_and_compare(path, **kwargs) -> Network:
    net = load_onnx(path, **kwargs)
    assert net.source_description == str(path)
    assert_same(net, OnnxReference(path))
    return net


def node(op, inputs, outputs, **attrs):
    return helper.make_node(op, inputs, outputs, name=f"{op.lower()}_{outputs[0]}", **attrs)


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------------------- Gemm
@pytest.mark.parametrize(
    "trans_a, trans_b, alpha_beta, var_is_a, with_c",
    list(itertools.product([0, 1], [0, 1], [(1.0, 1.0), (0.5, -2.0)], [True, False], [True, False])),
)
def test_gemm_every_attribute_combination(tmp_path, trans_a, trans_b, alpha_beta, var_is_a, with_c):
    rng = np.random.default_rng(0)
    n, m = 4, 3
    alpha, beta = alpha_beta
    if var_is_a:  # Y (1, m) = alpha x' W' + beta c
        x_shape = (1, n) if not trans_a else (n, 1)
        const = f32(rng, n, m) if not trans_b else f32(rng, m, n)
        inputs, c, y_shape = ["x", "W"], f32(rng, m), (1, m)
    else:  # Y (m, 1) = alpha W' x' + beta c
        x_shape = (n, 1) if not trans_b else (1, n)
        const = f32(rng, m, n) if not trans_a else f32(rng, n, m)
        inputs, c, y_shape = ["W", "x"], f32(rng, m, 1), (m, 1)
    inits = {"W": const}
    if with_c:
        inputs.append("C")
        inits["C"] = c
    nodes = [
        node("Gemm", inputs, ["g"], transA=trans_a, transB=trans_b, alpha=alpha, beta=beta),
        node("Relu", ["g"], ["y"]),
    ]
    path = onnx_file(tmp_path / "gemm.onnx", nodes, inits, x_shape, y_shape)
    net = load_and_compare(path)
    assert net.widths == (m,)


def test_gemm_of_two_input_tensors_is_rejected(tmp_path):
    nodes = [node("Gemm", ["x", "x"], ["y"], transB=1)]
    path = onnx_file(tmp_path / "bilinear.onnx", nodes, {}, (1, 3), (1, 1))
    with pytest.raises(ModelImportError, match="gemm_y.*not affine"):
        load_onnx(path)


# -------------------------------------------------------------------------------- MatMul
@pytest.mark.parametrize(
    "x_shape, w_shape, var_left",
    [
        ((1, 4), (4, 3), True),
        ((4,), (4, 3), True),
        ((4,), (4,), True),
        ((2, 4), (4, 3), True),  # a matrix-valued input: the dense path
        ((2, 4), (5, 4, 3), True),  # batched broadcasting
        ((4, 1), (3, 4), False),
        ((4,), (3, 4), False),
        ((4, 2), (3, 4), False),
        ((4,), (4,), False),
    ],
)
def test_matmul_by_a_constant_on_either_side(tmp_path, x_shape, w_shape, var_left):
    rng = np.random.default_rng(1)
    inputs = ["x", "W"] if var_left else ["W", "x"]
    nodes = [node("MatMul", inputs, ["m"]), node("Relu", ["m"], ["y"])]
    path = onnx_file(tmp_path / "matmul.onnx", nodes, {"W": f32(rng, *w_shape)}, x_shape, None)
    load_and_compare(path)


# --------------------------------------------------------------------------- elementwise
def test_add_sub_mul_div_neg_with_constants_and_inputs_on_either_side(tmp_path):
    rng = np.random.default_rng(2)
    inits = {"a": f32(rng, 3), "b": f32(rng, 2, 3), "c": (np.abs(f32(rng, 3)) + 0.5), "d": f32(rng, 1, 3)}
    nodes = [
        node("Add", ["x", "a"], ["t1"]),
        node("Sub", ["a", "t1"], ["t2"]),
        node("Sub", ["t2", "d"], ["t3"]),
        node("Mul", ["c", "t3"], ["t4"]),
        node("Mul", ["t4", "d"], ["t5"]),
        node("Div", ["t5", "c"], ["t6"]),
        node("Relu", ["t6"], ["r"]),
        node("Add", ["r", "x"], ["t7"]),  # two input-dependent tensors
        node("Sub", ["t7", "t6"], ["t8"]),
        node("Neg", ["t8"], ["t9"]),
        node("Add", ["t9", "b"], ["y"]),  # broadcasting grows the shape to (2, 3)
    ]
    path = onnx_file(tmp_path / "elementwise.onnx", nodes, inits, (1, 3), (2, 3))
    net = load_and_compare(path)
    assert net.output_dim == 6 and net.is_residual()


def test_product_of_two_input_tensors_and_division_by_input_are_rejected(tmp_path):
    nodes = [node("Mul", ["x", "x"], ["sq"]), node("Div", ["c", "x"], ["inv"]), node("Add", ["sq", "inv"], ["y"])]
    path = onnx_file(tmp_path / "nonlinear.onnx", nodes, {"c": np.ones(3, np.float32)}, (1, 3), (1, 3))
    with pytest.raises(ModelImportError) as info:
        load_onnx(path)
    assert "mul_sq" in str(info.value) and "div_inv" in str(info.value)


# ----------------------------------------------------------------------- shape operators
@pytest.mark.parametrize("opset", [11, 13, 17])
def test_shape_operators(tmp_path, opset):
    rng = np.random.default_rng(3)
    inits = {"W": f32(rng, 6, 4), "shape": np.array([0, -1, 2], np.int64)}
    axes_as_input = opset >= 13
    if axes_as_input:
        inits["axes0"] = np.array([0], np.int64)
        inits["axes1"] = np.array([1, -1], np.int64)
    squeeze = node("Squeeze", ["s1", "axes0"] if axes_as_input else ["s1"], ["s2"], **({} if axes_as_input else {"axes": [0]}))
    unsqueeze = node("Unsqueeze", ["s2", "axes1"] if axes_as_input else ["s2"], ["s3"], **({} if axes_as_input else {"axes": [1, -1]}))
    nodes = [
        node("Reshape", ["x", "shape"], ["s0"]),  # (1, 2, 3) -> (1, 3, 2)
        node("Flatten", ["s0"], ["s1"], axis=1),  # -> (1, 6)
        squeeze,  # -> (6,)
        unsqueeze,  # -> (6, 1, 1)
        node("Flatten", ["s3"], ["s4"], axis=0),  # -> (1, 6)
        node("Identity", ["s4"], ["s5"]),
        node("Constant", [], ["k"], value=helper.make_tensor("k", TensorProto.FLOAT, [1], [2.0])),
        node("Mul", ["s5", "k"], ["s6"]),
        node("Dropout", ["s6"], ["s7"]),
        node("Cast", ["s7"], ["s8"], to=TensorProto.FLOAT),
        node("MatMul", ["s8", "W"], ["s9"]),
        node("Relu", ["s9"], ["r"]),
        node("Flatten", ["r"], ["y"], axis=-1),
    ]
    path = onnx_file(tmp_path / "shapes.onnx", nodes, inits, (1, 2, 3), None, opset=opset)
    net = load_and_compare(path)
    assert net.input_dim == 6 and net.widths == (4,)


def test_torch_style_view_through_shape_gather_concat(tmp_path):
    # x.view(x.size(0), -1) as the legacy exporter writes it, with a symbolic batch.
    rng = np.random.default_rng(4)
    inits = {"zero": np.array(0, np.int64), "minus1": np.array([-1], np.int64), "W": f32(rng, 6, 2)}
    nodes = [
        node("Shape", ["x"], ["shp"]),
        node("Gather", ["shp", "zero"], ["batch"], axis=0),
        node("Unsqueeze", ["batch"], ["batch1"], axes=[0]),
        node("Concat", ["batch1", "minus1"], ["target"], axis=0),
        node("Reshape", ["x", "target"], ["flat"]),
        node("Gemm", ["flat", "W"], ["y"]),
    ]
    path = onnx_file(tmp_path / "view.onnx", nodes, inits, ("N", 2, 3), ("N", 2), opset=11)
    load_and_compare(path)


def test_symbolic_batch_dimension(tmp_path):
    rng = np.random.default_rng(5)
    inits = {"W1": f32(rng, 5, 4), "b1": f32(rng, 5), "W2": f32(rng, 2, 5), "b2": f32(rng, 2)}
    nodes = [node("Gemm", ["x", "W1", "b1"], ["z"], transB=1), node("Relu", ["z"], ["h"]),
             node("Gemm", ["h", "W2", "b2"], ["y"], transB=1)]
    path = onnx_file(tmp_path / "batch.onnx", nodes, inits, ("batch", 4), ("batch", 2))
    assert OnnxReference(path).batched
    net = load_and_compare(path)
    expected = Network.mlp([(inits["W1"], inits["b1"]), (inits["W2"], inits["b2"])])
    x = np.random.default_rng(6).standard_normal((20, 4))
    np.testing.assert_allclose(net(x), expected(x), rtol=0, atol=1e-12)


def test_batch_normalization_is_folded(tmp_path):
    rng = np.random.default_rng(7)
    channels = 3
    inits = {
        "scale": f32(rng, channels), "shift": f32(rng, channels), "mean": f32(rng, channels),
        "var": (np.abs(f32(rng, channels)) + 0.1), "W": f32(rng, 3 * 2, 2),
    }
    nodes = [
        node("BatchNormalization", ["x", "scale", "shift", "mean", "var"], ["bn"], epsilon=1e-3),
        node("Relu", ["bn"], ["r"]),
        node("Flatten", ["r"], ["f"]),
        node("MatMul", ["f", "W"], ["y"]),
    ]
    path = onnx_file(tmp_path / "bn.onnx", nodes, inits, (1, channels, 2), (1, 2))
    net = load_and_compare(path)
    assert net.widths == (6,)


# ---------------------------------------------------------------------------- precisions
def test_float16_initializers_cast_to_float32(tmp_path):
    rng = np.random.default_rng(8)
    inits = {"W16": rng.standard_normal((3, 4)).astype(np.float16), "b16": rng.standard_normal(4).astype(np.float16)}
    nodes = [
        node("Cast", ["W16"], ["W"], to=TensorProto.FLOAT),
        helper.make_node("Constant", [], ["b"], value=helper.make_tensor("b", TensorProto.FLOAT16, [4], inits.pop("b16"))),
        node("Cast", ["b"], ["b32"], to=TensorProto.FLOAT),
        node("MatMul", ["x", "W"], ["m"]),
        node("Add", ["m", "b32"], ["z"]),
        node("Relu", ["z"], ["y"]),
    ]
    path = onnx_file(tmp_path / "fp16.onnx", nodes, inits, (1, 3), (1, 4))
    net = load_and_compare(path)
    # float16 weights are exactly representable in float64: the network holds them exactly.
    np.testing.assert_array_equal(net.relu_layers[0].weight(0), inits["W16"].astype(np.float64).T)


def test_float16_model(tmp_path):
    rng = np.random.default_rng(9)
    inits = {"W": rng.standard_normal((3, 4)).astype(np.float16), "b": rng.standard_normal(4).astype(np.float16)}
    nodes = [node("MatMul", ["x", "W"], ["m"]), node("Add", ["m", "b"], ["z"]), node("Relu", ["z"], ["y"])]
    path = onnx_file(tmp_path / "half.onnx", nodes, inits, (1, 3), (1, 4), elem_type=TensorProto.FLOAT16)
    try:
        reference = OnnxReference(path)
        reference(np.zeros((1, 3)))
    except ModelImportError as error:
        pytest.skip(f"onnxruntime cannot run this float16 model: {error}")
    net = load_onnx(path)
    assert_same(net, reference, tol=3e-2)


def test_float64_model_matches_tightly(tmp_path):
    rng = np.random.default_rng(10)
    inits = {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(4), "V": rng.standard_normal((2, 4))}
    nodes = [node("Gemm", ["x", "W", "b"], ["z"], transB=1), node("Relu", ["z"], ["h"]),
             node("Gemm", ["V", "h"], ["y"], transB=1)]
    path = onnx_file(tmp_path / "double.onnx", nodes, inits, (1, 3), (2, 1), elem_type=TensorProto.DOUBLE)
    net = load_onnx(path)
    assert_same(net, OnnxReference(path), tol=1e-12)


# ----------------------------------------------------------------------------- residual
def test_residual_block_graph(tmp_path):
    rng = np.random.default_rng(11)
    inits = {"W1": f32(rng, 4, 4), "b1": f32(rng, 4), "W2": f32(rng, 4, 4), "b2": f32(rng, 4), "W3": f32(rng, 4, 2)}
    nodes = [
        node("Gemm", ["x", "W1", "b1"], ["z1"]),
        node("Relu", ["z1"], ["h1"]),
        node("Gemm", ["h1", "W2", "b2"], ["z2"]),
        node("Add", ["x", "z2"], ["s"]),  # x + W2 relu(W1 x + b1) + b2
        node("Relu", ["s"], ["h2"]),
        node("MatMul", ["h2", "W3"], ["y"]),
    ]
    path = onnx_file(tmp_path / "residual.onnx", nodes, inits, (1, 4), (1, 2))
    net = load_and_compare(path)
    assert net.is_residual() and net.widths == (4, 4)
    assert net.relu_layers[1].sources == (0, 1)


# ------------------------------------------------------------------------------- errors
def test_unsupported_operators_are_reported_together(tmp_path):
    rng = np.random.default_rng(12)
    inits = {"K": f32(rng, 1, 1, 3), "W": f32(rng, 3, 2)}
    nodes = [
        node("Conv", ["x", "K"], ["c"], pads=[1, 1]),
        node("Sigmoid", ["c"], ["s"]),
        node("Flatten", ["s"], ["f"]),
        node("MatMul", ["f", "W"], ["y"]),
    ]
    path = onnx_file(tmp_path / "unsupported.onnx", nodes, inits, (1, 1, 3), (1, 2))
    with pytest.raises(ModelImportError) as info:
        load_onnx(path)
    message = str(info.value)
    assert "conv_c" in message and "(Conv" in message
    assert "sigmoid_s" in message and "(Sigmoid" in message
    assert "Gemm" in message and "Relu" in message  # the supported operators are listed
    assert "flatten_f" not in message  # nodes downstream of a failure are not blamed


def test_dead_unsupported_node_is_ignored(tmp_path):
    nodes = [node("Sigmoid", ["x"], ["unused"]), node("Relu", ["x"], ["y"])]
    path = onnx_file(tmp_path / "dead.onnx", nodes, {}, (1, 3), (1, 3))
    net = load_and_compare(path)
    assert net.widths == (3,)


@pytest.mark.parametrize("content", [b"this is not an onnx model", b"\x08\x07\x12\x04skl", b""])
def test_malformed_file(tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelImportError, match="bad.onnx"):
        load_onnx(path)


def test_truncated_file_and_missing_file(tmp_path):
    rng = np.random.default_rng(13)
    good = onnx_file(tmp_path / "good.onnx", [node("MatMul", ["x", "W"], ["y"])], {"W": f32(rng, 30, 30)}, (1, 30), (1, 30))
    data = Path(good).read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelImportError, match="not a readable ONNX model"):
        load_onnx(truncated)
    with pytest.raises(ModelImportError, match="no such model file"):
        load_onnx(tmp_path / "missing.onnx")


def test_two_inputs_are_rejected(tmp_path):
    graph = helper.make_graph(
        [node("Add", ["a", "b"], ["y"])], "two",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 2]) for n in "ab"],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
    )
    path = tmp_path / "two.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString())
    with pytest.raises(ModelImportError, match="exactly one input"):
        load_onnx(path)


def test_non_finite_weight_names_the_node(tmp_path):
    w = np.ones((3, 2), np.float32)
    w[1, 0] = np.nan
    nodes = [node("Relu", ["x"], ["h"]), node("MatMul", ["h", "W"], ["y"])]
    path = onnx_file(tmp_path / "nan.onnx", nodes, {"W": w}, (1, 3), (1, 2))
    with pytest.raises(ModelImportError, match=r"matmul_y.*'W'.*non-finite"):
        load_onnx(path)


def test_division_by_zero_names_the_node(tmp_path):
    nodes = [node("Div", ["x", "zero"], ["y"])]
    path = onnx_file(tmp_path / "div0.onnx", nodes, {"zero": np.zeros(2, np.float32)}, (1, 2), (1, 2))
    with pytest.raises(ModelImportError, match="div_y.*non-finite"):
        load_onnx(path)


def test_check_detects_a_wrong_network(tmp_path):
    rng = np.random.default_rng(14)
    net = random_mlp(rng, [3, 4, 2])
    path = tmp_path / "net.onnx"
    save_onnx(net, path)
    check_against(net, OnnxReference(path), box=None, samples=64, seed=0, tolerance=1e-4, what="onnxruntime")
    w, b = net.output.weight(1).copy(), net.output.bias
    w[0, 0] += 1e-2
    wrong = Network.mlp([(net.relu_layers[0].weight(0), net.relu_layers[0].bias), (w, b)])
    with pytest.raises(ModelImportError, match="does not match onnxruntime"):
        check_against(wrong, OnnxReference(path), box=None, samples=64, seed=0, tolerance=1e-4, what="onnxruntime")


# --------------------------------------------------------------------------- save_onnx
@pytest.mark.parametrize("kind", ["mlp", "mlp_output_relu", "residual", "residual_output_relu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_onnx_round_trip(tmp_path, kind, dtype):
    rng = np.random.default_rng(15)
    if kind.startswith("mlp"):
        net = random_mlp(rng, [3, 5, 4, 2], output_relu=kind.endswith("relu"))
    else:
        net = random_residual(rng, 3, 4, 2, 2, output_relu=kind.endswith("relu"))
    path = tmp_path / "net.onnx"
    save_onnx(net, path, dtype=dtype)
    loaded = load_onnx(path)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert_same(loaded, OnnxReference(path), tol=tol)
    assert_same(loaded, net, tol=tol)
    assert loaded.widths == net.widths and loaded.is_residual() == net.is_residual()


def test_save_onnx_keeps_names(tmp_path):
    net = Network.mlp([(np.eye(2), np.zeros(2)), (np.ones((1, 2)), np.zeros(1))], input_names=("a", "b"), output_names=("sum",))
    path = tmp_path / "named.onnx"
    save_onnx(net, path)
    loaded = load_onnx(path, box=Box([-1, -1], [1, 1]))
    assert loaded.input_names == ("a", "b") and loaded.output_names == ("sum",)


# ------------------------------------------------------------------------------ ACAS Xu
@pytest.mark.parametrize("name", ["ACASXU_run2a_1_1_batch_2000.onnx", "ACASXU_run2a_3_3_batch_2000.onnx"])
def test_acasxu_networks(name):
    path = ACASXU / "onnx" / name
    if not path.exists():
        pytest.skip(ACASXU_SKIP)
    box = Box([-1, -1, -1, -1, -1], [1, 1, 1, 1, 1])
    net = load_onnx(path, box=box)
    assert net.input_dim == 5 and net.output_dim == 5 and net.widths == (50,) * 6
    assert_same(net, OnnxReference(path), n=200, box=box)


# -------------------------------------------------------------------------------- torch
def _torch_net(torch):
    nn = torch.nn
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Flatten(),
        nn.Linear(4, 6),
        nn.BatchNorm1d(6),
        nn.ReLU(),
        nn.Dropout(0.3),
        importers.Residual(nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 6))),
        nn.Sequential(nn.Identity(), nn.Linear(6, 3), nn.ReLU(), nn.BatchNorm1d(3, affine=False)),
        nn.Linear(3, 2),
    )
    module.train()
    with torch.no_grad():  # give the batch norms non-trivial running statistics
        for _ in range(5):
            module(torch.randn(32, 4) * 3 + 1)
    return module.eval()


def test_from_torch_matches_torch():
    torch = pytest.importorskip("torch")
    module = _torch_net(torch)
    module.train()  # from_torch imports the eval-mode function without changing the module
    net = importers.from_torch(module)
    assert module.training
    assert net.widths == (6, 5, 3) and net.is_residual()
    assert_same(net, importers.TorchReference(module), tol=1e-10)


def test_from_torch_reports_unsupported_modules():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Custom(nn.Sequential):
        def forward(self, x):
            return 2 * super().forward(x)

    module = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), importers.Residual(nn.Sequential(nn.Conv1d(1, 1, 1))), Custom(nn.ReLU()))
    with pytest.raises(ModelImportError) as info:
        importers.from_torch(module)
    message = str(info.value)
    assert "'1' (Tanh)" in message and "'2.body.0' (Conv1d)" in message and "'3' (Custom)" in message
    assert "BatchNorm1d" in message  # the supported modules are listed


def test_from_torch_needs_an_input_width():
    torch = pytest.importorskip("torch")
    with pytest.raises(ModelImportError, match="input_dim"):
        importers.from_torch(torch.nn.Sequential(torch.nn.ReLU()))
    net = importers.from_torch(torch.nn.Sequential(torch.nn.ReLU()), input_dim=3)
    assert net.widths == (3,)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the legacy exporter announces its deprecation
def test_torch_export_then_load_onnx(tmp_path):
    torch = pytest.importorskip("torch")
    module = _torch_net(torch)
    path = tmp_path / "torch.onnx"
    try:
        torch.onnx.export(module, (torch.randn(2, 4),), str(path), dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    except Exception as error:  # the exporter may need packages that are not installed
        pytest.skip(f"torch.onnx.export is not available here: {type(error).__name__}: {error}")
    net = load_onnx(path)
    assert_same(net, importers.TorchReference(module), tol=1e-4)
    assert_same(net, OnnxReference(path), tol=1e-4)
    assert net.widths == (6, 5, 3)


def test_from_torch_non_finite_weight_names_the_module():
    torch = pytest.importorskip("torch")
    module = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    with torch.no_grad():
        module[2].weight[0, 1] = float("inf")
    with pytest.raises(ModelImportError, match=r"module '2' \(Linear\) weight has a non-finite value inf"):
        importers.from_torch(module)

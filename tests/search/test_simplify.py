"""``simplify`` and ``milp simplify`` against onnxruntime on the original model file: the smaller model
computes the same function on the box, on plain and residual nets and when a whole layer becomes linear."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import TensorProto, helper

from importers import OnnxReference, load_onnx, save_onnx
from milp import Box, Network
from milp.search.simplify import simplify
from nets import onnx_file, random_mlp, random_residual


def _nets():
    rng = np.random.default_rng(21)
    yield "mlp", random_mlp(rng, [3, 10, 10, 2]), Box(np.full(3, 0.2), np.full(3, 0.6))
    yield "residual", random_residual(rng, 3, 6, 2, 2), Box(np.full(3, -0.3), np.full(3, 0.3))
    w1, w2, w3 = rng.normal(size=(6, 3)), rng.normal(size=(5, 6)), rng.normal(size=(2, 5))
    linear = Network.mlp([(w1, rng.normal(size=6)), (0.1 * w2, np.full(5, 8.0)), (w3, np.zeros(2))])
    yield "linear-layer", linear, Box(np.full(3, -1.0), np.full(3, 1.0))


NETS = list(_nets())


@pytest.mark.parametrize("name,net,box", NETS, ids=[n for n, _, _ in NETS])
def test_simplified_model_agrees_with_onnxruntime_on_the_original(name, net, box, tmp_path):
    original = tmp_path / "original.onnx"
    save_onnx(net, original, dtype=np.float64)
    result = simplify(load_onnx(original), box, prove=True, reference=OnnxReference(original))
    counts = result.report.counts()
    assert counts["unknown"] == 0
    assert sum(result.widths_after) == counts["fires"] < sum(result.widths_before)
    assert result.equivalence == "proved" and result.max_difference <= 1e-9
    small = tmp_path / "small.onnx"
    save_onnx(result.network, small, like=original)
    x = np.vstack([box.sample(5000, np.random.default_rng(4)), result.check_points])
    np.testing.assert_allclose(OnnxReference(small)(x), OnnxReference(original)(x), atol=1e-9)
    if name == "linear-layer":
        assert len(result.widths_after) == 1  # layer 1 was linear on the box: composed away


def test_outside_the_box_the_models_may_differ(tmp_path):
    """The agreement is on the box only: the removed neurons do fire elsewhere (a check that can fail)."""
    name, net, box = NETS[0]
    result = simplify(net, box)
    far = Box(np.full(3, -3.0), np.full(3, 3.0)).sample(5000, np.random.default_rng(0))
    assert np.abs(result.network(far) - net(far)).max() > 1e-3


def test_cli_simplify_keeps_the_signature_and_reports(tmp_path, capsys):
    from milp.cli.main import main

    rng = np.random.default_rng(2)
    w1, w2 = rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(3, 6)).astype(np.float32)
    b1 = np.array([2.0, -2.0, 0.1, -0.1, 3.0, -3.0], dtype=np.float32)
    nodes = [
        helper.make_node("Flatten", ["input"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "w1", "b1"], ["z"], transB=1),
        helper.make_node("Relu", ["z"], ["h"]),
        helper.make_node("Gemm", ["h", "w2", "b2"], ["logits"], transB=1),
    ]
    model = onnx_file(tmp_path / "m.onnx", nodes, {"w1": w1, "b1": b1, "w2": w2, "b2": np.zeros(3, np.float32)},
                      [1, 1, 1, 4], [1, 3], elem_type=TensorProto.FLOAT, input_name="input", output_name="logits")
    out = tmp_path / "small.onnx"
    assert main(["simplify", model, "--box", "-0.2:0.2", "-o", str(out), "--json", "--prove"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["neurons_before"] == 6 and payload["neurons_after"] < 6
    assert payload["equivalence"] == "proved" and payload["onnxruntime_max_difference"] <= 1e-5
    small, big = OnnxReference(out), OnnxReference(model)
    assert [(i.name, i.shape) for i in small.session.get_inputs()] == [("input", [1, 1, 1, 4])]
    assert [(o.name, o.shape) for o in small.session.get_outputs()] == [("logits", [1, 3])]
    x = Box(np.full(4, -0.2), np.full(4, 0.2)).sample(200, np.random.default_rng(0))
    np.testing.assert_allclose(small(x), big(x), atol=1e-5)
    assert main(["simplify", model, "--box", "-0.2:0.2"]) == 2
    assert "-o SMALL.onnx" in capsys.readouterr().err
    assert main(["simplify", model, "--box", "-0.2:0.2", "-o", model]) == 2
    assert "names the model itself" in capsys.readouterr().err
    assert main(["simplify", model, "-o", str(out)]) == 2
    assert "box is required" in capsys.readouterr().err

"""The Python API refuses bad input with an InputError that names it, where it used to answer silently
(a maximum of one row of several, a truncated index, a reference model of another network) or fail deep
inside (a tolerance, a NaN region, a network without outputs, weights beyond float32, bounds beyond HiGHS)."""

from __future__ import annotations

import numpy as np
import pytest

import milp
from importers import ModelImportError, save_onnx
from milp import Affine, Box, InputError, Network, Region
from milp.bounds.propagate import interval_bounds
from milp.core.errors import NumericRangeError
from milp.encode.bigm import build_milp
from milp.search.queries import maximize
from milp.solvers.highs import HighsSolver
from nets import random_mlp


@pytest.fixture(scope="module")
def net():
    return random_mlp(np.random.default_rng(3), [2, 4, 3, 2])


BOX = Box(np.full(2, -1.0), np.full(2, 1.0))


def test_a_maximum_of_a_form_of_several_rows_is_refused(net):
    two_rows = Affine(((0, np.array([[1.0, 0.0], [0.0, -1.0]])),), np.zeros(2))
    with pytest.raises(InputError, match="one row"):
        maximize(net, BOX, two_rows)


@pytest.mark.parametrize("call", [
    lambda net: milp.fires(net, BOX, 0, 1.5),
    lambda net: milp.fires(net, BOX, True, 0),
    lambda net: milp.output_range(net, BOX, [0.7]),
    lambda net: milp.output_range(net, BOX, "01"),
    lambda net: milp.feature_report(net, BOX, 0.5),
], ids=["neuron 1.5", "layer True", "output 0.7", "outputs '01'", "layer 0.5"])
def test_an_index_that_is_not_a_whole_number_is_refused(net, call):
    with pytest.raises(InputError, match="whole number"):
        call(net)


def test_tolerances_of_adjacency_and_merging_are_checked(net):
    found = list(milp.regions(net, BOX))
    assert len(found) > 1
    for tol in (-1.0, float("nan"), 0.0):
        with pytest.raises(InputError, match="tol"):
            milp.adjacency(found, tol=tol)
        with pytest.raises(InputError, match="tol"):
            milp.merge_regions(found, tol=tol)


def test_a_reference_model_of_another_network_is_named_not_taken_for_disagreement(net):
    with pytest.raises(InputError, match="gave 7 outputs"):
        milp.reach(net, BOX, ["y[0] > -100"], reference=lambda x: np.zeros((len(x), 7)), time_limit=10)


def test_a_region_with_a_nan_is_refused():
    with pytest.raises(InputError, match="non-finite"):
        Region("01", np.array([[np.nan, 0.0]]), np.zeros(1), np.zeros(2), 0.1, (np.zeros((1, 2)), np.zeros(1)))


def test_a_network_without_outputs_is_refused():
    with pytest.raises(InputError, match="no output"):
        Network(2, (), Affine(((0, np.ones((0, 2))),), np.zeros(0)))


def test_weights_beyond_float32_are_not_written(net, tmp_path):
    huge = Network.mlp([(np.full((2, 2), 1e300), np.zeros(2)), (np.ones((1, 2)), np.zeros(1))])
    with pytest.raises(ModelImportError, match="float32"):
        save_onnx(huge, tmp_path / "huge.onnx")
    assert not (tmp_path / "huge.onnx").exists()


def test_bounds_that_highs_reads_as_infinite_are_refused(net):
    box = Box(np.full(2, -1e300), np.full(2, 1e300))
    with pytest.raises(NumericRangeError, match="infinite"):
        HighsSolver(build_milp(net, box, interval_bounds(net, box)))


def test_a_vnnlib_file_that_is_not_text_is_a_vnnlib_error(tmp_path):
    from milp.io.vnnlib import VnnlibError, read_vnnlib

    (tmp_path / "binary.vnnlib").write_bytes(bytes(range(128, 256)))
    (tmp_path / "bad.vnnlib.gz").write_text("not gzip")
    for path, needle in ((tmp_path / "binary.vnnlib", "not UTF-8"), (tmp_path / "bad.vnnlib.gz", "gzip"), (tmp_path, "directory")):
        with pytest.raises(VnnlibError, match=needle):
            read_vnnlib(path)


def test_counts_layers_and_pattern_lists_of_the_wrong_kind_are_refused(net, tmp_path):
    for layer in (-1, 2, 1.0, True):
        with pytest.raises(InputError, match="no ReLU layer"):
            net.below(layer)
    with pytest.raises(InputError, match="list of patterns"):
        milp.regions(net, BOX, skip_patterns="0001110")
    for bad in ({"samples": -5}, {"seed": -1}):
        with pytest.raises(InputError, match=next(iter(bad))):
            milp.reach(net, BOX, ["y[0] > 0"], time_limit=5, **bad)
    save_onnx(net, tmp_path / "net.onnx")
    from importers import load_onnx

    with pytest.raises(InputError, match="samples"):
        load_onnx(tmp_path / "net.onnx", samples=-1)


def test_what_the_checks_above_must_still_take(net, tmp_path):
    """The checks leave alone: a batch axis of -1 in an ONNX input, ``below`` keeping every ReLU layer
    under an output of its own, a seed of None (fresh entropy), and a region file's header error named
    once; and they answer a huge integer or a division into overflow in a condition with one message."""
    from onnx import helper

    from importers import load_onnx
    from milp.io.regionfiles import read_region_file
    from nets import onnx_file

    weights = np.array([[1.0, -1.0], [0.5, 2.0]], dtype=np.float32)
    onnx_file(tmp_path / "any_batch.onnx", [helper.make_node("MatMul", ["x", "W"], ["m"], name="mm"), helper.make_node("Relu", ["m"], ["y"], name="r")],
              {"W": weights}, [-1, 2], [-1, 2])
    assert load_onnx(tmp_path / "any_batch.onnx").input_dim == 2
    whole = net.below(len(net.relu_layers), net.output)
    x = np.random.default_rng(0).uniform(-1, 1, (5, 2))
    np.testing.assert_allclose(whole.forward(x).output, net.forward(x).output)
    assert milp.reach(net, BOX, ["y[0] > -1e9"], seed=None, time_limit=10).status == "sat"
    (tmp_path / "r.json").write_text('{"input_dim": 1.5, "regions": []}')
    with pytest.raises(InputError) as raised:
        read_region_file(tmp_path / "r.json")
    assert str(raised.value).count("r.json") == 1 and "whole number" in str(raised.value)
    for text, needle in (("y[0] >= 1" + "0" * 400, "not a finite number"), ("y[0]/1e-320 >= 0", "overflows")):
        with pytest.raises(InputError, match=needle):
            milp.parse_conditions(net, [text])

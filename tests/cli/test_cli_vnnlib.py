"""``milp vnnlib`` as a user meets it: the verdict printed and written, counterexamples checked by onnxruntime,
bad input on one line (exit 2), the module entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nets import island_network, property_text

from importers import OnnxReference
from importers.onnx_export import save_onnx
from milp.cli.main import main
from milp.io.vnnlib import check_counterexample, read_counterexample, read_vnnlib

from conftest import ACASXU, ACASXU_SKIP  # $MILP_BENCHMARKS/acasxu, else ../shared/benchmarks/acasxu
needs_acasxu = pytest.mark.skipif(not (ACASXU / "instances.csv").exists(), reason=ACASXU_SKIP)


# ------------------------------------------------------------------ a 2-input island network
@pytest.fixture
def model_and_properties(tmp_path):
    network = island_network(np.array([0.25, 0.5]), 4.0)
    model = tmp_path / "island.onnx"
    save_onnx(network, model)
    box = [(0.0, 1.0), (0.0, 1.0)]
    sat = tmp_path / "sat.vnnlib"
    sat.write_text(property_text(2, 1, box, [[(np.array([-1.0]), -0.9)]]))
    unsat = tmp_path / "unsat.vnnlib"
    unsat.write_text(property_text(2, 1, box, [[(np.array([-1.0]), -1.5)]]))
    return network, model, sat, unsat


def test_cli_sat_prints_and_writes_the_counterexample(model_and_properties, tmp_path, capsys):
    network, model, sat, _ = model_and_properties
    results = tmp_path / "out.txt"
    assert main(["vnnlib", str(model), str(sat), "--timeout", "20", "--results", str(results)]) == 0
    printed = capsys.readouterr().out
    text = results.read_text()
    assert printed.splitlines()[0] == "sat" and text.splitlines()[0] == "sat"
    x, y = read_counterexample(text.split("\n", 1)[1])
    prop = read_vnnlib(sat, 2, 1)
    assert check_counterexample(prop, x, y, tol=1e-4)
    np.testing.assert_allclose(OnnxReference(model)(x[None, :]).reshape(-1), y, atol=1e-6)


def test_cli_unsat_and_json(model_and_properties, tmp_path, capsys):
    _, model, _, unsat = model_and_properties
    results = tmp_path / "out.txt"
    assert main(["vnnlib", str(model), str(unsat), "--results", str(results), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["result"] == "unsat" and payload["counterexample"] is None
    assert results.read_text().strip() == "unsat"


@pytest.mark.parametrize("case", ["missing model", "missing property", "wrong dimensions", "unsupported construct"])
def test_cli_bad_input_exits_2_with_one_line_and_writes_error(case, model_and_properties, tmp_path, capsys):
    _, model, sat, _ = model_and_properties
    prop = sat
    if case == "missing model":
        model = tmp_path / "nothing.onnx"
    elif case == "missing property":
        prop = tmp_path / "nothing.vnnlib"
    elif case == "wrong dimensions":
        prop = tmp_path / "wide.vnnlib"
        prop.write_text(property_text(3, 1, [(0, 1)] * 3, [[(np.array([1.0]), 0.0)]]))
    else:
        prop = tmp_path / "not.vnnlib"
        prop.write_text(sat.read_text() + "(assert (not (<= Y_0 0)))\n")
    results = tmp_path / "out.txt"
    assert main(["vnnlib", str(model), str(prop), "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("milp: error:") and err.count("\n") == 1 and "Traceback" not in err
    assert results.read_text().strip() == "error"
    if case == "unsupported construct":
        assert "line 9" in err and "not" in err


def test_cli_help_has_an_example_and_the_module_runs(model_and_properties):
    _, model, _, unsat = model_and_properties
    repo = Path(__file__).resolve().parents[2]
    helped = subprocess.run([sys.executable, "-m", "milp", "vnnlib", "--help"], capture_output=True, text=True, cwd=repo, check=True)
    assert "example" in helped.stdout and "--results" in helped.stdout and "--timeout" in helped.stdout
    done = subprocess.run([sys.executable, "-m", "milp", "vnnlib", str(model), str(unsat), "--timeout", "30"],
                          capture_output=True, text=True, cwd=repo)
    assert done.returncode == 0 and done.stdout.strip() == "unsat", done.stderr


# ------------------------------------------------------------------ ACAS Xu
@needs_acasxu
def test_acasxu_cli_writes_results(tmp_path):
    """1_7 with property 3 is sat: the file says so, and the counterexample it writes holds on onnxruntime."""
    model, vnnlib = ACASXU / "onnx" / "ACASXU_run2a_1_7_batch_2000.onnx", ACASXU / "vnnlib" / "prop_3.vnnlib"
    results = tmp_path / "out.txt"
    code = main(["vnnlib", str(model), str(vnnlib), "--timeout", "60", "--results", str(results)])
    assert code == 0
    text = results.read_text()
    lines = text.splitlines()
    assert lines[0] == "sat" and lines[1].startswith("((X_0 ")
    # the written x lies in the property's unsafe set when a fresh onnxruntime session evaluates the
    # file (in float32, as the file is), and the written y is that output
    x, y = read_counterexample(text)
    assert x.shape == (5,) and y.shape == (5,)
    y_onnx = OnnxReference(model)(x[None, :].astype(np.float32).astype(np.float64)).reshape(-1)
    assert check_counterexample(read_vnnlib(vnnlib, 5, 5), x, y_onnx, tol=1e-4)
    np.testing.assert_allclose(y_onnx, y, atol=1e-5)

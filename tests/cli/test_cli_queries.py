"""The query commands (``milp range`` / ``milp fires``) with ``--solver``: the whole MILP through Pyomo."""

from __future__ import annotations

import numpy as np
import pytest

from nets import random_mlp


def test_cli_solver_option_goes_through_pyomo_and_agrees(tmp_path, capsys):
    """--solver highs solves the whole MILP through Pyomo: the same optima as the built-in path; a bad name is one line."""
    import json

    from importers import save_onnx
    from milp.cli.main import main

    net = random_mlp(np.random.default_rng(5), [2, 6, 6, 2])
    model = tmp_path / "net.onnx"
    save_onnx(net, model)
    assert main(["range", str(model), "--box", "-1:1", "--json"]) == 0
    ours = json.loads(capsys.readouterr().out)["outputs"]
    assert main(["range", str(model), "--box", "-1:1", "--json", "--solver", "highs"]) == 0
    theirs = json.loads(capsys.readouterr().out)["outputs"]
    for a, b in zip(ours, theirs):
        assert b["status"] == "exact"
        assert b["max"] == pytest.approx(a["max"], abs=1e-6) and b["min"] == pytest.approx(a["min"], abs=1e-6)
        assert net.forward(np.array([b["argmax"]])).output[0, a["index"]] == pytest.approx(a["max"], abs=1e-6)
    assert main(["fires", str(model), "--box", "-1:1", "--layer", "1", "--neuron", "2", "--json", "--solver", "highs"]) == 0
    fired = json.loads(capsys.readouterr().out)
    assert main(["fires", str(model), "--box", "-1:1", "--layer", "1", "--neuron", "2", "--json"]) == 0
    assert fired["max"] == pytest.approx(json.loads(capsys.readouterr().out)["max"], abs=1e-6)
    assert main(["range", str(model), "--box", "-1:1", "--solver", "no-such-solver"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("milp: error: --solver") and "\n" not in err


def test_cli_layer_report_agrees_with_one_fires_per_neuron(tmp_path, capsys):
    """``milp fires --layer L`` (no --neuron) and ``--all``: one JSON object whose statuses match a single
    ``fires`` call per neuron (fires <=> max > 0), and a table with a row per neuron."""
    import json

    from importers import save_onnx
    from milp.cli.main import main

    rng = np.random.default_rng(8)
    net = random_mlp(rng, [2, 5, 4, 1])
    model = tmp_path / "net.onnx"
    save_onnx(net, model)
    assert main(["fires", str(model), "--box", "-1:1", "--all", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["neurons"]) == 9 and sum(report["counts"].values()) == 9
    for n in report["neurons"]:
        assert main(["fires", str(model), "--box", "-1:1", "--layer", str(n["layer"]), "--neuron", str(n["neuron"]), "--json"]) == 0
        single = json.loads(capsys.readouterr().out)
        assert (n["status"] in ("fires", "always")) == (single["status"] == "fires")
        assert n["upper_bound"] >= single["max"] - 1e-9
    assert main(["fires", str(model), "--box", "-1:1", "--layer", "1"]) == 0
    table = capsys.readouterr().out.strip().splitlines()
    assert len(table) == 1 + 4 + 1 and table[-1].startswith("fires ")
    for argv, message in [
        (["--all", "--layer", "0"], "--all reports every ReLU layer"),
        (["--neuron", "1"], "--neuron needs --layer"),
        ([], "say which neurons"),
        (["--layer", "7"], "no ReLU layer 7"),
        (["--layer", "1", "--solver", "highs"], "--solver solves one neuron's MILP"),
    ]:
        assert main(["fires", str(model), "--box", "-1:1", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err


def test_cli_range_at_a_limit_says_what_it_found_and_proved(tmp_path, capsys):
    """``milp range`` stopped by its limit prints, for each side, the best checked value with its point
    and the proved bound (not only dashes); the JSON carries the same values."""
    import json

    from importers import save_onnx
    from milp.cli.main import main

    net = random_mlp(np.random.default_rng(3), [10, 60, 60, 60, 1])
    model = tmp_path / "net.onnx"
    save_onnx(net, model)
    assert main(["range", str(model), "--box", "-1:1", "--time-limit", "2", "--json"]) == 0
    o = json.loads(capsys.readouterr().out)["outputs"][0]
    assert o["min_bound"] <= o["min_found"] <= o["max_found"] <= o["max_bound"]
    assert net.forward(np.array([o["argmax"]])).output[0, 0] == pytest.approx(o["max_found"], rel=1e-6)  # the file holds float32 weights
    assert main(["range", str(model), "--box", "-1:1", "--time-limit", "2"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    if "(unknown)" in line:  # a fast machine may prove both sides within the limit
        assert line.count("found ") + line.count(" at [") >= 2 and "proved" in line

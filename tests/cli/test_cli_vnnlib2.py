"""VNN-LIB 2.0 through ``milp vnnlib``: hidden nodes, several networks, the standard's command line.

Truth comes from outside the joint-network machinery: the brute-force LP oracle on the original
networks, a single ``fires`` per neuron, onnxruntime on each model file (every counterexample's
assertions are re-evaluated here by hand from onnxruntime's values), and dense sampling.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import oracle
from importers import OnnxReference, save_onnx
from milp import Box, Network
from milp.cli.main import main
from milp.core.conditions import value_form
from milp.core.compose import fold_stable
from milp.core.network import Affine
from milp.search.features import feature_report
from milp.search.queries import fires
from nets import random_mlp

BOX = "(assert (and (>= X[0] -1.0) (<= X[0] 1.0) (>= X[1] -1.0) (<= X[1] 1.0)))\n"


def _header(networks: str) -> str:
    return "(vnnlib-version <2.0>)\n" + networks


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["vnnlib", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assignment(text: str) -> dict[str, np.ndarray]:
    """The standard's command-line assignment: 'NAME TYPE [DIMS]' then one value per line."""
    lines = text.strip().splitlines()[1:]
    out, i = {}, 0
    while i < len(lines):
        name, _, dims = lines[i].split(" ", 2)
        size = int(np.prod([int(d) for d in dims.strip("[]").split(",") if d])) if dims != "[]" else 1
        out[name] = np.array([float(v) for v in lines[i + 1 : i + 1 + size]])
        i += 1 + size
    return out


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("v2") / "net.onnx"
    net = random_mlp(np.random.default_rng(4), [2, 5, 4, 2])
    save_onnx(net, path, dtype=np.float64)
    return net, path


def test_hidden_nodes_pre_and_post_activation_agree_with_fires_and_the_oracle(small, tmp_path, capsys):
    net, path = small
    box = Box(np.full(2, -1.0), np.full(2, 1.0))
    for k in range(net.widths[1]):
        # z1 is the pre-activation tensor of the second ReLU layer, h1 its output (names save_onnx gives)
        query = tmp_path / f"z{k}.vnnlib"
        query.write_text(_header('(declare-network f (declare-input X float64 [2]) (declare-hidden Z float64 [4] "z1") '
                                 "(declare-output Y float64 [2]))\n") + BOX + f"(assert (> Z[{k}] 0.0))\n")
        code, out, _ = _run(capsys, query, "--network", f"f={path}")
        truth = fires(net, box, 1, k)
        assert code == 0 and out.splitlines()[0] == ("sat" if truth.status == "fires" else "unsat")
        if truth.status == "fires":
            values = _assignment(out)
            z = OnnxReference(path, extra_outputs=["z1"])(values["X"])[2:]
            assert z[k] > 0 and np.allclose(values["Z"], z)
        # the post-activation: h1[k] >= t is reachable exactly when the oracle's max of z1[k] is >= t
        top, _ = oracle.exact_max(net, box.lower, box.upper, value_form(net, "z1", k))
        for t in (top - 0.05, top + 0.05):
            if t <= 0:
                continue
            query.write_text(_header('(declare-network f (declare-input X float64 [2]) (declare-hidden H float64 [4] "h1") '
                                     "(declare-output Y float64 [2]))\n") + BOX + f"(assert (>= H[{k}] {float(t)!r}))\n")
            code, out, _ = _run(capsys, path, query)  # one network: MODEL QUERY works too
            assert out.splitlines()[0] == ("sat" if t < top else "unsat")


def test_input_constraints_beyond_a_box_like_the_standards_acc_example(tmp_path, capsys):
    """The standard's acc example: 3 inputs with a general linear input constraint, an or of output orders."""
    net = random_mlp(np.random.default_rng(9), [3, 6, 4])
    path = tmp_path / "acc.onnx"
    save_onnx(net, path, dtype=np.float64)
    lo, hi = np.array([0.0, -1.0, 0.0]), np.array([1.0, 1.0, 2.0])
    box_text = "".join(f"(assert (>= X[{i}] {float(a)!r}))\n(assert (<= X[{i}] {float(b)!r}))\n" for i, (a, b) in enumerate(zip(lo, hi)))
    cut = "(assert (<= (- (* 1.5 X[1]) X[2]) -0.5))\n"
    # x-only condition of the cut: X[2] - 1.5 X[1] - 0.5 >= 0
    cut_form = Affine(((0, np.array([[0.0, -1.5, 1.0]])),), np.array([-0.5]))
    for j in range(1, 4):
        query = tmp_path / "acc.vnnlib"
        query.write_text(_header("(declare-network acc (declare-input X real [3]) (declare-output Y real [4]))\n") + box_text + cut
                         + f"(assert (or (<= Y[{j}] Y[0]) (and (<= Y[0] 0.0) (>= Y[{j}] 1.0))))\n")
        code, out, _ = _run(capsys, query, "--network", f"acc={path}")
        y = lambda i: Affine(tuple((s, w[i : i + 1]) for s, w in net.output.terms), net.output.bias[i : i + 1])  # noqa: E731
        diff = Affine.stack([y(0)])
        first = [(cut_form, False), (Affine(tuple((s, w[0:1] - w[j:j + 1]) for s, w in net.output.terms), net.output.bias[0:1] - net.output.bias[j:j + 1]), False)]
        second = [(cut_form, False), (Affine(tuple((s, -w) for s, w in diff.terms), -diff.bias), False),
                  (Affine(y(j).terms, y(j).bias - 1.0), False)]
        truth = oracle.reachable(net, lo, hi, first) or oracle.reachable(net, lo, hi, second)
        assert code == 0 and out.splitlines()[0] == ("sat" if truth else "unsat")
        if truth:
            values = _assignment(out)
            x, y_ort = values["X"], OnnxReference(path)(values["X"])
            assert np.all(x >= lo - 1e-4) and np.all(x <= hi + 1e-4) and 1.5 * x[1] - x[2] <= -0.5 + 1e-4
            assert y_ort[j] <= y_ort[0] + 1e-4 or (y_ort[0] <= 1e-4 and y_ort[j] >= 1.0 - 1e-4)


def _pair_query(d: int, box: Box, delta: float, a: str = "f", b: str = "g", equal: str = "") -> str:
    tie = "".join(f"(assert (== X[{i}] P[{i}]))\n" for i in range(d))
    bounds = "".join(f"(assert (>= X[{i}] {float(lo)!r}))\n(assert (<= X[{i}] {float(hi)!r}))\n" for i, (lo, hi) in enumerate(zip(box.lower, box.upper)))
    # the standard's numbers have no exponent: write them in fixed point
    gap = " ".join(f"(>= (- Y[{i}] Q[{i}]) {delta:.12f}) (<= (- Y[{i}] Q[{i}]) {-delta:.12f})" for i in range(2))
    return _header(f"(declare-network {a} (declare-input X float64 [{d}]) (declare-output Y float64 [2]))\n"
                   f"(declare-network {b} {equal}(declare-input P float64 [{d}]) (declare-output Q float64 [2]))\n") + bounds + tie + f"(assert (or {gap}))\n"


def test_teacher_and_student_agree_within_delta(tmp_path, capsys):
    rng = np.random.default_rng(12)
    teacher = random_mlp(rng, [2, 6, 6, 2])
    student = Network(2, teacher.relu_layers, Affine(teacher.output.terms, teacher.output.bias + np.array([0.05, -0.02])))
    for name, net in (("teacher", teacher), ("student", student)):
        save_onnx(net, tmp_path / f"{name}.onnx", dtype=np.float64)
    box = Box(np.full(2, -1.0), np.full(2, 1.0))
    for delta, expected in ((0.049, "sat"), (0.051, "unsat")):  # the outputs differ by exactly 0.05 and 0.02
        query = tmp_path / "ts.vnnlib"
        query.write_text(_pair_query(2, box, delta, "teacher", "student"))
        code, out, _ = _run(capsys, query, "--network", f"teacher={tmp_path / 'teacher.onnx'}",
                            "--network", f"student={tmp_path / 'student.onnx'}")
        assert code == 0 and out.splitlines()[0] == expected
        if expected == "sat":
            values = _assignment(out)
            assert np.array_equal(values["X"], values["P"])  # the tied inputs are one
            gap = OnnxReference(tmp_path / "teacher.onnx")(values["X"]) - OnnxReference(tmp_path / "student.onnx")(values["P"])
            assert np.abs(gap).max() >= delta - 1e-6


def test_a_network_and_its_pruned_copy_and_a_wrong_pruning(tmp_path, capsys):
    """simplify's pruned copy is proved equal on the box; dropping one neuron that fires is caught."""
    net = random_mlp(np.random.default_rng(30), [2, 12, 12, 2])
    box = Box(np.full(2, 0.1), np.full(2, 0.4))
    report = feature_report(net, box)
    never, always = report.status_masks(net)
    pruned = fold_stable(net, never, always)
    assert sum(pruned.widths) < sum(net.widths)
    firing = next(n for n in report.neurons if n.status == "fires")
    wrong_never = [m.copy() for m in never]
    wrong_never[firing.layer][firing.neuron] = True
    wrong = fold_stable(net, wrong_never, always)
    for name, model in (("net", net), ("pruned", pruned), ("wrong", wrong)):
        save_onnx(model, tmp_path / f"{name}.onnx", dtype=np.float64)
    query = tmp_path / "eq.vnnlib"
    query.write_text(_pair_query(2, box, 1e-6))
    code, out, _ = _run(capsys, query, "--network", f"f={tmp_path / 'net.onnx'}", "--network", f"g={tmp_path / 'pruned.onnx'}")
    assert code == 0 and out.strip() == "unsat"
    samples = box.sample(20000, np.random.default_rng(0))
    if np.abs(net(samples) - wrong(samples)).max() > 1e-3:  # the wrong pruning does change the function
        code, out, _ = _run(capsys, query, "--network", f"f={tmp_path / 'net.onnx'}", "--network", f"g={tmp_path / 'wrong.onnx'}",
                            "--json")
        payload = json.loads(out)
        assert payload["result"] == "sat"
        x = np.array(payload["assignment"]["X"])
        gap = OnnxReference(tmp_path / "net.onnx")(x) - OnnxReference(tmp_path / "wrong.onnx")(x)
        assert np.abs(gap).max() >= 1e-6 and box.contains(x, 1e-9)


def test_equal_to_networks_share_one_model(small, tmp_path, capsys):
    """Monotonicity-style query over two copies of one model: f(X) and f(P) with P = X + 0.1 in input 0."""
    net, path = small
    query = tmp_path / "eq.vnnlib"
    query.write_text(_header("(declare-network f (declare-input X float64 [2]) (declare-output Y float64 [2]))\n"
                             "(declare-network g (equal-to f) (declare-input P float64 [2]) (declare-output Q float64 [2]))\n")
                     + BOX + "(assert (and (>= P[0] -1.0) (<= P[0] 1.0) (>= P[1] -1.0) (<= P[1] 1.0)))\n"
                     "(assert (== (- P[0] X[0]) 0.1))\n(assert (== P[1] X[1]))\n(assert (>= (- Q[0] Y[0]) 0.0))\n")
    code, out, _ = _run(capsys, query, "--network", f"f={path}")
    assert code == 0
    xs = Box(np.full(2, -1.0), np.array([0.9, 1.0])).sample(20000, np.random.default_rng(1))
    sampled = bool(np.any(net(xs + np.array([0.1, 0.0]))[:, 0] - net(xs)[:, 0] >= 0))
    if sampled:  # a sampled witness exists: the answer must be sat, and its assignment must check
        assert out.splitlines()[0] == "sat"
    if out.splitlines()[0] == "sat":
        v = _assignment(out)
        ref = OnnxReference(path)
        assert abs(v["P"][0] - v["X"][0] - 0.1) <= 1e-4 and ref(v["P"])[0] - ref(v["X"])[0] >= -1e-4


@pytest.mark.parametrize("case,text,networks,message", [
    ("unknown node", '(declare-network f (declare-input X float64 [2]) (declare-hidden H float64 [4] "nope") (declare-output Y float64 [2]))\n'
     + BOX + "(assert (>= H[0] 0.0))\n", ["f"], "no tensor named 'nope'"),
    ("input shape", "(declare-network f (declare-input X float64 [3]) (declare-output Y float64 [2]))\n"
     "(assert (and (>= X[0] 0.0) (<= X[0] 1.0)))\n", ["f"], "the model's input has 2 values"),
    ("hidden shape", '(declare-network f (declare-input X float64 [2]) (declare-hidden H float64 [7] "h1") (declare-output Y float64 [2]))\n'
     + BOX + "(assert (>= H[0] 0.0))\n", ["f"], "the tensor 'h1' has 4"),
    ("undeclared", "(declare-network f (declare-input X float64 [2]) (declare-output Y float64 [2]))\n" + BOX
     + "(assert (>= Z[0] 0.0))\n", ["f"], "Undeclared variable 'Z'"),
    ("not given", "(declare-network f (declare-input X float64 [2]) (declare-output Y float64 [2]))\n"
     "(declare-network g (declare-input P float64 [2]) (declare-output Q float64 [2]))\n" + BOX, ["f"], "add --network g=FILE"),
    ("unnecessary", "(declare-network f (declare-input X float64 [2]) (declare-output Y float64 [2]))\n" + BOX, ["f", "g"],
     "declares no network 'g'"),
    ("element type", "(declare-network f (declare-input X float32 [2]) (declare-output Y float32 [2]))\n"
     "(assert (and (>= X[0] -1.0) (<= X[0] 1.0) (>= X[1] -1.0) (<= X[1] 1.0)))\n", ["f"], "declared float32 but the model's input is float64"),
    ("Real spelling", "(declare-network f (declare-input X Real [2]) (declare-output Y Real [2]))\n(assert (<= (* 2.0 X[0]) 1.0))\n",
     ["f"], "write 'real'"),
    ("not equal", "(declare-network f (declare-input X float64 [2]) (declare-output Y float64 [2]))\n" + BOX
     + "(assert (!= Y[0] 0.0))\n", ["f"], "'!=' is not supported"),
    ("no bound", "(declare-network f (declare-input X float64 [2]) (declare-output Y float64 [2]))\n"
     "(assert (and (>= X[0] -1.0) (<= X[0] 1.0) (>= X[1] -1.0)))\n", ["f"], "X[1] of network 'f' needs a lower and an upper bound"),
])
def test_bad_queries_get_one_line_and_exit_2(small, tmp_path, capsys, case, text, networks, message):
    _, path = small
    query = tmp_path / "bad.vnnlib"
    query.write_text(_header(text))
    code, out, err = _run(capsys, query, *[a for n in networks for a in ("--network", f"{n}={path}")])
    assert code == 2 and out == ""
    line = err.strip()
    assert message in line and "\n" not in line and "Traceback" not in line


def test_command_line_forms(small, tmp_path, capsys):
    _, path = small
    query = tmp_path / "q.vnnlib"
    query.write_text(_header("(declare-network f (declare-input X float64 [2]) (declare-output Y float64 [2]))\n") + BOX
                     + "(assert (>= Y[0] 1000.0))\n")
    assert _run(capsys, path, query)[1].strip() == "unsat"
    code, _, err = _run(capsys, path, query, "--network", f"f={path}")
    assert code == 2 and "not both" in err
    code, _, err = _run(capsys, query, "--network", "f")
    assert code == 2 and "NAME=FILE" in err
    v1 = tmp_path / "old.vnnlib"
    v1.write_text("(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"
                  "(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (>= X_1 -1))\n(assert (<= X_1 1))\n(assert (>= Y_0 1000))\n")
    code, _, err = _run(capsys, v1, "--network", f"f={path}")
    assert code == 2 and "VNN-LIB 1.0 property" in err
    assert _run(capsys, path, v1)[1].strip() == "unsat"  # 1.0 files keep working


from conftest import ACASXU, ACASXU_SKIP  # noqa: E402  ($MILP_BENCHMARKS/acasxu, else ../shared/benchmarks/acasxu)


@pytest.mark.slow
@pytest.mark.skipif(not (ACASXU / "onnx").is_dir(), reason=ACASXU_SKIP)
def test_acasxu_and_its_simplified_copy_and_a_wrong_pruning(tmp_path, capsys):
    """ACAS Xu 1_1 on property 3's box shrunk 8x: simplify keeps 10 of 300 neurons; the pair is proved equal
    as a two-network query; dropping one neuron that fires comes back sat, checked by onnxruntime on both."""
    from importers import load_onnx
    from milp.search.simplify import simplify

    original = ACASXU / "onnx" / "ACASXU_run2a_1_1_batch_2000.onnx"
    net = load_onnx(original)
    lower = np.array([-0.303531156, -0.009549297, 0.493380324, 0.3, 0.3])
    upper = np.array([-0.298552812, 0.009549297, 0.5, 0.5, 0.5])
    centre, half = 0.5 * (lower + upper), 0.5 * (upper - lower) / 8
    box = Box(centre - half, centre + half)
    result = simplify(net, box)
    assert result.report.counts()["unknown"] == 0 and sum(result.widths_after) < 30
    never, always = result.report.status_masks(net)
    firing = next(n for n in result.report.neurons if n.status == "fires" and n.layer == len(net.widths) - 1)
    never[firing.layer][firing.neuron] = True
    wrong = fold_stable(net, never, always)
    save_onnx(result.network, tmp_path / "pruned.onnx", like=original)
    save_onnx(wrong, tmp_path / "wrong.onnx", like=original)
    lines = ["(declare-network original (declare-input X float32 [1,1,1,5]) (declare-output Y float32 [1,5]))",
             "(declare-network pruned (declare-input P float32 [1,1,1,5]) (declare-output Q float32 [1,5]))"]
    for i, (lo, hi) in enumerate(zip(box.lower, box.upper)):
        lines.append(f"(assert (and (>= X[0,0,0,{i}] {lo:.12f}) (<= X[0,0,0,{i}] {hi:.12f}) (== X[0,0,0,{i}] P[0,0,0,{i}])))")
    lines.append("(assert (or " + " ".join(f"(>= (- Y[0,{i}] Q[0,{i}]) 0.0001) (<= (- Y[0,{i}] Q[0,{i}]) -0.0001)" for i in range(5)) + "))")
    query = tmp_path / "equal.vnnlib"
    query.write_text(_header("\n".join(lines) + "\n"))
    code, out, _ = _run(capsys, query, "--network", f"original={original}", "--network", f"pruned={tmp_path / 'pruned.onnx'}",
                        "--timeout", "300")
    assert code == 0 and out.strip() == "unsat"
    code, out, _ = _run(capsys, query, "--network", f"original={original}", "--network", f"pruned={tmp_path / 'wrong.onnx'}",
                        "--timeout", "300")
    assert code == 0 and out.splitlines()[0] == "sat"
    values = _assignment(out)
    assert np.array_equal(values["X"], values["P"]) and box.contains(values["X"], 1e-6)
    y, q = OnnxReference(original)(values["X"]), OnnxReference(tmp_path / "wrong.onnx")(values["P"])
    assert np.allclose(values["Y"], y, atol=1e-5) and np.allclose(values["Q"], q, atol=1e-5)
    assert np.abs(y - q).max() >= 1e-4 - 1e-6

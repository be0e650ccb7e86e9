"""The command line as a user meets it: stdout carries exactly the answer, bad input gets one line and
exit code 2, bugs say they are bugs (exit 1), Ctrl-C stops a long solve with the answer so far (exit 130).

The guard behind "stdout is the answer" is tested on its own in tests/core/test_runtime.py; each command's
own behaviour in tests/cli/test_cli_<command>.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from importers import save_onnx
import milp.search.queries
from milp import cli
from children import start
from nets import random_mlp, un_relu_toy

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "MPLBACKEND": "Agg"}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The design notes' toy (2 inputs, ReLU layers of 3 and 3, 3 outputs), its regions and a property."""
    folder = tmp_path_factory.mktemp("cli")
    model = folder / "toy.onnx"
    save_onnx(un_relu_toy(), model, dtype=np.float32)
    prop = folder / "toy.vnnlib"
    prop.write_text(
        "(declare-const X_0 Real)\n(declare-const X_1 Real)\n"
        "(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n(declare-const Y_2 Real)\n"
        "(assert (>= X_0 -5))\n(assert (<= X_0 5))\n(assert (>= X_1 -5))\n(assert (<= X_1 5))\n"
        "(assert (>= Y_0 2.0))\n"
    )
    zones = folder / "zones.jsonl"
    run = _milp("regions", model, "--box", "-5:5", "--where", "y[0] > 0", "-o", zones, "--quiet")
    assert run.returncode == 0, run.stderr
    return folder, model, prop, zones


def _milp(*argv, entry=("-m", "milp"), timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *entry, *map(str, argv)], capture_output=True, text=True, env=ENV,
                          timeout=timeout, stdin=subprocess.DEVNULL, cwd=ROOT)


# ------------------------------------------------------------------ stdout is the answer
COMMANDS = {
    "info": lambda f, m, p, z: ["info", m, "--box", "-5:5"],
    "fires": lambda f, m, p, z: ["fires", m, "--box", "-5:5", "--layer", "1", "--neuron", "0"],
    "reach": lambda f, m, p, z: ["reach", m, "--box", "-5:5", "--where", "y[0] > 1.3"],
    "range": lambda f, m, p, z: ["range", m, "--box", "-5:5"],
    "regions": lambda f, m, p, z: ["regions", m, "--box", "-5:5", "--where", "y[0] > 0", "-o", f / "r.jsonl"],
    "regions-workers": lambda f, m, p, z: ["regions", m, "--box", "-5:5", "-o", f / "w.jsonl", "--workers", "2"],
    "vnnlib": lambda f, m, p, z: ["vnnlib", m, p, "--timeout", "30"],
    "plot": lambda f, m, p, z: ["plot", z, "-o", f / "z.png"],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_json_stdout_is_exactly_one_object(toy, name):
    """The whole of stdout parses as one JSON object: no banner or log line of any library slips in."""
    run = _milp(*COMMANDS[name](*toy), "--json")
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)  # raises on anything before or after the object
    assert isinstance(answer, dict)
    assert run.stdout.strip().count("\n") == 0


def test_console_script_and_human_output_carry_only_the_answer(toy):
    """``python -m milp`` and the ``milp`` script print the answer lines and nothing else on stdout."""
    folder, model, _, _ = toy
    run = _milp("fires", model, "--box", "-5:5", "--layer", "1", "--neuron", "0")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == "can neuron 0 of ReLU layer 1 fire? yes"
    assert all(line.split(":")[0] in ("can neuron 0 of ReLU layer 1 fire? yes", "max pre-activation", "witness", "seconds")
               for line in run.stdout.splitlines())
    script = Path(sys.executable).with_name("milp")
    if script.exists():
        done = subprocess.run([str(script), "range", str(model), "--box", "-5:5", "--json"], capture_output=True, text=True, env=ENV)
        assert done.returncode == 0 and json.loads(done.stdout)["outputs"][0]["max"] == pytest.approx(1.2825317, abs=1e-6)


# ------------------------------------------------------------------ bad input: one line, exit 2
BAD = [
    (["fires", "{m}", "--box", "-5:5", "--layer", "1", "--neuron", "0", "--time-limit", "-1"], "--time-limit"),
    (["fires", "{m}", "--box", "-5:5", "--layer", "1", "--neuron", "0", "--time-limit", "nan"], "--time-limit"),
    (["reach", "{m}", "--box", "-5:5", "--where", "y[0] > 1", "--time-limit", "-1"], "--time-limit"),
    (["range", "{m}", "--box", "-5:5", "--time-limit", "inf"], "--time-limit"),
    (["regions", "{m}", "--box", "-5:5", "--time-limit", "-1"], "--time-limit"),
    (["fires", "{m}", "--box", "-5:5", "--layer", "1", "--neuron", "0", "--threads", "-3"], "--threads"),
    (["regions", "{m}", "--box", "-5:5", "--threads", "0"], "--threads"),
    (["regions", "{m}", "--box", "-5:5", "--tol", "-1"], "--tol"),
    (["regions", "{m}", "--box", "-5:5", "--max-regions", "0"], "--max-regions"),
    (["regions", "{m}", "--box", "-5:5", "--workers", "-1"], "--workers"),
    (["vnnlib", "{m}", "{p}", "--timeout", "-1"], "--timeout"),
    (["vnnlib", "{m}", "{p}", "--workers", "-1"], "--workers"),
    (["plot", "{z}", "-o", "{f}/x.png", "--samples", "0"], "--samples"),
    (["fires", "{m}", "--layer", "1", "--neuron", "0"], "box is required"),
    (["fires", "{m}", "--box", "5:-5", "--layer", "1", "--neuron", "0"], "inverted"),
    (["fires", "{m}", "--box", "-1:1,-1:1,-1:1", "--layer", "1", "--neuron", "0"], "3 intervals"),
    (["fires", "{m}", "--box", "-5:5", "--layer", "1", "--neuron", "7"], "no neuron 7"),
    (["fires", "{m}", "--box", "-5:5", "--layer", "4", "--neuron", "0"], "no ReLU layer 4"),
    (["fires", "{m}", "--box", "-5:5", "--layer", "x", "--neuron", "0"], "--layer"),
    (["reach", "{m}", "--box", "-5:5", "--where", "q[0] > 1"], "q[0]"),
    (["range", "{f}/missing.onnx", "--box", "-5:5"], "does not exist"),
    (["range", "{f}/sigmoid.onnx", "--box", "-5:5"], "Sigmoid"),
    (["range", "{f}/nan.onnx", "--box", "-5:5"], "non-finite"),
    (["regions", "{m}", "--box", "-5:5", "-o", "{f}/x.txt"], ".jsonl"),
    (["frobnicate"], "invalid choice"),
    (["fires", "{m}", "--box", "--layer", "1", "--neuron", "0"], "--box: expected one argument"),
    (["range", "{m}", "--box", "1e39:1e39"], "beyond the range of the model's float32 input"),
    (["reach", "{m}", "--box", "-5:5", "--where", "y[0] > 1e400"], "1e400 is not a finite number"),
    (["reach", "{m}", "--box", "-5:5", "--where", "y[0] > nan"], "nan is not a finite number"),
    (["reach", "{m}", "--box", "-5:5", "--where", "y[0] > 1e308*10"], "overflows"),
    (["reach", "{m}", "--box", "-5:5", "--where", "y[0] > 0 and y[1] > 0"], "one inequality per --where"),
    (["regions", "{m}", "--slice", "u=e0 v=e1", "--box", "-1:1,-1:1,-1:1"], "the plane's s and t"),
    (["regions", "{m}", "--through", "{f}/strings.npy:0,1,2"], "needs real numbers"),
    (["plot", "{f}/bad_header.jsonl", "-o", "{f}/x.png"], "input_dim must be a whole number"),
    (["plot", "{f}/newer.jsonl", "-o", "{f}/x.png"], "format version 99; this milp reads up to version 1"),
    (["plot", "{f}/other.json", "-o", "{f}/x.png"], "its header's format is 'geojson'"),
    (["info", "{f}/folder.onnx"], "is a directory"),
    (["vnnlib", "{p}", "{m}"], "the model goes first"),
    (["vnnlib", "{m}", "{p}", "--timeout", "0"], "--timeout must be a positive"),
    (["vnnlib", "{f}/nan.onnx", "{p}", "--results", "{f}/no/such/folder/out.txt"], "non-finite"),
]


@pytest.fixture(scope="module")
def bad_models(toy):
    from onnx import helper

    from nets import onnx_file

    folder = toy[0]
    onnx_file(folder / "sigmoid.onnx", [helper.make_node("Sigmoid", ["x"], ["y"], name="squash")], {}, [1, 2], [1, 2])
    weights = np.array([[np.nan, 1.0], [1.0, 1.0]], dtype=np.float32)
    onnx_file(folder / "nan.onnx", [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")], {"W": weights}, [1, 2], [1, 2])
    np.save(folder / "strings.npy", np.array([["a", "b"]] * 3))
    (folder / "folder.onnx").mkdir(exist_ok=True)
    lines = toy[3].read_text().splitlines()
    header = json.loads(lines[0])
    header["input_dim"] = "two"
    (folder / "bad_header.jsonl").write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    header = {**json.loads(lines[0]), "version": 99}  # written by a later release
    (folder / "newer.jsonl").write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    (folder / "other.json").write_text(json.dumps({"format": "geojson", "regions": []}))
    return toy


@pytest.mark.parametrize("argv,needle", BAD, ids=[" ".join(a[:1] + a[2:])[:60] for a, _ in BAD])
def test_bad_input_is_one_line_and_exit_2(bad_models, argv, needle, capsys):
    """Each bad input: exit code 2, nothing on stdout, one line on stderr that names the problem."""
    folder, model, prop, zones = bad_models
    argv = [a.format(m=model, p=prop, z=zones, f=folder) for a in argv]
    capsys.readouterr()
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("milp: error: "), captured.err
    assert needle in lines[0]


def test_max_regions_one_lists_exactly_one(toy, capsys):
    """--max-regions N stops after N regions (and says incomplete)."""
    folder, model, _, _ = toy
    assert cli.main(["regions", str(model), "--box", "-5:5", "--max-regions", "1", "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["regions"] == 1 and summary["complete"] is False
    assert "incomplete" not in summary["stats"]  # the summary's "complete" says it once


def test_plot_of_a_damaged_file_warns_and_resume_repairs_it(toy, tmp_path, capsys):
    """A region file with a corrupt middle line: plot draws what comes before, warns on stderr, and --resume completes it."""
    folder, model, _, zones = toy
    lines = zones.read_text().splitlines(keepends=True)
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text("".join(lines[:3] + ["{not json\n"] + lines[3:]))
    capsys.readouterr()
    assert cli.main(["plot", str(damaged), "-o", str(tmp_path / "d.png"), "--json"]) == 0
    captured = capsys.readouterr()
    answer = json.loads(captured.out)
    assert answer["regions"] == 2 and answer["complete"] is False and "line 4" in answer["damage"]
    assert "warning" in captured.err and "line 4" in captured.err and "--resume" in captured.err
    assert cli.main(["regions", str(model), "--box", "-5:5", "--where", "y[0] > 0", "-o", str(damaged), "--resume", "--quiet"]) == 0
    capsys.readouterr()
    assert cli.main(["plot", str(damaged), "-o", str(tmp_path / "d.png"), "--json"]) == 0
    repaired = json.loads(capsys.readouterr().out)
    assert repaired == {"output": str(tmp_path / "d.png"), "regions": 7, "complete": True, "damage": None}


@pytest.mark.parametrize("time_limit,seconds,why", [(None, 0.01, "not decided"), ("5", 0.01, "not decided"), ("5", 5.0, "time limit")])
def test_an_unknown_fires_says_why(toy, monkeypatch, capsys, time_limit, seconds, why):
    """``unknown`` names its cause: the time limit only once the time is spent; before, not decided
    (leaves no solver could settle keep only a proved bound)."""
    from milp.search.queries import FiresResult

    def undecided(network, box, layer, neuron, **kwargs):
        return FiresResult(layer, neuron, "unknown", None, 2.5, None, seconds, "symbolic", -0.5)

    monkeypatch.setattr(milp.search.queries, "fires", undecided)
    argv = ["fires", str(toy[1]), "--box", "-5:5", "--layer", "1", "--neuron", "0", *(["--time-limit", time_limit] if time_limit else [])]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert f"fire? unknown ({why})" in out and "found -0.5" in out and "proved <= 2.5" in out


# ------------------------------------------------------------------ internal errors: exit 1, named a bug
def test_internal_error_says_it_is_a_bug(toy, monkeypatch, capsys):
    """An exception that is not an input error exits 1 with a message that calls it a bug, not the user's fault."""
    folder, model, _, _ = toy

    def broken(*args, **kwargs):
        raise ZeroDivisionError("an invariant broke")

    monkeypatch.setattr(milp.search.queries, "output_range", broken)
    assert cli.main(["range", str(model), "--box", "-5:5"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "internal error" in err[0] and "bug" in err[0] and "an invariant broke" in err[0]


# ------------------------------------------------------------------ Ctrl-C
@pytest.fixture(scope="module")
def hard_model(tmp_path_factory):
    """A 10-64x4-1 random MLP over [-1,1]^10: its exact maximum takes HiGHS minutes, one long MILP."""
    path = tmp_path_factory.mktemp("hard") / "hard.onnx"
    save_onnx(random_mlp(np.random.default_rng(5), [10, 64, 64, 64, 64, 1]), path, dtype=np.float64)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("command", ["range", "fires", "reach"])
def test_ctrl_c_stops_a_long_solve_with_the_answer_so_far(hard_model, command):
    """SIGINT during a long HiGHS solve: the answer (unknown, with proved bounds) comes within a second or two, exit 130."""
    extra = {
        "range": ["--output", "0"],
        "fires": ["--layer", "3", "--neuron", "0"],
        "reach": ["--where", "y[0] >= 50000"],
    }[command]
    process = start([sys.executable, "-m", "milp", command, str(hard_model), "--box", "-1:1", *extra, "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)
    time.sleep(4.0)  # imports, bounds, and well into the MILP
    assert process.poll() is None, process.communicate()
    sent = time.perf_counter()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    waited = time.perf_counter() - sent
    assert process.returncode == 130, err
    answer = json.loads(out)
    assert waited < 3.0, waited
    if command == "range":
        o = answer["outputs"][0]
        assert o["status"] == "unknown" and o["max_bound"] is not None
    elif command == "fires":
        # a checked witness found before the stop already decides "fires"; the exact maximum stays open
        assert answer["status"] in ("unknown", "fires") and answer["max"] is None
        assert answer["status"] == "unknown" or answer["witness"] is not None
    else:
        assert answer["status"] == "unknown"


@pytest.mark.slow
def test_a_background_job_ignores_ctrl_c_as_its_shell_asked(hard_model):
    """Started with SIGINT ignored (a shell's background job), the run goes on after SIGINT."""
    process = subprocess.Popen([sys.executable, "-m", "milp", "range", str(hard_model), "--box", "-1:1", "--output", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        time.sleep(3.0)
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGINT)
        time.sleep(2.0)
        assert process.poll() is None, process.communicate()  # the SIGINT-handled run answers within a second or two
    finally:
        process.kill()
        process.communicate()

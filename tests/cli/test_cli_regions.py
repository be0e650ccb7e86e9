"""``milp regions`` as a user meets it: region files that resume after a stop, a kill or Ctrl-C (to the set an
uninterrupted run lists), with worker processes too; bad options on one line; ``python -m milp``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import oracle
from children import start
from importers import save_onnx
from milp import parse_box, parse_conditions
from milp.cli.main import main
from milp.enumeration.engines import regions
from milp.io.regionfiles import read_region_file
from nets import chained_net, deep_net, deep_truth, random_mlp, un_relu_toy


# ------------------------------------------------------------------ one process
@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".npz"])
def test_interrupted_run_resumes_to_the_same_set(tmp_path, suffix):
    net = chained_net(2)
    model = tmp_path / "net.onnx"
    save_onnx(net, model)
    out = tmp_path / f"zones{suffix}"
    args = [str(model), "--box", "-6:6", "--where", "y[0] > 0", "--quiet"]
    assert main(["regions", *args, "-o", str(out), "--max-regions", "3"]) == 0
    first = read_region_file(out)
    assert len(first.regions) == 3 and not first.complete
    assert main(["regions", *args, "-o", str(out), "--resume"]) == 0
    resumed = read_region_file(out)
    assert resumed.complete
    whole = tmp_path / f"whole{suffix}"
    assert main(["regions", *args, "-o", str(whole)]) == 0
    uninterrupted = read_region_file(whole)
    patterns = [r.pattern for r in resumed.regions]
    assert len(patterns) == len(set(patterns))
    assert set(patterns) == {r.pattern for r in uninterrupted.regions}


@pytest.mark.slow
def test_killed_run_leaves_a_readable_file_that_resumes(tmp_path):
    """A process killed mid-write leaves a torn last line: the file still reads, and resume completes it."""
    net = chained_net(3)
    model = tmp_path / "net.onnx"
    save_onnx(net, model)
    out = tmp_path / "zones.jsonl"
    args = [str(model), "--box", "-6:6", "--quiet"]
    assert main(["regions", *args, "-o", str(out)]) == 0
    full = read_region_file(out)
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:4]) + lines[4][:25])  # header, 3 regions, half a line, no footer
    torn = read_region_file(out)
    assert len(torn.regions) == 3 and not torn.complete
    assert main(["regions", *args, "-o", str(out), "--resume"]) == 0
    again = read_region_file(out)
    assert again.complete and {r.pattern for r in again.regions} == {r.pattern for r in full.regions}
    assert len(again.regions) == len(full.regions)


def test_regions_cli_errors_are_one_line(tmp_path, capsys):
    net = un_relu_toy()
    model = tmp_path / "toy.onnx"
    save_onnx(net, model)
    assert main(["regions", str(model), "--box", "-5:5", "--where", "q[0] > 1"]) == 2
    assert "unknown name" in capsys.readouterr().err
    assert main(["regions", str(model), "--box", "-5:5", "-o", str(tmp_path / "x.txt")]) == 2
    assert main(["regions", str(model), "--box", "-5:5", "--resume"]) == 2


def test_python_module_entry_point(tmp_path):
    model = tmp_path / "toy.onnx"
    save_onnx(un_relu_toy(), model)
    done = subprocess.run(
        [sys.executable, "-m", "milp", "regions", str(model), "--box", "-5:5", "--where", "y[0] > 0", "--json"],
        capture_output=True, text=True, check=True,
    )
    summary = json.loads(done.stdout)
    truth = oracle.enumerate_regions(un_relu_toy(), np.full(2, -5.0), np.full(2, 5.0), parse_conditions(un_relu_toy(), ["y[0] > 0"]))
    assert summary["regions"] == len(truth) and summary["complete"] is True


# ------------------------------------------------------------------ worker processes
@pytest.fixture
def deep_model(tmp_path):
    net, _ = deep_net()
    path = tmp_path / "deep.onnx"
    save_onnx(net, path, dtype=np.float64)
    return path


@pytest.mark.slow
def test_cli_workers_write_the_same_file_with_subproblem_records(tmp_path, deep_model):
    args = ["regions", str(deep_model), "--box", "-1:1", "--quiet"]
    assert main([*args, "-o", str(tmp_path / "one.jsonl")]) == 0
    assert main([*args, "--workers", "2", "-o", str(tmp_path / "two.jsonl")]) == 0
    one, two = read_region_file(tmp_path / "one.jsonl"), read_region_file(tmp_path / "two.jsonl")
    assert two.complete and {r.pattern for r in two.regions} == {r.pattern for r in one.regions}
    assert len(two.regions) == len(one.regions) == len(deep_truth())
    lines = [json.loads(line) for line in (tmp_path / "two.jsonl").read_text().splitlines()]
    assert any(item["type"] == "subproblem_done" for item in lines)
    assert two.stats["workers"] == 2 and two.stats["errors"] == []


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".jsonl", ".npz"])
def test_cli_stopped_parallel_run_resumes_to_the_same_set(tmp_path, deep_model, suffix):
    out = tmp_path / f"zones{suffix}"
    args = ["regions", str(deep_model), "--box", "-1:1", "--quiet", "-o", str(out)]
    assert main([*args, "--workers", "2", "--max-regions", "100"]) == 0
    first = read_region_file(out)
    assert len(first.regions) == 100 and not first.complete
    if suffix == ".npz":
        assert first.stats["subproblems_done"]  # kept for --resume, as the .jsonl's subproblem lines
    assert main([*args, "--workers", "2", "--resume"]) == 0
    resumed = read_region_file(out)
    patterns = [r.pattern for r in resumed.regions]
    assert resumed.complete and len(patterns) == len(set(patterns))
    assert set(patterns) == deep_truth()


def test_cli_bad_worker_options_are_one_line(deep_model, capsys):
    args = ["regions", str(deep_model), "--box", "-1:1", "--quiet"]
    assert main([*args, "--scheduler", "nonsense"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("milp: error:") and "scheduler" in err and "\n" not in err
    assert main([*args, "--workers", "-1"]) == 2
    assert "--workers" in capsys.readouterr().err


@pytest.mark.slow
def test_ctrl_c_with_workers_leaves_a_file_that_resumes(tmp_path):
    """SIGINT to a run with worker processes: exit code 130, a valid incomplete file, and --resume finishes it."""
    # 21,786 regions over -8:8: about 4 s of search with 2 workers on a fast machine. The signal comes
    # 1 s after the file's header (written before the search starts), not after some count of regions:
    # each worker hands its regions back when its task ends, and on busy cores no task may end before
    # the run does. A run that is over before the signal is repeated over a wider box (a longer search).
    net = random_mlp(np.random.default_rng(5), [2, 80, 80, 80, 1])
    model = tmp_path / "big.onnx"
    save_onnx(net, model, dtype=np.float64)
    out = tmp_path / "zones.jsonl"
    ended = []  # why each run could not be interrupted
    for box in ("-8:8", "-12:12", "-16:16"):
        out.unlink(missing_ok=True)
        args = ["regions", str(model), "--box", box, "--quiet", "--workers", "2", "-o", str(out)]
        process = start([sys.executable, "-m", "milp", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline and process.poll() is None and not out.exists():
            time.sleep(0.05)
        time.sleep(1.0)
        if process.poll() is not None:  # the run ended before it could be interrupted
            ended.append(f"{box}: exit {process.returncode} before the signal; {process.communicate()[1].decode().strip()[-300:]}")
            continue
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        if process.returncode in (0, -signal.SIGINT) and read_region_file(out).complete:
            ended.append(f"{box}: the search was done when the signal arrived (exit {process.returncode})")
            continue
        break
    else:
        pytest.fail("no run could be interrupted: " + " | ".join(ended))
    assert process.returncode == 130, err.decode()
    first = read_region_file(out)
    assert not first.complete
    assert main([*args, "--resume"]) == 0
    resumed = read_region_file(out)
    patterns = [r.pattern for r in resumed.regions]
    assert resumed.complete and len(patterns) == len(set(patterns))
    truth = {r.pattern for r in regions(net, parse_box(box, 2))}
    assert set(patterns) == truth and {r.pattern for r in first.regions} <= truth

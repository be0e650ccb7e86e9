"""milp.core.runtime: the guard that keeps stdout for the answer (C-level writes and child processes go to
stderr) and the thread limits that hold here and in child processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from milp.core.deadline import Deadline
from milp.core.runtime import THREAD_VARIABLES, BackgroundCall, answers_on_stdout, limit_threads

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "MPLBACKEND": "Agg"}


# ------------------------------------------------------------------ stdout is the answer
def test_guard_sends_c_level_and_child_output_to_stderr():
    """Inside the guard, writes to file descriptor 1 (as C libraries make) and child processes go to stderr."""
    code = (
        "import os, subprocess, sys\n"
        "from milp.core.runtime import answers_on_stdout\n"
        "with answers_on_stdout() as out:\n"
        "    os.write(1, b'c-level noise\\n')\n"
        "    print('python noise')\n"
        "    subprocess.run([sys.executable, '-c', 'print(\"child noise\")'])\n"
        "    print('the answer', file=out)\n"
        "print('after')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "the answer\nafter\n"
    assert "c-level noise" in run.stderr and "python noise" in run.stderr and "child noise" in run.stderr


def test_guard_restores_stdout_for_the_caller(capfd):
    """After the guard, descriptor 1 is stdout again (a program embedding main() keeps its stdout)."""
    with answers_on_stdout() as out:
        os.write(1, b"noise\n")
        print("answer", file=out)
    os.write(1, b"mine\n")
    captured = capfd.readouterr()
    assert captured.out == "answer\nmine\n" and "noise" in captured.err


# ------------------------------------------------------------------ threads
def test_limit_threads_holds_here_and_in_child_processes(monkeypatch):
    """BLAS pools of this process are held to the count, and child processes inherit it through the environment."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    for name in THREAD_VARIABLES:
        monkeypatch.setenv(name, "7")
    with threadpoolctl.threadpool_limits(limits=None):  # restores this process's pools afterwards
        limit_threads(1)
        assert all(pool["num_threads"] == 1 for pool in threadpoolctl.threadpool_info())
    child = subprocess.run([sys.executable, "-c", "import os; print(os.environ['OPENBLAS_NUM_THREADS'], os.environ['OMP_NUM_THREADS'])"],
                           capture_output=True, text=True)
    assert child.stdout.split() == ["1", "1"]


@pytest.mark.parametrize("asked, held", [("3", "3"), (None, "1")])
def test_a_background_call_keeps_the_callers_thread_limit(monkeypatch, asked, held):
    """A child of BackgroundCall (the portfolio's MILP arm, a refinement process) holds BLAS to the
    threads the caller was held to (``--threads``), and to one when nobody asked."""
    here = Path(__file__).resolve().parent
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join((str(here), str(here.parent))))  # the child imports this file
    for name in THREAD_VARIABLES:
        if asked is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, asked)
    assert BackgroundCall(threads_in_child, (), Deadline.after(60)).join() == (held, held)


def threads_in_child(deadline):
    return os.environ["OPENBLAS_NUM_THREADS"], os.environ["OMP_NUM_THREADS"]


def deaf_in_child(seconds, deadline):
    """A call that never looks at its deadline (as HiGHS in its root's cut rounds)."""
    time.sleep(seconds)
    return "done"


@pytest.mark.parametrize("grace", [None, 0.5])
def test_a_cancelled_call_that_does_not_stop_is_ended_after_its_grace(monkeypatch, grace):
    """Without ``grace`` a cancelled call is waited for and answers; with it, its process ends that
    long after the cancel and the answer is None."""
    here = Path(__file__).resolve().parent
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join((str(here), str(here.parent))))
    call = BackgroundCall(deaf_in_child, (3.0,), Deadline.after(60), grace=grace)
    time.sleep(1.0)  # the child has started the call
    started = time.perf_counter()
    call.cancel()
    answer = call.join()
    waited = time.perf_counter() - started
    if grace is None:
        assert answer == "done" and waited > 1.0
    else:
        assert answer is None and waited < 1.5

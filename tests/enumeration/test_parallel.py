"""Parallel region enumeration: any number of workers, any executor, failures and resume give the single-process set
(``milp regions --workers``: tests/cli/test_cli_regions.py)."""

from __future__ import annotations

import functools
import os
import time

import numpy as np
import pytest

import oracle
from milp import parse_box, parse_conditions
from milp.core.options import OptionError
from milp.enumeration.parallel import (
    ParallelError,
    Subproblem,
    SubproblemDone,
    make_subproblems,
    parallel_regions,
    remaining_subproblems,
    simulate_makespan,
    solve_subproblem,
)
from milp.search.tighten import pre_activation_bounds
from nets import deep_net, deep_truth, random_mlp, tiny_net


def listed(search) -> list[str]:
    found = [r.pattern for r in search]
    assert len(found) == len(set(found)), "a region was listed twice"
    return found


def agrees(net, pattern: str, subproblem: Subproblem) -> bool:
    offsets = net.neuron_offsets()
    return all((pattern[offsets[layer] + neuron] == "1") == (phase > 0) for (layer, neuron), phase in subproblem.fixed)


# ------------------------------------------------------------------ test tasks (module level: workers unpickle them by name)
def kill_first_task(marker: str, context, subproblem, budget, stop_at, hand_back=None):
    """The first task to run ends its worker process, as a crash would; every later one works."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return solve_subproblem(context, subproblem, budget, stop_at, hand_back)
    os._exit(1)


def kill_always(victim: str, context, subproblem, budget, stop_at, hand_back=None):
    """The subproblem ``victim`` ends its worker every time."""
    if subproblem.id == victim:
        os._exit(1)
    return solve_subproblem(context, subproblem, budget, stop_at, hand_back)


def raise_first_task(marker: str, context, subproblem, budget, stop_at, hand_back=None):
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return solve_subproblem(context, subproblem, budget, stop_at, hand_back)
    raise RuntimeError("injected failure")


def raise_always(victim: str, context, subproblem, budget, stop_at, hand_back=None):
    if subproblem.id == victim:
        raise RuntimeError("injected failure")
    return solve_subproblem(context, subproblem, budget, stop_at, hand_back)


# ------------------------------------------------------------------ subproblems
def test_subproblem_ids_round_trip_and_reject_bad_input():
    s = Subproblem((((1, 2), -1), ((0, 3), 1)))
    assert s.id == "0:3+,1:2-" and Subproblem.from_id(s.id) == s
    assert Subproblem.from_id("*") == Subproblem() and Subproblem().id == "*"
    for bad in ["0:3", "x:1+", "0:3+,0:3-"]:
        with pytest.raises(ParallelError):
            Subproblem.from_id(bad)
    with pytest.raises(ParallelError):
        Subproblem((((0, 1), 2),))


def test_remaining_subproblems_is_the_exact_difference():
    rng = np.random.default_rng(0)
    neurons = [(0, k) for k in range(5)]
    everything = ["".join(bits) for bits in np.array(np.meshgrid(*[["0", "1"]] * 5)).T.reshape(-1, 5)]

    def members(subs):
        return [p for p in everything for s in subs if all((p[n] == "1") == (ph > 0) for (_, n), ph in s.fixed)]

    for _ in range(50):
        cut = [Subproblem(tuple(zip(neurons[:2], bits))) for bits in [(1, 1), (1, -1), (-1, 1), (-1, -1)]]
        done = []
        for _ in range(rng.integers(0, 4)):
            k = rng.integers(1, 5)
            chosen = rng.choice(5, size=k, replace=False)
            done.append(Subproblem(tuple((neurons[i], int(rng.choice([-1, 1]))) for i in chosen)))
        rest = remaining_subproblems(cut, done)
        covered = members(rest)
        assert len(covered) == len(set(covered)), "remaining subproblems overlap"
        assert set(covered) == set(everything) - set(members(done))


def test_cut_is_disjoint_and_covers_every_region():
    net, box = deep_net()
    bounds = pre_activation_bounds(net, box, "symbolic")
    cut = make_subproblems(net, box, (), bounds, 1e-7, 16)
    assert 8 <= len(cut) <= 40
    for pattern in deep_truth():
        assert sum(agrees(net, pattern, s) for s in cut) == 1


# ------------------------------------------------------------------ same set, whatever runs it
@pytest.mark.slow
@pytest.mark.parametrize("scheduler, workers", [("serial", 1), ("processes", 1), ("processes", 2), ("processes", 4)])
def test_any_number_of_workers_lists_the_single_process_set(scheduler, workers):
    net, box = deep_net()
    # a short task budget makes tasks hand back their unexplored nodes, so re-splitting is exercised
    search = parallel_regions(net, box, workers=workers, scheduler=scheduler, split_after=0.02)
    assert set(listed(search)) == deep_truth()
    assert search.complete and not search.errors
    assert search.stats.regions == len(deep_truth())
    stats = search.stats_dict()
    assert stats["workers"] == workers and stats["tasks"] >= stats["subproblems"] >= 1


@pytest.mark.parametrize("method", ["tree", "nogood"])
def test_parallel_equals_the_oracle_on_a_tiny_net(method):
    net, box, where = tiny_net()
    truth = set(oracle.enumerate_regions(net, box.lower, box.upper, parse_conditions(net, where)))
    search = parallel_regions(net, box, where, workers=2, method=method, target=8)
    assert set(listed(search)) == truth and search.complete


@pytest.mark.slow
def test_dask_local_cluster_lists_the_single_process_set():
    distributed = pytest.importorskip("distributed")
    net, box = deep_net()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            search = parallel_regions(net, box, scheduler=client, split_after=0.05)
            assert set(listed(search)) == deep_truth()
            assert search.complete and search.stats_dict()["scheduler"] == "dask"
            # a task that raises every time is reported by id after Dask's retry, never dropped
            victim = make_subproblems(net, box, (), pre_activation_bounds(net, box, "symbolic"), 1e-7, 8)[0]
            failing = parallel_regions(net, box, scheduler=client, target=8, task=functools.partial(raise_always, victim.id))
            found = set(listed(failing))
            assert not failing.complete and len(failing.errors) == 1 and victim.id in failing.errors[0]
            assert found == {p for p in deep_truth() if not agrees(net, p, victim)}


# ------------------------------------------------------------------ failures are retried or reported
@pytest.mark.slow
def test_a_killed_worker_is_retried(tmp_path):
    net, box = deep_net()
    search = parallel_regions(net, box, workers=2, target=8, task=functools.partial(kill_first_task, str(tmp_path / "killed")))
    assert set(listed(search)) == deep_truth()
    assert search.complete and search.retries >= 1 and not search.errors


@pytest.mark.slow
def test_a_subproblem_that_always_kills_its_worker_is_reported():
    net, box = deep_net()
    victim = make_subproblems(net, box, (), pre_activation_bounds(net, box, "symbolic"), 1e-7, 8)[0]
    search = parallel_regions(net, box, workers=2, target=8, task=functools.partial(kill_always, victim.id))
    found = set(listed(search))
    assert not search.complete
    assert len(search.errors) == 1 and victim.id in search.errors[0] and "died" in search.errors[0]
    assert victim.id not in search.completed
    # every other subproblem still ran to the end
    assert found == {p for p in deep_truth() if not agrees(net, p, victim)}


@pytest.mark.slow
@pytest.mark.parametrize("scheduler, workers", [("serial", 1), ("processes", 2)])
def test_a_task_that_raises_is_retried_then_reported(tmp_path, scheduler, workers):
    net, box = deep_net()
    once = parallel_regions(net, box, workers=workers, scheduler=scheduler, target=8, task=functools.partial(raise_first_task, str(tmp_path / "raised")))
    assert set(listed(once)) == deep_truth() and once.complete and once.retries == 1
    victim = make_subproblems(net, box, (), pre_activation_bounds(net, box, "symbolic"), 1e-7, 8)[-1]
    always = parallel_regions(net, box, workers=workers, scheduler=scheduler, target=8, task=functools.partial(raise_always, victim.id))
    found = set(listed(always))
    assert not always.complete and len(always.errors) == 1
    assert victim.id in always.errors[0] and "injected failure" in always.errors[0]
    assert found == {p for p in deep_truth() if not agrees(net, p, victim)}


@pytest.mark.slow
def test_a_dask_worker_that_dies_is_replaced_and_its_task_rerun(tmp_path):
    distributed = pytest.importorskip("distributed")
    net, box = deep_net()
    # worker processes (with nannies that restart them), so that a task can end its process
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            search = parallel_regions(net, box, scheduler=client, target=8, task=functools.partial(kill_first_task, str(tmp_path / "killed")))
            assert set(listed(search)) == deep_truth()
            assert search.complete and not search.errors
            assert (tmp_path / "killed").exists()  # the first task did end its worker


# ------------------------------------------------------------------ limits and resume
@pytest.mark.slow
def test_stopped_run_resumes_with_another_number_of_workers():
    net, box = deep_net()
    first = parallel_regions(net, box, workers=2, max_regions=150, split_after=0.02)
    found = []
    done = []
    for item in first.events():
        if isinstance(item, SubproblemDone):
            done.append(item.id)
        else:
            found.append(item.pattern)
    assert not first.complete and len(found) == 150
    assert done == first.completed
    # the next run cuts the box differently (4 workers: another target) and skips what is done
    second = parallel_regions(net, box, workers=4, scheduler="processes", done_subproblems=done, skip_patterns=found)
    rest = listed(second)
    assert second.complete
    assert not set(rest) & set(found)
    assert set(found) | set(rest) == deep_truth()


def test_time_limit_marks_the_parallel_list_incomplete():
    # 35,313 regions: 7 s to list them all on a fast 2-core machine, far beyond the 0.5 s limit (a net
    # of 2,919 regions was listed within it there, once the worker pool was warm)
    net = random_mlp(np.random.default_rng(5), [2, 100, 100, 100, 1])
    started = time.perf_counter()
    search = parallel_regions(net, parse_box("-10:10", 2), workers=2, time_limit=0.5)
    found = listed(search)
    assert not search.complete and search.unfinished
    assert len(found) == search.stats.regions
    assert time.perf_counter() - started < 30


def test_bad_arguments_are_refused():
    net, box = deep_net()
    for kwargs in [dict(workers=0), dict(workers=1.5), dict(split_after=0), dict(method="simplex"), dict(scheduler="  ")]:
        with pytest.raises((ParallelError, OptionError)):
            parallel_regions(net, box, **kwargs)


def test_cost_model_schedules_leftovers_after_their_parent():
    from milp.enumeration.parallel import TaskRecord

    tasks = [TaskRecord("a", None, 4.0, 1, False), TaskRecord("b", None, 1.0, 1, True), TaskRecord("c", "a", 2.0, 1, True)]
    assert simulate_makespan(tasks, 1) == pytest.approx(7.0)
    assert simulate_makespan(tasks, 2) == pytest.approx(6.0)  # c waits for a


# ------------------------------------------------------------------ warm-up in this process
@pytest.mark.slow
def test_warmup_hands_its_unexplored_nodes_to_the_workers():
    """A warm-up too short to finish ships its open nodes: the pool then lists the same set, once each."""
    net, box = deep_net()
    search = parallel_regions(net, box, workers=2, warmup=0.05)
    events = list(search.events())
    found = [e.pattern for e in events if not isinstance(e, SubproblemDone)]
    assert len(found) == len(set(found)) and set(found) == deep_truth()
    assert search.complete and search.workers == 2
    assert len(search.tasks) > 1 and search.tasks[0].id == "*" and not search.tasks[0].finished


def test_warmup_that_finishes_starts_no_workers():
    net, box, where = tiny_net()
    search = parallel_regions(net, box, where, workers=2, warmup=30.0)
    found = listed(search)
    assert search.complete and search.workers == 1 and len(search.tasks) == 1
    assert set(found) == set(oracle.enumerate_regions(net, box.lower, box.upper, parse_conditions(net, where)))

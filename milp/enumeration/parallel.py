"""Region enumeration split into independent subproblems, run in-process, on a local process pool or on Dask.

A :class:`Subproblem` fixes the phases of a few neurons (``+1`` active, ``-1`` inactive): its
regions are the regions whose pattern has those phases. Subproblems that give one neuron
different phases are disjoint, and the two children of a subproblem on one more neuron
partition it, so every region is listed exactly once whatever the schedule.

* :func:`make_subproblems` cuts the box along the first unstable neurons in the order the
  tree search visits them (layer 0 first); a piece whose polytope holds no ball of radius
  above the tolerance (one Chebyshev LP) is dropped.
* :func:`solve_subproblem` is the pure function a worker runs: the depth-first search of
  :mod:`milp.enumeration.tree` restricted to the fixed phases. Past its time budget it stops
  between two nodes and hands back the regions found so far plus every node still on its
  stack, each as a new subproblem (the node's decided phases fixed). Nothing is searched
  twice and nothing is lost, so long subproblems are split exactly where the work is. A task
  also hands back as soon as a worker is idle with nothing queued (a flag shared with the
  workers: a ``multiprocessing`` Event on the pool, a ``distributed.Event`` on Dask).
* :func:`parallel_regions` runs them on an executor: ``"serial"`` (this process),
  ``"processes"`` (a local :class:`~concurrent.futures.ProcessPoolExecutor`) or Dask
  ``distributed`` (a scheduler address or a ``Client``). Regions stream in any order.

Failures are never silent: a task that raises is retried once (Dask: ``retries=1``); a
local worker that dies takes the pool down with it, and every task that was running then
is run again, one at a time, so that only the one that kills its worker again is blamed.
A subproblem that fails twice is reported by id in :attr:`ParallelSearch.errors` and the
run ends with ``complete = False``.

Resuming: the ids of finished subproblems (:attr:`ParallelSearch.completed`, streamed as
:class:`SubproblemDone` events) are recorded; ``done_subproblems`` skips them in a later
run, whatever its number of workers (:func:`remaining_subproblems`).
"""

from __future__ import annotations

import concurrent.futures as cf
from concurrent.futures.process import BrokenProcessPool
import math
import multiprocessing
import os
import signal
import time
from collections import deque
from dataclasses import dataclass, fields
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from milp.bounds.propagate import Bounds
from milp.core.box import Box
from milp.core.conditions import Condition, parse_conditions, value_form
from milp.core.errors import InputError
from milp.core.network import Network, is_active
from milp.core.patterns import compose_in_x, source_maps
from milp.enumeration.nogood import nogood_search
from milp.core.tolerances import REGION_TOLERANCE
from milp.core.options import check_count, check_seconds, check_threads, check_tolerance
from milp.core.region import Region
from milp.enumeration.geometry import chebyshev_center, finish_region
from milp.enumeration import engine
from milp.core.runtime import prepare_worker
from milp.enumeration.tree import Node, SearchStats, split_search
from milp.search.tighten import pre_activation_bounds

__all__ = [
    "ParallelError",
    "ParallelSearch",
    "SearchContext",
    "Subproblem",
    "SubproblemDone",
    "SubproblemResult",
    "make_subproblems",
    "parallel_regions",
    "remaining_subproblems",
    "simulate_makespan",
    "solve_subproblem",
]

SCHEDULERS = ("serial", "processes")


class ParallelError(InputError):
    """A bad argument of the parallel enumeration (workers, scheduler, a subproblem id)."""


# ------------------------------------------------------------------ values that travel
@dataclass(frozen=True)
class Subproblem:
    """The regions whose pattern has the phases ``fixed``: ``((layer, neuron), +1 | -1)`` pairs,
    kept sorted by neuron. ``Subproblem()`` is the whole enumeration."""

    fixed: tuple[tuple[tuple[int, int], int], ...] = ()

    def __post_init__(self) -> None:
        pairs = []
        for item in self.fixed:
            try:
                (layer, neuron), phase = item
                layer, neuron, phase = int(layer), int(neuron), int(phase)
            except (TypeError, ValueError):
                raise ParallelError(f"a fixed phase is ((layer, neuron), +1 or -1), got {item!r}") from None
            if phase not in (1, -1) or layer < 0 or neuron < 0:
                raise ParallelError(f"a fixed phase is ((layer, neuron), +1 or -1) with layer, neuron >= 0, got {item!r}")
            pairs.append(((layer, neuron), phase))
        pairs.sort()
        if len({n for n, _ in pairs}) != len(pairs):
            raise ParallelError(f"a neuron is fixed twice in {pairs!r}")
        object.__setattr__(self, "fixed", tuple(pairs))

    @property
    def id(self) -> str:
        """A stable text name: ``"0:3+,0:7-,1:2+"`` (layer:neuron and phase), ``"*"`` for the whole problem."""
        if not self.fixed:
            return "*"
        return ",".join(f"{l}:{n}{'+' if p > 0 else '-'}" for (l, n), p in self.fixed)

    @classmethod
    def from_id(cls, text: str) -> "Subproblem":
        """The subproblem named ``text`` (see :attr:`id`)."""
        text = str(text).strip()
        if text == "*":
            return cls()
        pairs = []
        for part in text.split(","):
            part = part.strip()
            try:
                layer, rest = part.split(":")
                if rest[-1:] not in ("+", "-"):
                    raise ValueError
                pairs.append(((int(layer), int(rest[:-1])), 1 if rest[-1] == "+" else -1))
            except ValueError:
                raise ParallelError(f"subproblem id {text!r}: expected '*' or items like '0:3+,1:2-'") from None
        return cls(tuple(pairs))

    def phases(self) -> dict[tuple[int, int], int]:
        """``{(layer, neuron): phase}``, the form :func:`~milp.enumeration.tree.split_search` takes."""
        return dict(self.fixed)



@dataclass(frozen=True)
class SearchContext:
    """What every subproblem of one enumeration shares (sent to each worker once).

    ``tol`` is the Chebyshev radius (absolute, input units) at or below which a piece is not a
    region; ``method`` is ``"tree"`` or ``"nogood"``; ``threads`` the BLAS threads of each worker.
    """

    network: Network
    box: Box
    conditions: tuple[Condition, ...]
    bounds: Bounds
    tol: float
    method: str = "tree"
    threads: int = 1


@dataclass(frozen=True)
class SubproblemResult:
    """What a worker hands back: ``regions`` as :meth:`Region.to_dict` dicts, ``stats`` (the
    :class:`~milp.enumeration.tree.SearchStats` fields), ``leftover`` subproblems that cover what the
    time budget left unsearched (empty when the subproblem is finished) and worker ``seconds``."""

    subproblem: Subproblem
    regions: tuple[dict, ...]
    stats: dict
    leftover: tuple[Subproblem, ...]
    seconds: float
    cpu_seconds: float = 0.0  # the worker's CPU time: below ``seconds`` when the worker shared its core

    @property
    def finished(self) -> bool:
        return not self.leftover


@dataclass(frozen=True)
class SubproblemDone:
    """Event of :meth:`ParallelSearch.events`: subproblem ``id`` is finished and its ``regions`` were all yielded before."""

    id: str
    regions: int


# ------------------------------------------------------------------ cutting the box
def _stable_phases(bounds: Bounds, layer: int) -> np.ndarray:
    """+1 / -1 for neurons the global bounds decide (as the tree search does: z identically 0 is inactive), 0 otherwise."""
    inactive = np.asarray(bounds.upper[layer]) <= 0
    active = (np.asarray(bounds.lower[layer]) >= 0) & ~inactive
    return np.where(inactive, -1, np.where(active, 1, 0))


@dataclass
class _Piece:
    """A cell of the cut: its fixed phases, polytope rows ``A x <= b``, the patterns of the layers
    it fixes completely, and the current layer's pre-activation map ``(G, g)``."""

    fixed: dict
    A: np.ndarray
    b: np.ndarray
    patterns: tuple = ()
    z_map: tuple | None = None


def make_subproblems(
    network: Network, box: Box, conditions: Sequence[Condition], bounds: Bounds, tol: float, target: int
) -> tuple[Subproblem, ...]:
    """About ``target`` disjoint subproblems that together hold every region (at least one).

    The unstable neurons are taken in the tree search's order (layer by layer); each level
    splits every piece on the next neuron, keeping the sides whose polytope (box plus the
    fixed neurons' half-spaces, linear in x because earlier layers are fixed first) is not
    empty by its Chebyshev LP: a piece thinner than ``tol`` may still hold thin regions, which
    the worker's search decides exactly.
    ``conditions`` do not prune here (the workers' search applies them).
    """
    if not isinstance(target, (int, np.integer)) or target < 1:
        raise ParallelError(f"target must be a positive number of subproblems, got {target!r}")
    box.check_dim(network.input_dim)
    d = network.input_dim
    free = box.upper > box.lower
    if not np.any(free) or not network.widths:
        return (Subproblem(),)
    fixed_point = np.where(free, 0.0, box.lower)
    eye = np.eye(d)
    pieces = [_Piece({}, np.vstack([eye, -eye]), np.concatenate([box.upper, -box.lower]))]
    max_levels = 16 + 4 * math.ceil(math.log2(target + 1))
    levels = 0
    for layer, width in enumerate(network.widths):
        stable = _stable_phases(bounds, layer)
        unstable = np.flatnonzero(stable == 0)
        for p in pieces:
            p.z_map = compose_in_x(network.relu_layers[layer], source_maps(network, p.patterns, d))
        for k in unstable:
            if len(pieces) >= target or levels >= max_levels:
                return tuple(Subproblem(tuple(p.fixed.items())) for p in pieces)
            levels += 1
            split = []
            for p in pieces:
                G, g = p.z_map
                gk, ck = G[k], float(g[k])
                if not np.any(gk[free] != 0):
                    # z is constant on the piece: its phase is decided exactly
                    phase = 1 if is_active(float(gk @ fixed_point) + ck) else -1
                    split.append(_Piece({**p.fixed, (layer, int(k)): phase}, p.A, p.b, p.patterns, p.z_map))
                    continue
                for phase in (1, -1):
                    # phase * z >= 0  is  -phase * G_k x <= phase * g_k
                    A = np.vstack([p.A, -phase * gk])
                    b = np.append(p.b, phase * ck)
                    center, radius = chebyshev_center(A, b, free)
                    if center is None:
                        continue  # empty; a thin side stays: the worker's search decides it exactly
                    split.append(_Piece({**p.fixed, (layer, int(k)): phase}, A, b, p.patterns, p.z_map))
            pieces = split
            if not pieces:
                return (Subproblem(),)  # nothing holds a region; one empty subproblem keeps the run honest
        for p in pieces:
            phases = stable.copy()
            for k in unstable:
                phases[k] = p.fixed[(layer, int(k))]
            p.patterns = p.patterns + (phases > 0,)
    return tuple(Subproblem(tuple(p.fixed.items())) for p in pieces)


def remaining_subproblems(subproblems: Iterable[Subproblem], done: Iterable[Subproblem]) -> list[Subproblem]:
    """Disjoint subproblems covering what ``subproblems`` cover minus what the ``done`` ones cover.

    A subproblem covered by a done one is dropped; one that contains a done one ``D`` is cut
    into the pieces that differ from ``D`` on one of its extra neurons (``S & not D`` as a
    union of disjoint subproblems). So a resumed run may use another number of workers.
    """
    done_phases = [d.phases() for d in done]
    out: list[Subproblem] = []
    # each piece carries the done subproblems that may still overlap it: a piece's children overlap
    # fewer, so deep pieces are checked against a handful instead of every done one
    work = deque((s, s.phases(), range(len(done_phases))) for s in subproblems)
    while work:
        s, phases, candidates = work.popleft()
        overlapping = [i for i in candidates if all(phases.get(n, p) == p for n, p in done_phases[i].items())]
        if not overlapping:
            out.append(s)
            continue
        if any(all(phases.get(n) == p for n, p in done_phases[i].items()) for i in overlapping):
            continue  # covered by a done subproblem
        inside = done_phases[overlapping[0]]
        pieces = []
        fixed = dict(phases)
        for neuron, phase in sorted(inside.items()):
            if neuron in fixed:
                continue
            piece = {**fixed, neuron: -phase}
            pieces.append((Subproblem(tuple(piece.items())), piece, overlapping))
            fixed[neuron] = phase
        work.extendleft(reversed(pieces))
    return out


# ------------------------------------------------------------------ the work on one subproblem
def _tree_regions(context: SearchContext, subproblem: Subproblem, stats: SearchStats, should_stop, leftover: list):
    """The depth-first search of :func:`milp.enumeration.tree.split_search` with the subproblem's phases fixed;
    when ``should_stop()`` holds between two nodes, the nodes still on its stack go to ``leftover``."""
    return split_search(
        context.network, context.box, context.conditions, context.bounds, context.tol, stats, should_stop,
        fixed_phases=subproblem.phases(), leftover=leftover,
    )


def _node_subproblem(network: Network, bounds: Bounds, base: Subproblem, node: Node) -> Subproblem:
    """The subproblem of an unexplored node: the base phases plus every phase decided on the way to
    it, for neurons the global bounds leave unstable (the others are decided the same way anyway)."""
    phases = base.phases()
    for layer, pattern in enumerate(node.patterns):
        for k in np.flatnonzero(_stable_phases(bounds, layer) == 0):
            phases[(layer, int(k))] = 1 if pattern[k] else -1
    if node.layer < len(network.widths):
        unstable = _stable_phases(bounds, node.layer) == 0
        for k in range(node.position):
            if unstable[k] and node.phases[k] != 0:
                phases[(node.layer, k)] = int(node.phases[k])
    return Subproblem(tuple(phases.items()))


def _phase_condition(network: Network, layer: int, neuron: int, phase: int) -> Condition:
    """``phase * z_layer[neuron] >= 0`` as a condition (the nogood engine has no fixed phases)."""
    form = value_form(network, f"z{layer}", neuron)
    if phase < 0:
        form = -form
    return Condition(form, False, f"{'' if phase > 0 else '-'}z{layer}[{neuron}] >= 0")


def _agrees(network: Network, pattern: np.ndarray, subproblem: Subproblem) -> bool:
    offsets = network.neuron_offsets()
    return all(bool(pattern[offsets[l] + n]) == (p > 0) for (l, n), p in subproblem.fixed)


def solve_subproblem(
    context: SearchContext,
    subproblem: Subproblem,
    budget: float | None = None,
    stop_at: float | None = None,
    hand_back: Callable[[], bool] | None = None,
) -> SubproblemResult:
    """Every region of ``subproblem`` (a pure function of its arguments: what a worker runs).

    The search stops between two nodes once ``budget`` seconds have passed since it started or
    the wall clock (``time.time()``) passes ``stop_at``; what it did not search comes back as
    ``leftover`` subproblems (tree engine: its unexplored nodes; nogood engine: the subproblem
    itself, and only at ``stop_at``). ``hand_back`` (tree engine) is asked between nodes once the
    task has run :data:`MIN_TASK_SECONDS`: True (another worker is idle and nothing is queued)
    stops the search the same way, so that one long subproblem never keeps the others waiting.
    """
    started = time.perf_counter()
    cpu_started = time.process_time()
    stats = SearchStats()
    tree = context.method == "tree"
    stopped = []

    def should_stop() -> bool:
        elapsed = time.perf_counter() - started
        if (
            (tree and budget is not None and elapsed > budget)
            or (stop_at is not None and time.time() > stop_at)
            or (tree and hand_back is not None and elapsed > MIN_TASK_SECONDS and hand_back())
        ):
            stopped.append(True)
            return True
        return False

    network, box = context.network, context.box
    found: list[dict] = []
    leftover: list = []
    if tree:
        raw_regions = _tree_regions(context, subproblem, stats, should_stop, leftover)
    else:
        extra = tuple(_phase_condition(network, l, n, p) for (l, n), p in subproblem.fixed)
        raw_regions = nogood_search(network, box, context.conditions + extra, context.bounds, context.tol, stats, should_stop)
    for raw in raw_regions:
        if not tree and not _agrees(network, raw.pattern, subproblem):
            continue  # z identically 0 meets both "z >= 0" and "-z >= 0": its region belongs to phase -1
        found.append(finish_region(network, box, raw).to_dict())
    if tree:
        # bottom of the stack first: the shallowest, largest nodes
        rest = tuple(_node_subproblem(network, context.bounds, subproblem, node) for node in leftover)
    else:
        rest = (subproblem,) if stopped else ()  # nogood cannot say what is left: the whole subproblem is
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return SubproblemResult(subproblem, tuple(found), _stats_of(stats), rest, seconds, cpu_seconds)


# A task runs at least this long before it hands its work back to idle workers: splitting has a
# cost (each leftover re-descends from the root), so a task must first make some progress.
MIN_TASK_SECONDS = 0.1


def _stats_of(stats: SearchStats) -> dict:
    return {f.name: getattr(stats, f.name) for f in fields(stats)}
# ------------------------------------------------------------------ executors
# In a pool worker process only: the context its initializer received (sent once per process).
_worker_context: dict = {}


def _install_context(context: SearchContext, hungry) -> None:
    # Ctrl-C reaches the whole process group: the parent handles it and ends the workers,
    # which would otherwise each print a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    prepare_worker(context.threads)
    _worker_context["context"] = context
    _worker_context["hungry"] = hungry


def _run_in_worker(task, subproblem: Subproblem, budget, stop_at) -> SubproblemResult:
    return task(_worker_context["context"], subproblem, budget, stop_at, _worker_context["hungry"].is_set)


class _SerialRunner:
    """Runs each task in this process when it is submitted."""

    name = "serial"
    retries_itself = False
    crashes: tuple = ()

    def __init__(self, context: SearchContext):
        self.context = context
        self.slots = 1
        self.workers = 1

    def submit(self, task, subproblem, budget, stop_at) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(task(self.context, subproblem, budget, stop_at, None))
        except Exception as error:  # reported through the future, as the other executors do
            future.set_exception(error)
        return future

    def wait(self, futures) -> set:
        return set(futures)

    def set_hungry(self, hungry: bool) -> None:
        pass

    def restart(self) -> None:
        pass

    def close(self, pending) -> None:
        pass


class _PoolRunner:
    """A local :class:`~concurrent.futures.ProcessPoolExecutor`; the context goes to each worker once, by its initializer.

    Workers are started by ``forkserver`` (or ``spawn``): a fork of a process that already
    runs HiGHS could inherit its threads' locks.
    """

    name = "processes"
    retries_itself = False
    crashes = (BrokenProcessPool,)

    def __init__(self, context: SearchContext, workers: int):
        self.context, self.workers = context, workers
        self.slots = 2 * workers  # one task queued behind each running one
        methods = multiprocessing.get_all_start_methods()
        self.mp_context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            # the server imports the search once, so each worker starts as a fork of it in milliseconds
            # instead of importing numpy, scipy and HiGHS again (a second on a short run); no solver runs there
            self.mp_context.set_forkserver_preload(["milp.enumeration.parallel"])
        # set while a worker is idle and nothing is queued: running tasks then hand back their unexplored nodes
        self.hungry = self.mp_context.Event()
        self.pool = self._new_pool()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(self.workers, mp_context=self.mp_context, initializer=_install_context, initargs=(self.context, self.hungry))

    def submit(self, task, subproblem, budget, stop_at) -> cf.Future:
        return self.pool.submit(_run_in_worker, task, subproblem, budget, stop_at)

    def wait(self, futures) -> set:
        return cf.wait(list(futures), return_when=cf.FIRST_COMPLETED).done

    def set_hungry(self, hungry: bool) -> None:
        if hungry != self.hungry.is_set():
            self.hungry.set() if hungry else self.hungry.clear()

    def restart(self) -> None:
        # The pool is broken (a worker died): waiting on its shutdown can hang on the dead worker's queues.
        self._end_workers()
        self.pool = self._new_pool()

    def close(self, pending) -> None:
        if not pending:
            self.pool.shutdown(wait=True)
            return
        self._end_workers()  # stopped early: running tasks would go on until their budget

    def _end_workers(self) -> None:
        """Shut the pool down without waiting, and end the processes of tasks still running."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        terminate = getattr(self.pool, "terminate_workers", None)
        if terminate is not None:
            terminate()
        else:
            for process in list((getattr(self.pool, "_processes", None) or {}).values()):
                process.terminate()


# A scheduler address that does not answer within this many seconds is reported as unreachable.
_CONNECT_SECONDS = 10
# A Dask task asks the scheduler whether a worker is idle at most this often (each ask is a round trip).
_DASK_POLL_SECONDS = 0.2


def _run_on_dask(task, context, subproblem, budget, stop_at, hungry) -> SubproblemResult:
    """``task`` on a Dask worker, with ``hand_back`` reading the cluster-wide flag ``hungry`` (a ``distributed.Event``)."""
    if not _worker_context.get("prepared"):  # once per worker process: quiet stdout, BLAS threads
        prepare_worker(context.threads)
        _worker_context["prepared"] = True
    last = [-math.inf, False]

    def hand_back() -> bool:
        now = time.perf_counter()
        if now - last[0] > _DASK_POLL_SECONDS:
            last[0] = now
            try:
                last[1] = bool(hungry.is_set())
            except Exception:  # the scheduler is unreachable: keep to the time budget
                last[1] = False
        return last[1]

    return task(context, subproblem, budget, stop_at, hand_back)


class _DaskRunner:
    """Dask ``distributed``: the context is scattered to every worker once; Dask retries a failed task once."""

    name = "dask"
    retries_itself = True
    crashes: tuple = ()

    def __init__(self, context: SearchContext, scheduler, workers: int | None):
        try:
            import distributed
        except ImportError:
            raise ParallelError("the Dask scheduler needs the distributed package: pip install 'dask[distributed]'") from None
        self.distributed = distributed
        if isinstance(scheduler, distributed.Client):
            self.client, self.own = scheduler, False
        elif scheduler == "dask":
            kwargs = {} if workers is None else {"n_workers": workers, "threads_per_worker": 1}
            self.client, self.own = distributed.Client(**kwargs), True
        else:
            try:
                self.client, self.own = distributed.Client(scheduler, timeout=_CONNECT_SECONDS), True
            except (OSError, TimeoutError, ValueError, TypeError) as error:
                raise ParallelError(f"cannot reach the Dask scheduler at {scheduler!r}: {error}") from None
        threads = sum(self.client.nthreads().values()) or 1
        self.workers = threads
        self.slots = 2 * threads
        self.context = self.client.scatter(context, broadcast=True)
        # a cluster-wide flag, as the pool's Event: set while a worker is idle and nothing is queued
        self.hungry = distributed.Event(f"milp-hungry-{os.getpid()}-{id(self)}", client=self.client)
        self.hungry.clear()
        self.is_hungry = False

    def submit(self, task, subproblem, budget, stop_at):
        return self.client.submit(_run_on_dask, task, self.context, subproblem, budget, stop_at, self.hungry, retries=1, pure=False)

    def wait(self, futures) -> set:
        return set(self.distributed.wait(list(futures), return_when="FIRST_COMPLETED").done)

    def set_hungry(self, hungry: bool) -> None:
        if hungry != self.is_hungry:
            self.hungry.set() if hungry else self.hungry.clear()
            self.is_hungry = hungry

    def restart(self) -> None:
        pass

    def close(self, pending) -> None:
        if pending:
            self.client.cancel(list(pending))
        self.client.cancel([self.context])
        if self.is_hungry:
            self.set_hungry(False)
        if self.own:
            self.client.close()


def _runner(context: SearchContext, scheduler, workers: int | None):
    if scheduler == "serial":
        return _SerialRunner(context)
    if scheduler == "processes":
        return _PoolRunner(context, workers or os.cpu_count() or 1)
    return _DaskRunner(context, scheduler, workers)


# ------------------------------------------------------------------ the run
@dataclass(frozen=True)
class TaskRecord:
    """One task that came back: its subproblem ``id``, the ``parent`` whose leftover it was (None for
    the first cut), worker ``seconds``, ``regions`` found and whether it ``finished``."""

    id: str
    parent: str | None
    seconds: float
    regions: int
    finished: bool
    cpu_seconds: float = 0.0


class ParallelSearch:
    """A parallel enumeration in progress: iterate it for :class:`~milp.enumeration.geometry.Region` values
    (any order), or iterate :meth:`events` for regions and :class:`SubproblemDone` records.

    After iteration: :attr:`complete` (every subproblem finished, no error, no limit hit),
    :attr:`completed` (ids of the subproblems finished in this run), :attr:`errors` (one
    message per subproblem that failed twice, naming it), :attr:`unfinished` (subproblems
    left by a limit or an error), :attr:`tasks` (:class:`TaskRecord` per task) and
    :meth:`stats_dict`.
    """

    def __init__(self, context, subproblems, scheduler, workers, split_after, time_limit, max_regions, skip_patterns, task, warmup=None):
        self.context = context
        self.warmup = warmup
        self.subproblems = tuple(subproblems)
        self.scheduler, self.workers = scheduler, workers
        self.split_after, self.time_limit, self.max_regions = split_after, time_limit, max_regions
        self.skip = set(skip_patterns)
        self.task = task
        self.stats = SearchStats()
        self.complete = False
        self.completed: list[str] = []
        self.errors: list[str] = []
        self.unfinished: list[Subproblem] = []
        self.tasks: list[TaskRecord] = []
        self.retries = 0
        self.seconds = 0.0
        self.listed = 0
        self._stopped = False
        self._used = False

    def stop(self) -> None:
        """Stop at the next result (running tasks are cancelled; the list will say incomplete)."""
        self._stopped = True

    def skip_subproblems(self, ids: Iterable[str]) -> None:
        """Leave out the subproblems an earlier run finished (ids from its :class:`SubproblemDone` records),
        whatever cut that run used (:func:`remaining_subproblems`). Call before iterating."""
        if self._used:
            raise ParallelError("skip_subproblems must be called before the search starts")
        done = [Subproblem.from_id(text) for text in ids]
        self.subproblems = tuple(remaining_subproblems(self.subproblems, done))

    def __iter__(self) -> Iterator[Region]:
        for item in self.events():
            if isinstance(item, Region):
                yield item

    def _merge(self, stats: dict) -> None:
        for f in fields(self.stats):
            if f.name == "incomplete":
                self.stats.incomplete = self.stats.incomplete or bool(stats.get(f.name))
            else:
                setattr(self.stats, f.name, getattr(self.stats, f.name) + int(stats.get(f.name, 0)))

    def events(self) -> Iterator[Region | SubproblemDone]:
        """Regions as they come, and a :class:`SubproblemDone` after the last region of each finished subproblem."""
        if self._used:
            raise ParallelError("a ParallelSearch runs once: call parallel_regions again")
        self._used = True
        started = time.perf_counter()
        deadline = None if self.time_limit is None else time.time() + self.time_limit
        # Warm-up: the whole problem runs here first, for `warmup` seconds; a small enumeration ends
        # there without paying for worker processes, a large one ships its unexplored nodes.
        warming = self.warmup is not None and self.subproblems == (Subproblem(),)
        requested = self.workers
        runner = _SerialRunner(self.context) if warming else _runner(self.context, self.scheduler, requested)
        self.workers = runner.workers
        queue = deque((s, 1, None) for s in self.subproblems)  # (subproblem, attempt, parent id)
        suspects: deque = deque()  # tasks that were running when a worker died: rerun one at a time
        inflight: dict = {}
        exhausted = True
        try:
            while not self._stopped:
                crashed, broken = [], False
                late = deadline is not None and time.time() > deadline
                while not late and (suspects or queue) and len(inflight) < (1 if suspects else runner.slots):
                    if suspects and inflight:
                        break  # a suspect runs alone, so that a second death tells whose fault it is
                    source = suspects if suspects else queue
                    item = source.popleft()
                    try:
                        budget = self.warmup if warming else self.split_after
                        inflight[runner.submit(self.task, item[0], budget, deadline)] = item
                    except runner.crashes:
                        source.appendleft(item)  # the pool broke before this task ran: not its fault
                        broken = True
                        break
                if not inflight and not broken:
                    break
                runner.set_hungry(not broken and not queue and not suspects and len(inflight) < runner.workers)
                # a broken pool fails every task in flight at once: collect them all
                done = set(cf.wait(list(inflight)).done) if broken else runner.wait(inflight)
                while done:
                    for future in done:
                        subproblem, attempt, parent = inflight.pop(future)
                        try:
                            result = future.result()
                        except runner.crashes:
                            crashed.append((subproblem, attempt, parent))
                            continue
                        except Exception as error:
                            if runner.retries_itself or attempt >= 2:
                                self.errors.append(f"subproblem {subproblem.id} failed: {type(error).__name__}: {error}")
                                self.unfinished.append(subproblem)
                            else:
                                self.retries += 1
                                queue.appendleft((subproblem, attempt + 1, parent))
                            continue
                        self._merge(result.stats)
                        self.tasks.append(TaskRecord(subproblem.id, parent, result.seconds, len(result.regions), result.finished, result.cpu_seconds))
                        for item in result.regions:
                            if item["pattern"] in self.skip:
                                continue
                            self.listed += 1
                            yield Region.from_dict(item)
                            if self.max_regions is not None and self.listed + len(self.skip) >= self.max_regions:
                                exhausted = False
                                return
                        queue.extend((s, 1, subproblem.id) for s in result.leftover)
                        if result.finished:
                            self.completed.append(subproblem.id)
                            yield SubproblemDone(subproblem.id, len(result.regions))
                    # a dead worker breaks the whole pool: the tasks still in flight fail with it
                    done = set(cf.wait(list(inflight)).done) if (crashed or broken) and inflight else set()
                if warming and not self._stopped:
                    warming = False
                    if queue:  # the warm-up left work: start the workers
                        runner = _runner(self.context, self.scheduler, requested)
                        self.workers = runner.workers
                if crashed or broken:
                    runner.restart()
                for subproblem, attempt, parent in crashed:
                    if attempt >= 2:
                        self.errors.append(f"subproblem {subproblem.id} failed: its worker process died on every attempt")
                        self.unfinished.append(subproblem)
                    else:
                        self.retries += 1
                        suspects.append((subproblem, attempt + 1, parent))
        finally:
            runner.close(list(inflight))
            self.unfinished.extend(item[0] for item in [*inflight.values(), *suspects, *queue])
            self.seconds = time.perf_counter() - started
        self.complete = exhausted and not self._stopped and not self.errors and not self.unfinished and not self.stats.incomplete

    def stats_dict(self) -> dict:
        """The summed search counters plus ``seconds``, ``method``, ``scheduler``, ``workers``, ``subproblems``
        (finished in this run), ``tasks``, ``retries`` and ``errors``."""
        out = _stats_of(self.stats)
        del out["incomplete"]  # the file's and the summary's ``complete`` says it, once
        out["seconds"] = round(self.seconds, 6)
        out["method"] = self.context.method
        out["scheduler"] = self.scheduler if isinstance(self.scheduler, str) else "dask"
        out["workers"] = self.workers
        out["subproblems"] = len(self.completed)
        out["tasks"] = len(self.tasks)
        out["retries"] = self.retries
        out["errors"] = list(self.errors)
        return out


def _scheduler_of(scheduler, workers: int | None):
    if scheduler is None:
        return "serial" if (workers or os.cpu_count() or 1) == 1 else "processes"
    if isinstance(scheduler, str):
        if not scheduler.strip():
            raise ParallelError("scheduler: use 'serial', 'processes', 'dask' or a Dask scheduler address such as tcp://host:8786")
        return scheduler.strip()
    if type(scheduler).__name__ == "Client":  # a distributed.Client
        return scheduler
    raise ParallelError(f"scheduler {scheduler!r}: use 'serial', 'processes', 'dask', a Dask address or a distributed.Client")


def parallel_regions(
    network: Network,
    box: Box,
    where=(),
    *,
    workers: int | None = None,
    scheduler=None,
    method: str = "tree",
    bounds: Bounds | str = "symbolic",
    tol: float = REGION_TOLERANCE,
    time_limit: float | None = None,
    max_regions: int | None = None,
    skip_patterns: Iterable[str] = (),
    done_subproblems: Iterable[str] = (),
    split_after: float | None = 5.0,
    target: int | None = None,
    task: Callable = solve_subproblem,
    warmup: float | None = None,
    threads: int = 1,
) -> ParallelSearch:
    """Every region of ``network`` over ``box`` where ``where`` holds (as :func:`milp.regions`), computed
    by independent subproblems on ``workers`` (default ``os.cpu_count()``).

    ``scheduler``: ``"serial"`` (this process; default when ``workers == 1``), ``"processes"``
    (a local process pool; the default otherwise), ``"dask"`` (a new local Dask cluster),
    a Dask scheduler address (``"tcp://host:8786"``) or a ``distributed.Client``.
    ``split_after`` is each task's time budget in seconds: past it, a task hands back its
    unexplored nodes as new subproblems (None: never). ``target`` is the number of
    subproblems the box is first cut into (default ``4 * workers``). ``done_subproblems``
    are ids finished by an earlier run (skipped), ``skip_patterns`` its regions' patterns
    (not yielded again). ``task`` replaces :func:`solve_subproblem` (same signature, a
    picklable module-level function, called as ``task(context, subproblem, budget, stop_at,
    hand_back)``), for instrumentation. ``warmup`` (seconds, tree engine, a fresh run): the whole
    problem is searched in this process first for that long, and only its unexplored nodes go to
    the workers, so a small enumeration costs no process start-up. Returns an iterable
    :class:`ParallelSearch`:

    >>> # search = parallel_regions(net, box, ["y[0] > 0"], workers=2)
    >>> # for region in search: ...;  search.complete, search.completed, search.errors
    """
    engine(method)  # an unknown name is an OptionError here, before any worker starts
    if workers is not None and (not isinstance(workers, (int, np.integer)) or isinstance(workers, bool) or workers < 1):
        raise ParallelError(f"workers must be a positive integer, got {workers!r}")
    if split_after is not None and not split_after > 0:
        raise ParallelError(f"split_after must be a positive number of seconds or None, got {split_after!r}")
    time_limit = check_seconds(time_limit)
    max_regions = check_count(max_regions, "max_regions")
    tol = check_tolerance(tol)
    threads = check_threads(threads)
    scheduler = _scheduler_of(scheduler, workers)
    if isinstance(scheduler, str) and scheduler in SCHEDULERS and workers is None:
        workers = 1 if scheduler == "serial" else (os.cpu_count() or 1)
    box.check_dim(network.input_dim)
    conditions = parse_conditions(network, where)
    if not isinstance(bounds, Bounds):
        bounds = pre_activation_bounds(network, box, bounds)
    radius_tolerance = float(tol) * max(1.0, float(np.max(box.widths)))
    context = SearchContext(network, box, conditions, bounds, radius_tolerance, method, int(threads))
    done = [Subproblem.from_id(text) for text in done_subproblems]
    if warmup is not None and method == "tree" and not done and scheduler != "serial":
        todo = [Subproblem()]  # cut by the warm-up's unexplored nodes instead
    else:
        cut = make_subproblems(network, box, conditions, bounds, radius_tolerance, target or 4 * (workers or os.cpu_count() or 1))
        todo = remaining_subproblems(cut, done)
        warmup = None
    return ParallelSearch(context, todo, scheduler, workers, split_after, time_limit, max_regions, skip_patterns, task, warmup)


def simulate_makespan(tasks: Sequence[TaskRecord], workers: int) -> float:
    """The seconds ``workers`` would take for ``tasks`` under list scheduling, as :class:`ParallelSearch` runs them:
    first-cut tasks in order, each leftover released when its parent task ends (dispatch costs nothing)."""
    import heapq

    children: dict[str | None, list[TaskRecord]] = {}
    for t in tasks:
        children.setdefault(t.parent, []).append(t)
    ready = deque(children.get(None, []))
    running: list[tuple[float, int, str]] = []
    now, free, order = 0.0, workers, 0
    while ready or running:
        while free and ready:
            t = ready.popleft()
            order += 1
            heapq.heappush(running, (now + t.seconds, order, t.id))
            free -= 1
        now, _, finished = heapq.heappop(running)
        free += 1
        ready.extend(children.get(finished, []))
    return now

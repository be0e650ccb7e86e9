"""Every activation region where a condition holds: the public enumeration API.

A region is an activation pattern over every ReLU neuron whose set of inputs
``{x in box : the network has this pattern at x, and every condition holds}`` has a
non-empty interior: a Chebyshev ball of radius above ``tol`` (relative to the box size), or, for
the ``tree`` engine, a thinner interior certified in rational arithmetic (listed with
``thin=True``; see :mod:`milp.enumeration.tree` and :mod:`milp.enumeration.certify`).
Regions' interiors are disjoint and their union covers the box where the conditions hold.

Two engines return the identical set of regions above the tolerance (``nogood`` lists no thin ones):

* ``tree`` (default): depth-first splitting on neurons with warm-started LPs
  (:mod:`milp.enumeration.tree`);
* ``nogood``: an incremental HiGHS MILP with no-good cuts, with a walk to neighbouring
  regions between MILP calls (:mod:`milp.enumeration.nogood`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict
from typing import Iterable, Iterator, Sequence

import numpy as np

from milp.bounds.propagate import Bounds
from milp.core.box import Box
from milp.core.deadline import Deadline
from milp.core.errors import InputError
from milp.core.conditions import Condition, parse_conditions
from milp.core.network import Network
from milp.core.tolerances import REGION_TOLERANCE
from milp.core.options import check_count, check_seconds, check_tolerance
from milp.core.patterns import pattern_text
from milp.core.region import Region
from milp.enumeration.geometry import Stopped, finish_region, region_of_point
from milp.enumeration import engine
from milp.enumeration.tree import SearchStats
from milp.search.tighten import pre_activation_bounds

__all__ = ["RegionSearch", "regions", "region_containing"]


class RegionSearch:
    """An enumeration in progress: iterate it for :class:`~milp.enumeration.geometry.Region` values as they are found.

    After iteration, :attr:`complete` says whether the list is proved complete (False after
    ``max_regions``, a time limit or an early ``close()``) and :attr:`stats` holds counters.
    """

    def __init__(
        self,
        network: Network,
        box: Box,
        conditions: Sequence[Condition],
        method: str,
        bounds: Bounds,
        tol: float,
        max_regions: int | None,
        time_limit: float | None,
        skip_patterns: Iterable[str],
    ):
        self.engine = engine(method)
        tol = check_tolerance(tol)
        max_regions = check_count(max_regions, "max_regions")
        time_limit = check_seconds(time_limit)
        self.network, self.box, self.conditions, self.method = network, box, tuple(conditions), method
        self.bounds = bounds
        self.tol = tol
        self.radius_tolerance = tol * max(1.0, float(np.max(box.widths)))
        self.max_regions = max_regions
        self.time_limit = time_limit
        if isinstance(skip_patterns, str):
            raise InputError("skip_patterns is a list of patterns, not one text")
        self.skip = set(skip_patterns)
        self.stats = SearchStats()
        self.complete = False
        self.started = None
        self.seconds = 0.0
        self._stop = threading.Event()
        self._deadline = Deadline(stop=self._stop)
        self._stopped = False  # the engine was told to stop (so its list may be incomplete)

    def _should_stop(self) -> bool:
        self._stopped = self._stopped or self._deadline.expired()
        return self._stopped

    def stop(self) -> None:
        """Ask the search to stop at the next node (the list will say incomplete)."""
        self._stop.set()

    def __iter__(self) -> Iterator[Region]:
        self.started = time.perf_counter()
        self._deadline = Deadline.after(self.time_limit, self._stop)
        raw_regions = self.engine(self.network, self.box, self.conditions, self.bounds, self.radius_tolerance, self.stats, self._should_stop)
        listed = 0
        exhausted = True
        try:
            for raw in raw_regions:
                if self.skip and pattern_text(raw.pattern) in self.skip:
                    continue
                try:
                    region = finish_region(self.network, self.box, raw, self._should_stop)
                except Stopped:  # the time limit, within a region's facets (one LP each)
                    break
                listed += 1
                yield region
                if self.max_regions is not None and listed + len(self.skip) >= self.max_regions:
                    exhausted = False
                    break
        finally:
            self.seconds = time.perf_counter() - self.started
        self.complete = exhausted and not self._stopped and not self.stats.incomplete

    def stats_dict(self) -> dict:
        out = asdict(self.stats)
        del out["incomplete"]  # the file's and the summary's ``complete`` says it, once
        out["seconds"] = round(self.seconds, 6)
        out["method"] = self.method
        return out


def regions(
    network: Network,
    box: Box,
    where=(),
    *,
    method: str = "tree",
    bounds: Bounds | str = "symbolic",
    tol: float = REGION_TOLERANCE,
    max_regions: int | None = None,
    time_limit: float | None = None,
    skip_patterns: Iterable[str] = (),
) -> RegionSearch:
    """Enumerate every region of ``network`` over ``box`` where the ``where`` conditions hold.

    ``tol`` is the Chebyshev radius, relative to the largest box width, below which a piece
    is lower-dimensional (not a region). ``skip_patterns`` are patterns already listed
    (a resumed run). Returns an iterable :class:`RegionSearch`:

    >>> # for region in milp.regions(net, box, where=["y[0] > 0"]):
    >>> #     region.pattern, region.A, region.b, region.interior_point, region.radius, region.affine
    """
    box.check_dim(network.input_dim)
    conditions = parse_conditions(network, where)
    if not isinstance(bounds, Bounds):
        bounds = pre_activation_bounds(network, box, bounds)
    return RegionSearch(network, box, conditions, method, bounds, tol, max_regions, time_limit, skip_patterns)


def region_containing(network: Network, box: Box, x, where=()) -> Region | None:
    """The region that contains input ``x`` (shape (input_dim,)), or None when ``x`` is on a boundary
    (its pattern's region is lower-dimensional) or the conditions fail there."""
    return region_of_point(network, box, np.asarray(x, dtype=float), parse_conditions(network, where))

"""A smaller network that is the same function on a box, with the proof.

:func:`simplify` asks the whole-network feature report (:mod:`milp.search.features`) which neurons
are stable on the box, removes the never-active ones and folds the always-active ones into the maps
around them (:func:`milp.core.compose.fold_stable`). The stability proofs are the proof that the two
networks agree on the box. With ``prove=True`` the agreement is also proved directly, as a question
about one network: the exact range of ``original(x) - simplified(x)`` over the box
(:func:`milp.core.compose.difference` and :func:`milp.search.queries.output_range`).

The points where that range search came closest to a disagreement, the report's witnesses, the box's
corners and uniform samples are returned for an independent check (e.g. onnxruntime on both files).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from milp.bounds.propagate import Bounds
from milp.core.box import Box
from milp.core.compose import difference, fold_stable
from milp.core.errors import InternalError
from milp.core.deadline import Deadline
from milp.core.network import Network
from milp.core.options import SolverOptions, check_seconds
from milp.search.features import FeatureReport, feature_report
from milp.search.queries import output_range
from milp.search.witness import Reference

__all__ = ["Simplification", "simplify", "AGREEMENT"]

# A neuron is "never" or "always" at the solver's resolution (1e-8 relative), so the two networks may
# differ by rounding-sized amounts; anything beyond this, relative to the outputs' scale, is a bug.
AGREEMENT = 1e-6


@dataclass(frozen=True)
class Simplification:
    """The simplified ``network`` and how it was obtained.

    ``report`` holds every neuron's status; ``widths_before``/``widths_after`` the ReLU layer widths.
    ``equivalence`` is ``proved`` when the exact range of the difference was computed
    (``max_difference`` is then the largest ``|original - simplified|`` on the box, rounding only),
    ``unknown`` at the time limit, ``skipped`` when not asked for. ``check_points`` (n, input_dim)
    are points for an independent check: where the difference search came closest, the witnesses,
    the corners and uniform samples.
    """

    network: Network
    report: FeatureReport
    widths_before: tuple[int, ...]
    widths_after: tuple[int, ...]
    equivalence: str
    max_difference: float | None
    check_points: np.ndarray
    seconds: float

    def to_json(self) -> dict:
        return {
            "neurons_before": int(sum(self.widths_before)),
            "neurons_after": int(sum(self.widths_after)),
            "widths_before": list(self.widths_before),
            "widths_after": list(self.widths_after),
            "counts": self.report.counts(),
            "equivalence": self.equivalence,
            "max_difference": self.max_difference,
            "seconds": self.seconds,
        }


def simplify(
    network: Network,
    box: Box,
    *,
    prove: bool = False,
    bounds: Bounds | str = "symbolic",
    options: SolverOptions = SolverOptions(),
    time_limit: float | None = None,
    stop: threading.Event | None = None,
    reference: Reference | None = None,
    samples: int = 1000,
    seed: int = 0,
) -> Simplification:
    """The network without the neurons that are stable on ``box`` (see the module docstring).

    ``time_limit`` bounds the whole call: neurons still ``unknown`` at the limit are kept (the result
    stays exact), and the direct proof is ``unknown`` when no time is left for it.

    >>> # small = simplify(net, parse_box("0:1", 64)).network
    """
    started = time.perf_counter()
    deadline = Deadline.after(check_seconds(time_limit if time_limit is not None else options.time_limit), stop)
    left = deadline.remaining()
    # with a limit and a direct proof to come, the neurons' decisions get half of the time
    report = feature_report(network, box, None, bounds=bounds, options=options,
                            time_limit=None if left is None else (0.5 * left if prove else left),
                            stop=stop, reference=reference, seed=seed)
    never, always = report.status_masks(network)
    small = fold_stable(network, never, always)
    rng = np.random.default_rng(seed)
    witnesses = [n.witness for n in report.neurons if n.witness is not None]
    points = [box.lower[None, :], box.upper[None, :], box.center[None, :], box.sample(samples, rng)]
    if witnesses:
        points.append(np.array(witnesses))
    equivalence, largest = "skipped", None
    if prove:
        equivalence = "unknown"
        if not deadline.expired():
            gap = output_range(difference(network, small), box, bounds=bounds, options=options,
                               time_limit=deadline.remaining(), stop=stop)
            for o in gap.outputs:
                points.extend(p[None, :] for p in (o.argmin, o.argmax) if p is not None)
            if all(o.status == "exact" for o in gap.outputs):
                equivalence = "proved"
                largest = float(max(max(abs(o.min), abs(o.max)) for o in gap.outputs))
                scale = float(np.abs(network.forward(np.vstack(points)).output).max(initial=0.0))
                if largest > AGREEMENT * (1.0 + scale):
                    raise InternalError(f"the simplified network differs from the original by {largest:.3g} on the box, "
                                        "although every removed neuron was proved stable")
    return Simplification(small, report, network.widths, small.widths, equivalence, largest, np.vstack(points),
                          time.perf_counter() - started)

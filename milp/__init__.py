"""milp: exact questions about ReLU networks, answered by mixed-integer linear programming.

>>> # import importers, milp
>>> # net = importers.load_onnx("model.onnx"); box = milp.parse_box("-5:5", net.input_dim)
>>> # milp.fires(net, box, layer=1, neuron=0).status
>>> # for region in milp.regions(net, box, where=["y[0] > 0"]): ...

The public names below are imported on first use, so ``import milp`` (and ``import importers``)
loads neither HiGHS nor scipy. The packages follow the data, each importing only from those
before it: ``core`` → ``io`` → ``bounds`` → ``encode`` → ``solvers`` → ``search`` →
``enumeration`` → ``viz`` → ``cli`` (see the README's Architecture section).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_PUBLIC = {
    "Affine": "milp.core.network", "Network": "milp.core.network", "NetworkError": "milp.core.network",
    "Trace": "milp.core.network",
    "Box": "milp.core.box", "BoxError": "milp.core.box", "parse_box": "milp.core.box",
    "Condition": "milp.core.conditions", "ConditionError": "milp.core.conditions", "parse_conditions": "milp.core.conditions",
    "Region": "milp.core.region", "Zone": "milp.core.region", "Neighbour": "milp.core.region",
    "MilpError": "milp.core.errors", "InputError": "milp.core.errors", "InternalError": "milp.core.errors",
    "NumericRangeError": "milp.core.errors",
    "load_regions": "milp.io.regionfiles", "read_region_file": "milp.io.regionfiles",
    "read_vnnlib": "milp.io.vnnlib",
    "QueryError": "milp.search.queries", "fires": "milp.search.queries", "output_range": "milp.search.queries",
    "reach": "milp.search.queries",
    "verify": "milp.search.verify",
    "feature_report": "milp.search.features", "FeatureReport": "milp.search.features",
    "simplify": "milp.search.simplify",
    "regions": "milp.enumeration.engines", "region_containing": "milp.enumeration.engines",
    "parallel_regions": "milp.enumeration.parallel",
    "merge_regions": "milp.enumeration.zones", "adjacency": "milp.enumeration.zones",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'milp' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))

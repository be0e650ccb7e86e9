"""milp: exact questions about ReLU networks, answered by mixed-integer linear programming.

>>> # import importers, milp
>>> # net = importers.load_onnx("model.onnx"); box = milp.parse_box("-5:5", net.input_dim)
>>> # milp.fires(net, box, layer=1, neuron=0).status
>>> # for region in milp.regions(net, box, where=["y[0] > 0"]): ...
"""

from .box import Box, BoxError, parse_box
from .conditions import Condition, ConditionError, parse_conditions
from .export import load_regions, read_region_file
from .network import Affine, Network, NetworkError, Trace
from .polytope import Region
from .queries import QueryError, fires, output_range, reach
from .regions import region_containing, regions

__version__ = "0.1.0"

__all__ = [
    "Affine", "Box", "BoxError", "Condition", "ConditionError", "Network", "NetworkError", "QueryError",
    "Region", "Trace", "fires", "load_regions", "output_range", "parse_box", "parse_conditions", "reach",
    "read_region_file", "region_containing", "regions",
]

"""milp: exact questions about ReLU networks, answered by mixed-integer linear programming."""

from .box import Box, BoxError, parse_box
from .conditions import Condition, ConditionError, parse_conditions
from .network import Affine, Network, NetworkError, Trace

__version__ = "0.1.0"

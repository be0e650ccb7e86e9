"""Region enumeration: every activation region where conditions hold (tree search, no-good cuts), their
geometry (irredundant rows, Chebyshev centre, vertices), and the same search on worker processes or Dask."""

from __future__ import annotations

import importlib
from typing import Callable

__all__ = ["ENGINES", "engine"]

# The enumeration engines by name, as "module:function" (imported when first used, so that
# naming them loads no solver). Both return the identical set of regions; a new engine is one entry.
ENGINES = {
    "tree": "milp.enumeration.tree:split_search",  # depth-first splitting with warm-started LPs (default)
    "nogood": "milp.enumeration.nogood:nogood_search",  # an incremental MILP with no-good cuts
}


def engine(name: str) -> Callable:
    """The engine function ``(network, box, conditions, bounds, tol, stats, should_stop) -> iterator of RawRegion``."""
    from milp.core.options import OptionError

    if name not in ENGINES:
        raise OptionError(f"unknown method {name!r}: choose one of {', '.join(ENGINES)}")
    module, function = ENGINES[name].split(":")
    return getattr(importlib.import_module(module), function)

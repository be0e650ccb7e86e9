"""Where the tests find the benchmark data (the rule of ``benchmarks/data.py``).

``MILP_BENCHMARKS`` names a folder holding ``acasxu/`` (and/or ``mnist_fc/``); without it (or when
it is empty) the folder is ``../shared/benchmarks`` beside the checkout. Tests that need the ACAS
Xu files import ``ACASXU`` and skip with ``ACASXU_SKIP`` when they are absent::

    from conftest import ACASXU, ACASXU_SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

BENCHMARKS_ENV = "MILP_BENCHMARKS"
_GIVEN = os.environ.get(BENCHMARKS_ENV, "").strip()
BENCHMARKS = Path(_GIVEN).expanduser().resolve() if _GIVEN else Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
ACASXU = BENCHMARKS / "acasxu"
ACASXU_SKIP = (
    f"ACAS Xu benchmark not found at {ACASXU} "
    + (f"(from {BENCHMARKS_ENV}={_GIVEN})" if _GIVEN else f"(the default ../shared/benchmarks beside the checkout, as {BENCHMARKS_ENV} is not set)")
    + f"; set {BENCHMARKS_ENV}=/path/to/benchmarks, the folder holding acasxu/"
)

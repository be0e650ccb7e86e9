"""Shared test setup: where the tests find the benchmark data, and the shared fixtures.

The tests mirror the packages of ``milp`` (``tests/core``, ``tests/io``, ``tests/bounds``, ``tests/solvers``,
``tests/search``, ``tests/enumeration``, ``tests/viz``, ``tests/cli``, ``tests/importers``); no test module
imports another. Helpers shared between them are plain modules here, on pytest's ``pythonpath``:
``nets.py`` (the test networks, each drawn in its docstring, and VNN-LIB texts), ``pictures.py``
(what a plot drew) and ``oracle.py`` (the independent brute-force oracle). Tests slower than about
5 s are marked ``slow``: ``pytest -m "not slow"`` is the quick run; the default runs everything.

Benchmark data (the rule of ``benchmarks/data.py``):

``MILP_BENCHMARKS`` names a folder holding ``acasxu/`` (and/or ``mnist_fc/``); without it (or when
it is empty) the folder is ``../shared/benchmarks`` beside the checkout. Tests that need the ACAS
Xu files import ``ACASXU`` and skip with ``ACASXU_SKIP`` when they are absent::

    from conftest import ACASXU, ACASXU_SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from nets import SMALL_NETS

BENCHMARKS_ENV = "MILP_BENCHMARKS"
_GIVEN = os.environ.get(BENCHMARKS_ENV, "").strip()
BENCHMARKS = Path(_GIVEN).expanduser().resolve() if _GIVEN else Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
ACASXU = BENCHMARKS / "acasxu"
ACASXU_SKIP = (
    f"ACAS Xu benchmark not found at {ACASXU} "
    + (f"(from {BENCHMARKS_ENV}={_GIVEN})" if _GIVEN else f"(the default ../shared/benchmarks beside the checkout, as {BENCHMARKS_ENV} is not set)")
    + f"; set {BENCHMARKS_ENV}=/path/to/benchmarks, the folder holding acasxu/"
)


@pytest.fixture(params=sorted(SMALL_NETS))
def small_net(request):
    """Each of the four small 2-input nets of ``nets.SMALL_NETS`` in turn (weights from a fixed seed per name)."""
    return SMALL_NETS[request.param](np.random.default_rng(sorted(SMALL_NETS).index(request.param)))

"""milp.solvers.highs: every HiGHS model status is mapped to one of ours or named in an error."""

from __future__ import annotations

import highspy
import pytest

from milp.core.errors import SolverStatusError
from milp.solvers.highs import _MODEL_STATUS, Status, model_status


def test_every_highs_status_is_mapped_or_named():
    """Each HiGHS model status either maps to one of ours or raises an error naming it; none becomes a silent unknown."""

    class Fake:
        def __init__(self, raw):
            self.raw = raw

        def getModelStatus(self):
            return self.raw

        def modelStatusToString(self, raw):
            return f"text of {raw.name}"

    for raw in highspy.HighsModelStatus.__members__.values():
        if raw in _MODEL_STATUS:
            assert isinstance(model_status(Fake(raw)), Status)
        else:
            with pytest.raises(SolverStatusError, match=raw.name):
                model_status(Fake(raw))
    assert model_status(Fake(highspy.HighsModelStatus.kTimeLimit), has_point=True) is Status.FEASIBLE
    assert model_status(Fake(highspy.HighsModelStatus.kTimeLimit)) is Status.TIME_LIMIT

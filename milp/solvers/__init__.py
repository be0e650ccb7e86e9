"""The solver boundary: HiGHS through highspy (the only place it is imported) and any solver through Pyomo."""

"""The ``milp`` command line: one module per command over the public API; the only place that formats
output or chooses an exit code."""

from milp.cli.main import main

__all__ = ["main"]

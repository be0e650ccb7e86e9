"""Start the command line in a child process the way a terminal would, for tests that send it Ctrl-C."""
from __future__ import annotations

import signal
import subprocess


def _interrupt_as_at_a_terminal() -> None:
    # A shell without job control starts background jobs with SIGINT ignored, and children inherit that;
    # the command line then rightly ignores Ctrl-C. These tests play a user at a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(argv: list[str], **kwargs) -> subprocess.Popen:
    """``subprocess.Popen(argv, ...)`` with SIGINT at its default, whatever the test runner inherited."""
    return subprocess.Popen(argv, preexec_fn=_interrupt_as_at_a_terminal, **kwargs)

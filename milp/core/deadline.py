"""When a search must stop: a time limit, a stop request (Ctrl-C), or both.

One :class:`Deadline` travels from the caller through every loop and into every long solve:
loops ask :meth:`Deadline.expired` between steps, and a running HiGHS MILP asks it from its
interrupt callback, so a stop request ends even a long solve within a fraction of a second.
The answer is then ``unknown`` with the bounds proved so far.

>>> import threading
>>> stop = threading.Event()
>>> deadline = Deadline.after(60.0, stop)   # 60 s, or earlier when stop is set
>>> deadline.expired()
False
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

__all__ = ["Deadline", "NO_DEADLINE"]


@dataclass(frozen=True)
class Deadline:
    """``at``: a ``time.perf_counter()`` value (None: no time limit); ``stop``: set to stop now."""

    at: float | None = None
    stop: threading.Event | None = None

    @classmethod
    def after(cls, seconds: float | None, stop: threading.Event | None = None) -> "Deadline":
        """A deadline ``seconds`` from now (None: no time limit)."""
        return cls(None if seconds is None else time.perf_counter() + float(seconds), stop)

    @property
    def stopped(self) -> bool:
        """Was a stop requested (as opposed to the time running out)?"""
        return self.stop is not None and self.stop.is_set()

    def expired(self) -> bool:
        return self.stopped or (self.at is not None and time.perf_counter() > self.at)

    def remaining(self) -> float | None:
        """Seconds left (0 when stopped), or None without a time limit."""
        if self.stopped:
            return 0.0
        return None if self.at is None else max(0.0, self.at - time.perf_counter())

    def sooner(self, seconds: float | None) -> "Deadline":
        """This deadline, or ``seconds`` from now if that comes first (same stop request)."""
        if seconds is None:
            return self
        at = time.perf_counter() + float(seconds)
        return Deadline(at if self.at is None else min(at, self.at), self.stop)

    def share(self, fraction: float) -> "Deadline":
        """This deadline brought forward to ``fraction`` of the time left (none without a limit)."""
        left = self.remaining()
        return self.sooner(None if left is None else fraction * left)


NO_DEADLINE = Deadline()

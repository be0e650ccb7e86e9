"""The process around a search: where stdout goes, and how many threads numpy and OpenMP use.

* **Stdout belongs to answers.** :func:`answers_on_stdout` points file descriptor 1 at stderr for
  the duration of a command, so whatever a library prints — HiGHS's banner, Pyomo, onnxruntime,
  C or Python — lands on stderr, and child processes started meanwhile inherit the same. The
  answer is written to the stream it yields, which is the original stdout.
* **Threads are the user's choice, one by default.** The search's parallelism is processes;
  BLAS threads in every process would oversubscribe the cores (three runs on 2 cores took 8x
  longer). :func:`limit_threads` caps BLAS/OpenMP pools in this process and, through the
  environment, in every process it starts; :func:`prepare_worker` does both in a worker.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from typing import Iterator, TextIO

__all__ = ["answers_on_stdout", "limit_threads", "prepare_worker", "THREAD_VARIABLES"]

# Read by OpenBLAS, MKL, OpenMP and numexpr when a process loads them.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@contextlib.contextmanager
def answers_on_stdout() -> Iterator[TextIO]:
    """Yield a stream on the real stdout; meanwhile everything else written to stdout goes to stderr.

    When ``sys.stdout`` is not file descriptor 1 (a test capturing it, an embedding program),
    the answers go to that object, and descriptor 1 is still pointed at stderr.
    """
    sys.stdout.flush()
    try:
        on_fd1 = sys.stdout.fileno() == 1
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        on_fd1 = False
    saved = os.dup(1)
    answers = os.fdopen(os.dup(saved), "w", encoding=getattr(sys.stdout, "encoding", None) or "utf-8") if on_fd1 else sys.stdout
    previous = sys.stdout
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        yield answers
    finally:
        with contextlib.suppress(Exception):
            answers.flush()
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        sys.stdout = previous
        os.dup2(saved, 1)
        os.close(saved)
        if on_fd1:
            with contextlib.suppress(Exception):
                answers.close()


def limit_threads(threads: int = 1) -> None:
    """At most ``threads`` BLAS/OpenMP threads in this process and in the processes it starts."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(int(threads))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the environment variables still hold for new processes
        return
    threadpool_limits(limits=int(threads))


def prepare_worker(threads: int = 1) -> None:
    """Make a worker process quiet on stdout and hold it to ``threads`` BLAS threads."""
    sys.stdout.flush()
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    limit_threads(threads)

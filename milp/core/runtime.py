"""The process around a search: where stdout goes, and how many threads numpy and OpenMP use.

* **Stdout belongs to answers.** :func:`answers_on_stdout` points file descriptor 1 at stderr for
  the duration of a command, so whatever a library prints — HiGHS's banner, Pyomo, onnxruntime,
  C or Python — lands on stderr, and child processes started meanwhile inherit the same. The
  answer is written to the stream it yields, which is the original stdout.
* **Threads are the user's choice, one by default.** The search's parallelism is processes;
  BLAS threads in every process would oversubscribe the cores (three runs on 2 cores took 8x
  longer). :func:`limit_threads` caps BLAS/OpenMP pools in this process and, through the
  environment, in every process it starts; :func:`prepare_worker` does both in a worker.
* **Work beside the caller runs in a fresh interpreter.** :class:`BackgroundCall` runs one
  module-level function in a child process (a portfolio's MILP arm, a share of the intermediate
  bounds' searches) while the caller goes on.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import subprocess
import sys
import threading
from typing import Any, Callable, Iterator, TextIO

from milp.core.deadline import NO_DEADLINE, Deadline
from milp.core.errors import InternalError

__all__ = ["answers_on_stdout", "limit_threads", "prepare_worker", "BackgroundCall", "THREAD_VARIABLES"]

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


class BackgroundCall:
    """``function(*args, deadline=...)`` run in a child process, beside the caller's own work.

    ``function`` must be importable by name (defined at a module's top level): it travels pickled,
    by reference, like ``args`` and its answer. The child's deadline is the caller's ``deadline``
    as it stands at the start, and the caller's stop request or :meth:`cancel` stops it too.

    A process, not a thread: the caller's numpy code holds the interpreter lock, and a thread
    asking for it at every step (HiGHS's callback at every node, a search's clock) runs at a
    fraction of its speed (a 784-input maximum: 21.7 s beside a search in a thread, 20.1 s
    alone). The child is a fresh interpreter (``python -c``), not a fork: a fork could inherit
    the locks of the caller's threads, and multiprocessing's children would run the caller's
    script again when it lacks a ``__main__`` guard. The call goes to it on its stdin, the answer
    comes back on its stdout; closing its stdin asks it to stop (so does the caller's exit).
    """

    def __init__(self, function: Callable, args: tuple, deadline: Deadline = NO_DEADLINE, name: str = "a child process",
                 grace: float | None = None):
        self._deadline, self._name, self._grace = deadline, name, grace
        self._lock = threading.Lock()
        self._cancelled = self._sent = False
        self._answer: Any = None
        environment = dict(os.environ)
        # the child imports this package from where the caller did, installed or not
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        environment["PYTHONPATH"] = os.pathsep.join(p for p in (root, environment.get("PYTHONPATH", "")) if p)
        self._process = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environment)
        payload = pickle.dumps((function, args, deadline.remaining()), protocol=pickle.HIGHEST_PROTOCOL)
        # a thread hands the call over and waits for the answer: the caller goes on meanwhile
        self._talk = threading.Thread(target=self._converse, args=(payload,), daemon=True)
        self._talk.start()

    def _converse(self, payload: bytes) -> None:
        try:
            self._process.stdin.write(payload)
            self._process.stdin.flush()
        except OSError:  # the child is gone: join() reports it
            pass
        with self._lock:
            self._sent = True
            if self._cancelled:
                self._close_stdin()
        try:
            self._answer = pickle.load(self._process.stdout)
        except Exception:  # no answer: the exit code tells
            self._answer = None
        self._process.wait()

    def _close_stdin(self) -> None:
        try:
            self._process.stdin.close()
        except OSError:
            pass

    def finished(self) -> bool:
        """Has the call ended?"""
        return not self._talk.is_alive()

    def cancel(self) -> None:
        """Ask the call to stop: its deadline's stop request is set in the child. With ``grace``, a
        child still running that many seconds later is killed (its answer is then None)."""
        with self._lock:
            first = not self._cancelled
            self._cancelled = True
            if self._sent:
                self._close_stdin()
        if first and self._grace is not None:
            timer = threading.Timer(self._grace, self._kill)
            timer.daemon = True
            timer.start()

    def _kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()

    def join(self) -> Any:
        """Wait for the answer (a stop request on the deadline is passed on); an exception the call
        raised is raised here. None when the call was cancelled before the child read it."""
        while self._talk.is_alive():
            if self._deadline.stopped:
                self.cancel()
            self._talk.join(0.05)
        self._close_stdin()
        self._process.stdout.close()
        if isinstance(self._answer, Exception):
            raise self._answer
        if self._answer is None and not self._cancelled:
            raise InternalError(f"{self._name} ended without an answer (exit code {self._process.returncode})")
        return self._answer


_CHILD = "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); from milp.core.runtime import _call_in_child; _call_in_child()"


def _call_in_child() -> None:
    """:class:`BackgroundCall`'s child: read the call from stdin, run it, write its answer (or its
    error) on stdout; stdin's end (the caller closed it, or exited) sets the deadline's stop."""
    answers = os.fdopen(os.dup(1), "wb")
    prepare_worker(_threads_asked())  # anything printed (HiGHS's banner) goes to stderr
    stdin = sys.stdin.buffer
    try:
        function, args, seconds = pickle.load(stdin)
    except EOFError:  # cancelled before the call was sent
        return
    except Exception as error:  # e.g. a function the child cannot import: the caller reports it
        _answer(answers, error)
        return
    stop = threading.Event()

    def watch() -> None:
        # the raw descriptor: a daemon thread blocked inside sys.stdin's buffer would hold its lock at exit
        while os.read(stdin.fileno(), 4096):
            pass
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        answer = function(*args, deadline=Deadline.after(seconds, stop))
    except Exception as error:
        answer = error
    _answer(answers, answer)


def _threads_asked() -> int:
    """The BLAS threads the caller was held to (:func:`limit_threads` sets them in the environment
    the child inherits, e.g. from ``--threads``); one when it was not."""
    try:
        return max(1, int(os.environ.get("OPENBLAS_NUM_THREADS", "1")))
    except ValueError:
        return 1


def _answer(answers, answer) -> None:
    try:
        pickle.dump(answer, answers, protocol=pickle.HIGHEST_PROTOCOL)
        answers.flush()
    except OSError:  # the caller has gone
        pass

"""Running the learner's function away from the notebook's process (Chapters 1 to 7).

:func:`run_isolated` calls the function in a forked process with a time limit,
so an exception, an endless loop or ``os._exit`` cannot take the notebook (or
the autograder) down with it. Where ``fork`` is not available it runs in a
thread: an endless loop is then reported but keeps running in the background.

This protects the *notebook* from mistakes. It is not a security boundary: the
sandboxed re-grade (:mod:`mha.grading.sandbox`, :mod:`mha.grading.regrade`) is.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["TIME_LIMIT", "Outcome", "Run", "run_isolated", "call_all"]

TIME_LIMIT = 10.0  # seconds for all the calls of one check together


@dataclass
class Outcome:
    """What one call of the learner's function produced."""

    ok: bool
    value: object = None  # the result (arrays and tensors as NumPy) when ok
    error: str = ""  # "TypeError: ..." when it raised
    error_type: str = ""
    where: str = ""  # the learner's line that raised, when known


@dataclass
class Run:
    """All calls of one check: outcomes, or why there are none."""

    outcomes: list[Outcome] = field(default_factory=list)
    problem: str = ""  # "timeout", "crash" or "" when outcomes are complete
    detail: str = ""
    printed: str = ""  # what the learner's code printed (tail)


def _plain(value):
    """Tensors to NumPy (recursively in tuples and lists), so results pickle cheaply."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()
    if isinstance(value, tuple | list):
        return type(value)(_plain(v) for v in value)
    return value


def _where(exc: BaseException) -> str:
    """The last line of the traceback outside this module: the learner's line."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    if not frames or not frames[-1].line:
        return ""
    return f"line {frames[-1].lineno}: {frames[-1].line.strip()}"


def call_all(fn: Callable, calls: Sequence[tuple]) -> list[Outcome]:
    """Call ``fn(*args)`` for each argument tuple, catching everything."""
    outcomes = []
    for args in calls:
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                outcomes.append(Outcome(True, _plain(fn(*args))))
        except BaseException as exc:  # the learner's code may raise anything
            msg = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
            outcomes.append(Outcome(False, None, msg, type(exc).__name__, _where(exc)))
    return outcomes


def _child(conn, fn: Callable, calls: Sequence[tuple]) -> None:
    """Body of the forked process: run, send the outcomes back, exit at once."""
    buffer = io.StringIO()
    sys.stdout = sys.stderr = buffer
    if "torch" in sys.modules:  # a thread pool inherited through fork would deadlock
        sys.modules["torch"].set_num_threads(1)
    try:
        outcomes = call_all(fn, calls)
        try:
            conn.send((outcomes, buffer.getvalue()[-2000:]))
        except Exception as exc:  # for example a result that cannot be pickled
            bad = Outcome(False, None, f"the result could not be read back ({exc})", "Result")
            conn.send(([bad] * len(calls), buffer.getvalue()[-2000:]))
    finally:
        os._exit(0)  # skip atexit handlers inherited from the notebook's kernel


def _run_forked(fn: Callable, calls: Sequence[tuple], time_limit: float) -> Run:
    """Run the calls in a forked process; kill it after ``time_limit`` seconds."""
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(sender, fn, calls), daemon=True)
    proc.start()
    sender.close()
    try:
        if not receiver.poll(time_limit):
            return Run(problem="timeout")
        outcomes, printed = receiver.recv()
        return Run(outcomes, printed=printed)
    except (EOFError, OSError):
        proc.join(1)
        return Run(problem="crash", detail=f"exit code {proc.exitcode}")
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(1)
        receiver.close()


def _run_threaded(fn: Callable, calls: Sequence[tuple], time_limit: float) -> Run:
    """Fallback without ``fork``: a daemon thread (a runaway loop cannot be stopped)."""
    box: list = []
    thread = threading.Thread(target=lambda: box.append(call_all(fn, calls)), daemon=True)
    thread.start()
    thread.join(time_limit)
    return Run(box[0]) if box else Run(problem="timeout")


def run_isolated(fn: Callable, calls: Sequence[tuple], time_limit: float = TIME_LIMIT) -> Run:
    """Call ``fn(*args)`` for every tuple in ``calls`` away from the notebook's process."""
    if "fork" in multiprocessing.get_all_start_methods():
        return _run_forked(fn, calls, time_limit)
    return _run_threaded(fn, calls, time_limit)

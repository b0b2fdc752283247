"""Re-grade a submission where the student's code cannot reach the answers (issue 11).

The trusted side of the sandboxed re-grade. For one submitted notebook it

1. reads the assignment's *source* notebook (``course/source/...``, never the
   student's copy) for the answer cells (nbgrader ``solution`` cells), the
   graded test cells, their points and the checker calls in them
   (``mha.grading.checks.check_softmax(my_softmax)``);
2. draws fresh test inputs from a seed that only the grader holds (``secrets``
   when ``seed`` is ``None``) and the answers' code, so outputs hard-coded for the
   visible examples fail, and inputs quoted in one round's feedback (an error
   message can quote them) are no use in the next submission;
3. runs the code of the student's answer cells, and nothing else of theirs, in
   :mod:`mha.grading.sandbox` (bubblewrap: no network, no view of the course,
   the chapters or other submissions, a read-only library copy in which the
   exercises' reference functions raise), and calls their functions there on
   those inputs. Only data comes back (``.npz`` loaded with ``allow_pickle=False``);
4. computes the expected results here, in this process, and compares them
   with the checkers' own words (:func:`mha.grading.checks.verdict`).

Public API (for the grading pipeline, :mod:`mha.grading.coursework`)::

    results = regrade_submission(notebook, source_notebook, seed=None)
    # {grade_id: GradeResult} for every graded test cell of the source notebook
    r = results["test_my_softmax"]
    r.points, r.max_points   # float; points is None where status is "not-regraded"
    r.status    # "ok" | "wrong" | "error" | "not-answered" | "missing" | "reference-used"
                # | "timeout" | "crash" | "sandbox-failed" | "not-regraded"
    r.feedback  # text for the student (function names keep their case)
    r.sandbox   # "bwrap", or "subprocess" where bwrap is missing (a warning is printed)
    r.seed      # the seed used, to reproduce the run

A test cell without a checker call that tests a function of
:data:`mha.grading.checks.BY_FUNCTION` (Chapters 1 to 4: ``object_lens``,
``my_param_count``, ``my_emotion_strength``, ``my_head_contributions``) is
re-graded on that function, judged as its check cell judges it. Any other test
cell (an ``assert`` on notebook state only) gets ``status="not-regraded"`` and
``points=None``: nbgrader's in-kernel score is all there is for it. A test
cell is all or nothing, as in nbgrader.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np

from mha.grading.checks import BY_FUNCTION, EXERCISES, Case, Exercise, verdict
from mha.grading.regrade_io import (
    answer_cells,
    encode_job,
    graded_cells,
    nbgrader_meta,
    needed_cells,
    parse_report,
    plain_python,
    prelude,
    run_of,
    student_code,
)
from mha.grading.sandbox import REFERENCE_ERROR, RUNNER, Limits, library_copy, run_sandboxed

__all__ = ["GradeResult", "regrade_submission", "answer_cells", "graded_cells"]

CHECK_CALL = re.compile(r"(?P<call>(?:[A-Za-z_][\w.]*\.)?check_\w+)\(\s*(?P<fn>[A-Za-z_]\w*)")


@dataclass
class GradeResult:
    """The sandbox's grade of one test cell."""

    grade_id: str
    points: float | None
    max_points: float
    status: str
    feedback: str
    functions: list[str] = field(default_factory=list)
    sandbox: str = ""
    seed: int = 0


@dataclass
class _Check:
    """One checker call of a test cell, with the hidden cases drawn for it."""

    exercise: Exercise
    function: str
    cases: list[Case]


# ---------------------------------------------------------------------------
# The hidden cases
# ---------------------------------------------------------------------------


def _checks(cell, index: int, entropy: list[int]) -> list[_Check]:
    """The checker calls of a test cell, each with cases drawn from ``entropy`` (seed, code)."""
    found = []
    matches = CHECK_CALL.finditer(cell.source)
    calls = dict.fromkeys((m["call"].split(".")[-1], m["fn"]) for m in matches)
    pairs = [(EXERCISES.get(checker), function) for checker, function in calls]
    if not calls:  # an assert-only check cell: known by the function it tests
        pairs = [(e, f) for f, e in BY_FUNCTION.items() if re.search(rf"\b{f}\b", cell.source)]
    for k, (exercise, function) in enumerate(pairs):
        if exercise is not None:
            cases = exercise.cases(np.random.default_rng([*entropy, index, k]))
            found.append(_Check(exercise, function, cases))
    return found


# ---------------------------------------------------------------------------
# Judging, here in the trusted process
# ---------------------------------------------------------------------------

FAIL = "❌"
_REFERENCE = re.compile(r"(mha(?:\.\w+)+) is the reference")


def _reference_text(name: str, check: _Check, errors: list[str]) -> str:
    found = next((m.group(1) for e in errors if (m := _REFERENCE.search(e))), "an mha reference")
    whose = ("the function this exercise asks you to write" if found in check.exercise.references
             else "the mha version of another exercise of this assignment")  # fmt: skip
    return (f"{FAIL} {name} calls {found}, {whose}, so it scores 0. Write it yourself "
            "(NumPy is fine), without calling that function under any name.")  # fmt: skip


def _judge(check: _Check, found, arrays: dict, time_limit: float) -> tuple[str, list[str]]:
    """``(status, feedback lines)`` of one checker call."""
    name, status = check.function, found.get("status") if isinstance(found, dict) else None
    if status == "missing":
        return "missing", [f"{FAIL} {name} is not defined: its answer cell must define it."]
    if status == "not-callable":
        return "missing", [f"{FAIL} {name} is not a function here: its answer cell must def it."]
    run = run_of(found, check.cases, arrays)
    ex = check.exercise
    passed, lines = verdict(name, check.cases, run, ex.bug_messages, ex.error_hints, time_limit)
    errors = [o.error for o in run.outcomes if not o.ok]
    if passed:
        return "ok", lines
    if any(o.error_type == REFERENCE_ERROR for o in run.outcomes if not o.ok):
        return "reference-used", [_reference_text(name, check, errors)]
    if run.problem:
        return run.problem, lines
    if any(o.error_type == "NotImplementedError" for o in run.outcomes if not o.ok):
        return "not-answered", lines
    return ("error" if errors else "wrong"), lines


def _cell_notes(report: dict) -> list[str]:
    """Lines about errors at the top level of the answer cells."""
    notes = []
    for err in (report.get("cell_errors") or [])[:5]:
        if isinstance(err, dict):
            notes.append(f"   (Answer cell {err.get('cell')} stopped at its top level: "
                         f"{str(err.get('error', ''))[:200]}. Only code inside functions "
                         "should run there.)")  # fmt: skip
    return notes


_WORST = ("reference-used", "crash", "timeout", "error", "missing", "not-answered", "wrong")


@dataclass
class _Graded:
    """What the sandbox returned for a whole submission."""

    report: dict
    arrays: dict
    run: object  # a SandboxRun, or None when the sandbox could not start
    limits: Limits
    seed: int

    def failure(self) -> tuple[str, str]:
        """``(status, feedback)`` when there is no report at all."""
        if self.run is None or not self.run.started:
            return "sandbox-failed", (
                f"{FAIL} The grading sandbox could not start, so this test was not re-graded "
                "(nothing of yours ran): the instructor will look at it."
            )
        if self.run.timed_out or _signal(self.run.returncode) in (signal.SIGALRM, signal.SIGXCPU):
            return "timeout", (
                f"{FAIL} Grading ran out of time while running your answer cells: look for a "
                "loop that never ends, at the top level of a cell or in a function."
            )
        return "crash", (
            f"{FAIL} Grading stopped while running your answer cells (the process ended with "
            f"code {self.run.returncode}): code at the top level of an answer cell (a very "
            "large allocation, os.kill, ...) ended it. Keep only imports and function "
            "definitions in answer cells."
        )


def _signal(returncode: int | None) -> int:
    """The signal that ended the process (``-N`` from Popen, ``128 + N`` from bwrap), or 0."""
    if returncode is None:
        return 0
    return -returncode if returncode < 0 else max(0, returncode - 128)


def _cell_result(cell, checks: list[_Check], offset: int, got: _Graded) -> GradeResult:
    """The grade of one test cell: all its checker calls pass, or 0 points."""
    grade = nbgrader_meta(cell)
    max_points = float(grade.get("points", 0) or 0)
    base = {"grade_id": str(grade.get("grade_id", "")), "max_points": max_points,
            "functions": [c.function for c in checks], "seed": got.seed,
            "sandbox": getattr(got.run, "mode", "")}  # fmt: skip
    if not checks:
        text = "Not re-graded in the sandbox (this test has no checker call)."
        return GradeResult(points=None, status="not-regraded", feedback=text, **base)
    if not got.report:
        status, text = got.failure()
        return GradeResult(points=0.0, status=status, feedback=text, **base)
    found = got.report.get("exercises")
    found = found if isinstance(found, list) else []
    judged = [_judge(c, found[i] if i < len(found) else None, got.arrays, got.limits.call_seconds)
              for i, c in enumerate(checks, start=offset)]  # fmt: skip
    statuses = [s for s, _ in judged]
    status = next((s for s in _WORST if s in statuses), "ok")
    lines = [line for _, ls in judged for line in ls]
    if status != "ok":
        lines += _cell_notes(got.report)
    points = max_points if status == "ok" else 0.0
    return GradeResult(points=points, status=status, feedback="\n".join(lines), **base)


# ---------------------------------------------------------------------------
# The public entry point
# ---------------------------------------------------------------------------


def regrade_submission(
    notebook: Path, source_notebook: Path, seed: int | None = None, limits: Limits | None = None
) -> dict[str, GradeResult]:
    """Re-grade ``notebook`` in the sandbox: ``{grade_id: GradeResult}`` per graded test cell.

    ``source_notebook`` is the assignment's nbgrader source (with solutions): it
    alone says which cells are answers and tests. ``seed`` and the answers' code
    draw the hidden inputs (a fresh secret seed when ``None``; ``GradeResult.seed``
    records it), so the same submission gets the same inputs with the same seed.
    ``limits`` default to :class:`~mha.grading.sandbox.Limits` with a wall-clock
    limit that grows with the number of checker calls.
    """
    seed = secrets.randbits(63) if seed is None else int(seed)
    source = nbformat.read(source_notebook, as_version=4)
    try:
        submission = nbformat.read(notebook, as_version=4)
    except Exception:  # an unreadable file: every answer is empty
        submission = None
    cells = [plain_python(student_code(submission, c)) for c in answer_cells(source)]
    # The inputs depend on the answers' code too: inputs that leaked into one round's
    # feedback (an error message can quote them) are no use in the next submission.
    code = int.from_bytes(hashlib.sha256("\0".join(cells).encode()).digest()[:8], "big")
    tests = graded_cells(source)
    per_cell = [_checks(cell, i, [seed, code]) for i, cell in enumerate(tests)]
    checks = [c for cs in per_cell for c in cs]
    if limits is None:
        limits = Limits(wall_seconds=40 + Limits.cells_seconds + Limits.call_seconds * len(checks))
    cells = needed_cells(cells, {c.function for c in checks})
    got = _sandbox(prelude(source, cells), cells, checks, limits, seed)
    results, offset = {}, 0
    for cell, cs in zip(tests, per_cell, strict=True):
        result = _cell_result(cell, cs, offset, got)
        results[result.grade_id] = result
        offset += len(cs)
    return results


def _sandbox(prelude, cells, checks: list[_Check], limits: Limits, seed: int) -> _Graded:
    """Run the job in the sandbox and read back what it reported."""
    if not checks:
        return _Graded({}, {}, None, limits, seed)
    references = tuple(dict.fromkeys(r for c in checks for r in c.exercise.references))
    job_dir = Path(tempfile.mkdtemp(prefix="mha-regrade-"))
    try:
        shutil.copyfile(RUNNER, job_dir / RUNNER.name)
        lib = library_copy(job_dir / "lib", references)
        exercises = [(c.function, c.cases) for c in checks]
        stdin = encode_job(prelude, cells, exercises, limits.call_seconds, limits.cells_seconds)
        args = [str(lib), *_site_paths()]
        run = run_sandboxed(job_dir, args, stdin, limits)
    except OSError:
        return _Graded({}, {}, None, limits, seed)
    finally:
        _remove(job_dir)
    report, arrays = parse_report(run.result)
    return _Graded(report, arrays, run, limits, seed)


def _site_paths() -> list[str]:
    import site

    return [p for p in site.getsitepackages() if os.path.isdir(p)]


def _remove(folder: Path) -> None:
    """Delete a job folder (the library copy in it is read-only)."""
    for path, dirs, _ in os.walk(folder):
        for d in dirs:
            os.chmod(os.path.join(path, d), 0o755)
    os.chmod(folder, 0o755)
    shutil.rmtree(folder, ignore_errors=True)

"""Re-grade a submission where the student's code cannot reach the answers (issue 11).

The trusted side of the sandboxed re-grade. For one submitted notebook it

1. reads the assignment's *source* notebook (``course/source/...``, never the
   student's copy) for the answer cells (nbgrader ``solution`` cells), the
   graded test cells, their points and the checker calls in them
   (``mha.grading.checks.check_softmax(my_softmax)``);
2. draws fresh test inputs from a seed that only the grader holds
   (``secrets`` when ``seed`` is ``None``), so outputs hard-coded for the visible
   examples fail;
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
:data:`mha.grading.checks.BY_FUNCTION` (``my_param_count``, ``my_head_contributions``)
is re-graded on that function. Any other (one that only ``assert``\\ s on notebook
state, such as ``object_lens``) gets ``status="not-regraded"`` and ``points=None``:
nbgrader's in-kernel score is all there is for it. A test cell is all or nothing, as in nbgrader.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import secrets
import shutil
import signal
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np

from mha.grading.checks import BY_FUNCTION, EXERCISES, Case, Exercise, Outcome, Run, verdict
from mha.grading.sandbox import REFERENCE_ERROR, RUNNER, Limits, library_copy, run_sandboxed

__all__ = ["GradeResult", "regrade_submission", "answer_cells", "graded_cells"]

CHECK_CALL = re.compile(r"(?P<call>(?:[A-Za-z_][\w.]*\.)?check_\w+)\(\s*(?P<fn>[A-Za-z_]\w*)")
PRELUDE_PACKAGES = {"numpy", "torch", "math", "mha", "copy", "dataclasses", "functools"}
PRELUDE_SKIP = ("mha.grading", "mha.course", "figures", "plotting")


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
# Reading the source notebook (trusted) and the submission (untrusted)
# ---------------------------------------------------------------------------


def _meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def answer_cells(source) -> list:
    """The source notebook's code answer cells (``solution`` and not ``grade``)."""
    return [c for c in source.cells if c.cell_type == "code" and _meta(c).get("solution")
            and not _meta(c).get("grade")]  # fmt: skip


def graded_cells(source) -> list:
    """The source notebook's autograded test cells (``grade`` and not ``solution``)."""
    return [c for c in source.cells if c.cell_type == "code" and _meta(c).get("grade")
            and not _meta(c).get("solution")]  # fmt: skip


def _student_code(submission, source_cell) -> str:
    """The student's code for ``source_cell``: same grade id, else same cell id, else ''."""
    grade_id = _meta(source_cell).get("grade_id")
    cells = getattr(submission, "cells", None) or []
    for cell in cells:
        if isinstance(cell, dict) and _meta(cell).get("grade_id") == grade_id:
            return str(cell.get("source", ""))
    for cell in cells:
        if isinstance(cell, dict) and source_cell.get("id") and cell.get("id") == source_cell.id:
            return str(cell.get("source", ""))
    return ""


def _plain_python(code: str) -> str:
    """IPython syntax (``%magic``, ``!cmd``) as the ``get_ipython()`` calls a kernel makes."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(code)
    except Exception:  # no IPython, or code it cannot parse: the sandbox reports the error
        return code


def _prelude(source, cells: list[str] = ()) -> list[str]:
    """The import statements of the source notebook's other code cells (its setup).

    ``import torch`` and ``import mha`` are added when the answer ``cells`` mention
    them, so that loading them does not count against the cells' own time limit.
    """
    skip = {id(c) for c in (*answer_cells(source), *graded_cells(source))}
    found = []
    for cell in source.cells:
        if cell.cell_type != "code" or id(cell) in skip:
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom) and (code := _keep_import(node)):
                found.append(code)
    for module in ("torch", "mha"):
        if any(re.search(rf"\b{module}\b", code) for code in cells):
            found.append(f"import {module}")
    return list(dict.fromkeys(found))


def _keep_import(node: ast.Import | ast.ImportFrom) -> str:
    """``node`` as code when it imports the library or a numeric package, else ''."""
    module = node.module if isinstance(node, ast.ImportFrom) else None
    names = [a for a in node.names if not any(s in f"{module}.{a.name}" for s in PRELUDE_SKIP)]
    tops = {(module or a.name).split(".")[0] for a in names}
    if not names or not tops <= PRELUDE_PACKAGES:
        return ""
    kept = type(node)(names=names, **({"module": module, "level": 0} if module else {}))
    return ast.unparse(kept)


# ---------------------------------------------------------------------------
# The job for the sandbox, and what comes back
# ---------------------------------------------------------------------------


def _checks(cell, index: int, seed: int) -> list[_Check]:
    """The checker calls of a test cell, each with cases drawn from the hidden seed."""
    found = []
    matches = CHECK_CALL.finditer(cell.source)
    calls = dict.fromkeys((m["call"].split(".")[-1], m["fn"]) for m in matches)
    pairs = [(EXERCISES.get(checker), function) for checker, function in calls]
    if not calls:  # an assert-only check cell: known by the function it tests
        pairs = [(e, f) for f, e in BY_FUNCTION.items() if re.search(rf"\b{f}\b", cell.source)]
    for k, (exercise, function) in enumerate(pairs):
        if exercise is not None:
            cases = exercise.cases(np.random.default_rng([seed, index, k]))
            found.append(_Check(exercise, function, cases))
    return found


def _encode_args(args: tuple, key: str, arrays: dict) -> list[dict]:
    specs = []
    for i, arg in enumerate(args):
        if isinstance(arg, np.ndarray):
            arrays[f"{key}_{i}"] = arg
            specs.append({"a": f"{key}_{i}"})
        else:
            specs.append({"v": arg.item() if isinstance(arg, np.generic) else arg})
    return specs


def _job(prelude: list[str], cells: list[str], checks: list[_Check], limits: Limits) -> bytes:
    """stdin for the runner: the JSON job and the inputs' ``.npz``."""
    arrays, exercises = {}, []
    for e, check in enumerate(checks):
        calls = [_encode_args(c.args, f"x{e}_{j}", arrays) for j, c in enumerate(check.cases)]
        limit = limits.call_seconds
        exercises.append({"function": check.function, "calls": calls, "time_limit": limit})
    job = {"prelude": prelude, "cells": cells, "exercises": exercises,
           "cells_time_limit": limits.cells_seconds}  # fmt: skip
    job = json.dumps(job).encode()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return struct.pack(">Q", len(job)) + job + buffer.getvalue()


def _opaque(type_name) -> object:
    """A stand-in for a result that is not data, named after its type."""
    name = re.sub(r"\W", "", str(type_name))[:40] or "object"
    return type(name if name[0].isalpha() else "object", (), {})()


def _decode(spec, arrays: dict, depth: int = 0):
    """A result from its JSON description; anything unexpected becomes an opaque object."""
    if not isinstance(spec, dict) or depth > 4:
        return _opaque("object")
    if "a" in spec:
        arr = arrays.get(spec["a"]) if isinstance(spec["a"], str) else None
        ok = isinstance(arr, np.ndarray) and arr.dtype.kind in "biufc"
        return arr if ok else _opaque(spec.get("type"))
    if "v" in spec:
        value = spec["v"]
        return value if value is None or type(value) in (bool, int, float) else _opaque("object")
    if isinstance(spec.get("seq"), list):
        items = [_decode(s, arrays, depth + 1) for s in spec["seq"][:8]]
        length = spec.get("len")
        if isinstance(length, int) and len(items) < length <= 1000:
            items += [_opaque("object")] * (length - len(items))
        return tuple(items) if spec.get("type") == "tuple" else items
    return _opaque(spec.get("type"))


def _outcome(call, arrays: dict) -> Outcome:
    if not isinstance(call, dict):
        return Outcome(False, None, "the result could not be read back", "Result")
    if call.get("ok") is True:
        return Outcome(True, _decode(call.get("value"), arrays))
    text = lambda k: str(call.get(k, ""))[:600]  # noqa: E731
    return Outcome(False, None, text("error"), text("error_type"), text("where"))


def _run_of(found, cases: list[Case], arrays: dict) -> Run:
    """The :class:`Run` of one exercise from the sandbox's report on it."""
    if not isinstance(found, dict):
        return Run(problem="crash", detail="no report")
    status = found.get("status")
    if status == "timeout":
        return Run(problem="timeout")
    calls = found.get("calls")
    if status != "done" or not isinstance(calls, list) or len(calls) != len(cases):
        return Run(problem="crash", detail=str(found.get("detail", status))[:100])
    return Run([_outcome(c, arrays) for c in calls], printed=str(found.get("printed", ""))[:600])


def _parse(data: bytes) -> tuple[dict, dict]:
    """The runner's report and result arrays; ``({}, {})`` when they cannot be read."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as got:
            arrays = {k: got[k] for k in got.files if k != "__meta__"}
            report = json.loads(got["__meta__"].tobytes())
        return (report, arrays) if isinstance(report, dict) else ({}, {})
    except Exception:  # truncated, tampered with, or nothing written at all
        return {}, {}


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
    run = _run_of(found, check.cases, arrays)
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
        if self.run is None:
            return "sandbox-failed", f"{FAIL} The grading sandbox could not start."
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
    grade = _meta(cell)
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
    alone says which cells are answers and tests. ``seed`` draws the hidden
    inputs (a fresh secret one when ``None``; ``GradeResult.seed`` records it).
    ``limits`` default to :class:`~mha.grading.sandbox.Limits` with a wall-clock
    limit that grows with the number of checker calls.
    """
    seed = secrets.randbits(63) if seed is None else int(seed)
    source = nbformat.read(source_notebook, as_version=4)
    try:
        submission = nbformat.read(notebook, as_version=4)
    except Exception:  # an unreadable file: every answer is empty
        submission = None
    tests = graded_cells(source)
    per_cell = [_checks(cell, i, seed) for i, cell in enumerate(tests)]
    checks = [c for cs in per_cell for c in cs]
    if limits is None:
        limits = Limits(wall_seconds=40 + Limits.cells_seconds + Limits.call_seconds * len(checks))
    cells = [_plain_python(_student_code(submission, c)) for c in answer_cells(source)]
    got = _sandbox(_prelude(source, cells), cells, checks, limits, seed)
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
        args, stdin = [str(lib), *_site_paths()], _job(prelude, cells, checks, limits)
        run = run_sandboxed(job_dir, args, stdin, limits)
    except OSError:
        return _Graded({}, {}, None, limits, seed)
    finally:
        _remove(job_dir)
    report, arrays = _parse(run.result)
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

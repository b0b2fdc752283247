"""Grading an assignment, one submission at a time (part of :mod:`mha.grading.coursework`).

``nbgrader autograde`` over a whole class stops being useful as soon as one
notebook kills its kernel (``exit()``, ``os._exit``) or carries broken
metadata: the run aborts and nobody gets feedback or a CSV row. Here every
submission is

1. validated and repaired against ``source/`` (:mod:`mha.grading.coursework_validate`),
   into ``validated/<student>/<assignment>/``;
2. autograded by its own ``nbgrader autograde --student`` process, with a wall-clock
   limit, a CPU-time limit and a memory limit that its kernel inherits;
3. re-graded in the sandbox (:mod:`mha.grading.regrade`), out of the student's reach:
   where the sandbox's score differs from nbgrader's in-kernel one, the sandbox's
   counts (written to the gradebook as the cell's manual score) and the
   instructor's report flags the student.

A submission that cannot be graded is reported as "not graded" with the reason
and what to do, gets a feedback page that says what happened, and a CSV row
whose ``status`` says "not graded" and whose score is empty (not 0). See
:mod:`mha.grading.coursework_report` for the report, the pages and the CSV.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import nbformat

from mha.grading.coursework_report import (
    Outcome,
    annotate_feedback,
    export_csv,
    write_not_graded_page,
    write_report,
)
from mha.grading.coursework_run import Limits, kernel_jail, run_limited
from mha.grading.coursework_validate import validate_submission

__all__ = ["grade", "grade_submission", "load_regrade", "apply_sandbox"]

ROOT = Path(__file__).resolve().parents[2]  # the repository: its chapters hold the solutions
VALIDATED = "validated"  # course_dir/validated/<student>/<assignment>/: what nbgrader grades
LOGS = "grading_logs"  # course_dir/grading_logs/<assignment>/<student>.log of failed runs
SEED_FILE = ".grader_seed"  # the hidden test inputs' seed, only in the instructor's course folder


def _stage(course_dir: Path, assignment: str, student: str, nb) -> None:
    """Copy the submission folder to ``validated/`` with the repaired notebook in it."""
    src = course_dir / "submitted" / student / assignment
    dest = course_dir / VALIDATED / student / assignment
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
    nbformat.write(nb, dest / f"{assignment}.ipynb")


def _forget(course_dir: Path, assignment: str, student: str) -> None:
    """Remove a previous run's graded notebook and feedback of a submission now not graded."""
    for part in ("autograded", "feedback"):
        shutil.rmtree(course_dir / part / student / assignment, ignore_errors=True)


def grade_submission(
    course_dir: Path, assignment: str, student: str, limits: Limits, jail: bool = True
) -> Outcome:
    """Validate and autograde one student's submission in its own nbgrader process.

    With ``jail`` the kernel runs in bubblewrap (:func:`~mha.grading.coursework_run.kernel_jail`):
    read-only files, no view of the course folder or the chapters but this submission.
    """
    course_dir = Path(course_dir)
    notebook = course_dir / "submitted" / student / assignment / f"{assignment}.ipynb"
    source = course_dir / "source" / assignment / f"{assignment}.ipynb"
    if not notebook.exists():
        return Outcome.not_graded(student, "missing", f"no {notebook.name} in {notebook.parent}")
    check = validate_submission(notebook, source)
    if check.notebook is None:
        return Outcome.not_graded(student, "invalid", check.problem, check.advice)
    _stage(course_dir, assignment, student, check.notebook)
    args = ["autograde", assignment, f"--student={student}", "--force",
            f"--CourseDirectory.submitted_directory={VALIDATED}",
            f"--Execute.timeout={limits.cell_s}", *limits.extra]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="mha-jail-") as scratch:
        shown = [course_dir / d / student / assignment for d in (VALIDATED, "autograded")]
        env = kernel_jail([course_dir, ROOT / "chapters"], shown, Path(scratch)) if jail else {}
        code, log = run_limited(args, course_dir, limits, env)
    graded = course_dir / "autograded" / student / assignment / f"{assignment}.ipynb"
    if code == 0 and graded.exists():
        return Outcome(student, "graded", changes=check.changes)
    _forget(course_dir, assignment, student)
    outcome = Outcome.from_failure(student, code, log, limits, check.changes)
    saved = course_dir / LOGS / assignment / f"{student}.log"
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(log)
    outcome.advice += f" (nbgrader's log: {saved.relative_to(course_dir)})"
    return outcome


# ---------------------------------------------------------------------------
# The sandbox's re-grade
# ---------------------------------------------------------------------------


def load_regrade() -> Callable | None:
    """``mha.grading.regrade.regrade_submission``, or None (said loudly) if it is missing."""
    try:
        from mha.grading.regrade import regrade_submission
    except ImportError as exc:
        print(f"WARNING: no sandbox re-grade ({exc}): scores are nbgrader's in-kernel scores, "
              "which code in a submission can fool", file=sys.stderr)  # fmt: skip
        return None
    return regrade_submission


def _result_score(result) -> tuple[float | None, str]:
    """``(score or None, message)`` of one grade id's sandbox result.

    A :class:`mha.grading.regrade.GradeResult` (``points``, ``feedback``), a mapping
    with the same keys (or ``score``/``message``), or a bare number. ``None``: the
    sandbox did not re-grade that cell, so nbgrader's in-kernel score stands.
    """
    if isinstance(result, int | float):
        return float(result), ""
    get = result.get if isinstance(result, dict) else lambda k, d=None: getattr(result, k, d)
    score = get("points")
    score = get("score") if score is None else score
    message = get("feedback") or get("message") or ""
    return (None if score is None else float(score)), str(message)


def _seed(course_dir: Path) -> int:
    """The course's secret seed for hidden test inputs (made once, kept in the course folder)."""
    path = course_dir / SEED_FILE
    if not path.exists():
        path.write_text(str(secrets.randbits(63)))
        path.chmod(0o600)
    return int(path.read_text())


def apply_sandbox(course_dir: Path, assignment: str, outcome: Outcome, regrade: Callable) -> None:
    """Re-grade in the sandbox; where it disagrees with the gradebook, the sandbox's score counts.

    The score goes into the gradebook as the cell's manual score (so ``nbgrader
    export`` and the feedback use it); a manual score set by an earlier run and
    no longer needed is removed. Disagreements land in ``outcome.sandbox``.
    """
    from nbgrader.api import Gradebook, MissingEntry

    notebook = Path(course_dir) / VALIDATED / outcome.student / assignment / f"{assignment}.ipynb"
    source = Path(course_dir) / "source" / assignment / f"{assignment}.ipynb"
    try:
        results = regrade(notebook, source, seed=_seed(Path(course_dir)))
    except Exception as exc:
        outcome.sandbox.append(f"sandbox re-grade failed ({type(exc).__name__}: {exc}); "
                               "in-kernel scores kept: check this submission by hand")  # fmt: skip
        return
    with Gradebook(f"sqlite:///{Path(course_dir) / 'gradebook.db'}") as gb:
        for gid, result in sorted(results.items()):
            score, message = _result_score(result)
            outcome.fallback |= getattr(result, "sandbox", "bwrap") not in ("bwrap", "")
            if score is None:
                continue
            try:
                g = gb.find_grade(gid, assignment, assignment, outcome.student)
            except MissingEntry:
                outcome.sandbox.append(f"{gid}: re-graded, but not in the gradebook; check it")
                continue
            if g.auto_score is not None and abs(g.auto_score - score) > 1e-9:
                outcome.sandbox.append(f"{gid}: in-kernel {g.auto_score:g}, sandbox {score:g}"
                                       + (f" ({message})" if message else ""))  # fmt: skip
                outcome.notes[gid] = message
                g.manual_score = score
            elif g.manual_score is not None and gid in outcome.previous_overrides:
                g.manual_score = None
        gb.db.commit()


# ---------------------------------------------------------------------------
# The whole assignment
# ---------------------------------------------------------------------------


def _students(course_dir: Path, assignment: str) -> list[str]:
    submitted = Path(course_dir) / "submitted"
    return sorted(p.parent.name for p in submitted.glob(f"*/{assignment}") if p.is_dir())


def _feedback(course_dir: Path, assignment: str, outcomes: list[Outcome], limits: Limits) -> None:
    """nbgrader's feedback for the graded; a page saying what happened for the others."""
    graded = [o for o in outcomes if o.status == "graded"]
    if graded:
        args = ["generate_feedback", assignment, "--force"]
        code, log = run_limited(args, Path(course_dir), limits)
        if code != 0:
            print(f"WARNING: nbgrader generate_feedback failed:\n{log[-2000:]}", file=sys.stderr)
    for o in outcomes:
        page = Path(course_dir) / "feedback" / o.student / assignment / f"{assignment}.html"
        if o.status != "graded":
            write_not_graded_page(page, assignment, o, memory=limits.memory_bytes / 2**30,
                                  wall=limits.wall_s, cell=limits.cell_s)  # fmt: skip
        elif o.sandbox and page.exists():
            annotate_feedback(page, o)


def grade(
    course_dir: Path,
    assignment: str,
    csv: str = "grades.csv",
    *,
    limits: Limits | None = None,
    regrade: Callable | str | None = "auto",
) -> Path:
    """Grade every submission of ``assignment`` on its own; feedback, report and CSV always.

    ``regrade``: the sandbox's ``regrade_submission(notebook, source, seed=...)``;
    ``"auto"`` imports :mod:`mha.grading.regrade`, ``None`` skips it (said loudly).
    Returns the CSV's path; the instructor's report is printed and written to
    ``course_dir/grading_report_<assignment>.txt``.
    """
    course_dir, limits = Path(course_dir), limits or Limits()
    regrade = load_regrade() if regrade == "auto" else regrade
    if regrade is None:
        print("WARNING: grading WITHOUT the sandbox re-grade", file=sys.stderr)
    previous = Outcome.load_overrides(course_dir, assignment)
    outcomes = []
    for student in _students(course_dir, assignment):
        outcome = grade_submission(course_dir, assignment, student, limits)
        outcome.previous_overrides = previous.get(student, set())
        if outcome.status == "graded" and regrade is not None:
            apply_sandbox(course_dir, assignment, outcome, regrade)
        outcomes.append(outcome)
        print(outcome.line(), flush=True)
    _feedback(course_dir, assignment, outcomes, limits)
    path = export_csv(course_dir, assignment, outcomes, csv, limits)
    write_report(course_dir, assignment, outcomes, sandbox=regrade is not None)
    return path

"""What a grading run tells the instructor and the students (part of :mod:`mha.grading.coursework`).

* :class:`Outcome`: one submission's result: graded, or not graded with the reason,
  what to do, and a message for the student;
* the instructor's report (``grading_report_<assignment>.txt``, also printed): "not
  graded: student, reason, what to do", the students the sandbox flagged, and the
  submissions whose cells were restored from ``source/``;
* a feedback page for every submission that could not be graded;
* the grades CSV: nbgrader's export plus ``status`` ("graded", "not graded",
  "not submitted") and ``note``; a submission that was not graded has an empty score.
"""

from __future__ import annotations

import csv as csvlib
import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mha.grading.coursework_run import run_limited

if TYPE_CHECKING:
    from mha.grading.coursework_run import Limits

__all__ = ["Outcome", "export_csv", "write_report", "write_not_graded_page", "annotate_feedback"]

STATUS_FILE = "grading_status.json"
RESTART = "restart the kernel and run all cells (Kernel → Restart Kernel and Run All Cells)"
STUDENT_TEXT = {
    "missing": "Your submission has no notebook named {assignment}.ipynb.",
    "invalid": "Your notebook could not be read as a course notebook: {reason}.",
    "timeout": "Grading was stopped after {wall:g} seconds: some code in your notebook runs "
    "for too long (an endless loop?).",
    "cell_timeout": "Grading was stopped because one cell ran for more than {cell} seconds.",
    "dead_kernel": "Grading stopped because the notebook's Python kernel died. That happens "
    "when a cell calls exit(), quit() or os._exit(), or when the notebook uses more than "
    "{memory:g} GiB of memory.",
    "memory": "Grading stopped because your notebook used more than {memory:g} GiB of memory.",
    "no_kernel": "The grader could not start Python for your notebook. This is not your "
    "fault; your instructor will grade it again.",
    "error": "The grader could not run your notebook ({reason}).",
}
STUDENT_TODO = (
    "Fix this, {restart}, check that every cell finishes, and submit again. Your instructor "
    "has been told."
)


@dataclass
class Outcome:
    """One submission's result in a grading run."""

    student: str
    status: str  # "graded" or "not graded"
    kind: str = ""  # why not: a key of STUDENT_TEXT
    reason: str = ""  # for the instructor
    advice: str = ""  # what the instructor can do
    changes: list[str] = field(default_factory=list)  # cells restored from source/
    sandbox: list[str] = field(default_factory=list)  # where the sandbox disagreed
    notes: dict[str, str] = field(default_factory=dict)  # grade id -> the sandbox's message
    previous_overrides: set[str] = field(default_factory=set)
    fallback: bool = False  # the sandbox ran without bubblewrap (python -I only)

    @classmethod
    def not_graded(cls, student: str, kind: str, reason: str, advice: str = "") -> Outcome:
        advice = advice or "fix the notebook in submitted/ or ask for a new one, then grade again"
        return cls(student, "not graded", kind, reason, advice)

    @classmethod
    def from_failure(
        cls, student: str, code: int | None, log: str, limits: Limits, changes: list[str]
    ) -> Outcome:
        """Why ``nbgrader autograde`` failed, from its return code and log."""
        memory = limits.memory_bytes / 2**30
        if code is None:
            kind, reason = "timeout", f"grading took longer than {limits.wall_s:g} s, stopped"
            advice = "look for an endless loop; ask for a fixed notebook or raise the time limit"
        elif re.search(r"DeadKernelError|Kernel died|kernel.*(?:died|dead)", log, re.I):
            kind = "dead_kernel"
            reason = ("the kernel died: a cell calls exit(), quit() or os._exit(), or used more "
                      f"than {memory:g} GiB")  # fmt: skip
            advice = "remove that call from the notebook (or ask the student to), then grade again"
        elif "MemoryError" in log or re.search(r"Cannot allocate memory", log):
            kind, reason = "memory", f"the notebook used more than {memory:g} GiB of memory"
            advice = "ask the student for a notebook that uses less memory"
        elif re.search(r"Kernel didn't respond|kernel.*failed to start", log, re.I):
            kind, reason = "no_kernel", "the kernel did not start in time (an overloaded machine?)"
            advice = "grade again; if it persists, look at the log"
        elif "CellTimeoutError" in log:
            kind, reason = "cell_timeout", f"a cell ran longer than {limits.cell_s} s"
            advice = "look for an endless loop; ask for a fixed notebook or raise the cell limit"
        else:
            kind, reason, advice = "error", _last_error(log), ""
        outcome = cls.not_graded(student, kind, reason, advice)
        outcome.changes = list(changes)
        return outcome

    def line(self) -> str:
        """One line of progress: ``student: graded`` or ``student: NOT GRADED (reason)``."""
        if self.status == "graded":
            flag = f"; sandbox differs on {len(self.sandbox)} cell(s)" if self.sandbox else ""
            return f"{self.student}: graded{flag}"
        return f"{self.student}: NOT GRADED ({self.reason})"

    def student_text(
        self, assignment: str, memory: float = 4, wall: float = 600, cell: float = 300
    ) -> tuple[str, str]:
        what = STUDENT_TEXT.get(self.kind, STUDENT_TEXT["error"])
        what = what.format(assignment=assignment, reason=self.reason, memory=memory, wall=wall,
                           cell=cell)  # fmt: skip
        return what, STUDENT_TODO.format(restart=RESTART)

    @staticmethod
    def load_overrides(course_dir: Path, assignment: str) -> dict[str, set[str]]:
        """Student -> the grade ids whose manual score an earlier run set from the sandbox."""
        saved = _load_status(Path(course_dir)).get(assignment, {})
        return {s: set(v.get("overrides", [])) for s, v in saved.items()}


def _last_error(log: str) -> str:
    """The most telling line of a failed nbgrader log."""
    lines = [ln.strip() for ln in log.strip().split("\n") if ln.strip()]
    errors = [ln for ln in lines if re.search(r"Error|Exception|error", ln)]
    return ("nbgrader failed: " + (errors or lines or ["no output"])[-1])[:300]


def _load_status(course_dir: Path) -> dict:
    path = course_dir / STATUS_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _save_status(course_dir: Path, assignment: str, outcomes: list[Outcome]) -> None:
    saved = _load_status(course_dir)
    saved[assignment] = {
        o.student: {
            "status": o.status,
            "reason": o.reason,
            "advice": o.advice,
            "overrides": sorted(o.notes),
            "flag": o.sandbox,
        }
        for o in outcomes
    }
    (course_dir / STATUS_FILE).write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")


def write_report(course_dir: Path, assignment: str, outcomes: list[Outcome], sandbox: bool) -> None:
    """Print the instructor's report and write it to ``grading_report_<assignment>.txt``."""
    course_dir = Path(course_dir)
    _save_status(course_dir, assignment, outcomes)
    bad = [o for o in outcomes if o.status != "graded"]
    flagged = [o for o in outcomes if o.sandbox]
    lines = [f"Grading report for {assignment}: {len(outcomes)} submissions, "
             f"{len(outcomes) - len(bad)} graded, {len(bad)} not graded, "
             f"{len(flagged)} flagged by the sandbox re-grade."]  # fmt: skip
    if not sandbox:
        lines.append("WARNING: no sandbox re-grade ran; in-kernel scores can be fooled.")
    if any(o.fallback for o in outcomes):
        lines.append("WARNING: bubblewrap (bwrap) was not usable: the re-grade ran in a plain "
                     "`python -I` process (see instructors.md).")  # fmt: skip
    if bad:
        lines.append("\nNot graded (student: reason; what to do):")
        lines += [f"- {o.student}: {o.reason}; {o.advice}" for o in bad]
    if flagged:
        lines.append("\nSandbox re-grade differs from nbgrader's in-kernel score "
                     "(the sandbox's score counts; look at these submissions):")  # fmt: skip
        lines += [f"- {o.student}: {d}" for o in flagged for d in o.sandbox]
    repaired = [o for o in outcomes if o.changes]
    if repaired:
        lines.append("\nCells restored from source/ before grading:")
        lines += [f"- {o.student}: {'; '.join(o.changes)}" for o in repaired]
    text = "\n".join(lines) + "\n"
    (course_dir / f"grading_report_{assignment}.txt").write_text(text)
    print(text, end="")
    return text


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{assignment}: not graded</title></head>
<body>
<h1>{assignment}: your submission was not graded</h1>
<p><strong>What happened.</strong> {what}</p>
<p><strong>What to do.</strong> {todo}</p>
</body></html>
"""


def write_not_graded_page(page: Path, assignment: str, outcome: Outcome, **limits: float) -> None:
    """The feedback page of a submission that could not be graded."""
    what, todo = outcome.student_text(assignment, **limits)
    page.parent.mkdir(parents=True, exist_ok=True)
    esc = html.escape
    page.write_text(PAGE.format(assignment=esc(assignment), what=esc(what), todo=esc(todo)))


def annotate_feedback(page: Path, outcome: Outcome) -> None:
    """Add a note to nbgrader's feedback page where the sandbox's score replaced the kernel's."""
    items = "".join(
        f"<li><code>{html.escape(gid)}</code>: {html.escape(msg or 'the re-grade differs')}</li>"
        for gid, msg in sorted(outcome.notes.items())
    )
    note = ('<div class="alert alert-warning" id="sandbox-regrade"><p><strong>Re-graded '
            "outside your notebook.</strong> These test cells were checked again, in a separate "
            "process with fresh inputs, and the score of that check counts:</p>"
            f"<ul>{items}</ul></div>")  # fmt: skip
    text = page.read_text()
    body = re.search(r"<body[^>]*>", text)
    at = body.end() if body else 0
    page.write_text(text[:at] + note + text[at:])


def export_csv(
    course_dir: Path, assignment: str, outcomes: list[Outcome], csv: str, limits: Limits
) -> Path:
    """``nbgrader export``, then a ``status`` and a ``note`` column; not graded: empty score."""
    course_dir = Path(course_dir)
    path = course_dir / csv
    code, log = run_limited(["export", f"--to={csv}"], course_dir, limits)
    rows = []
    if code == 0 and path.exists():
        with open(path, newline="") as f:
            rows = list(csvlib.DictReader(f))
    else:
        print(f"WARNING: nbgrader export failed; the CSV has this run only:\n{log[-1500:]}")
    saved, now = _load_status(course_dir), {o.student: o for o in outcomes}
    for row in rows:
        _status(row, course_dir, saved, now if row["assignment"] == assignment else {})
    known = {(r["assignment"], r["student_id"]) for r in rows}
    most = next((r["max_score"] for r in rows if r["assignment"] == assignment), "")
    for o in outcomes:
        if (assignment, o.student) not in known:
            row = {"assignment": assignment, "student_id": o.student, "max_score": most}
            rows.append(row | _empty(o))
    fields = list(rows[0]) if rows else ["assignment", "student_id", "score", "status", "note"]
    fields += [k for k in ("status", "note") if k not in fields]
    with open(path, "w", newline="") as f:
        writer = csvlib.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: (r["assignment"], r["student_id"])))
    return path


def _empty(o: Outcome) -> dict:
    return {"raw_score": "", "score": "", "status": "not graded", "note": o.reason}


def _status(row: dict, course_dir: Path, saved: dict, now: dict) -> None:
    """Fill ``row``'s status and note (and empty its score when it was not graded)."""
    student, assignment = row["student_id"], row["assignment"]
    if student in now:
        o = now[student]
        record = {"status": o.status, "reason": o.reason, "flag": o.sandbox}
    else:
        record = saved.get(assignment, {}).get(student)
    if record is None:
        done = (course_dir / "autograded" / student / assignment).exists()
        row["status"], row["note"] = ("graded" if done else "not submitted"), ""
    elif record["status"] != "graded":
        row.update(raw_score="", score="", status="not graded", note=record["reason"])
    else:
        row["status"] = "graded"
        row["note"] = "sandbox re-grade differs (its score counts)" if record.get("flag") else ""

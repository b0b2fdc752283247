"""Coursework: turn the chapters into an nbgrader course, grade it, build the student book.

Driven by the cell tags of CONTRIBUTING.md:

* a code cell tagged ``solution`` defines the exercise's function. In the
  nbgrader *source* version its body sits between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION``, so the release keeps the signature and docstring and
  gets the stub ``raise NotImplementedError()``;
* a code cell tagged ``check`` (``mha.grading.checks.check_softmax(my_softmax)``)
  becomes a locked, autograded test cell worth ``points_per_check`` points per
  checker call. The visible call prints the checker's verdict (it names the
  bug); a hidden ``assert ...(quiet=True)`` does the grading;
* a markdown cell tagged ``solution`` (a written answer) is removed from the
  release by nbgrader itself (``TagRemovePreprocessor`` in the course's
  ``nbgrader_config.py``) and followed by an ungraded "Your answer" cell. With
  ``written_points > 0`` it becomes a manually graded answer cell instead.

Command line (run from the repository root)::

    python -m mha.grading.coursework course        # chapters -> ./course (source + release)
    python -m mha.grading.coursework grade 01_self_attention   # autograde, feedback, grades.csv
    python -m mha.grading.coursework demo 01_self_attention    # the above, reference solutions
    python -m mha.grading.coursework guide         # per-chapter table of the instructor's guide
    python -m mha.grading.coursework student-book  # the book without solutions
    (see mha.grading.student_edition)
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

__all__ = [
    "SOLUTION",
    "CHECK",
    "wrap_solution",
    "hidden_tests",
    "to_source_notebook",
    "build_course",
    "release",
    "grade",
    "submit",
    "chapter_summary",
    "guide_markdown",
    "main",
]

SOLUTION, CHECK, HIDE_INPUT = "solution", "check", "hide-input"
POINTS_PER_CHECK = 2
ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CHECK_CALL = re.compile(r"(?P<call>(?:[A-Za-z_][\w.]*\.)?check_\w+)\(\s*(?P<fn>[A-Za-z_]\w*)")

STUDENT_NOTE = (
    "**Coursework version.** Write your code where a function says "
    "`raise NotImplementedError()` (delete that line), run the cell, then run the check "
    "cell below it: it compares your function with the course's reference and, when "
    "something is off, names the likely bug. {written} Before you submit: *Kernel → "
    "Restart Kernel and Run All Cells*."
)
WRITTEN_FREE = "Written exercises are for practice and are not graded."
WRITTEN_GRADED = "Written exercises are graded by hand: answer in the cell below each one."
ANSWER_CELL = "**Your answer:** *(double-click to write)*"

CONFIG = '''\
"""nbgrader configuration of the course, written by `python -m mha.grading.coursework course`."""

from nbconvert.preprocessors import TagRemovePreprocessor
from nbgrader.converters import GenerateAssignment

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "mha"
c.Execute.timeout = 300  # seconds per cell when autograding
# Written solutions are markdown cells tagged "solution" (not nbgrader cells):
# nbgrader removes them when it generates the release.
c.TagRemovePreprocessor.enabled = True
c.TagRemovePreprocessor.remove_cell_tags = {"solution"}
c.GenerateAssignment.preprocessors = [
    TagRemovePreprocessor,
    *GenerateAssignment.class_traits()["preprocessors"].default(),
]
'''


def tags(cell) -> list[str]:
    """The cell's tags (an empty list when it has none)."""
    return list(cell.get("metadata", {}).get("tags", []))


# ---------------------------------------------------------------------------
# Solution cells: keep signatures and docstrings, hide bodies
# ---------------------------------------------------------------------------


def _signature_end(fn: ast.FunctionDef, lines: list[str]) -> int:
    """0-based index of the line that ends ``fn``'s signature (the one with the ``:``)."""
    nodes = [*fn.args.args, *fn.args.kwonlyargs, *fn.args.defaults, *fn.args.kw_defaults]
    nodes += [n for n in (fn.returns, fn.args.vararg, fn.args.kwarg) if n is not None]
    i = max([fn.lineno, *(n.end_lineno for n in nodes if n is not None)]) - 1
    while not lines[i].split("#")[0].rstrip().endswith(":"):
        i += 1
    return i


def _hidden_function(fn: ast.FunctionDef, lines: list[str]) -> list[str]:
    """``fn``'s lines with the body after the docstring between the solution markers."""
    start = min([fn.lineno, *(d.lineno for d in fn.decorator_list)]) - 1
    body = fn.body[1:] if ast.get_docstring(fn) is not None else fn.body
    if not body:
        return lines[start : fn.end_lineno]
    cut = fn.body[0].end_lineno if body is not fn.body else _signature_end(fn, lines) + 1
    if cut <= _signature_end(fn, lines):
        raise ValueError(f"put the body of {fn.name} on its own lines, not after the colon")
    indent = re.match(r"\s*", lines[body[0].lineno - 1]).group(0)
    return [*lines[start:cut], indent + BEGIN, *lines[cut : fn.end_lineno], indent + END]


def wrap_solution(source: str) -> tuple[str, list[str]]:
    """The nbgrader source version of a solution cell, and the statements it dropped.

    Imports stay visible; every function keeps its signature and docstring and
    its body goes between ``### BEGIN SOLUTION`` / ``### END SOLUTION`` (the
    release gets ``raise NotImplementedError()`` there). Other top-level
    statements (a demo call, say) would fail in the release, so they are dropped.
    A cell that does not parse is hidden as a whole.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return f"{BEGIN}\n{source}\n{END}", []
    lines, out, dropped, prev = source.split("\n"), [], [], 0
    for node in tree.body:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))]) - 1
        lead = lines[prev:first]  # blank lines and comments before the statement
        if isinstance(node, ast.Import | ast.ImportFrom):
            out += [*lead, *lines[first : node.end_lineno]]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            out += [*lead, *_hidden_function(node, lines)]
        else:
            dropped.append("\n".join(lines[first : node.end_lineno]))
        prev = node.end_lineno
    return "\n".join(out).strip("\n"), dropped


# ---------------------------------------------------------------------------
# Check cells: visible verdict, hidden assertion
# ---------------------------------------------------------------------------


def hidden_tests(source: str) -> list[str]:
    """One ``assert <checker>(<function>, quiet=True)`` per checker call in a check cell."""
    calls = dict.fromkeys((m["call"], m["fn"]) for m in CHECK_CALL.finditer(source))
    return [f'assert {call}({fn}, quiet=True), "{fn} does not pass yet"' for call, fn in calls]


def _nbgrader(cell_id: str, *, grade=False, solution=False, locked=False, points=0) -> dict:
    meta = {"grade": grade, "grade_id": cell_id, "locked": locked, "schema_version": 3,
            "solution": solution}  # fmt: skip
    return meta | ({"points": points} if grade else {})


def _unique(name: str, used: set[str]) -> str:
    new, k = name, 1
    while new in used:
        k += 1
        new = f"{name}_{k}"
    used.add(new)
    return new


def _defines_function(cell) -> bool:
    """Whether a code cell defines a top-level function (an exercise's answer).

    A solution cell without one (a hidden demonstration that belongs to a
    written answer) stays a plain cell tagged ``solution``, so nbgrader removes
    it from the release like the written answer itself.
    """
    return _first_function(cell.source) is not None


def _first_function(source: str) -> str | None:
    found = re.search(r"^def\s+(\w+)", source, re.M)
    return found.group(1) if found else None


def _check_cell(cell, points_per_check: int, used: set[str], answers: Sequence[str] = ()) -> str:
    """Make a ``check`` cell a locked autograded test cell with hidden assertions.

    Returns a warning when the cell cannot fail for a wrong answer: no checker
    call and no ``assert`` (it only raises if the function is not implemented).
    """
    asserts = hidden_tests(cell.source)
    fns = [m["fn"] for m in CHECK_CALL.finditer(cell.source)]
    fns += [f for f in reversed(answers) if re.search(rf"\b{f}\b", cell.source)]
    cell.source = cell.source.rstrip()
    if asserts:
        cell.source += "\n### BEGIN HIDDEN TESTS\n" + "\n".join(asserts) + "\n### END HIDDEN TESTS"
    else:
        cell.source = _guard_not_implemented(cell.source)
    points = points_per_check * max(1, len(asserts))
    cell_id = _unique(f"test_{fns[0] if fns else 'cell'}", used)
    cell.metadata["nbgrader"] = _nbgrader(cell_id, grade=True, locked=True, points=points)
    if not asserts and not re.search(r"^\s*assert\b", cell.source, re.M):
        return f"{cell_id}: no checker call and no assert, so a wrong answer gets full points"
    return ""


NOT_DONE = (
    "❌ Not implemented yet: write your code where the exercise says "
    "`raise NotImplementedError()`, run that cell, then this one again."
)


def _guard_not_implemented(source: str) -> str:
    """Wrap a check cell that calls the learner's function directly.

    In the release an unanswered exercise prints a friendly line instead of a
    traceback; the hidden ``raise`` (restored when autograding) still fails the
    cell, so an unanswered exercise scores 0.
    """
    body = textwrap.indent(source, "    ")
    guarded = (f"try:\n{body}\nexcept NotImplementedError:\n    print({NOT_DONE!r})\n"
               "    ### BEGIN HIDDEN TESTS\n    raise\n    ### END HIDDEN TESTS")  # fmt: skip
    try:
        ast.parse(guarded)
    except SyntaxError:  # magics and the like: leave the cell as it is
        return source
    return guarded


def _strip_tags(cell, *names: str) -> None:
    kept = [t for t in tags(cell) if t not in names]
    if kept:
        cell.metadata["tags"] = kept
    else:
        cell.metadata.pop("tags", None)


@dataclass
class Conversion:
    """What :func:`to_source_notebook` did, for the build's report."""

    solutions: int = 0
    checks: int = 0
    written: int = 0
    points: int = 0
    dropped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _solution_cell(cell, used: set[str], report: Conversion) -> str:
    """Make a code solution cell an nbgrader answer cell; return its function's name."""
    cell.source, dropped = wrap_solution(cell.source)
    report.dropped += dropped
    report.solutions += 1
    function = _first_function(cell.source) or "cell"
    cell.metadata["nbgrader"] = _nbgrader(_unique(f"solution_{function}", used), solution=True)
    _strip_tags(cell, SOLUTION, HIDE_INPUT)
    return function


def _written_cell(cell, used: set[str], report: Conversion, written_points: int) -> list:
    """A written solution: a graded answer cell, or the solution plus a free answer cell."""
    report.written += 1
    if not written_points:
        return [cell, nbformat.v4.new_markdown_cell(ANSWER_CELL)]
    name = _unique(f"written_{report.written}", used)
    cell.metadata["nbgrader"] = _nbgrader(name, grade=True, solution=True, points=written_points)
    _strip_tags(cell, SOLUTION)
    report.points += written_points
    return [cell]


def to_source_notebook(nb, points_per_check: int = POINTS_PER_CHECK, written_points: int = 0):
    """The nbgrader source version of a chapter notebook: ``(notebook, Conversion)``."""
    nb, report, used, answers, cells = copy.deepcopy(nb), Conversion(), set(), [], []
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if cell.cell_type == "code" and SOLUTION in tags(cell) and _defines_function(cell):
            answers.append(_solution_cell(cell, used, report))
        elif cell.cell_type == "code" and CHECK in tags(cell):
            if warning := _check_cell(cell, points_per_check, used, answers):
                report.warnings.append(warning)
            report.checks += 1
            report.points += cell.metadata["nbgrader"]["points"]
        if cell.cell_type == "markdown" and SOLUTION in tags(cell):
            cells += _written_cell(cell, used, report, written_points)
        else:
            cells.append(cell)
    if report.solutions or report.checks:
        note = STUDENT_NOTE.format(written=WRITTEN_GRADED if written_points else WRITTEN_FREE)
        cells.insert(1, nbformat.v4.new_markdown_cell(note))
    nb.cells = cells
    return nb, report


# ---------------------------------------------------------------------------
# The course folder and the nbgrader commands
# ---------------------------------------------------------------------------


def _write_notebook(nb, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.validator.normalize(nb)
    nbformat.write(nb, path)


def build_course(
    chapters: Sequence[Path],
    course_dir: Path,
    points_per_check: int = POINTS_PER_CHECK,
    written_points: int = 0,
) -> dict[str, Conversion]:
    """Write ``course_dir/source/<chapter>/<chapter>.ipynb`` and ``nbgrader_config.py``.

    Chapters without exercises are skipped. Returns the conversions by assignment name.
    """
    course_dir = Path(course_dir)
    course_dir.mkdir(parents=True, exist_ok=True)
    (course_dir / "nbgrader_config.py").write_text(CONFIG)
    done = {}
    for path in map(Path, chapters):
        nb, report = to_source_notebook(nbformat.read(path, as_version=4), points_per_check,
                                        written_points)  # fmt: skip
        if report.solutions or report.checks:
            _write_notebook(nb, course_dir / "source" / path.stem / path.name)
            done[path.stem] = report
    return done


def nbgrader(args: Sequence[str], course_dir: Path, check: bool = True):
    """Run ``nbgrader <args>`` in ``course_dir`` with this environment's ``bin`` on PATH."""
    bin_dir = Path(sys.executable).parent
    env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [str(bin_dir / "nbgrader"), *args]
    proc = subprocess.run(cmd, cwd=course_dir, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:])} failed:\n{proc.stdout}{proc.stderr}")
    return proc


def release(course_dir: Path, assignments: Sequence[str]) -> None:
    """``nbgrader generate_assignment`` for each assignment (release/ without solutions)."""
    for name in assignments:
        nbgrader(["generate_assignment", name, "--force"], course_dir)
        for path in (Path(course_dir) / "release" / name).glob("*.ipynb"):
            _assert_no_solutions(path)


def _assert_no_solutions(path: Path) -> None:
    """Refuse a release that still holds a solution (for example after a config error)."""
    for cell in nbformat.read(path, as_version=4).cells:
        leaks = ("BEGIN SOLUTION", "HIDDEN TESTS")
        if SOLUTION in tags(cell) or any(leak in cell.source for leak in leaks):
            raise RuntimeError(f"{path} still contains a solution:\n{cell.source[:300]}")


def submit(course_dir: Path, assignment: str, student: str, notebook: Path) -> Path:
    """Place ``notebook`` as ``student``'s submission (what ``nbgrader collect`` does)."""
    dest = Path(course_dir) / "submitted" / student / assignment / f"{assignment}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(notebook, dest)
    return dest


def grade(course_dir: Path, assignment: str, csv: str = "grades.csv") -> Path:
    """``nbgrader autograde``, ``generate_feedback`` and ``export``: the grades CSV's path."""
    nbgrader(["autograde", assignment, "--force"], course_dir)
    nbgrader(["generate_feedback", assignment, "--force"], course_dir)
    nbgrader(["export", f"--to={csv}"], course_dir)
    return Path(course_dir) / csv


# ---------------------------------------------------------------------------
# The instructor's guide: one section per chapter, generated from the notebooks
# ---------------------------------------------------------------------------

EXERCISE = re.compile(r"^###\s+Exercise\s+([\d.]+):?\s*(.*)$", re.M)
GUIDE_BEGIN = (
    "<!-- BEGIN GENERATED: python -m mha.grading.coursework guide --write instructors.md -->"
)
GUIDE_END = "<!-- END GENERATED -->"
MINUTES = {"reading_words_per_minute": 120, "code_cell": 1, "coding": 15, "written": 8}


@dataclass
class ChapterSummary:
    """What the instructor's guide says about one chapter."""

    name: str
    title: str
    goals: list[str]
    exercises: list[tuple[str, str, str]]  # (number, title, "coding" or "written")
    points: int
    minutes: int


def _bullets(text: str) -> list[str]:
    """The items of the Markdown lists in ``text``, continuation lines joined."""
    items: list[str] = []
    for line in text.split("\n"):
        start = re.match(r"^\s*(?:[-*]|\d+\.)\s+(.+)$", line)
        if start:
            items.append(start.group(1).strip())
        elif items and line.startswith((" ", "\t")) and line.strip():
            items[-1] += " " + line.strip()
    return items


def _goals(cells) -> list[str]:
    """The bullets of the chapter's ``## Learning goals`` section (up to the next heading)."""
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    found = re.search(r"^## Learning goals\s*$(.*?)(?=^#{1,2} )", text + "\n## end", re.M | re.S)
    return _bullets(found.group(1)) if found else []


def _exercises(cells) -> list[tuple[str, str, str]]:
    found = []
    for i, cell in enumerate(cells):
        for number, title in EXERCISE.findall(cell.source) if cell.cell_type == "markdown" else []:
            nxt = next((c for c in cells[i + 1 :] if SOLUTION in tags(c)), None)
            kind = "coding" if nxt and nxt.cell_type == "code" else "written"
            found.append((number, title.strip(), kind))
    return found


def chapter_summary(path: Path, points_per_check: int = POINTS_PER_CHECK) -> ChapterSummary:
    """Title, learning goals, exercises, points and a time estimate of a chapter notebook.

    The time is a rule of thumb: reading at 120 words a minute, a minute per code
    cell, 15 minutes per coding exercise and 8 per written one, rounded up to 5.
    """
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if SOLUTION not in tags(c)]
    title = next((c.source.split("\n")[0].lstrip("# ") for c in nb.cells), path.stem)
    exercises = _exercises(nb.cells)
    points = sum(points_per_check * max(1, len(hidden_tests(c.source)))
                 for c in nb.cells if CHECK in tags(c))  # fmt: skip
    words = sum(len(c.source.split()) for c in cells if c.cell_type == "markdown")
    minutes = words / MINUTES["reading_words_per_minute"]
    minutes += MINUTES["code_cell"] * sum(c.cell_type == "code" for c in cells)
    minutes += sum(MINUTES[kind] for _, _, kind in exercises)
    return ChapterSummary(path.stem, title, _goals(nb.cells), exercises, points,
                          int(5 * -(-minutes // 5)))  # fmt: skip


def guide_markdown(chapters: Sequence[Path], points_per_check: int = POINTS_PER_CHECK) -> str:
    """The generated part of ``instructors.md``: an overview table and a section per chapter."""
    rows, sections = [], []
    summaries = (chapter_summary(Path(p), points_per_check) for p in chapters)
    for s in (s for s in summaries if s.goals or s.exercises):
        coding = sum(kind == "coding" for *_, kind in s.exercises)
        rows.append(f"| {{doc}}`chapters/{s.name}` | {coding} | {len(s.exercises) - coding} "
                    f"| {s.points} | {s.minutes} min |")  # fmt: skip
        goals = "\n".join(f"- {g}" for g in s.goals) or "- (none listed yet)"
        exercises = "\n".join(f"- **{n}** {t} ({k})" for n, t, k in s.exercises) or "- (none yet)"
        number = f"Chapter {int(s.name[:2])}: " if s.name[:2].isdigit() else ""
        sections.append(f"### {number}{s.title}\n\n*Assignment `{s.name}`: {s.points} "
                        f"points, about {s.minutes} minutes.*\n\nLearning goals:\n\n{goals}"
                        f"\n\nExercises:\n\n{exercises}\n")  # fmt: skip
    head = "| Chapter | Coding exercises | Written exercises | Points | Time |\n" + "|---" * 5 + "|"
    total = sum(int(r.split("|")[4]) for r in rows) if rows else 0
    body = "\n".join(rows) + f"\n| **Total** | | | **{total}** | |"
    return f"{GUIDE_BEGIN}\n{head}\n{body}\n\n" + "\n".join(sections) + GUIDE_END


def write_guide(page: Path, chapters: Sequence[Path]) -> None:
    """Replace the generated part of ``page`` (between the markers) with fresh content."""
    text = page.read_text()
    start, end = text.index(GUIDE_BEGIN), text.index(GUIDE_END) + len(GUIDE_END)
    page.write_text(text[:start] + guide_markdown(chapters) + text[end:])


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _chapters(names: Sequence[str]) -> list[Path]:
    return [Path(n) for n in names] if names else sorted((ROOT / "chapters").glob("[0-9]*.ipynb"))


def _cmd_course(a) -> None:
    done = build_course(_chapters(a.chapters), a.course_dir, a.points, a.written_points)
    for name, r in done.items():
        print(f"{name}: {r.solutions} solutions, {r.checks} checks, {r.written} written, "
              f"{r.points} points")  # fmt: skip
        for warning in r.warnings:
            print(f"  warning: {warning}")
        for code in r.dropped:
            print(f"  warning: dropped from a solution cell (would fail in the release): {code!r}")
    if a.no_release:
        print(f"nbgrader course in {a.course_dir}: source/ only (with solutions); make the "
              "release with `nbgrader generate_assignment <name>` in that folder")  # fmt: skip
        return
    release(a.course_dir, list(done))
    print(f"nbgrader course in {a.course_dir}: source/ (with solutions) and release/ (without)")


def _cmd_grade(a) -> None:
    csv = grade(a.course_dir, a.assignment, a.csv)
    print(f"grades: {csv}\nfeedback: {Path(a.course_dir) / 'feedback'}")


def _cmd_demo(a) -> None:
    """Build, release, submit the reference solutions as student 'reference', grade."""
    a.no_release = False
    _cmd_course(a)
    source = Path(a.course_dir) / "source" / a.assignment / f"{a.assignment}.ipynb"
    submit(a.course_dir, a.assignment, "reference", source)
    _cmd_grade(a)
    print((Path(a.course_dir) / a.csv).read_text())


def _cmd_guide(a) -> None:
    if a.write:
        write_guide(Path(a.write), _chapters(a.chapters))
        print(f"updated {a.write}")
    else:
        print(guide_markdown(_chapters(a.chapters)))


def _cmd_student_book(a) -> None:
    from mha.grading.student_edition import build_student_edition

    html = build_student_edition(Path(a.source), Path(a.output))
    print(f"student edition: {html / 'index.html'}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mha.grading.coursework", description=__doc__.split("\n")[0]
    )
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--course-dir", type=Path, default=Path("course"))
    common.add_argument("--chapters", nargs="*", default=[], help="default: chapters/[0-9]*.ipynb")
    common.add_argument("--points", type=int, default=POINTS_PER_CHECK, help="per checker call")
    common.add_argument("--written-points", type=int, default=0, help="0: written answers ungraded")
    common.add_argument("--csv", default="grades.csv")
    c = sub.add_parser("course", parents=[common], help="chapters -> nbgrader source + release")
    c.add_argument("--no-release", action="store_true", help="skip nbgrader generate_assignment")
    c.set_defaults(run=_cmd_course)
    g = sub.add_parser("grade", parents=[common], help="autograde + feedback + grades CSV")
    g.add_argument("assignment")
    g.set_defaults(run=_cmd_grade)
    d = sub.add_parser("demo", parents=[common], help="grade the reference solutions end to end")
    d.add_argument("assignment")
    d.set_defaults(run=_cmd_demo)
    gd = sub.add_parser("guide", parents=[common], help="instructor's guide chapter table")
    gd.add_argument("--write", metavar="PAGE", help="update PAGE between its markers")
    gd.set_defaults(run=_cmd_guide)
    s = sub.add_parser("student-book", help="build the book without solutions")
    s.add_argument("--source", default=str(ROOT))
    s.add_argument("--output", default=str(ROOT / "_build" / "student"))
    s.set_defaults(run=_cmd_student_book)
    return p


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m mha.grading.coursework``."""
    args = _parser().parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()

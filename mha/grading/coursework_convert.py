"""Chapter notebook -> nbgrader source notebook (part of :mod:`mha.grading.coursework`).

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
"""

from __future__ import annotations

import ast
import copy
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import nbformat

if TYPE_CHECKING:
    from nbformat import NotebookNode

__all__ = [
    "SOLUTION",
    "CHECK",
    "tags",
    "wrap_solution",
    "stub_solution",
    "guard_check",
    "hidden_tests",
    "to_source_notebook",
    "Conversion",
    "POINTS_PER_CHECK",
]

SOLUTION, CHECK, HIDE_INPUT = "solution", "check", "hide-input"
POINTS_PER_CHECK = 2
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


def tags(cell: dict) -> list[str]:
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


STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
_HIDDEN_BLOCK = re.compile(rf"^(?P<indent>[ \t]*){BEGIN}\n.*?^[ \t]*{END}$", re.M | re.S)


def stub_solution(source: str) -> str:
    """What the release shows of a solution cell: each hidden body becomes the stub.

    The same text nbgrader's ``ClearSolutions`` writes (``# YOUR CODE HERE`` and
    ``raise NotImplementedError()``), so the check cells run and say "not implemented yet".
    """
    wrapped, _ = wrap_solution(source)
    return _HIDDEN_BLOCK.sub(lambda m: textwrap.indent(STUB, m["indent"]), wrapped)


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


def guard_check(source: str) -> str:
    """A check cell that calls the learner's function, guarded as in the release (no hidden part).

    An unanswered exercise then prints a friendly line instead of a traceback.
    """
    guarded = _guard_not_implemented(source)
    return re.sub(
        r"\n[ \t]*### BEGIN HIDDEN TESTS\n.*?### END HIDDEN TESTS", "", guarded, flags=re.S
    )


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


def to_source_notebook(
    nb: NotebookNode, points_per_check: int = POINTS_PER_CHECK, written_points: int = 0
) -> tuple[NotebookNode, Conversion]:
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

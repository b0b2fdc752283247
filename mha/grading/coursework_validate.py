"""A submission checked, and repaired, against the course's source notebook before grading.

Part of :mod:`mha.grading.coursework`. nbgrader trusts the metadata a
submission carries: an answer cell that claims a test cell's ``grade_id``, a
test cell marked as a solution, or a cell turned into markdown makes
``nbgrader autograde`` abort ("Inconsistent checksums", ``NoResultFound``).
:func:`validate_submission` restores, from ``source/``, the cell type and the
nbgrader metadata (grade id, solution and grade flags, points) of every locked
and graded cell, the text of every locked cell, and puts back the cells a
student deleted (a missing answer as the release's stub). A grade id on two
cells cannot be repaired without guessing which one is the answer: the
submission is rejected with a reason the instructor can act on.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from mha.grading.coursework_convert import BEGIN, END, STUB

__all__ = ["Validation", "graded_cells", "validate_submission"]

_SOLUTION_BLOCK = re.compile(rf"^(?P<indent>[ \t]*){BEGIN}\n.*?^[ \t]*{END}$", re.M | re.S)
_HIDDEN_TESTS = re.compile(
    r"^[ \t]*### BEGIN HIDDEN TESTS\n.*?^[ \t]*### END HIDDEN TESTS\n?", re.M | re.S
)
ANSWER = "YOUR ANSWER HERE"


@dataclass
class Validation:
    """What :func:`validate_submission` found: the repaired notebook, or why there is none."""

    notebook: nbformat.NotebookNode | None
    problem: str = ""  # set: the submission cannot be graded (for the instructor)
    advice: str = ""  # what the instructor can do about it
    changes: list[str] = field(default_factory=list)  # what was restored


def _meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def _grade_id(cell) -> str | None:
    gid = _meta(cell).get("grade_id")
    return gid if isinstance(gid, str) and gid else None


def graded_cells(source: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    """The source notebook's nbgrader cells (graded, answer or locked), by grade id, in order."""
    found = {}
    for cell in source.cells:
        meta = _meta(cell)
        if _grade_id(cell) and any(meta.get(k) for k in ("grade", "solution", "locked")):
            found[meta["grade_id"]] = cell
    return found


def _released(cell) -> nbformat.NotebookNode:
    """The release's version of a source cell: answers get the stub (what ClearSolutions does)."""
    cell = copy.deepcopy(cell)
    if _meta(cell).get("solution"):
        if cell.cell_type == "code":
            cell.source = _SOLUTION_BLOCK.sub(
                lambda m: "\n".join(m["indent"] + line for line in STUB.split("\n")), cell.source
            )
        else:
            cell.source = ANSWER
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    return cell


def _visible(source: str) -> str:
    """A cell's text without hidden tests (what the release shows), for comparisons."""
    return _HIDDEN_TESTS.sub("", source).strip()


def _set_type(cell, cell_type: str) -> None:
    """Make ``cell`` a code or markdown cell (the shape nbformat expects of each)."""
    cell.cell_type = cell_type
    if cell_type == "code":
        cell.setdefault("outputs", [])
        cell.setdefault("execution_count", None)
    else:
        cell.pop("outputs", None)
        cell.pop("execution_count", None)


def _restore(cell, src, gid: str, changes: list[str]) -> None:
    """Give ``cell`` the type, nbgrader metadata and (if locked) the text of ``src``."""
    if cell.cell_type != src.cell_type:
        changes.append(f"{gid}: cell type {cell.cell_type} -> {src.cell_type}")
        _set_type(cell, src.cell_type)
    want = copy.deepcopy(_meta(src)) | {"cell_type": src.cell_type}  # nbgrader adds cell_type
    have = {k: v for k, v in _meta(cell).items() if k != "checksum"}
    have.setdefault("cell_type", src.cell_type)  # absent in source copies; the type is above
    for key in sorted(set(want) | set(have)):
        if want.get(key) != have.get(key):
            changes.append(f"{gid}: nbgrader {key} {have.get(key)!r} -> {want.get(key)!r}")
    cell.metadata["nbgrader"] = want
    locked_text = want.get("locked") and not want.get("solution")
    if locked_text and _visible(cell.source) != _visible(src.source):
        changes.append(f"{gid}: locked cell's text restored")
    if locked_text:
        cell.source = src.source


def _duplicates(cells, known) -> str:
    """A reason naming the first grade id that is on two cells (1-based cell numbers), or ''."""
    where: dict[str, list[int]] = {}
    for i, cell in enumerate(cells):
        if (gid := _grade_id(cell)) in known:
            where.setdefault(gid, []).append(i + 1)
    for gid, places in where.items():
        if len(places) > 1:
            cells_text = ", ".join(map(str, places))
            return f"grade id {gid!r} is on {len(places)} cells (cells {cells_text})"
    return ""


def _read(path: Path):
    try:
        return nbformat.read(path, as_version=4), ""
    except Exception as exc:
        first = str(exc).strip().split("\n")[0][:200]
        return None, f"the file is not a readable notebook ({type(exc).__name__}: {first})"


def validate_submission(path: Path, source_path: Path) -> Validation:
    """Check ``path`` against the source notebook and repair it (see the module's docstring)."""
    nb, problem = _read(Path(path))
    if nb is None:
        advice = "ask the student to download the notebook again from Jupyter and resubmit"
        return Validation(None, problem, advice)
    source = graded_cells(nbformat.read(source_path, as_version=4))
    if problem := _duplicates(nb.cells, source):
        advice = (
            "a cell was copied or its metadata edited: delete the extra cell (keep the answer) "
            "in the submitted notebook, or ask the student to resubmit from a fresh copy of "
            "the release, then grade again"
        )
        return Validation(None, problem, advice)
    try:
        return Validation(nb, changes=_repair(nb, source))
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        problem = f"the notebook's structure is broken ({type(exc).__name__}: {exc})"
        return Validation(None, problem, "ask the student to resubmit from a fresh copy")


def _repair(nb, source: dict) -> list[str]:
    """Restore known cells, strip unknown nbgrader metadata, put back missing cells."""
    changes: list[str] = []
    cells, seen = [], {}
    for cell in nb.cells:
        gid = _grade_id(cell)
        if gid in source:
            _restore(cell, source[gid], gid, changes)
            seen[gid] = cell
        elif "nbgrader" in cell.get("metadata", {}):
            changes.append(f"{gid or 'a cell'}: nbgrader metadata not in the source, removed")
            del cell.metadata["nbgrader"]
        cells.append(cell)
    previous = None
    for gid, src in source.items():
        if gid not in seen:
            changes.append(f"{gid}: missing, the release's version put back")
            seen[gid] = _released(src)
            at = next((i + 1 for i, c in enumerate(cells) if c is previous), 0)
            cells.insert(at, seen[gid])
        previous = seen[gid]
    nb.cells = cells
    return changes

"""The student edition of the book: every solution removed, then built with jupyter-book.

The book's sources are copied to a scratch folder. There

* a code cell tagged ``solution`` that defines the exercise's function becomes
  the release's stub (signature, docstring, ``raise NotImplementedError()``), so
  that the check cells below it run in a downloaded notebook and say "not
  implemented yet"; a check cell that calls the function itself gets the same
  friendly guard as in the nbgrader release;
* every other cell tagged ``solution`` (written answers, their demonstrations)
  is deleted, and the outputs of ``check`` cells are cleared (a green tick under
  a missing solution would only confuse);
* in Markdown pages (``instructors.md``), everything between
  ``<!-- BEGIN INSTRUCTORS ONLY -->`` and ``<!-- END INSTRUCTORS ONLY -->`` (how
  grading works inside) is removed.

The copy is built with ``jupyter-book build -W -n --keep-going`` and the HTML
lands in ``_build/student/html``.

Command line: ``python -m mha.grading.student_edition [--source .] [--output _build/student]``
(also ``python -m mha.grading.coursework student-book``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from mha.grading.coursework_convert import guard_check, hidden_tests, stub_solution

__all__ = ["strip_solutions", "strip_instructors_only", "copy_sources", "build_book"]
__all__ += ["build_student_edition", "main"]

INSTRUCTORS_ONLY = re.compile(
    r"<!-- BEGIN INSTRUCTORS ONLY -->.*?<!-- END INSTRUCTORS ONLY -->\n?", re.S
)

ROOT = Path(__file__).resolve().parents[2]  # the repository (mha/grading/student_edition.py)
SKIP = ("_build", ".venv", ".git", "course", "__pycache__", ".ruff_cache", ".pytest_cache",
        "*.egg-info", ".ipynb_checkpoints", "tests", "benchmarks")  # fmt: skip


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _stub(cell):
    """A code solution cell that defines a function, as the release's stub (or None)."""
    if cell.cell_type != "code" or not re.search(r"^def\s+\w+", cell.source, re.M):
        return None
    cell.source = stub_solution(cell.source)
    cell.outputs, cell.execution_count = [], None
    kept = [t for t in _tags(cell) if t not in ("solution", "hide-input")]
    cell.metadata["tags"] = kept
    if not kept:
        del cell.metadata["tags"]
    return cell


def strip_solutions(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` without solutions: answers as stubs, other ``solution`` cells gone, checks cleared."""
    cells = []
    for cell in nb.cells:
        if "solution" in _tags(cell):
            cell = _stub(cell)
        elif "check" in _tags(cell):
            cell.outputs, cell.execution_count = [], None
            if not hidden_tests(cell.source):
                cell.source = guard_check(cell.source)
        if cell is not None:
            cells.append(cell)
    nb.cells = cells
    return nb


def strip_instructors_only(text: str) -> str:
    """``text`` without its ``<!-- BEGIN/END INSTRUCTORS ONLY -->`` parts."""
    return INSTRUCTORS_ONLY.sub("", text)


def copy_sources(source: Path, dest: Path) -> int:
    """Copy the book from ``source`` to ``dest`` without solutions; return the cells removed."""
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(*SKIP), dirs_exist_ok=True)
    removed = 0
    for path in dest.rglob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        before = sum("solution" in _tags(c) for c in nb.cells)
        nbformat.write(strip_solutions(nb), path)
        removed += before
    for path in dest.rglob("*.md"):
        path.write_text(strip_instructors_only(path.read_text()))
    return removed


def build_book(
    source: Path, output: Path, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``jupyter-book build source -W -n --keep-going`` into ``output``; return the process.

    The strict build of the course (every warning is an error); the HTML lands
    in ``output / "_build" / "html"``. Used for both editions and by the tests.
    """
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(source), "-W", "-n", "--keep-going", "--path-output", str(output)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def build_student_edition(source: Path = ROOT, output: Path = ROOT / "_build" / "student") -> Path:
    """Build the student edition of the book in ``source``; return ``output / "html"``.

    Raises ``RuntimeError`` with the build log's tail if jupyter-book reports a
    warning or an error (``-W -n --keep-going``, as for the normal edition).
    """
    with tempfile.TemporaryDirectory(prefix="mha-student-") as tmp:
        src, out = Path(tmp) / "src", Path(tmp) / "out"
        removed = copy_sources(Path(source), src)
        proc = build_book(src, out)
        if proc.returncode != 0:
            log = (proc.stdout + proc.stderr)[-4000:]
            raise RuntimeError(f"student edition build failed:\n{log}")
        html = Path(output) / "html"
        shutil.rmtree(html, ignore_errors=True)
        shutil.copytree(out / "_build" / "html", html)
    print(f"removed or stubbed {removed} solution cells")
    return html


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m mha.grading.student_edition``."""
    p = argparse.ArgumentParser(prog="python -m mha.grading.student_edition", description=__doc__)
    p.add_argument("--source", type=Path, default=ROOT, help="the book's folder")
    p.add_argument("--output", type=Path, default=ROOT / "_build" / "student")
    a = p.parse_args(argv)
    print(f"student edition: {build_student_edition(a.source, a.output) / 'index.html'}")


if __name__ == "__main__":
    main()

"""The student edition of the book: every solution removed, then built with jupyter-book.

The book's sources are copied to a scratch folder; there every cell tagged
``solution`` (code solutions and written answers, see CONTRIBUTING.md) is
deleted and the outputs of ``check`` cells are cleared (a green tick under a
missing solution would only confuse). The copy is built with
``jupyter-book build -W -n --keep-going`` and the HTML lands in
``_build/student/html``.

Command line: ``python -m mha.grading.student_edition [--source .] [--output _build/student]``
(also ``python -m mha.grading.coursework student-book``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

__all__ = ["strip_solutions", "copy_sources", "build_book", "build_student_edition", "main"]

ROOT = Path(__file__).resolve().parents[2]  # the repository (mha/grading/student_edition.py)
SKIP = ("_build", ".venv", ".git", "course", "__pycache__", ".ruff_cache", ".pytest_cache",
        "*.egg-info", ".ipynb_checkpoints", "tests", "benchmarks")  # fmt: skip


def strip_solutions(nb):
    """``nb`` without ``solution`` cells, with the outputs of ``check`` cells cleared."""
    nb.cells = [c for c in nb.cells if "solution" not in c.get("metadata", {}).get("tags", [])]
    for cell in nb.cells:
        if "check" in cell.get("metadata", {}).get("tags", []):
            cell.outputs, cell.execution_count = [], None
    return nb


def copy_sources(source: Path, dest: Path) -> int:
    """Copy the book from ``source`` to ``dest`` without solutions; return the cells removed."""
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(*SKIP), dirs_exist_ok=True)
    removed = 0
    for path in dest.rglob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        before = len(nb.cells)
        nbformat.write(strip_solutions(nb), path)
        removed += before - len(nb.cells)
    return removed


def build_book(source: Path, output: Path, timeout: float | None = None):
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
    print(f"removed {removed} solution cells")
    return html


def main(argv=None) -> None:
    """Entry point of ``python -m mha.grading.student_edition``."""
    p = argparse.ArgumentParser(prog="python -m mha.grading.student_edition", description=__doc__)
    p.add_argument("--source", type=Path, default=ROOT, help="the book's folder")
    p.add_argument("--output", type=Path, default=ROOT / "_build" / "student")
    a = p.parse_args(argv)
    print(f"student edition: {build_student_edition(a.source, a.output) / 'index.html'}")


if __name__ == "__main__":
    main()

"""The student edition has no solutions; the normal edition keeps them, collapsed.

Both editions of a small fixture book (one chapter with three coding exercises
and a written one, tagged as in CONTRIBUTING.md, and an instructors' page with an
instructors-only part) are built with jupyter-book.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import nbformat
import pytest

from mha.grading.student_edition import build_book, build_student_edition, strip_instructors_only

BOOK = Path(__file__).parent / "fixtures" / "book"
SOLUTIONS = [  # code and prose that only the solution cells contain
    "np.where(s == 0, 1.0, s)",
    "np.triu(np.ones((L, L), dtype=bool), k=1)",
    "the largest exponent is exp(0) = 1",
]


def text_of(path: Path) -> str:
    """A built file's text, with HTML tags removed (code is split into highlighted spans)."""
    raw = path.read_text(errors="replace")
    return html.unescape(re.sub(r"<[^>]+>", "", raw)) if path.suffix == ".html" else raw


@pytest.fixture(scope="module")
def editions(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("editions")
    proc = build_book(BOOK, tmp, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return tmp / "_build" / "html", build_student_edition(BOOK, tmp / "student")


def test_student_edition_has_no_solution_anywhere(editions):
    _, student = editions
    files = [p for p in student.rglob("*") if p.suffix in (".html", ".ipynb", ".js", ".txt")]
    assert any(p.name == "fixture_chapter.html" for p in files)
    for path in files:
        text = text_of(path)
        leaks = [s for s in SOLUTIONS if s in text]
        assert not leaks, f"{path.relative_to(student)} shows {leaks}"


def test_student_edition_keeps_the_exercises_and_clears_check_outputs(editions):
    _, student = editions
    page = text_of(student / "fixture_chapter.html")
    assert "Exercise 1.1: a stable softmax" in page and "my_softmax(x, axis=-1)" in page
    assert "mha.grading.checks.check_softmax(my_softmax)" in page
    assert "passed all" not in page


def test_normal_edition_shows_solutions_in_collapsible_blocks(editions):
    normal, _ = editions
    raw = (normal / "fixture_chapter.html").read_text()
    hidden_code = re.findall(r'<details class="[^"]*hide above-input">(.*?)</details>', raw, re.S)
    assert len(hidden_code) == 4  # three coding solutions and one hidden demonstration
    assert SOLUTIONS[0] in html.unescape(re.sub(r"<[^>]+>", "", hidden_code[0]))
    dropdown = re.search(r'<div class="dropdown admonition">(.*?)</div>', raw, re.S)
    assert dropdown and SOLUTIONS[2] in dropdown.group(1)
    assert "passed all" in text_of(normal / "fixture_chapter.html")


def test_student_edition_keeps_stubs_so_the_check_cells_run(editions):
    """The downloadable notebook has the stubs: run top to bottom, it says what is left to do."""
    nbclient = pytest.importorskip("nbclient")
    _, student = editions
    nb = nbformat.read(next(student.rglob("fixture_chapter.ipynb")), as_version=4)
    stubs = [c for c in nb.cells if re.search(r"^ +raise NotImplementedError\(\)$", c.source, re.M)]
    assert [re.match(r"def (\w+)", c.source)[1] for c in stubs] == [
        "my_softmax",
        "my_causal_mask",
        "my_scale",
    ]
    assert all("hide-input" not in c.metadata.get("tags", []) for c in stubs)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()  # no error
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert printed.count("is not implemented yet") == 2 and "Not implemented yet" in printed


def test_student_edition_leaves_out_the_instructors_only_parts(editions):
    normal, student = editions
    assert "quiet=True" in text_of(normal / "instructors.html")
    page = text_of(student / "instructors.html")
    assert "Points and times per chapter" in page and "The chapters" in page
    assert "quiet=True" not in page and "How grading works inside" not in page


def test_the_guide_marks_its_grading_internals_instructors_only():
    guide = (Path(__file__).resolve().parents[1] / "instructors.md").read_text()
    public = strip_instructors_only(guide)
    assert "| Chapter | Coding exercises |" in public  # the chapter table stays
    for internal in ("BEGIN SOLUTION", "quiet=True", "bwrap", "grade id", "nbgrader autograde"):
        assert internal in guide and internal not in public, internal

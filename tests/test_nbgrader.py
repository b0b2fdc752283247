"""The instructor workflow with nbgrader, end to end, on a small fixture chapter.

One course is built in a temporary folder; four students submit: the reference
solutions, the unanswered release, and two submissions with one classic bug
each. ``nbgrader autograde`` / ``generate_feedback`` / ``export`` then grade them.
"""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import nbformat
import pytest

from mha.grading import coursework as cw

FIXTURE = Path(__file__).parent / "fixtures" / "book" / "fixture_chapter.ipynb"
NAME = FIXTURE.stem
STUB = "    # YOUR CODE HERE\n    raise NotImplementedError()"
BODIES = {
    "my_softmax": "    e = np.exp(x - np.max(x, axis=axis, keepdims=True))\n"
    "    e = np.nan_to_num(e)\n    return e / np.maximum(e.sum(axis=axis, keepdims=True), 1e-300)",
    "my_causal_mask": "    return np.triu(np.ones((L, L), dtype=bool), k=1)",
    "my_scale": "    return d**-0.5",
}
BUGS = {  # student -> (function, buggy body, words of the bug's message)
    "overflow": ("my_softmax", "    e = np.exp(x)\n    return e / e.sum(axis=axis, keepdims=True)",
                 "Your softmax overflows on large logits"),
    "leaky": ("my_causal_mask", "    return np.tril(np.ones((L, L), dtype=bool), k=-1)",
              "Future tokens leak through your mask"),
    "unscaled": ("my_scale", "    return 1.0 / d", "AssertionError"),
}  # fmt: skip
TESTS = ("test_my_softmax", "test_my_causal_mask", "test_my_scale")


def fill(release: Path, bodies: dict[str, str], dest: Path) -> Path:
    """A student's answer: the release with the stubs of ``bodies``' functions filled in."""
    nb = nbformat.read(release, as_version=4)
    for cell in nb.cells:
        for fn, body in bodies.items():
            if f"def {fn}(" in cell.source:
                cell.source = cell.source.replace(STUB, body)
    nbformat.write(nb, dest)
    return dest


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """Build, release, submit four students, grade: the course folder."""
    root = tmp_path_factory.mktemp("course")
    done = cw.build_course([FIXTURE], root)
    cw.release(root, list(done))
    release = root / "release" / NAME / f"{NAME}.ipynb"
    answers = {"reference": BODIES, "blank": {}}
    answers |= {s: BODIES | {fn: body} for s, (fn, body, _) in BUGS.items()}
    for student, bodies in answers.items():
        cw.submit(root, NAME, student, fill(release, bodies, root / f"{student}.ipynb"))
    cw.grade(root, NAME)
    return root


def scores(root: Path) -> dict[str, float]:
    with open(root / "grades.csv") as f:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}


def cell_scores(root: Path, student: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(NAME, NAME, student)
        return {g.name: g.score for g in nb.grades}


def test_reference_solutions_score_full_marks(course):
    assert scores(course)["reference"] == 6.0  # three coding exercises, 2 points each
    assert set(cell_scores(course, "reference").values()) == {2.0}


def test_unanswered_release_scores_zero(course):
    assert scores(course)["blank"] == 0.0


def test_unanswered_release_runs_without_error(course):
    """A student who runs the release as handed out sees friendly verdicts, no traceback."""
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(course / "release" / NAME / f"{NAME}.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.outputs)  # fmt: skip
    assert printed.count("is not implemented yet") == 2  # the two mha.grading.checks calls
    assert printed.count("Not implemented yet") == 1  # the cell with its own asserts


@pytest.mark.parametrize("student", list(BUGS))
def test_a_classic_bug_loses_exactly_its_points_and_is_named(course, student):
    fn, _, words = BUGS[student]
    assert scores(course)[student] == 4.0
    assert cell_scores(course, student) == {g: 0.0 if g == f"test_{fn}" else 2.0 for g in TESTS}
    feedback = course / "feedback" / student / NAME / f"{NAME}.html"
    assert words in feedback.read_text()


def test_release_has_stubs_and_no_solutions(course):
    release = nbformat.read(course / "release" / NAME / f"{NAME}.ipynb", as_version=4)
    text = "\n".join(c.source for c in release.cells)
    code = "\n".join(c.source for c in release.cells if c.cell_type == "code")
    stubs = [line for line in code.split("\n") if line.strip() == "raise NotImplementedError()"]
    assert len(stubs) == 3
    assert '"""Softmax of ``x`` along ``axis``, stable for large logits."""' in text
    secrets = ("np.triu", "keepdims", "BEGIN", "HIDDEN", "admonition", "exp(0) = 1", "np.sqrt")
    for secret in (*secrets, "the hidden cell shows"):
        assert secret not in text
    source = nbformat.read(course / "source" / NAME / f"{NAME}.ipynb", as_version=4)
    assert "exp(0) = 1" in "\n".join(c.source for c in source.cells)


# --- Unit tests of the conversion (no nbgrader run) ----------------------------------------


def test_wrap_solution_keeps_imports_signatures_and_docstrings():
    source = textwrap.dedent('''\
        import numpy as np


        @staticmethod
        def my_f(
            x,
            axis: int = -1,
        ) -> np.ndarray:
            # a hint that is part of the solution
            return x


        def _helper(x):
            """Doc."""
            return x * 2

        print(my_f(np.ones(2)))''')
    wrapped, dropped = cw.wrap_solution(source)
    assert dropped == ["print(my_f(np.ones(2)))"]
    assert wrapped.startswith("import numpy as np\n\n\n@staticmethod\ndef my_f(\n")
    assert ") -> np.ndarray:\n    ### BEGIN SOLUTION\n    # a hint" in wrapped
    assert '"""Doc."""\n    ### BEGIN SOLUTION\n    return x * 2\n    ### END SOLUTION' in wrapped
    assert cw.wrap_solution("%timeit 1")[0] == "### BEGIN SOLUTION\n%timeit 1\n### END SOLUTION"


def test_hidden_tests_from_check_cells():
    src = "ok = mha.grading.checks.check_softmax(my_softmax)\nchecks.check_causal_mask( my_mask )"
    assert cw.hidden_tests(src) == [
        'assert mha.grading.checks.check_softmax(my_softmax, quiet=True), "my_softmax does not pass yet"',
        'assert checks.check_causal_mask(my_mask, quiet=True), "my_mask does not pass yet"',
    ]


def test_written_answers_can_be_graded_by_hand():
    nb, report = cw.to_source_notebook(nbformat.read(FIXTURE, as_version=4), 3, written_points=1)
    assert (report.solutions, report.checks, report.written, report.points) == (3, 3, 1, 10)
    written = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "written_1"]
    assert written[0].metadata.nbgrader["solution"] and written[0].metadata.nbgrader["points"] == 1
    assert "exp(0) = 1" in written[0].source and "tags" not in written[0].metadata


def test_guide_summary_of_the_fixture():
    s = cw.chapter_summary(FIXTURE)
    assert s.title == "A fixture chapter" and s.points == 6
    assert s.goals == [
        "Write a numerically stable softmax.",
        "Build a causal mask (True = blocked).",
    ]
    assert [kind for *_, kind in s.exercises] == ["coding", "coding", "written", "coding"]
    assert s.minutes % 5 == 0 and s.minutes >= 3 * 15 + 8
    table = cw.guide_markdown([FIXTURE])
    assert "| {doc}`chapters/fixture_chapter` | 3 | 1 | 6 |" in table


def test_check_cells_that_call_the_function_directly_are_guarded(course):
    """In the release a NotImplementedError prints a line; the hidden ``raise`` grades it 0."""
    release = nbformat.read(course / "release" / NAME / f"{NAME}.ipynb", as_version=4)
    source = nbformat.read(course / "source" / NAME / f"{NAME}.ipynb", as_version=4)
    cell = next(c for c in release.cells if "my_scale(d) ** -2" in c.source)
    assert cell.source.startswith("try:\n    for d in (1, 4, 64):")
    assert "except NotImplementedError:" in cell.source and "raise\n" not in cell.source
    hidden = next(c for c in source.cells if "my_scale(d) ** -2" in c.source)
    assert "### BEGIN HIDDEN TESTS\n    raise\n" in hidden.source
    assert hidden.metadata.nbgrader["points"] == 2 and hidden.metadata.nbgrader["locked"]


def test_command_line_guide(capsys):
    cw.main(["guide", "--chapters", str(FIXTURE)])
    out = capsys.readouterr().out
    assert out.startswith(cw.GUIDE_BEGIN) and "### A fixture chapter" in out


def test_command_line_course_without_release(tmp_path, capsys):
    cw.main(["course", "--no-release", "--chapters", str(FIXTURE), "--course-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "source/ only" in out and "release/ (without)" not in out
    assert (tmp_path / "source" / NAME / f"{NAME}.ipynb").exists()
    assert not (tmp_path / "release").exists()

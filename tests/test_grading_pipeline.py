"""A class that tries to break or fool the grader: one submission per attack, and two controls.

The course is the fixture chapter (three coding exercises, 2 points each). Every
attack below was written as a student who wants the points would write it. The
run must complete; no attack may earn a point; the correct control gets 6.0 and
the blank one 0.0 although they are graded after all the attacks (students are
graded in name order); every student gets a feedback page; the submissions that
cannot be graded are listed with a reason and have an empty score in the CSV.
"""

from __future__ import annotations

import csv
import hashlib
import html
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from test_nbgrader import BODIES, FIXTURE, NAME, fill

from mha.grading import coursework as cw
from mha.grading.coursework_report import Outcome
from mha.grading.coursework_run import Limits, bwrap_usable
from mha.grading.coursework_validate import validate_submission

pytestmark = pytest.mark.skipif(not bwrap_usable(), reason="needs bubblewrap (bwrap)")
PACKAGE = Path(cw.__file__).resolve().parent  # mha/grading: where a student would write
CANARY = "_attack_canary.py"
LIMITS = Limits(wall_s=150, cell_s=40, memory_bytes=2 * 2**30)  # cells: import torch, loaded
TOP = "import numpy as np\nimport mha\nimport mha.grading.checks\n"

# Top-level code an attacker adds to the notebook (a new cell after the setup cell).
CELLS = {
    "a_exit": "exit()",
    "a_os_exit": "import os\nos._exit(0)",
    "c_loop": "while True:\n    pass",
    "c_memory": "hog = []\nwhile True:\n    hog.append(bytearray(10**8))",
    "c_flood": "while True:\n    print('x' * 10**6)",
    "d_monkeypatch": TOP + "import mha.grading.checks.core as core\n"
    "mha.grading.checks.check_softmax = lambda *a, **k: True\n"
    "mha.grading.checks.check_causal_mask = lambda *a, **k: True\n"
    "core.evaluate = lambda *a, **k: True\nnp.allclose = lambda *a, **k: True\n"
    "np.array_equal = lambda *a, **k: True",
    "e_write_package": "import pathlib, mha.grading\n"
    "for d in (pathlib.Path(mha.grading.__file__).parent, pathlib.Path('COURSE') / 'source'):\n"
    "    try:\n"
    f"        (d / {CANARY!r}).write_text('hacked = True')\n"
    "    except OSError as e:\n"
    "        print('blocked', type(e).__name__)",
}
# Answers an attacker writes instead of the real ones.
STEAL = (
    "    import sys\n    f = sys._getframe(1)\n    while f is not None:\n"
    "        for v in list(f.f_locals.values()):\n"
    "            if isinstance(v, np.ndarray) and v.shape == np.shape(x) and v is not x:\n"
    "                return v\n        f = f.f_back\n    return np.zeros_like(x)"
)
LAZY = (
    "    import sys\n    class Cheat:\n        def __array__(self, dtype=None, copy=None):\n"
    "            f = sys._getframe(1)\n            while f is not None:\n"
    "                for v in list(f.f_locals.values()):\n"
    "                    if isinstance(v, np.ndarray) and v.shape == np.shape(x) and v is not x:\n"
    "                        return v\n                f = f.f_back\n"
    "            return np.zeros(np.shape(x))\n    return Cheat()"
)
READ = (
    "    import json, pathlib\n    roots = [pathlib.Path(mha.__file__).parents[1], pathlib.Path.cwd().parents[2]]\n"
    "    for nb in (p for r in roots for p in r.rglob('*.ipynb')):\n"
    "        for c in json.loads(nb.read_text())['cells']:\n"
    "            s = ''.join(c['source'])\n"
    "            if s.startswith('def my_softmax') and 'raise NotImplementedError' not in s:\n"
    "                g = {'np': np}\n                exec(s.replace('### BEGIN SOLUTION', ''), g)\n"
    "                return g['my_softmax'](x, axis)\n    raise NotImplementedError()"
)
ANSWERS = {
    "d_stack": {"my_softmax": STEAL},
    "d_array": {"my_softmax": LAZY},
    "e_reference": {
        "my_softmax": "    from mha.reference import softmax as s\n    return s(x, axis)"
    },
    "e_read_solution": {"my_softmax": READ},
}


def gid(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def with_cell(path: Path, code: str, dest: Path) -> Path:
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(2, nbformat.v4.new_code_cell(code))
    nbformat.write(nb, dest)
    return dest


def duplicate_id(nb) -> None:
    """The answer cell claims the test cell's grade id (nbgrader: NoResultFound)."""
    next(c for c in nb.cells if gid(c) == "solution_my_softmax").metadata.nbgrader["grade_id"] = (
        "test_my_softmax"
    )


def tamper(nb) -> None:
    """Test cells made answers (or markdown) with their tests removed and points raised."""
    for cell in nb.cells:
        if gid(cell) == "test_my_scale":
            cell.metadata.nbgrader.update(solution=True, points=100, locked=False)
            cell.source = "pass"
        if gid(cell) == "test_my_softmax":
            cell.cell_type = "markdown"
            cell.pop("outputs", None)
            cell.pop("execution_count", None)


def edited(path: Path, change, dest: Path) -> Path:
    nb = nbformat.read(path, as_version=4)
    change(nb)
    nbformat.write(nb, dest)
    return dest


def fingerprint(folder: Path) -> str:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Build the course, submit the class, grade it once: (course, printed report)."""
    root = tmp_path_factory.mktemp("class")
    cw.release(root, list(cw.build_course([FIXTURE], root)))
    release = root / "release" / NAME / f"{NAME}.ipynb"
    correct = fill(release, BODIES, root / "correct.ipynb")
    subs = {"z_reference": correct, "z_blank": release}
    for s, code in CELLS.items():
        base = correct if s.startswith("a_") else release
        subs[s] = with_cell(base, code.replace("COURSE", str(root)), root / f"{s}.ipynb")
    subs |= {s: fill(release, bodies, root / f"{s}.ipynb") for s, bodies in ANSWERS.items()}
    subs["b_duplicate_id"] = edited(correct, duplicate_id, root / "dup.ipynb")
    subs["b_tampered"] = edited(release, tamper, root / "tampered.ipynb")
    (root / "submitted" / "b_not_json" / NAME).mkdir(parents=True)
    (root / "submitted" / "b_not_json" / NAME / f"{NAME}.ipynb").write_text("{not json")
    for student, path in subs.items():
        cw.submit(root, NAME, student, path)
    before = fingerprint(root / "source")
    cw.grade(root, NAME, limits=LIMITS)
    leaks = [p for p in (PACKAGE / CANARY, root / "source" / CANARY) if p.exists()]
    for leak in leaks:
        leak.unlink()
    return root, not leaks and fingerprint(root / "source") == before


def rows(root: Path) -> dict[str, dict]:
    with open(root / "grades.csv") as f:
        return {r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == NAME}


def test_the_controls_get_exactly_what_they_deserve(graded):
    root, _ = graded
    assert rows(root)["z_reference"]["score"] == "6.0"
    assert rows(root)["z_blank"]["score"] == "0.0"
    assert rows(root)["z_reference"]["status"] == "graded"


def test_no_attack_earns_a_point(graded):
    root, _ = graded
    attacks = {s: r for s, r in rows(root).items() if not s.startswith("z_")}
    assert len(attacks) == len(CELLS) + len(ANSWERS) + 3
    for student, row in attacks.items():
        assert row["score"] in ("", "0.0"), f"{student} earned {row['score']}"


def test_disruptive_submissions_are_not_graded_with_a_reason(graded):
    root, _ = graded
    table = rows(root)
    for student in ("a_exit", "a_os_exit", "b_duplicate_id", "b_not_json"):
        assert table[student]["status"] == "not graded" and table[student]["score"] == ""
    assert "kernel died" in table["a_os_exit"]["note"]
    assert "'test_my_softmax' is on 2 cells" in table["b_duplicate_id"]["note"]
    assert "not a readable notebook" in table["b_not_json"]["note"]
    report = (root / f"grading_report_{NAME}.txt").read_text()
    for student in ("a_exit", "a_os_exit", "b_duplicate_id", "b_not_json"):
        assert re.search(rf"^- {student}: .+; .+", report, re.M), student


def test_tampered_metadata_is_restored_and_graded(graded):
    root, _ = graded
    assert rows(root)["b_tampered"]["status"] == "graded"
    report = (root / f"grading_report_{NAME}.txt").read_text()
    line = next(ln for ln in report.split("\n") if ln.startswith("- b_tampered:"))
    assert "test_my_scale: nbgrader points 100 -> 2" in line
    assert "test_my_softmax: cell type markdown -> code" in line


def test_the_sandbox_overrules_fooled_in_kernel_scores(graded):
    """Attacks that fool nbgrader's kernel are flagged, and the sandbox's 0 counts."""
    root, _ = graded
    report = (root / f"grading_report_{NAME}.txt").read_text()
    flagged = report.split("Sandbox re-grade differs")[1].split("\n\n")[0]
    for student in ("d_monkeypatch", "e_reference"):
        assert f"- {student}: test_my_softmax: in-kernel 2, sandbox 0" in flagged
    assert rows(root)["d_monkeypatch"]["note"] == "sandbox re-grade differs (its score counts)"
    page = root / "feedback" / "e_reference" / NAME / f"{NAME}.html"
    assert "Re-graded outside your notebook" in page.read_text()


def test_nothing_was_written_outside_the_submission(graded):
    root, unchanged = graded
    assert unchanged, "the package or course/source changed during grading"
    out = nbformat.read(root / "autograded" / "e_write_package" / NAME / f"{NAME}.ipynb", 4)
    printed = "".join(o.get("text", "") for o in out.cells[2].outputs)
    assert printed.count("blocked") == 2


def test_every_student_has_a_feedback_page(graded):
    root, _ = graded
    for student in rows(root):
        page = root / "feedback" / student / NAME / f"{NAME}.html"
        assert page.exists(), student
        assert not re.search(r"My_(softmax|causal_mask|scale)", page.read_text()), student
    text = (root / "feedback" / "a_exit" / NAME / f"{NAME}.html").read_text()
    assert "was not graded" in text and "exit()" in html.unescape(text)


# --- Unit tests (no nbgrader run) ------------------------------------------------------


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("src")
    cw.build_course([FIXTURE], root)
    return root / "source" / NAME / f"{NAME}.ipynb"


def test_validation_restores_cells_and_puts_back_deleted_ones(source, tmp_path):
    nb = nbformat.read(source, as_version=4)
    nb.cells = [c for c in nb.cells if gid(c) != "test_my_causal_mask"]
    tamper(nb)
    nbformat.write(nb, tmp_path / "s.ipynb")
    check = validate_submission(tmp_path / "s.ipynb", source)
    assert check.problem == "" and "test_my_causal_mask: missing" in " ".join(check.changes)
    cells = {gid(c): c for c in check.notebook.cells if gid(c)}
    original = {gid(c): c for c in nbformat.read(source, as_version=4).cells if gid(c)}
    assert list(cells) == list(original)  # same cells, same order
    for name, cell in cells.items():
        assert cell.cell_type == original[name].cell_type
        assert {k: v for k, v in cell.metadata.nbgrader.items() if k != "cell_type"} == (
            original[name].metadata.nbgrader
        )
    assert cells["test_my_scale"].source == original["test_my_scale"].source


def test_validation_rejects_duplicate_grade_ids(source, tmp_path):
    nb = nbformat.read(source, as_version=4)
    duplicate_id(nb)
    nbformat.write(nb, tmp_path / "d.ipynb")
    check = validate_submission(tmp_path / "d.ipynb", source)
    assert check.notebook is None and "'test_my_softmax' is on 2 cells" in check.problem
    assert "delete the extra cell" in check.advice


def test_failures_are_told_apart():
    limits = Limits(wall_s=30, memory_bytes=2**31)
    assert Outcome.from_failure("s", None, "", limits, []).kind == "timeout"
    assert Outcome.from_failure("s", 1, "DeadKernelError: ...", limits, []).kind == "dead_kernel"
    assert Outcome.from_failure("s", 1, "MemoryError", limits, []).kind == "memory"
    other = Outcome.from_failure("s", 1, "boom\nValueError: odd", limits, [])
    assert other.kind == "error" and "ValueError: odd" in other.reason


def test_make_course_keeps_an_edited_config(tmp_path, capsys):
    cw.build_course([], tmp_path)
    config = tmp_path / "nbgrader_config.py"
    config.write_text(config.read_text() + "c.Execute.timeout = 30\n")
    cw.build_course([], tmp_path)
    assert "c.Execute.timeout = 30" in config.read_text()
    assert (tmp_path / "nbgrader_config.py.new").read_text() == cw.CONFIG
    assert "kept your edited" in capsys.readouterr().err
    cw.build_course([], tmp_path, overwrite_config=True)
    assert config.read_text() == cw.CONFIG
    assert "c.Execute.timeout = 30" in (tmp_path / "nbgrader_config.py.bak").read_text()
    assert "replaced your edited" in capsys.readouterr().err
    shutil.rmtree(tmp_path)


def test_a_python_under_tmp_is_bound_again_behind_the_private_tmp(monkeypatch):
    """A venv or clone in /tmp would vanish behind the jail's --tmpfs /tmp (the kernel died)."""
    import sys

    from mha.grading import coursework_run

    monkeypatch.setattr(sys, "prefix", "/tmp/clone/.venv")
    binds = coursework_run.under_tmp()
    i = binds.index("/tmp/clone/.venv")
    assert binds[i - 1 : i + 2] == ["--ro-bind", "/tmp/clone/.venv", "/tmp/clone/.venv"]
    monkeypatch.setattr(sys, "prefix", "/opt/venv")
    assert "/opt/venv" not in coursework_run.under_tmp()

"""The sandboxed re-grade (issue 11): no attack earns a point, honest answers get theirs.

Every file in ``tests/fixtures/attacks`` is one student's answer cell for
``my_softmax``; each is graded on a one-exercise assignment, and an honest
answer graded right after it must still get full marks. The sandbox itself is
probed directly: no repository, no network, a read-only library, a private
``/tmp``. Tests that need bubblewrap skip without it (CI installs it).
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from mha.grading import checks, regrade, regrade_io, sandbox
from mha.grading.regrade import regrade_submission
from mha.grading.sandbox import Limits

ROOT = Path(__file__).resolve().parents[1]
ATTACKS = Path(__file__).parent / "fixtures" / "attacks"
LIMITS = Limits(wall_seconds=45, cells_seconds=2, call_seconds=3, cpu_seconds=20)
needs_bwrap = pytest.mark.skipif(bool(sandbox.bwrap_available()), reason="bwrap unavailable")

GOOD = """\
def my_softmax(x, axis=-1):
    x = np.asarray(x, dtype=float)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(x - m)
    s = e.sum(axis=axis, keepdims=True)
    return e / np.where(s == 0, 1.0, s)
"""
BLANK = 'def my_softmax(x, axis=-1):\n    """The stub of the release."""\n    raise NotImplementedError()\n'


def _nbgrader(grade_id: str, *, grade=False, solution=False, points=0) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": not solution, "schema_version": 3,
            "solution": solution}  # fmt: skip
    return meta | ({"points": points} if grade else {})


def notebook(answer: str, functions=("my_softmax",), checker="check_softmax"):
    """An assignment: a setup cell, one answer cell, one test cell per function."""
    answer_cell = nbformat.v4.new_code_cell(answer)
    answer_cell.metadata["nbgrader"] = _nbgrader("solution_my_softmax", solution=True)
    cells = [
        nbformat.v4.new_code_cell("import numpy as np\nimport mha.grading.checks"),
        answer_cell,
    ]
    for fn in functions:
        test = nbformat.v4.new_code_cell(f"mha.grading.checks.{checker}({fn})")
        test.metadata["nbgrader"] = _nbgrader(f"test_{fn}", grade=True, points=2)
        cells.append(test)
    return nbformat.v4.new_notebook(cells=cells)


def grade(tmp_path: Path, answer: str, functions=("my_softmax",), **kw) -> dict:
    source, submission = tmp_path / "source.ipynb", tmp_path / "submitted.ipynb"
    nbformat.write(notebook(GOOD, functions), source)
    nbformat.write(notebook(answer, functions), submission)
    return regrade_submission(submission, source, limits=kw.pop("limits", LIMITS), **kw)


def _expected_statuses(path: Path) -> set[str]:
    return set(re.search(r"^# Expect: (.+)$", path.read_text(), re.M).group(1).split())


ATTACK_FILES = sorted(p for p in ATTACKS.glob("*.py") if p.name != "reference_reuse.py")


@needs_bwrap
@pytest.mark.parametrize("attack", ATTACK_FILES, ids=lambda p: p.stem)
def test_attack_scores_zero_and_the_next_student_is_graded_normally(attack, tmp_path):
    before = hashlib.sha256((ROOT / "mha" / "attention.py").read_bytes()).hexdigest()
    result = grade(tmp_path, attack.read_text().replace("{REPO}", str(ROOT)))["test_my_softmax"]
    assert result.points == 0.0 and result.max_points == 2.0, result
    assert result.status in _expected_statuses(attack), result
    assert result.sandbox == "bwrap" and result.feedback.startswith("❌"), result
    assert hashlib.sha256((ROOT / "mha" / "attention.py").read_bytes()).hexdigest() == before
    assert not (ROOT / "mha" / "grading" / "checks" / "_student_was_here.py").exists()
    honest = grade(tmp_path, GOOD)["test_my_softmax"]
    assert (honest.points, honest.status) == (2.0, "ok"), honest


@needs_bwrap
def test_every_form_of_reference_reuse_scores_zero(tmp_path):
    code = (ATTACKS / "reference_reuse.py").read_text()
    names = re.findall(r"\b(my_softmax_\w+)\b", code)
    results = grade(tmp_path, code, functions=tuple(dict.fromkeys(names)))
    assert len(results) == 7
    for result in results.values():
        assert (result.points, result.status) == (0.0, "reference-used"), result
        fn = result.functions[0]
        assert result.feedback.startswith(f"❌ {fn} calls mha.attention.softmax, the function"), (
            result.feedback
        )


@needs_bwrap
def test_honest_controls(tmp_path):
    magics = "%matplotlib inline\nfiles = !ls\n" + GOOD  # IPython syntax in an answer cell
    assert grade(tmp_path, magics)["test_my_softmax"].points == 2.0
    blank = grade(tmp_path, BLANK)["test_my_softmax"]
    assert (blank.points, blank.status) == (0.0, "not-answered")
    assert "my_softmax is not implemented yet" in blank.feedback
    no_max = (
        "def my_softmax(x, axis=-1):\n    e = np.exp(x)\n    return e / e.sum(axis, keepdims=True)"
    )
    buggy = grade(tmp_path, no_max)["test_my_softmax"]
    assert (buggy.points, buggy.status) == (0.0, "wrong") and "overflow" in buggy.feedback


@needs_bwrap
def test_hard_coded_visible_outputs_fail_on_hidden_inputs(tmp_path):
    """A lookup table of the visible examples passes the notebook's checker, not the re-grade."""
    visible = checks.self_attention.softmax_cases(np.random.default_rng(1))
    table = [(c.args[0].tolist(), c.expected.tolist()) for c in visible]
    code = (f"import numpy as np\nTABLE = {table!r}\n\n"
            "def my_softmax(x, axis=-1):\n"
            "    for given, answer in TABLE:\n"
            "        if np.shape(given) == np.shape(x) and np.array_equal(given, x):\n"
            "            return np.array(answer)\n"
            "    return np.asarray(x)\n").replace("inf", "float('inf')")  # fmt: skip
    namespace: dict = {}
    exec(code, namespace)
    assert checks.check_softmax(namespace["my_softmax"], quiet=True)  # the attack is real
    result = grade(tmp_path, code)["test_my_softmax"]
    assert (result.points, result.status) == (0.0, "wrong"), result


@needs_bwrap
def test_stack_inspection_fools_the_notebook_checker_but_not_the_sandbox(tmp_path):
    code = (ATTACKS / "stack_frames.py").read_text()
    namespace: dict = {}
    exec(code, namespace)
    assert checks.check_softmax(namespace["my_softmax"], quiet=True)  # in-kernel: fooled
    assert grade(tmp_path, code)["test_my_softmax"].points == 0.0


@needs_bwrap
def test_hidden_seed(tmp_path):
    a, b = (checks.self_attention.softmax_cases(np.random.default_rng(s)) for s in (1, 2))
    assert not np.array_equal(a[0].args[0], b[0].args[0])
    seeds = {grade(tmp_path, GOOD)["test_my_softmax"].seed for _ in range(2)}
    assert len(seeds) == 2  # a fresh secret seed per run when none is given
    assert grade(tmp_path, GOOD, seed=5)["test_my_softmax"].seed == 5


@needs_bwrap
def test_assert_only_exercise_eq_trick(tmp_path):
    """``assert got == want`` in the kernel is fooled by ``__eq__``; the re-grade is not."""
    code = (ATTACKS / "eq_trick_assert_cell.txt").read_text()
    namespace: dict = {}
    exec(code, namespace)
    assert namespace["my_param_count"](12, 3) == 480  # what the notebook's assert sees
    nb = notebook(code)
    nb.cells[1].metadata["nbgrader"]["grade_id"] = "solution_my_param_count"
    nb.cells[-1].source = "assert my_param_count(12, 3) == 480"
    nb.cells[-1].metadata["nbgrader"]["grade_id"] = "test_my_param_count"
    nbformat.write(nb, tmp_path / "cheat.ipynb")
    honest = "def my_param_count(d_model, num_heads, bias=True):\n    return 4 * d_model * (d_model + bias)"
    nb.cells[1].source = honest
    nbformat.write(nb, tmp_path / "source.ipynb")
    cheat = regrade_submission(tmp_path / "cheat.ipynb", tmp_path / "source.ipynb", limits=LIMITS)
    assert (cheat["test_my_param_count"].points, cheat["test_my_param_count"].status) == (
        0.0,
        "wrong",
    )
    ok = regrade_submission(tmp_path / "source.ipynb", tmp_path / "source.ipynb", limits=LIMITS)
    assert ok["test_my_param_count"].points == 2.0


@needs_bwrap
def test_inputs_depend_on_the_seed_and_on_the_code(tmp_path):
    """Inputs leaked through an error message cannot be hard-coded in the next submission."""
    leak = "def my_softmax(x, axis=-1):\n    raise ValueError(repr(np.asarray(x).ravel()[:2]))\n"
    feedback = lambda code, seed: grade(tmp_path, code, seed=seed)["test_my_softmax"].feedback  # noqa: E731
    first = feedback(leak, 7)
    assert first == feedback(leak, 7)  # reproducible
    assert first != feedback(leak + "# changed\n", 7) and first != feedback(leak, 8)


@needs_bwrap
def test_an_answer_may_call_a_helper_the_chapter_defines(tmp_path):
    """A ``def`` of the chapter's own cells (trusted source) is there in the sandbox too."""
    helper = "def shifted_exp(x, axis):\n    return np.exp(x - np.max(x, axis=axis, keepdims=True))"
    answer = "def my_softmax(x, axis=-1):\n    e = shifted_exp(x, axis)\n    return e / e.sum(axis, keepdims=True)"
    for name, code in (("source", GOOD), ("submitted", answer)):
        nb = notebook(code)
        nb.cells.insert(
            1, nbformat.v4.new_code_cell(helper + "\n\nprint(shifted_exp(np.ones(2), 0))")
        )
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    got = regrade_submission(tmp_path / "submitted.ipynb", tmp_path / "source.ipynb", limits=LIMITS)
    assert got["test_my_softmax"].status == "wrong"  # it runs (and misses the all -inf row)
    assert "NaN" in got["test_my_softmax"].feedback or "-inf" in got["test_my_softmax"].feedback


def test_test_cell_without_checker_is_not_regraded(tmp_path):
    nb = notebook(GOOD)
    nb.cells[-1].source = "assert my_softmax([0.0, 0.0])[0] == 0.5"
    nbformat.write(nb, tmp_path / "a.ipynb")
    result = regrade_submission(tmp_path / "a.ipynb", tmp_path / "a.ipynb")["test_my_softmax"]
    assert (result.points, result.status) == (None, "not-regraded")


@needs_bwrap
def test_unreadable_or_tampered_submission(tmp_path):
    source = tmp_path / "source.ipynb"
    nbformat.write(notebook(GOOD), source)
    (tmp_path / "junk.ipynb").write_text("{not a notebook")
    junk = regrade_submission(tmp_path / "junk.ipynb", source, limits=LIMITS)["test_my_softmax"]
    assert (junk.points, junk.status) == (0.0, "missing")
    moved = notebook(GOOD)  # the answer cell lost its grade id: found by its cell id
    moved.cells[1].metadata["nbgrader"]["grade_id"] = "something_else"
    src = notebook(GOOD)
    src.cells[1].id = moved.cells[1].id
    nbformat.write(src, source)
    nbformat.write(moved, tmp_path / "moved.ipynb")
    assert regrade_submission(tmp_path / "moved.ipynb", source)["test_my_softmax"].points == 2.0


def test_results_are_read_as_data_never_unpickled():
    buffer = io.BytesIO()
    np.savez(buffer, __meta__=np.frombuffer(b'{"exercises": []}', np.uint8),
             evil=np.array([object()], dtype=object))  # fmt: skip
    assert regrade_io.parse_report(buffer.getvalue()) == ({}, {})
    assert regrade_io.parse_report(b"garbage") == ({}, {})
    odd = regrade_io.decode(
        {"seq": [{"a": "missing"}, {"v": "text"}], "type": "tuple", "len": 3}, {}
    )
    assert len(odd) == 3 and not any(isinstance(v, np.ndarray | str) for v in odd)


PROBE = """\
import json, os, socket, sys
lib = sys.argv[2]
seen = {}
seen["repo"] = any(os.path.exists(os.path.join(%(root)r, p)) for p in ("chapters", "mha", "course"))
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    seen["network"] = True
except OSError:
    seen["network"] = False
try:
    open(os.path.join(lib, "mha", "attention.py"), "a").write("#")
    seen["lib_writable"] = True
except OSError:
    seen["lib_writable"] = False
try:
    open("/tmp/big", "wb").write(b"x" * (2 << 20))
    seen["tmp_limited"] = False
except OSError:
    seen["tmp_limited"] = True
seen["env"] = sorted(os.environ)
seen["processes"] = len([p for p in os.listdir("/proc") if p.isdigit()])
os.write(int(sys.argv[1]), json.dumps(seen).encode())
"""


@needs_bwrap
def test_the_sandbox_sees_no_repository_no_network_and_a_read_only_library(tmp_path):
    import json

    (tmp_path / "sandbox_runner.py").write_text(PROBE % {"root": str(ROOT)})
    lib = sandbox.library_copy(tmp_path / "lib", ("mha.attention.softmax",))
    limits = Limits(wall_seconds=30, tmp_bytes=1 << 20)
    run = sandbox.run_sandboxed(tmp_path, [str(lib)], b"", limits)
    seen = json.loads(run.result)
    assert run.mode == "bwrap" and run.returncode == 0, run.stderr
    assert seen["repo"] is False and seen["network"] is False
    assert seen["lib_writable"] is False and seen["tmp_limited"] is True
    assert set(seen["env"]) <= {"HOME", "PATH", "PWD", "LC_CTYPE", "OMP_NUM_THREADS",
                                "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"}  # fmt: skip
    assert seen["processes"] <= 3  # its own PID namespace


def test_poisoned_copy_keeps_the_rest_of_the_library(tmp_path):
    lib = sandbox.library_copy(tmp_path / "lib", ("mha.attention.softmax",))
    text = (lib / "mha" / "attention.py").read_text()
    assert "raise ReferenceUsedError('mha.attention.softmax is the reference" in text
    assert "def scaled_dot_product_attention" in text and not (lib / "mha" / "grading").exists()
    for path in (lib / "mha").rglob("*.py"):
        assert path.stat().st_mode & 0o222 == 0
    regrade._remove(tmp_path / "lib")


def test_without_bwrap_the_fallback_is_loud_and_still_separate(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sandbox, "bwrap_available", lambda: "bwrap is not installed")
    with pytest.warns(RuntimeWarning, match="bubblewrap"):
        result = grade(tmp_path, GOOD)["test_my_softmax"]
    assert (result.points, result.sandbox) == (2.0, "subprocess")
    assert "WARNING: bubblewrap (bwrap) is not available" in capsys.readouterr().err
    with pytest.warns(RuntimeWarning):
        blank = grade(tmp_path, "import os\nos._exit(0)\n" + GOOD)["test_my_softmax"]
    assert (blank.points, blank.status) == (0.0, "missing")


@needs_bwrap
def test_a_real_chapter_end_to_end(tmp_path):
    """Chapter 5's nbgrader source: the solutions pass, the release stubs score 0."""
    from mha.grading.coursework import to_source_notebook

    chapter = ROOT / "chapters/05_output_projection.ipynb"
    source, _ = to_source_notebook(nbformat.read(chapter, 4))
    nbformat.write(source, tmp_path / "source.ipynb")
    solved = regrade_submission(tmp_path / "source.ipynb", tmp_path / "source.ipynb")
    names = ("my_multi_head_attention", "my_causal_mask", "my_expand_padding_mask")
    assert {k: r.status for k, r in solved.items()} == {f"test_{n}": "ok" for n in names}
    stub = re.compile(r"### BEGIN SOLUTION.*?### END SOLUTION", re.S)
    for cell in regrade.answer_cells(source):
        cell.source = stub.sub("raise NotImplementedError()", cell.source)
    nbformat.write(source, tmp_path / "blank.ipynb")
    blank = regrade_submission(tmp_path / "blank.ipynb", tmp_path / "source.ipynb")
    assert {k: (r.points, r.status) for k, r in blank.items()} == dict.fromkeys(
        solved, (0.0, "not-answered")
    )


@needs_bwrap
def test_a_sandbox_that_fails_to_start_is_reported_not_blamed_on_the_student(tmp_path, monkeypatch):
    """bwrap failing to set up (here: a bind of a missing folder) is not a student's crash."""
    real = sandbox._bwrap_command
    missing = str(tmp_path / "missing")
    monkeypatch.setattr(sandbox, "_bwrap_command",
                        lambda *a: [*real(*a)[:-1], "--ro-bind", missing, missing, "--"])  # fmt: skip
    result = grade(tmp_path, GOOD)["test_my_softmax"]
    assert (result.points, result.status) == (0.0, "sandbox-failed"), result
    assert "nothing of yours ran" in result.feedback


def test_only_the_cells_the_graded_functions_need_run():
    cells = ["def my_softmax(x):\n    return helper(x)", "import torch\ndef object_lens():\n    pass",
             "def helper(x):\n    return x", "print('top level')", "def f(x=print(1)):\n    pass",
             "def broken(:"]  # fmt: skip
    kept = regrade_io.needed_cells(cells, {"my_softmax"})
    assert kept == [cells[0], "", cells[2], cells[3], cells[4], cells[5]]


# Known gap, stated in instructors.md: Exercise 7.3's function takes a trained model, which cannot
# travel to the sandbox as data, so nbgrader's in-kernel score (kernel in bubblewrap) stands.
NOT_REGRADED = {"removal_accuracies": "takes a trained TaskModel (Chapter 7)"}
# Every numbered chapter after the intro has exercises that the sandbox must re-grade.
REGRADED = sorted(
    p.stem for p in (ROOT / "chapters").glob("[0-9][0-9]_*.ipynb") if p.stem != "00_intro"
)


@pytest.mark.parametrize("chapter", REGRADED)
def test_every_graded_check_cell_of_the_chapters_is_regraded(chapter):
    """Each check cell calls a registered checker or tests a function of BY_FUNCTION.

    A new exercise whose check cell only asserts needs an entry in
    ``mha.grading.checks.BY_FUNCTION`` (cases drawn from a seed), or the sandbox
    cannot re-grade it and nbgrader's in-kernel score, which code can fool, stands.
    """
    nb = nbformat.read(ROOT / "chapters" / f"{chapter}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code" or "check" not in cell.metadata.get("tags", []):
            continue
        calls = [m["call"].split(".")[-1] for m in regrade.CHECK_CALL.finditer(cell.source)]
        named = [f for f in checks.BY_FUNCTION if re.search(rf"\b{f}\b", cell.source)]
        if any(re.search(rf"\b{f}\b", cell.source) for f in NOT_REGRADED):
            continue
        assert all(c in checks.EXERCISES for c in calls) and (calls or named), cell.source[:200]


@needs_bwrap
@pytest.mark.parametrize(
    ("chapter", "function", "bug"),
    [
        (
            "10_decoding",
            "my_expand_kv",
            ("repeat_interleave(num_heads // g, dim=1)", "repeat(1, num_heads // g, 1, 1)"),
        ),
        ("11_tensor_parallel", "my_partial_outputs", ("w_o[:, cols].T", "w_o[:, cols]")),
    ],
)
def test_chapters_10_and_11_are_regraded_on_hidden_inputs(tmp_path, chapter, function, bug):
    """The solution scores full marks, a classic bug and an answer that fakes the check score 0."""
    from mha.grading.coursework import to_source_notebook

    source, _ = to_source_notebook(nbformat.read(ROOT / "chapters" / f"{chapter}.ipynb", 4))
    nbformat.write(source, tmp_path / "source.ipynb")
    solved = regrade_submission(tmp_path / "source.ipynb", tmp_path / "source.ipynb")
    assert solved[f"test_{function}"].status == "ok", solved
    for cell in regrade.answer_cells(source):
        assert bug[0] in cell.source or function not in cell.source
        cell.source = cell.source.replace(*bug)
    nbformat.write(source, tmp_path / "bug.ipynb")
    buggy = regrade_submission(tmp_path / "bug.ipynb", tmp_path / "source.ipynb")
    assert buggy[f"test_{function}"].points == 0.0, buggy

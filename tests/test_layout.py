"""The package layout: ``import mha`` loads the library alone, nothing imports upward, small modules.

The four parts of ``mha/``, from the bottom up (a part may import only the parts below it):

0. the attention library, the modules at the top of ``mha/``;
1. ``mha.course``: what only the chapters use (example, lenses, figures);
2. ``mha.experiments``: Chapter 7's experiments (may use the course's figure helpers);
3. ``mha.grading``: checkers, nbgrader course, student edition (Chapter 7's checker
   uses ``mha.experiments``).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mha"
RANK = {"course": 1, "experiments": 2, "grading": 3}  # anything else under mha. is the library
MAX_LINES = 400
SIZE_EXEMPT: tuple[str, ...] = ()
HINTS_EXEMPT: tuple[str, ...] = ()  # type hints are required of every module
# Modules whose owners are still writing them (issue 8 found them without full hints); empty it.
HINTS_TODO: set[str] = set()


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _part(dotted: str) -> str:
    """``"library"``, ``"course"``, ``"experiments"`` or ``"grading"`` for a module ``mha.x...``."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else "library"


def _module_name(path: Path) -> str:
    parts = ["mha", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str | None = None) -> set[str]:
    """Every ``mha...`` module that ``path`` imports, anywhere in the file (relative ones resolved).

    ``name`` is the module's dotted name (by default, from its place under ``mha/``).
    """
    name, found = name or _module_name(path), set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return {m for m in found if m == "mha" or m.startswith("mha.")}


def _rank(dotted: str) -> int:
    return RANK.get(_part(dotted), 0)


def test_import_mha_adds_only_mha():
    """In a fresh interpreter, after ``import torch, numpy``, ``import mha`` adds ``mha`` alone."""
    code = (
        "import json, sys\nimport numpy, torch\nbefore = set(sys.modules)\nimport mha\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    added = json.loads(result.stdout.strip().splitlines()[-1])
    assert {m.split(".")[0] for m in added} == {"mha"}, added
    assert [m for m in added if _part(m) != "library"] == [], "import mha loaded a subpackage"


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_nothing_imports_upward(path):
    own = _rank(_module_name(path))
    upward = sorted(m for m in _imports(path) if _rank(m) > own)
    assert upward == [], f"{_rel(path)} ({_part(_module_name(path))}) imports {upward}"


def test_the_import_check_sees_upward_imports(tmp_path):
    """The AST scan finds absolute, relative and function-local imports (so the test can fail)."""
    fake = tmp_path / "probe.py"
    fake.write_text("def f():\n    from mha.grading import checks\nfrom .course import plotting\n")
    assert _imports(fake, "mha.probe") >= {"mha.grading.checks", "mha.course.plotting"}
    assert _rank("mha.grading.checks") > _rank("mha.probe")


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_modules_are_small(path):
    if _rel(path).startswith(SIZE_EXEMPT):
        pytest.skip(f"{_rel(path)} is exempt from the size limit for now (SIZE_EXEMPT)")
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{_rel(path)} has {lines} lines; split it (limit {MAX_LINES})"


def _unannotated(tree: ast.Module) -> list[str]:
    """Public functions and methods (``__init__`` included) with an argument or return unannotated."""
    missing = []

    def visit(nodes: list[ast.stmt], prefix: str, in_class: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                visit(node.body, f"{prefix}{node.name}.", True)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if node.name.startswith("_") and node.name != "__init__":
                    continue
                a = node.args
                args = [*a.posonlyargs, *a.args, *a.kwonlyargs, *filter(None, (a.vararg, a.kwarg))]
                if in_class and args and args[0].arg in ("self", "cls"):
                    args = args[1:]
                names = [x.arg for x in args if x.annotation is None]
                names += ["return"] * (node.returns is None)
                if names:
                    missing.append(f"{prefix}{node.name}: {', '.join(names)}")

    visit(tree.body, "", False)
    return missing


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_public_functions_have_type_hints(path):
    if _rel(path).startswith(HINTS_EXEMPT) or _rel(path) in HINTS_TODO:
        pytest.skip(f"{_rel(path)}: type hints not yet required (HINTS_EXEMPT / HINTS_TODO)")
    missing = _unannotated(ast.parse(path.read_text(), filename=str(path)))
    assert missing == [], f"{_rel(path)}: add type hints to {missing}"


def test_the_hint_check_sees_a_missing_hint():
    tree = ast.parse(
        "class A:\n    def f(self, x: int):\n        pass\ndef g(y) -> None:\n    pass\n"
    )
    assert _unannotated(tree) == ["A.f: return", "g: y"]

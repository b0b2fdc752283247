"""The nbgrader course folder and nbgrader's commands (part of :mod:`mha.grading.coursework`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat

from mha.grading.coursework_convert import (
    POINTS_PER_CHECK,
    SOLUTION,
    Conversion,
    tags,
    to_source_notebook,
)

__all__ = [
    "CONFIG",
    "build_course",
    "nbgrader",
    "release",
    "submit",
    "write_config",
]

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


def _write_notebook(nb, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.validator.normalize(nb)
    nbformat.write(nb, path)


def write_config(course_dir: Path, overwrite: bool = False) -> str:
    """Write the course's ``nbgrader_config.py``, never silently over an edited one.

    If the file exists and differs from :data:`CONFIG`, it is kept and the
    generated version goes to ``nbgrader_config.py.new``; with ``overwrite`` the
    old one is kept as ``nbgrader_config.py.bak``. Returns what was done, to print.
    """
    path = Path(course_dir) / "nbgrader_config.py"
    if not path.exists() or path.read_text() == CONFIG:
        path.write_text(CONFIG)
        return ""
    if overwrite:
        shutil.copyfile(path, path.with_name(path.name + ".bak"))
        path.write_text(CONFIG)
        return f"replaced your edited {path} (the old one is {path.name}.bak)"
    path.with_name(path.name + ".new").write_text(CONFIG)
    return (f"kept your edited {path}; the generated one is {path.name}.new (compare them with "
            f"diff; --overwrite-config replaces yours and keeps a .bak)")  # fmt: skip


def build_course(
    chapters: Sequence[Path],
    course_dir: Path,
    points_per_check: int = POINTS_PER_CHECK,
    written_points: int = 0,
    overwrite_config: bool = False,
) -> dict[str, Conversion]:
    """Write ``course_dir/source/<chapter>/<chapter>.ipynb`` and ``nbgrader_config.py``.

    Chapters without exercises are skipped. Returns the conversions by assignment name.
    An edited ``nbgrader_config.py`` is kept unless ``overwrite_config`` (see
    :func:`write_config`); either way a line on stderr says so.
    """
    course_dir = Path(course_dir)
    course_dir.mkdir(parents=True, exist_ok=True)
    if said := write_config(course_dir, overwrite_config):
        print(f"WARNING: {said}", file=sys.stderr)
    done = {}
    for path in map(Path, chapters):
        nb, report = to_source_notebook(nbformat.read(path, as_version=4), points_per_check,
                                        written_points)  # fmt: skip
        if report.solutions or report.checks:
            _write_notebook(nb, course_dir / "source" / path.stem / path.name)
            done[path.stem] = report
    return done


def nbgrader(
    args: Sequence[str], course_dir: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
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

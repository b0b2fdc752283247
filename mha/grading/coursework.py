"""Coursework: turn the chapters into an nbgrader course, grade it, build the student book.

The work is split into modules; this one is the command line and re-exports their API:

* :mod:`mha.grading.coursework_convert`: chapter -> nbgrader source notebook (cell tags);
* :mod:`mha.grading.coursework_course`: the course folder, release, nbgrader's commands;
* :mod:`mha.grading.coursework_validate`: a submission checked and repaired against source/;
* :mod:`mha.grading.coursework_grade`: grading, one submission at a time, with the report;
* :mod:`mha.grading.coursework_guide`: the generated part of the instructor's guide.

Command line (run from the repository root)::

    python -m mha.grading.coursework course        # chapters -> ./course (source + release)
    python -m mha.grading.coursework grade 01_self_attention   # autograde, feedback, grades.csv
    python -m mha.grading.coursework demo 01_self_attention    # the above, reference solutions
    python -m mha.grading.coursework guide         # per-chapter table of the instructor's guide
    python -m mha.grading.coursework student-book  # the book without solutions
    (see mha.grading.student_edition)
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from mha.grading.coursework_convert import (
    CHECK,
    POINTS_PER_CHECK,
    SOLUTION,
    Conversion,
    hidden_tests,
    stub_solution,
    tags,
    to_source_notebook,
    wrap_solution,
)
from mha.grading.coursework_course import (
    CONFIG,
    build_course,
    nbgrader,
    release,
    submit,
    write_config,
)
from mha.grading.coursework_grade import grade
from mha.grading.coursework_guide import (
    GUIDE_BEGIN,
    GUIDE_END,
    chapter_summary,
    guide_markdown,
    write_guide,
)
from mha.grading.coursework_run import Limits

__all__ = [
    "SOLUTION",
    "CHECK",
    "CONFIG",
    "POINTS_PER_CHECK",
    "Conversion",
    "tags",
    "wrap_solution",
    "stub_solution",
    "hidden_tests",
    "to_source_notebook",
    "build_course",
    "write_config",
    "Limits",
    "nbgrader",
    "release",
    "grade",
    "submit",
    "chapter_summary",
    "guide_markdown",
    "write_guide",
    "GUIDE_BEGIN",
    "GUIDE_END",
    "main",
]

ROOT = Path(__file__).resolve().parents[2]  # the repository (mha/grading/coursework.py)


def _chapters(names: Sequence[str]) -> list[Path]:
    return [Path(n) for n in names] if names else sorted((ROOT / "chapters").glob("[0-9]*.ipynb"))


def _cmd_course(a) -> None:
    done = build_course(_chapters(a.chapters), a.course_dir, a.points, a.written_points,
                        a.overwrite_config)  # fmt: skip
    for name, r in done.items():
        print(f"{name}: {r.solutions} solutions, {r.checks} checks, {r.written} written, "
              f"{r.points} points")  # fmt: skip
        for warning in r.warnings:
            print(f"  warning: {warning}")
        for code in r.dropped:
            print(f"  warning: dropped from a solution cell (would fail in the release): {code!r}")
    if a.no_release:
        print(f"nbgrader course in {a.course_dir}: source/ only (with solutions); make the "
              "release with `nbgrader generate_assignment <name>` in that folder")  # fmt: skip
        return
    release(a.course_dir, list(done))
    print(f"nbgrader course in {a.course_dir}: source/ (with solutions) and release/ (without)")


def _cmd_grade(a) -> None:
    limits = Limits(a.timeout, a.cell_timeout, int(a.memory_gb * 2**30))
    csv = grade(a.course_dir, a.assignment, a.csv, limits=limits,
                regrade=None if a.no_sandbox else "auto")  # fmt: skip
    print(f"grades: {csv}\nfeedback: {Path(a.course_dir) / 'feedback'}")


def _cmd_demo(a) -> None:
    """Build, release, submit the reference solutions as student 'reference', grade."""
    a.no_release = False
    _cmd_course(a)
    source = Path(a.course_dir) / "source" / a.assignment / f"{a.assignment}.ipynb"
    submit(a.course_dir, a.assignment, "reference", source)
    _cmd_grade(a)
    print((Path(a.course_dir) / a.csv).read_text())


def _cmd_guide(a) -> None:
    if a.write:
        write_guide(Path(a.write), _chapters(a.chapters))
        print(f"updated {a.write}")
    else:
        print(guide_markdown(_chapters(a.chapters)))


def _cmd_student_book(a) -> None:
    from mha.grading.student_edition import build_student_edition

    html = build_student_edition(Path(a.source), Path(a.output))
    print(f"student edition: {html / 'index.html'}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mha.grading.coursework", description=__doc__.split("\n")[0]
    )
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--course-dir", type=Path, default=Path("course"))
    common.add_argument("--chapters", nargs="*", default=[], help="default: chapters/[0-9]*.ipynb")
    common.add_argument("--points", type=int, default=POINTS_PER_CHECK, help="per checker call")
    common.add_argument("--written-points", type=int, default=0, help="0: written answers ungraded")
    common.add_argument("--csv", default="grades.csv")
    common.add_argument("--overwrite-config", action="store_true",
                        help="replace an edited nbgrader_config.py (kept as .bak)")  # fmt: skip
    common.add_argument("--timeout", type=float, default=Limits.wall_s,
                        help="seconds per submission")  # fmt: skip
    common.add_argument("--cell-timeout", type=int, default=Limits.cell_s, help="seconds per cell")
    common.add_argument("--memory-gb", type=float, default=Limits.memory_bytes / 2**30)
    common.add_argument("--no-sandbox", action="store_true",
                        help="in-kernel scores only (said loudly)")  # fmt: skip
    c = sub.add_parser("course", parents=[common], help="chapters -> nbgrader source + release")
    c.add_argument("--no-release", action="store_true", help="skip nbgrader generate_assignment")
    c.set_defaults(run=_cmd_course)
    g = sub.add_parser("grade", parents=[common], help="autograde + feedback + grades CSV")
    g.add_argument("assignment")
    g.set_defaults(run=_cmd_grade)
    d = sub.add_parser("demo", parents=[common], help="grade the reference solutions end to end")
    d.add_argument("assignment")
    d.set_defaults(run=_cmd_demo)
    gd = sub.add_parser("guide", parents=[common], help="instructor's guide chapter table")
    gd.add_argument("--write", metavar="PAGE", help="update PAGE between its markers")
    gd.set_defaults(run=_cmd_guide)
    s = sub.add_parser("student-book", help="build the book without solutions")
    s.add_argument("--source", default=str(ROOT))
    s.add_argument("--output", default=str(ROOT / "_build" / "student"))
    s.set_defaults(run=_cmd_student_book)
    return p


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m mha.grading.coursework``."""
    args = _parser().parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()

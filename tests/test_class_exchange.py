"""A class, not one user: nbgrader's exchange as a JupyterHub runs it.

Three real Unix users (``useradd``) fetch the fixture assignment from the
exchange and submit it, each with their own identity (their nbgrader commands
run as that user). The instructor (this process, root) collects all three,
grades them with ``make grade``'s pipeline and releases the feedback; each
student fetches their feedback and gets only their own. Needs root (skipped
otherwise); the users and their homes are removed at the end.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from test_nbgrader import BODIES, BUGS, FIXTURE, NAME, fill

from mha.grading import coursework as cw
from mha.grading.coursework_run import Limits, run_limited

pytestmark = pytest.mark.skipif(
    os.name != "posix" or os.geteuid() != 0 or not shutil.which("useradd"),
    reason="needs root and useradd: it creates Unix users for the students",
)
LIMITS = Limits(wall_s=180, cell_s=60, memory_bytes=3 * 2**30)
TAG = f"{os.getpid() % 100000}"
STUDENTS = {  # user -> (answers, expected score out of 6)
    f"mhaa{TAG}": (BODIES, 6.0),
    f"mhab{TAG}": ({}, 0.0),
    f"mhac{TAG}": (BODIES | {BUGS["leaky"][0]: BUGS["leaky"][1]}, 4.0),
}


def nbgrader_as(user: str | None, args: list[str], cwd: Path, exchange: Path) -> str:
    """``nbgrader <args>`` as ``user`` (None: the instructor); fails the test if it fails."""
    opts = [f"--Exchange.root={exchange}", "--CourseDirectory.course_id=mha"]
    code, log = run_limited([*args, *opts], cwd, LIMITS, user=user)
    assert code == 0, f"nbgrader {' '.join(args)} as {user or 'instructor'} failed:\n{log[-3000:]}"
    return log


@pytest.fixture(scope="module")
def hub():
    """The homes of three new users, an exchange folder and a course folder; removed after."""
    base = Path(tempfile.mkdtemp(prefix="mha-hub-"))
    base.chmod(0o755)
    exchange = base / "exchange"
    exchange.mkdir(mode=0o777)
    exchange.chmod(0o777)  # as nbgrader's docs say: writable by everyone
    made = []
    try:
        for user in STUDENTS:
            subprocess.run(["useradd", "-m", "-d", str(base / user), "-s", "/bin/sh", user],
                           check=True, capture_output=True)  # fmt: skip
            made.append(user)
        yield base, exchange
    finally:
        for user in made:
            subprocess.run(["userdel", "-r", "-f", user], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def term(hub):
    """Release, fetch and submit (as the students), collect, grade, release feedback, fetch it."""
    base, exchange = hub
    course = base / "course"
    cw.release(course, list(cw.build_course([FIXTURE], course)))
    nbgrader_as(None, ["release_assignment", NAME, "--force"], course, exchange)
    for user, (answers, _) in STUDENTS.items():
        home = base / user
        nbgrader_as(user, ["fetch_assignment", NAME], home, exchange)
        notebook = home / NAME / f"{NAME}.ipynb"
        owner = notebook.stat()
        fill(notebook, answers, notebook)  # the student's work (written here, then given back)
        os.chown(notebook, owner.st_uid, owner.st_gid)
        nbgrader_as(user, ["submit", NAME], home, exchange)
    nbgrader_as(None, ["collect", NAME], course, exchange)
    cw.grade(course, NAME, limits=LIMITS)
    nbgrader_as(None, ["release_feedback", NAME], course, exchange)
    for user in STUDENTS:
        nbgrader_as(user, ["fetch_feedback", NAME], base / user, exchange)
    return base, exchange, course


def test_collect_gets_every_student(term):
    _, _, course = term
    assert sorted(p.name for p in (course / "submitted").iterdir()) == sorted(STUDENTS)
    for user in STUDENTS:
        assert (course / "submitted" / user / NAME / "timestamp.txt").exists()


def test_each_student_is_graded(term):
    _, _, course = term
    text = (course / "grades.csv").read_text()
    for user, (_, score) in STUDENTS.items():
        assert re.search(rf"^{NAME},.*,{user},.*,{score},.*,graded,", text, re.M), user


def test_each_student_fetches_only_their_own_feedback(term):
    base, _, _ = term
    for user, (_, score) in STUDENTS.items():
        pages = list((base / user / NAME / "feedback").rglob("*.html"))
        assert len(pages) == 1, (user, pages)
        text = " ".join(re.sub(r"<[^>]+>", " ", pages[0].read_text()).split())
        assert f"{NAME} (Score: {score} / 6.0)" in text
        assert not any(other in text for other in STUDENTS if other != user)


def test_a_student_cannot_list_the_exchange_feedback(term):
    _, exchange, _ = term
    user = next(iter(STUDENTS))
    probe = ["runuser", "-u", user, "--", "ls", str(exchange / "mha" / "feedback")]
    proc = subprocess.run(probe, capture_output=True, text=True)
    assert proc.returncode != 0 and "Permission denied" in proc.stderr

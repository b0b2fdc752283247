"""The instructor's guide agrees with the chapters and names commands that exist."""

from __future__ import annotations

import re
from pathlib import Path

from mha.grading import coursework as cw

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "instructors.md").read_text()


def table_rows(text: str) -> dict[str, tuple[str, ...]]:
    """Chapter -> (coding, written, points) from the generated table; times are left out."""
    rows = re.findall(r"^\| \{doc\}`chapters/(\w+)` \| (\d+) \| (\d+) \| (\d+) \|", text, re.M)
    return {name: tuple(rest) for name, *rest in rows}


def test_chapter_table_matches_the_notebooks():
    """If this fails, run: .venv/bin/python -m mha.grading.coursework guide --write instructors.md"""
    chapters = sorted((ROOT / "chapters").glob("[0-9]*.ipynb"))
    assert table_rows(GUIDE) == table_rows(cw.guide_markdown(chapters))


def test_guide_commands_exist():
    sub = cw._parser()._subparsers._group_actions[0].choices
    commands = re.findall(r"python -m mha\.grading\.coursework ([\w-]+)", GUIDE)
    assert {"course", "grade", "demo", "guide"} <= set(commands)
    for command in commands:
        assert command in sub, command
    options = {o for action in sub["grade"]._actions for o in action.option_strings}
    options |= {o for action in sub["course"]._actions for o in action.option_strings}
    for option in set(re.findall(r"`(--[\w-]+)", GUIDE)) - {"--force"}:  # nbgrader's own
        assert option in options, f"the guide names {option}, which course/grade do not have"
    makefile = (ROOT / "Makefile").read_text()
    for target in set(re.findall(r"(?:^|`)make ([\w-]+)", GUIDE, re.M)):
        assert re.search(rf"^{target}:", makefile, re.M), f"Makefile has no target {target}"


def test_pretend_students_bugs_each_edit_one_line_of_chapter_1():
    """The guide's `sed` commands (pretend students) each change one line of the source."""
    import nbformat

    chapter = nbformat.read(ROOT / "chapters" / "01_self_attention.ipynb", as_version=4)
    source = nbformat.writes(cw.to_source_notebook(chapter)[0])
    edits = re.findall(r"^sed 's\|(.+?)\|", GUIDE, re.M)
    assert len(edits) == 2
    for edit in edits:
        text = edit.replace("\\[", "[").replace("\\]", "]")
        assert source.count(text) == 1, f"{text!r} should occur once in 01_self_attention"

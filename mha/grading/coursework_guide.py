"""The instructor's guide's per-chapter part, generated from the notebooks.

Part of :mod:`mha.grading.coursework`
(``python -m mha.grading.coursework guide --write instructors.md``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

from mha.grading.coursework_convert import CHECK, POINTS_PER_CHECK, SOLUTION, hidden_tests, tags

__all__ = ["GUIDE_BEGIN", "GUIDE_END", "chapter_summary", "guide_markdown", "write_guide"]

EXERCISE = re.compile(r"^###\s+Exercise\s+([\d.]+):?\s*(.*)$", re.M)
GUIDE_BEGIN = (
    "<!-- BEGIN GENERATED: python -m mha.grading.coursework guide --write instructors.md -->"
)
GUIDE_END = "<!-- END GENERATED -->"
MINUTES = {"reading_words_per_minute": 120, "code_cell": 1, "coding": 15, "written": 8}


@dataclass
class ChapterSummary:
    """What the instructor's guide says about one chapter."""

    name: str
    title: str
    goals: list[str]
    exercises: list[tuple[str, str, str]]  # (number, title, "coding" or "written")
    points: int
    minutes: int


def _bullets(text: str) -> list[str]:
    """The items of the Markdown lists in ``text``, continuation lines joined."""
    items: list[str] = []
    for line in text.split("\n"):
        start = re.match(r"^\s*(?:[-*]|\d+\.)\s+(.+)$", line)
        if start:
            items.append(start.group(1).strip())
        elif items and line.startswith((" ", "\t")) and line.strip():
            items[-1] += " " + line.strip()
    return items


def _goals(cells) -> list[str]:
    """The bullets of the chapter's ``## Learning goals`` section (up to the next heading)."""
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    found = re.search(r"^## Learning goals\s*$(.*?)(?=^#{1,2} )", text + "\n## end", re.M | re.S)
    return _bullets(found.group(1)) if found else []


def _exercises(cells) -> list[tuple[str, str, str]]:
    found = []
    for i, cell in enumerate(cells):
        for number, title in EXERCISE.findall(cell.source) if cell.cell_type == "markdown" else []:
            nxt = next((c for c in cells[i + 1 :] if SOLUTION in tags(c)), None)
            kind = "coding" if nxt and nxt.cell_type == "code" else "written"
            found.append((number, title.strip(), kind))
    return found


def chapter_summary(path: Path, points_per_check: int = POINTS_PER_CHECK) -> ChapterSummary:
    """Title, learning goals, exercises, points and a time estimate of a chapter notebook.

    The time is a rule of thumb: reading at 120 words a minute, a minute per code
    cell, 15 minutes per coding exercise and 8 per written one, rounded up to 5.
    """
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if SOLUTION not in tags(c)]
    title = next((c.source.split("\n")[0].lstrip("# ") for c in nb.cells), path.stem)
    exercises = _exercises(nb.cells)
    points = sum(points_per_check * max(1, len(hidden_tests(c.source)))
                 for c in nb.cells if CHECK in tags(c))  # fmt: skip
    words = sum(len(c.source.split()) for c in cells if c.cell_type == "markdown")
    minutes = words / MINUTES["reading_words_per_minute"]
    minutes += MINUTES["code_cell"] * sum(c.cell_type == "code" for c in cells)
    minutes += sum(MINUTES[kind] for _, _, kind in exercises)
    return ChapterSummary(path.stem, title, _goals(nb.cells), exercises, points,
                          int(5 * -(-minutes // 5)))  # fmt: skip


def guide_markdown(chapters: Sequence[Path], points_per_check: int = POINTS_PER_CHECK) -> str:
    """The generated part of ``instructors.md``: an overview table and a section per chapter."""
    rows, sections = [], []
    summaries = (chapter_summary(Path(p), points_per_check) for p in chapters)
    for s in (s for s in summaries if s.goals or s.exercises):
        coding = sum(kind == "coding" for *_, kind in s.exercises)
        rows.append(f"| {{doc}}`chapters/{s.name}` | {coding} | {len(s.exercises) - coding} "
                    f"| {s.points} | {s.minutes} min |")  # fmt: skip
        goals = "\n".join(f"- {g}" for g in s.goals) or "- (none listed yet)"
        exercises = "\n".join(f"- **{n}** {t} ({k})" for n, t, k in s.exercises) or "- (none yet)"
        number = f"Chapter {int(s.name[:2])}: " if s.name[:2].isdigit() else ""
        sections.append(f"### {number}{s.title}\n\n*Assignment `{s.name}`: {s.points} "
                        f"points, about {s.minutes} minutes.*\n\nLearning goals:\n\n{goals}"
                        f"\n\nExercises:\n\n{exercises}\n")  # fmt: skip
    head = "| Chapter | Coding exercises | Written exercises | Points | Time |\n" + "|---" * 5 + "|"
    total = sum(int(r.split("|")[4]) for r in rows) if rows else 0
    body = "\n".join(rows) + f"\n| **Total** | | | **{total}** | |"
    return f"{GUIDE_BEGIN}\n{head}\n{body}\n\n" + "\n".join(sections) + GUIDE_END


def write_guide(page: Path, chapters: Sequence[Path]) -> None:
    """Replace the generated part of ``page`` (between the markers) with fresh content."""
    text = page.read_text()
    start, end = text.index(GUIDE_BEGIN), text.index(GUIDE_END) + len(GUIDE_END)
    page.write_text(text[:start] + guide_markdown(chapters) + text[end:])

"""Every number in a chapter's prose is printed by one of that chapter's cells.

The rule (issue 10, CONTRIBUTING.md): no number in a markdown cell that no cell computed. The
test takes the numbers of every markdown cell of a notebook and looks for each one among the
numbers of that notebook's text outputs (printed text and reprs; figures are drawn as paths, so
their labels cannot be read back). "0.8" in the prose matches "0.80" in an output: numbers are
compared by value.

What is not a quoted result, and so is not checked:

* structure: chapter, exercise, step, table, head, column, row, dimension, position, layer and
  seed numbers ("Exercise 3.2", "head 0", "steps 1 to 5"), list markers, cross-reference labels;
* citations, links, code spans and fenced code (code is checked by running it);
* years (1900-2099), and the short list of constants in ``ALLOWED`` below, each with its reason.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))

# Numbers that are definitions or equation constants, not results. Keep this list short.
ALLOWED: dict[str, str] = {
    "0": "zero, as in 'mean 0', 'weight 0', 'index 0'",
    "1": "one, as in 'rows sum to 1', 'variance 1', 'True = 1'",
    "2": "two, and the 2 of 2i in the positional encoding",
    "10000": "the base of Vaswani et al.'s positional encoding",
}

STRUCTURE_WORDS = (
    r"chapters?|exercises?|steps?|tables?|heads?|columns?|rows?|dimensions?|positions?|layers?"
    r"|sections?|seeds?|index|indices|tokens?|pairs?|features?|query|keys?|parts?"
)
_NUM = r"\d+(?:\.\d+)?"
_STRUCTURE = re.compile(
    rf"(?i)\b(?:{STRUCTURE_WORDS})\s+{_NUM}(?:\s*(?:,|to|and|or|-|–)\s*{_NUM})*"
)
_NUMBER = re.compile(r"(?<![\w.^_\\])-?\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w])")
_STRIP = [
    re.compile(r"```.*?```", re.S),  # fenced code
    re.compile(r"\{[\w:-]+\}`[^`]*`"),  # roles: {cite}, {doc}, {ref} and their targets
    re.compile(r"\[[^\]`]*\](?=[^(]|$)"),  # indexing and slices, x[:, 3]
    re.compile(r"\b[A-Za-z_][\w.]*\d\w*"),  # names with digits: float64, conv1d
    re.compile(r"\b\d+_\w+"),  # file names: 01_self_attention
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"^\([\w-]+\)=\s*$", re.M),  # cross-reference labels
    re.compile(r"^\s*(?:\d+[.)]|[-*])\s", re.M),  # list markers
    re.compile(r"\\(?:begin|end)\{\w+\}|\\[a-zA-Z]+"),  # LaTeX commands
    re.compile(r"[_^]\{[^{}]*\}|[_^]\w"),  # LaTeX sub- and superscripts (names, not numbers)
]
_POWER_OF_TEN = re.compile(r"10\^\{?(-?\d+)\}?")
_YEAR = re.compile(r"^(19|20)\d\d$")


def value(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None


def prose_numbers(markdown: str) -> list[str]:
    """The numbers of one markdown cell that count as quoted results."""
    text = _POWER_OF_TEN.sub(r"1e\1", markdown)
    for pattern in _STRIP:
        text = pattern.sub(" ", text)
    text = _STRUCTURE.sub(" ", text)
    return [n for n in _NUMBER.findall(text) if n not in ALLOWED and not _YEAR.match(n)]


def output_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") == "error":
            parts.append(out.get("evalue", ""))
        data = out.get("data", {})
        for mime in ("text/plain", "text/html", "text/markdown", "text/latex"):
            if mime in data and "image/svg+xml" not in data:
                parts.append(data[mime] if isinstance(data[mime], str) else "".join(data[mime]))
    return "\n".join(parts)


def output_values(nb) -> set[Decimal]:
    """Every number that any cell of the notebook printed, by value (percentages included)."""
    text = "\n".join(output_text(c) for c in nb.cells if c.cell_type == "code")
    found = re.findall(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?", text)
    return {v for v in map(value, found) if v is not None} | {
        v for v in map(value, re.findall(r"\d+(?:\.\d+)?(?=%)", text)) if v is not None
    }


def unprinted(nb) -> list[tuple[int, str]]:
    """(cell index, number) for every prose number that no output of the notebook contains."""
    printed = output_values(nb)
    missing = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for n in prose_numbers(cell.source):
                v = value(n)
                if v is None or (v not in printed and -v not in printed):
                    missing.append((i, n))
    return missing


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_prose_number_is_printed(path):
    nb = nbformat.read(path, as_version=4)
    missing = unprinted(nb)
    assert not missing, f"{path.name}: numbers in the prose that no cell prints: " + ", ".join(
        f"cell {i}: {n}" for i, n in missing
    )


def test_the_checker_flags_an_unprinted_number_and_accepts_a_printed_one():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(0.80)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="0.80\n")]
    nb.cells = [
        cell,
        nbformat.v4.new_markdown_cell("Weights change by up to 0.8 in head 3, not 0.81."),
        nbformat.v4.new_markdown_cell("See Exercise 3.2, {cite}`vaswani2017attention` (2017)."),
    ]
    assert unprinted(nb) == [(1, "0.81")]


def test_structure_code_and_math_names_are_not_numbers():
    text = (
        "1. In Chapters 4 and 5, head 2 reads `x[:, 3]` and $W_{Q,1}$; see {doc}`02_projections`.\n"
        "(ch2-cost)=\n"
        "$d_\\text{model} = 12$ and 1,050,624 parameters, 33% of 1e-5."
    )
    assert prose_numbers(text) == ["12", "1,050,624", "33", "1e-5"]

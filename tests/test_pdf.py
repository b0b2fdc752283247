"""The PDF edition (``make pdf``): built through LaTeX, read back with poppler's pdftotext.

One build per session (Jupyter Book's ``pdflatex`` builder: Sphinx LaTeX, then
latexmk with xelatex; SVG figures converted by ``sphinxcontrib.rsvgconverter``).
The text must hold every page's title and every exercise heading, and no
``??`` (an unresolved reference); the LaTeX log must show every figure placed
and no glyph missing from the fonts.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from reader_fixtures import build, need

ROOT = Path(__file__).resolve().parents[1]
DOCS = re.findall(r"(?:root|file):\s*(\S+)", (ROOT / "_toc.yml").read_text())
TOOLS = ["xelatex", "latexmk", "rsvg-convert", "pdftotext", "pdfinfo", "kpsewhich"]
HIDDEN = {"remove-cell", "remove-output"}


def source_lines(doc: str) -> list[str]:
    """The markdown lines of a page (notebook markdown cells, or the ``.md`` file)."""
    if (ROOT / f"{doc}.ipynb").exists():
        nb = nbformat.read(ROOT / f"{doc}.ipynb", as_version=4)
        return [ln for c in nb.cells if c.cell_type == "markdown" for ln in c.source.splitlines()]
    return (ROOT / f"{doc}.md").read_text(encoding="utf-8").splitlines()


def plain(heading: str) -> str:
    """A markdown heading as the PDF prints it: no ``#``, backticks or ``**``."""
    return re.sub(r"\s+", " ", re.sub(r"[`*]", "", heading.lstrip("#"))).strip()


def figure_count(doc: str) -> int:
    """SVG figures the page shows (cells not removed from the book)."""
    if not (ROOT / f"{doc}.ipynb").exists():
        return 0
    nb = nbformat.read(ROOT / f"{doc}.ipynb", as_version=4)
    shown = [
        c
        for c in nb.cells
        if c.cell_type == "code" and not HIDDEN & set(c.metadata.get("tags", []))
    ]
    return sum("image/svg+xml" in o.get("data", {}) for c in shown for o in c.get("outputs", []))


@pytest.fixture(scope="module")
def pdf(tmp_path_factory):
    for tool in TOOLS:
        need(shutil.which(tool) is not None, f"{tool} (TeX / poppler / librsvg)")
    need(subprocess.run(["kpsewhich", "bbm.sty"], capture_output=True).returncode == 0, "bbm.sty")
    out = tmp_path_factory.mktemp("pdf")
    proc = build(out, builder="pdflatex")
    latex = out / "_build" / "latex"
    path = latex / "mha-course.pdf"
    assert proc.returncode == 0 and path.exists(), (proc.stdout + proc.stderr)[-4000:]
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout
    log = (latex / "mha-course.log").read_text(encoding="utf-8", errors="replace")
    return {"path": path, "text": re.sub(r"\s+", " ", text), "log": log}


def test_pdf_has_every_title(pdf):
    missing = []
    for doc in DOCS:
        title = next(ln for ln in source_lines(doc) if ln.startswith("# "))
        if plain(title) not in pdf["text"]:
            missing.append(plain(title))
    assert missing == [], f"titles missing from the PDF: {missing}"


def test_pdf_has_every_exercise(pdf):
    # compared up to the first math or quote, which the PDF typesets differently (𝑑, “knew”)
    exercises = [
        re.split(r"[$\"“”']", plain(ln))[0].strip()
        for doc in DOCS
        for ln in source_lines(doc)
        if ln.startswith("### Exercise")
    ]
    assert exercises, "no exercises found in the sources"
    missing = [e for e in exercises if e not in pdf["text"]]
    assert missing == [], f"exercises missing from the PDF: {missing}"


def test_pdf_has_no_unresolved_reference(pdf):
    assert "??" not in pdf["text"], pdf["text"][pdf["text"].find("??") - 200 :][:400]


def test_pdf_places_every_figure(pdf):
    """xelatex logs each included graphic; the SVGs arrive as PDF, not as ``<Figure ...>``."""
    expected = sum(figure_count(doc) for doc in DOCS)
    placed = len(re.findall(r"<use [^<>]+\.pdf>", pdf["log"]))
    assert expected > 0 and placed >= expected, f"{placed} figures placed, {expected} expected"
    assert "<Figure size" not in pdf["text"], "a figure fell back to its text repr"


def test_pdf_has_no_missing_glyph(pdf):
    missing = sorted(set(re.findall(r"Missing character: There is no (\S+)", pdf["log"])))
    assert missing == [], f"characters the PDF fonts lack: {missing}"


def test_pdf_pages(pdf):
    info = subprocess.run(["pdfinfo", str(pdf["path"])], capture_output=True, text=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert pages >= 10 * len(DOCS) // 2, f"only {pages} pages"

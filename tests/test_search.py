"""The book's search finds the course's key terms, and every chapter offers its notebook.

The search runs as a reader runs it: Sphinx's own search page in headless
Chromium (``search.html?q=...``) over the built index, served from 127.0.0.1.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
TOC = (ROOT / "_toc.yml").read_text()
NOTEBOOKS = [
    d for d in re.findall(r"(?:root|file):\s*(\S+)", TOC) if (ROOT / f"{d}.ipynb").exists()
]

# query -> a chapter that must be among the results (where the term is taught)
QUERIES = {
    "softmax": "chapters/01_self_attention",
    "concatenation": "chapters/04_concatenation",
    "W_O": "chapters/05_output_projection",
    "positional encoding": "chapters/06_encoder",
}


@pytest.fixture(scope="module")
def search_page(chromium, book_server):
    context = chromium.new_context()
    yield context.new_page(), book_server
    context.close()


@pytest.mark.parametrize("query", QUERIES)
def test_search_finds(search_page, query):
    page, base = search_page
    page.goto(f"{base}/search.html?q={query}")
    summary = page.locator("p.search-summary")
    summary.wait_for(timeout=20_000)
    page.wait_for_function(
        "() => document.querySelector('p.search-summary').textContent.includes('finished')"
    )
    hits = page.eval_on_selector_all("ul.search li a", "as => as.map(a => a.getAttribute('href'))")
    pages = {h.split("#")[0].split("?")[0].removesuffix(".html") for h in hits}
    assert QUERIES[query] in pages, f"{query!r} found {sorted(pages)}"


@pytest.mark.parametrize("docname", NOTEBOOKS)
def test_chapter_offers_its_notebook(reader_book, docname):
    html = (reader_book / f"{docname}.html").read_text(encoding="utf-8")
    name = Path(docname).name
    link = re.search(rf'href="([^"]*_sources/{re.escape(docname)}\.ipynb)"', html)
    assert link, f"{docname}: no .ipynb download button"
    target = (reader_book / docname).parent / link.group(1)
    nb = nbformat.read(target.resolve(), as_version=4)
    source = nbformat.read(ROOT / f"{docname}.ipynb", as_version=4)
    assert [c.source for c in nb.cells] == [c.source for c in source.cells], name

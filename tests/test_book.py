"""The book builds with `-W -n` (every warning is an error), offline, with local MathJax."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mha.grading.student_edition import build_book

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    proc = build_book(ROOT, out, timeout=600)
    return proc, out / "_build" / "html"


def test_book_builds_without_warnings(built):
    proc, html = built
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "WARNING" not in log, log[-4000:]
    assert (html / "index.html").exists()


def test_every_chapter_is_rendered(built):
    _, html = built
    toc = (ROOT / "_toc.yml").read_text()
    for name in re.findall(r"file:\s*(\S+)", toc):
        assert (html / f"{name}.html").exists(), name


def test_math_and_scripts_are_local(built):
    """MathJax comes from the package sphinx-mathjax-offline: no CDN."""
    _, html = built
    assert (html / "_static" / "mathjax" / "tex-chtml.js").exists()
    for page in html.rglob("*.html"):
        scripts = re.findall(r"<script[^>]*src=\"([^\"]+)\"", page.read_text())
        remote = [s for s in scripts if s.startswith(("http:", "https:", "//"))]
        assert not remote, f"{page.name} loads {remote}"

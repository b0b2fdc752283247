"""Accessibility of the built book: every figure says what it shows; headings go in order.

Alt text comes from the figure cell's metadata, ``"mystnb": {"image": {"alt":
"..."}}`` (CONTRIBUTING.md). Without it, Sphinx writes the image's file path
as its ``alt``, which a screen reader reads out as a hash; this test names
every such figure, by chapter and figure number, so its owner can add one.
"""

from __future__ import annotations

import itertools
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = re.findall(r"(?:root|file):\s*(\S+)", (ROOT / "_toc.yml").read_text())
GENERIC = {"figure", "image", "plot", "chart", "graph", "diagram", "picture", "output"}
MIN_WORDS = 4


class Article(HTMLParser):
    """The images and headings inside the page's ``<article>``."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.images: list[dict[str, str]] = []
        self.headings: list[tuple[int, str]] = []
        self._heading: list | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "article":
            self.depth += 1
        if not self.depth:
            return
        if tag == "img":
            self.images.append({k: v or "" for k, v in attrs.items()})
        if re.fullmatch(r"h[1-6]", tag):
            self._heading = [int(tag[1]), ""]

    def handle_endtag(self, tag):
        if tag == "article":
            self.depth -= 1
        if self._heading and tag == f"h{self._heading[0]}":
            self.headings.append((self._heading[0], self._heading[1].strip().rstrip("#")))
            self._heading = None

    def handle_data(self, data):
        if self._heading:
            self._heading[1] += data


def parse(html: Path, docname: str) -> Article:
    article = Article()
    article.feed((html / f"{docname}.html").read_text(encoding="utf-8"))
    return article


def alt_problem(img: dict[str, str]) -> str | None:
    """Why ``img``'s alt text does not say what it shows (``None`` when it does)."""
    alt, src = img.get("alt", "").strip(), img.get("src", "")
    if not alt:
        return "no alt text"
    if alt == src or Path(alt).name == Path(src).name or re.search(r"\.(svg|png|jpe?g)$", alt):
        return f"alt is the file name {Path(alt).name[:16]}..."
    words = re.findall(r"[\w'-]+", alt)
    if len(words) < MIN_WORDS or alt.lower().strip(".") in GENERIC:
        return f"alt {alt!r} does not say what the figure shows"
    return None


@pytest.mark.parametrize("docname", PAGES)
def test_every_figure_has_alt_text(reader_book, docname):
    problems = [
        f"figure {i + 1}: {why}"
        for i, img in enumerate(parse(reader_book, docname).images)
        if (why := alt_problem(img))
    ]
    assert problems == [], f"{docname}: " + "; ".join(problems)


@pytest.mark.parametrize("docname", PAGES)
def test_headings_go_down_one_level_at_a_time(reader_book, docname):
    headings = parse(reader_book, docname).headings
    assert headings and headings[0][0] == 1, f"{docname} does not start with its title"
    assert sum(level == 1 for level, _ in headings) == 1, f"{docname} has several titles"
    for (before, _), (level, text) in itertools.pairwise(headings):
        assert level <= before + 1, f"{docname}: h{before} then h{level} ({text!r})"


def test_alt_text_check_is_not_vacuous():
    """The checker rejects what Sphinx writes by default and accepts a real description."""
    src = "../_images/febc5d8d94.svg"
    assert alt_problem({"src": src, "alt": src})
    assert alt_problem({"src": src, "alt": "plot"})
    assert alt_problem({"src": src}) == "no alt text"
    good = "Heatmap of the attention weights: each token attends most to itself"
    assert alt_problem({"src": src, "alt": good}) is None

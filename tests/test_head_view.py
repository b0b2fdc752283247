"""Chapter 8's interactive head view in a real browser (headless Debian Chromium).

The HTML tested is the one stored in ``chapters/08_real_heads.ipynb`` (what the
book shows), loaded from a file with every network request refused: the view
must work offline, change with the layer and head menus, and follow the hover.
"""

import json
import re
from pathlib import Path

import matplotlib
import nbformat
import numpy as np
import pytest

from mha.course import head_view

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "chapters" / "08_real_heads.ipynb"


def stored_view() -> str:
    nb = nbformat.read(CHAPTER, as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            html = out.get("data", {}).get("text/html", "")
            if "mha-head-view" in html:
                return html
    raise AssertionError("no head view output in chapters/08_real_heads.ipynb")


def test_html_is_self_contained():
    html = stored_view()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # no CDN, no link
    data = json.loads(re.search(r'class="hv-data">(.*?)</script>', html, re.S).group(1))
    w = np.array(data["weights"])
    assert w.shape == (6, 12, len(data["tokens"]), len(data["tokens"]))
    assert np.allclose(w.sum(-1), 1, atol=0.01)  # rows of attention weights, rounded to 3 places


def test_bad_weights_shape_is_refused():
    with pytest.raises(ValueError, match="weights must be"):
        head_view.head_view_html(np.zeros((1, 1, 3, 3)), ["a", "b"])


def test_cell_value_shows_html_in_the_book_and_text_elsewhere():
    view = head_view.HeadView(np.full((1, 1, 2, 2), 0.5), ["a", "b"], element_id="v")
    assert view._repr_html_().startswith('<div id="v"')
    assert "static figure" in repr(view)  # what the PDF prints in place of the HTML


def test_static_figure_draws_one_line_per_key():
    w = np.full((1, 1, 4, 4), 0.25)
    fig = head_view.head_view_figure(w, ["[CLS]", "a", "b", "[SEP]"], 0, 0, 1)
    assert len(fig.axes[0].lines) == 4


@pytest.fixture
def page(chromium, tmp_path):
    path = tmp_path / "view.html"
    path.write_text(f"<!doctype html><html><body>{stored_view()}</body></html>", encoding="utf-8")
    page = chromium.new_page()
    blocked, errors = [], []
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:")
               else (blocked.append(r.request.url), r.abort()))  # fmt: skip
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    yield page
    assert blocked == [] and errors == []
    page.close()


def state(page):
    root = page.locator("#mha-head-view")
    return {k: root.get_attribute(f"data-{k}") for k in ("layer", "head", "query")}


def test_view_starts_on_knew_in_the_previous_token_head(page):
    assert state(page) == {"layer": "0", "head": "2", "query": "9"}
    assert page.locator(".hv-readout").text_content().startswith("L0H2  knew → he 1.00")


def test_menus_and_hover_change_the_view(page):
    data = json.loads(page.locator("script.hv-data").text_content())
    page.select_option("select.hv-layer", "3")
    page.select_option("select.hv-head", "7")
    assert state(page)["layer"] == "3" and state(page)["head"] == "7"
    page.locator("text.hv-query").nth(5).hover()  # "trust"
    assert state(page)["query"] == "5"
    row = data["weights"][3][7][5]
    opacities = [
        float(x.get_attribute("stroke-opacity")) for x in page.locator("line.hv-line").all()
    ]
    assert np.allclose(opacities, row)
    best = int(np.argmax(row))
    readout = page.locator(".hv-readout").text_content()
    assert readout.startswith(f"L3H7  trust → {data['tokens'][best]} {row[best]:.2f}")

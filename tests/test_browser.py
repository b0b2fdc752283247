"""Every page of the built book in headless Chromium, light and dark theme, with no network.

For each page and theme: no console error, no failed local request, every image
loaded, every math block typeset by the local MathJax without a TeX error and
no raw TeX left in the text (outside code), no
request that leaves the machine (every non-loopback request is blocked and
recorded). The top of each chapter is saved as
``_build/artifacts/screenshots/<chapter>_<theme>.png`` and each figure as it
appears on the page as ``.../screenshots/figures/<chapter>_<n>_<theme>.png``
(not committed). Every figure must sit on a light panel with dark ink (WCAG
contrast >= 4.5) in both themes, so it stays readable in dark mode.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = re.findall(r"(?:root|file):\s*(\S+)", (ROOT / "_toc.yml").read_text())
PAGES = [*CHAPTERS, "search", "genindex"]
THEMES = ["light", "dark"]
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
MIN_PANEL_LUMINANCE = 0.6  # measured: 0.96-1.0 light, 0.68-0.71 dark (theme dims images)
MIN_CONTRAST = 4.5  # WCAG AA for text: figure labels are text

MATH_STATE = """() => {
  const blocks = [...document.querySelectorAll('.math')];
  return {
    count: blocks.length,
    untypeset: blocks.filter(b => !b.querySelector('mjx-container'))
                     .map(b => b.textContent.trim().slice(0, 80)),
    errors: [...document.querySelectorAll('mjx-merror')].map(e => e.textContent.slice(0, 80)),
  };
}"""
RAW_TEX = r"""() => {
  const article = document.querySelector('article');
  if (!article) return [];
  const copy = article.cloneNode(true);
  copy.querySelectorAll('pre, code, mjx-container, script, style').forEach(e => e.remove());
  const pattern = /\\(frac|sqrt|mathbb|mathrm|operatorname|cdot|left|right|begin)\b|\\[(\[]|\$\$/g;
  return [...copy.textContent.matchAll(pattern)].map(m => m[0]);
}"""
BROKEN_IMAGES = (
    "() => [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
)


class Visit:
    """What one page did in the browser: console errors, failed and blocked requests."""

    def __init__(self, context, url: str) -> None:
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.outside: list[str] = []
        context.route("**/*", self._route)
        self.page = page = context.new_page()
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.on("requestfailed", self._failed)
        page.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.status} {r.url}"))
        page.goto(url, wait_until="load")
        page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")

    def _route(self, route) -> None:
        if urlparse(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort("blockedbyclient")

    def _failed(self, request) -> None:
        if urlparse(request.url).hostname in LOOPBACK:
            self.failed.append(f"{request.failure} {request.url}")


@pytest.fixture(params=THEMES)
def theme_context(request, chromium):
    context = chromium.new_context(
        color_scheme=request.param, viewport={"width": 1280, "height": 900}
    )
    yield request.param, context
    context.close()


@pytest.mark.parametrize("page", PAGES)
def test_page_in_browser(page, theme_context, book_server, artifacts):
    theme, context = theme_context
    visit = Visit(context, f"{book_server}/{page}.html")
    tab = visit.page
    assert tab.evaluate("document.documentElement.dataset.theme") == theme
    assert visit.errors == [], f"console errors on {page}: {visit.errors}"
    assert visit.failed == [], f"failed local requests on {page}: {visit.failed}"
    assert visit.outside == [], f"{page} tried to leave the machine: {visit.outside}"
    assert tab.evaluate(BROKEN_IMAGES) == [], f"images not loaded on {page}"
    math = tab.evaluate(MATH_STATE)
    assert math["untypeset"] == [], f"{page}: math not typeset: {math['untypeset'][:5]}"
    assert math["errors"] == [], f"{page}: MathJax TeX errors: {math['errors'][:5]}"
    raw = tab.evaluate(RAW_TEX)
    assert raw == [], f"{page}: TeX left untypeset in the text: {raw[:5]}"
    if page in CHAPTERS:
        name = Path(page).name
        tab.screenshot(path=artifacts / "screenshots" / f"{name}_{theme}.png")
        check_figures(tab, page, theme, artifacts / "screenshots" / "figures")


def luminance(rgb) -> float:
    """WCAG relative luminance of an sRGB colour (0-255 channels)."""
    lin = [
        (c / 255) / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb
    ]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def panel_and_ink(png: bytes) -> tuple[float, float]:
    """Luminance of a figure's most common colour (its panel) and of its darkest ink."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    counts = sorted(img.getcolors(maxcolors=1 << 20), reverse=True)
    panel = luminance(counts[0][1])
    total = sum(n for n, _ in counts)
    lums = sorted((luminance(c), n) for n, c in counts)
    seen, ink = 0, lums[0][0]
    for lum, n in lums:  # the darkest 0.2% of pixels: the ink of labels and lines
        seen += n
        ink = lum
        if seen >= 0.002 * total:
            break
    return panel, ink


def check_figures(tab, page: str, theme: str, folder: Path) -> None:
    """Each figure in the article: a light panel and ink with WCAG contrast >= 4.5."""
    folder.mkdir(parents=True, exist_ok=True)
    figures = tab.locator("article img")
    for i in range(figures.count()):
        png = figures.nth(i).screenshot()
        (folder / f"{Path(page).name}_{i + 1}_{theme}.png").write_bytes(png)
        panel, ink = panel_and_ink(png)
        contrast = (panel + 0.05) / (ink + 0.05)
        where = f"{page} figure {i + 1} ({theme} theme)"
        assert panel >= MIN_PANEL_LUMINANCE, f"{where}: panel luminance {panel:.2f} is dark"
        assert contrast >= MIN_CONTRAST, f"{where}: contrast {contrast:.1f} < {MIN_CONTRAST}"


def test_readability_check_is_not_vacuous():
    """A transparent figure on the dark page (dark panel, dark ink) fails; a light panel passes."""
    from PIL import Image, ImageDraw

    def png(panel, ink) -> bytes:
        img = Image.new("RGB", (200, 100), panel)
        ImageDraw.Draw(img).rectangle((20, 40, 180, 60), fill=ink)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()

    panel, ink = panel_and_ink(png((18, 18, 18), (40, 40, 40)))
    assert panel < MIN_PANEL_LUMINANCE and (panel + 0.05) / (ink + 0.05) < MIN_CONTRAST
    panel, ink = panel_and_ink(png((255, 255, 255), (0, 0, 0)))
    assert panel == 1.0 and (panel + 0.05) / (ink + 0.05) == pytest.approx(21.0)

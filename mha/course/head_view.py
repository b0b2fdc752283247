"""Chapter 8: an interactive head view that works offline, and its static twin.

:func:`head_view_html` returns one self-contained ``<div>`` with its data and
script inline (no CDN, no external file): the reader picks a layer and a head
and hovers a token on the left; lines to the tokens on the right are as opaque
as the attention weight, and a readout lists the largest weights.
:func:`head_view_figure` draws the same picture with matplotlib, for the PDF
and for nbval, which compares the SVG.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["HeadView", "head_view_html", "head_view_figure"]

_STYLE = """
#{id} {{font-family: sans-serif; font-size: 14px; line-height: 1.4; max-width: 460px;}}
#{id} .hv-controls {{display: flex; gap: 1em; margin-bottom: 0.5em;}}
#{id} svg text {{fill: currentColor; font-size: 14px; cursor: default;}}
#{id} svg text.hv-query {{cursor: pointer;}}
#{id} svg text.hv-active {{font-weight: bold;}}
#{id} .hv-readout {{min-height: 2.8em; font-family: monospace;}}
"""

_SCRIPT = """
(function () {
  const root = document.getElementById("{id}");
  const data = JSON.parse(root.querySelector("script.hv-data").textContent);
  const layer = root.querySelector("select.hv-layer"), head = root.querySelector("select.hv-head");
  const lines = root.querySelectorAll("line.hv-line"), keys = root.querySelectorAll("text.hv-key");
  const queries = root.querySelectorAll("text.hv-query");
  const readout = root.querySelector(".hv-readout");
  let query = data.query;
  function draw() {
    const l = +layer.value, h = +head.value, row = data.weights[l][h][query];
    lines.forEach((line, j) => {
      line.setAttribute("stroke-opacity", row[j]);
      line.setAttribute("y1", queries[query].getAttribute("y") - 5);
    });
    keys.forEach((key, j) => key.setAttribute("fill-opacity", 0.35 + 0.65 * row[j]));
    queries.forEach((q, i) => q.classList.toggle("hv-active", i === query));
    const top = row.map((w, j) => [w, j]).sort((a, b) => b[0] - a[0]).slice(0, 3);
    readout.textContent = "L" + l + "H" + h + "  " + data.tokens[query] + " \\u2192 " +
      top.map(([w, j]) => data.tokens[j] + " " + w.toFixed(2)).join(", ");
    Object.assign(root.dataset, {layer: l, head: h, query: query});
  }
  queries.forEach((q, i) => q.addEventListener("mouseenter", () => { query = i; draw(); }));
  layer.addEventListener("change", draw);
  head.addEventListener("change", draw);
  draw();
})();
"""


def _options(n: int, selected: int) -> str:
    return "".join(
        f'<option value="{i}"{" selected" if i == selected else ""}>{i}</option>' for i in range(n)
    )


def _svg(tokens: list[str], row_height: int = 22, width: int = 360) -> str:
    """Two columns of tokens (queries left, keys right) and one line per key."""
    height = row_height * len(tokens) + 10
    ys = [row_height * (i + 1) for i in range(len(tokens))]
    label = "attention of the hovered token (left) to every token (right)"
    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="{label}">']
    for j, y in enumerate(ys):
        parts.append(f'<line class="hv-line" x1="105" x2="{width - 105}" y1="{ys[0] - 5}" '
                     f'y2="{y - 5}" stroke="#1f77b4" stroke-width="3" stroke-opacity="0" '
                     f'data-key="{j}"/>')  # fmt: skip
    for i, (y, t) in enumerate(zip(ys, tokens, strict=True)):
        t = html.escape(t)
        parts.append(f'<text class="hv-query" x="100" y="{y}" text-anchor="end" '
                     f'data-index="{i}">{t}</text>')  # fmt: skip
        parts.append(f'<text class="hv-key" x="{width - 100}" y="{y}" data-index="{i}">{t}</text>')
    return "".join(parts) + "</svg>"


def head_view_html(weights: np.ndarray, tokens: list[str], query: int = 0, layer: int = 0,
                   head: int = 0, element_id: str = "mha-head-view") -> str:  # fmt: skip
    """Self-contained HTML of the head view; ``weights`` is ``(layers, heads, L, L)``.

    Introduced in Chapter 8. Weights are rounded to 3 decimals (the view shows 2),
    which also keeps the stored notebook output the same on every CPU.
    """
    n_layers, n_heads, n, n2 = weights.shape
    if n != n2 or n != len(tokens):
        raise ValueError(f"weights must be (layers, heads, {len(tokens)}, {len(tokens)}) for "
                         f"{len(tokens)} tokens, got {weights.shape}")  # fmt: skip
    data = {"tokens": tokens, "query": query, "weights": np.round(weights, 3).tolist()}
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return (
        f'<div id="{element_id}" class="mha-head-view">'
        f"<style>{_STYLE.format(id=element_id)}</style>"
        f'<div class="hv-controls"><label>Layer <select class="hv-layer">'
        f'{_options(n_layers, layer)}</select></label><label>Head <select class="hv-head">'
        f"{_options(n_heads, head)}</select></label></div>"
        f"{_svg(tokens)}"
        f'<div class="hv-readout" aria-live="polite"></div>'
        f'<script type="application/json" class="hv-data">{payload}</script>'
        f"<script>{_SCRIPT.replace('{id}', element_id)}</script></div>"
    )


class HeadView:
    """A notebook cell's value that shows :func:`head_view_html` (Chapter 8).

    Its plain-text form, which the PDF and terminals show, says where the view is.
    """

    def __init__(self, weights: np.ndarray, tokens: list[str], **options: object) -> None:
        self.html = head_view_html(weights, tokens, **options)

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return "Interactive head view (in the HTML edition; the static figure below shows one head)"


def head_view_figure(
    weights: np.ndarray, tokens: list[str], layer: int, head: int, query: int
) -> Figure:
    """The static head view: query ``tokens[query]`` (left) to every token (right).

    Introduced in Chapter 8. ``weights`` is ``(layers, heads, L, L)``; each
    line's opacity is the attention weight, printed beside the key when >= 0.05.
    """
    row = weights[layer, head, query]
    n = len(tokens)
    fig, ax = plt.subplots(figsize=(4.2, 0.3 * n + 0.6))
    for j, w in enumerate(row):
        ax.plot([0, 1], [query, j], color="#1f77b4", alpha=float(w), linewidth=3)
        label = f"{tokens[j]}  {w:.2f}" if w >= 0.05 else tokens[j]
        ax.text(1.03, j, label, va="center", alpha=0.35 + 0.65 * float(w))
    for i, t in enumerate(tokens):
        ax.text(-0.03, i, t, va="center", ha="right", fontweight="bold" if i == query else None)
    ax.set_xlim(-0.6, 1.6)
    ax.set_ylim(n - 0.5, -0.5)
    ax.axis("off")
    ax.set_title(f"L{layer}H{head}: where {tokens[query]!r} looks")
    fig.tight_layout()
    return fig

"""Chapter 6: figures of the encoder layer (post-norm and pre-norm side by side)."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

if TYPE_CHECKING:  # annotations only
    from matplotlib.figure import Figure

__all__ = ["encoder_diagram", "POST_NORM", "PRE_NORM"]

_COLOURS = {
    "attn": "#F4C9A6",
    "ffn": "#BFD8EE",
    "norm": "#F7EBA8",
    "add": "#FFFFFF",
    "io": "#E6E6E6",
}
_BOX_W, _BOX_H, _GAP = 2.6, 0.55, 0.45
_RESIDUAL_PATH = "arc,angleA=0,angleB=0,armA=22,armB=22,rad=6"  # out right, up, back in

# (label, kind) from bottom to top, and the residual connections (from box i to box j).
POST_NORM = (
    [("input x", "io"), ("multi-head attention", "attn"), ("add & LayerNorm", "norm"),
     ("feed-forward (per token)", "ffn"), ("add & LayerNorm", "norm"), ("output", "io")],
    [(0, 2), (2, 4)],
)  # fmt: skip
PRE_NORM = (
    [("input x", "io"), ("LayerNorm", "norm"), ("multi-head attention", "attn"), ("add", "add"),
     ("LayerNorm", "norm"), ("feed-forward (per token)", "ffn"), ("add", "add"), ("output", "io")],
    [(0, 3), (3, 6)],
)  # fmt: skip


def _column(ax, x0: float, boxes, residuals) -> None:
    """Boxes stacked bottom-up at ``x0``, arrows between them, residual arcs on the right."""
    ys = [i * (_BOX_H + _GAP) for i in range(len(boxes))]
    for (label, kind), y in zip(boxes, ys, strict=True):
        ax.add_patch(
            FancyBboxPatch(
                (x0, y),
                _BOX_W,
                _BOX_H,
                boxstyle="round,pad=0.04",
                facecolor=_COLOURS[kind],
                edgecolor="#444444",
            )
        )
        ax.text(x0 + _BOX_W / 2, y + _BOX_H / 2, label, ha="center", va="center", fontsize=9)
    for y0, y1 in itertools.pairwise(ys):
        ax.add_patch(
            FancyArrowPatch(
                (x0 + _BOX_W / 2, y0 + _BOX_H + 0.03),
                (x0 + _BOX_W / 2, y1 - 0.03),
                arrowstyle="-|>",
                mutation_scale=10,
                color="#444444",
            )
        )
    for i, j in residuals:
        start, end = (x0 + _BOX_W, ys[i] + _BOX_H / 2), (x0 + _BOX_W, ys[j] + _BOX_H / 2)
        arrow = FancyArrowPatch(
            start,
            end,
            connectionstyle=_RESIDUAL_PATH,
            arrowstyle="-|>",
            mutation_scale=10,
            color="#C44E52",
            linewidth=1.5,
        )
        ax.add_patch(arrow)


def encoder_diagram() -> Figure:
    """One encoder layer, post-norm (Vaswani et al.) next to pre-norm (Xiong et al.).

    Introduced in Chapter 6. Red arcs are the residual connections. Returns the Figure.
    """
    fig, ax = plt.subplots(figsize=(8.5, 5.4))
    panels = [
        (0.0, POST_NORM, "post-norm (norm_first=False)"),
        (4.4, PRE_NORM, "pre-norm (norm_first=True)"),
    ]
    for x0, (boxes, residuals), title in panels:
        _column(ax, x0, boxes, residuals)
        ax.text(
            x0 + _BOX_W / 2,
            len(PRE_NORM[0]) * (_BOX_H + _GAP),
            title,
            ha="center",
            fontsize=11,
            fontweight="bold",
        )
    ax.set_xlim(-0.3, 8.4)
    ax.set_ylim(-0.3, len(PRE_NORM[0]) * (_BOX_H + _GAP) + 0.4)
    ax.axis("off")
    return fig

"""Reproducible, theme-proof figures for the notebooks.

Every chapter calls :func:`setup` once. Figures are emitted as SVG (which
strict nbval compares) with a fixed hash salt and no ``Date`` metadata, so the
same code gives byte-identical output. Figures have an opaque white
background so that they stay readable in the book's dark theme too.
"""

from __future__ import annotations

import os

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

__all__ = ["setup", "heatmap", "head_grid"]

CMAP = "Blues"


def setup() -> None:
    """Configure matplotlib for reproducible SVG output in notebooks (every chapter)."""
    os.environ.setdefault("SOURCE_DATE_EPOCH", "0")
    mpl.rcParams.update({
        "svg.hashsalt": "mha-course",
        "svg.fonttype": "path",
        "figure.facecolor": "white",
        "savefig.facecolor": "white",
        "axes.facecolor": "white",
        "figure.dpi": 80,
        "font.size": 10,
    })  # fmt: skip
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # plain Python: nothing to configure
        return
    set_matplotlib_formats("svg", bbox_inches="tight", metadata={"Date": None})


def heatmap(weights, row_labels, col_labels, ax=None, title=None, annotate=True, vmax=None):
    """Draw a ``(L, S)`` attention matrix: rows are queries, columns are keys.

    Introduced in Chapter 1. Returns the matplotlib ``Axes``.
    """
    weights = np.asarray(weights)
    ax = ax or plt.subplots(figsize=(0.55 * len(col_labels) + 1.5, 0.45 * len(row_labels) + 1))[1]
    ax.imshow(weights, cmap=CMAP, vmin=0, vmax=vmax or max(float(weights.max()), 1e-12))
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=45, ha="right")
    ax.set_yticks(range(len(row_labels)), row_labels)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    if annotate:
        top = weights.max() or 1.0
        for (i, j), w in np.ndenumerate(weights):
            colour = "white" if w > 0.6 * top else "black"
            ax.text(j, i, f"{w:.2f}", ha="center", va="center", fontsize=7, color=colour)
    if title:
        ax.set_title(title)
    return ax


def head_grid(weights, tokens, titles=None, ncols=None, annotate=False):
    """One heatmap per head, never averaged: ``weights`` is ``(h, L, S)``.

    Introduced in Chapter 3. Returns the matplotlib ``Figure``.
    """
    weights = np.asarray(weights)
    h = weights.shape[0]
    ncols = ncols or min(h, 4)
    nrows = -(-h // ncols)
    size = 0.42 * len(tokens) + 1.2
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= h:
            ax.axis("off")
            continue
        title = titles[i] if titles else f"head {i}"
        heatmap(weights[i], tokens, tokens, ax=ax, title=title, annotate=annotate, vmax=1.0)
        if i % ncols:
            ax.set_ylabel("")
    fig.tight_layout()
    return fig

"""Reproducible, theme-proof figures for the notebooks.

Every chapter calls :func:`setup` once. Figures are emitted as SVG (which
strict nbval compares) with a fixed hash salt and no ``Date`` metadata, so the
same code gives byte-identical output. Figures have an opaque white
background so that they stay readable in the book's dark theme too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

if TYPE_CHECKING:  # annotations only
    import numpy.typing as npt
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["setup", "heatmap", "attention_arcs", "head_grid", "shape_flow"]

CMAP = "Blues"


def setup() -> None:
    """Configure matplotlib for reproducible SVG output in notebooks (every chapter)."""
    os.environ.setdefault("SOURCE_DATE_EPOCH", "0")
    mpl.rcParams.update(
        {
            "svg.hashsalt": "mha-course",
            "svg.fonttype": "path",
            "figure.facecolor": "white",
            "savefig.facecolor": "white",
            "axes.facecolor": "white",
            "figure.dpi": 80,
            "font.size": 10,
        }
    )
    if not _in_kernel():  # plain Python: nothing more to configure
        return
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    # Inline figures even when MPLBACKEND (e.g. Agg) is set in the environment.
    plt.switch_backend("module://matplotlib_inline.backend_inline")
    set_matplotlib_formats("svg", bbox_inches="tight", metadata={"Date": None})


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (where figures display inline)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in shell.config


def heatmap(
    weights: npt.ArrayLike,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    ax: Axes | None = None,
    title: str | None = None,
    annotate: bool = True,
    vmax: float | None = None,
) -> Axes:
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
        top = vmax or weights.max() or 1.0  # the colour scale's top, not the data's
        for (i, j), w in np.ndenumerate(weights):
            colour = "white" if w > 0.6 * top else "black"
            ax.text(j, i, f"{w:.2f}", ha="center", va="center", fontsize=7, color=colour)
    if title:
        ax.set_title(title)
    return ax


def head_grid(
    weights: npt.ArrayLike,
    tokens: Sequence[str],
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    annotate: bool = False,
) -> Figure:
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


HEAD_COLOURS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3")
_STEP = 0.2  # offset between stacked boxes, in data units


def _boxes(ax, x, width, height, colours, copies=1, alpha=1.0):
    """Draw a tensor of column blocks (one colour each); ``copies - 1`` lighter copies behind."""
    block = width / len(colours)
    for s in range(copies - 1, -1, -1):  # back to front
        for i, colour in enumerate(colours):
            ax.add_patch(
                Rectangle(
                    (x + s * _STEP + i * block, s * _STEP),
                    block,
                    height,
                    facecolor=colour,
                    edgecolor="black",
                    linewidth=0.8,
                    alpha=alpha if s == 0 else 0.45,
                )
            )


def _deck(ax, x, width, height, colours):
    """``h`` separate head tensors, drawn as a deck of cards: the new ``h`` axis."""
    for i in range(len(colours) - 1, -1, -1):  # head 0 in front
        ax.add_patch(
            Rectangle(
                (x + i * _STEP, i * _STEP),
                width,
                height,
                facecolor=colours[i],
                edgecolor="black",
                linewidth=0.8,
            )
        )


def shape_flow(
    num_heads: int = 3, d_model: int | None = None, seq_len: int | None = None
) -> Figure:
    """The five steps of multi-head attention as a flow of tensor shapes.

    Introduced in the introduction; recapped in Chapter 5. Boxes are tensors of
    one example: rows are tokens, columns are embedding dimensions, coloured by
    the head that owns them. Shapes are written with symbols, or with numbers
    when ``d_model`` and ``seq_len`` are given. Returns the matplotlib ``Figure``.
    """
    if not isinstance(num_heads, int) or not 1 <= num_heads <= len(HEAD_COLOURS):
        raise ValueError(f"num_heads must be an int in 1..{len(HEAD_COLOURS)}, got {num_heads!r}")
    if d_model is not None and d_model % num_heads:
        raise ValueError(f"d_model must be divisible by num_heads, got {d_model} and {num_heads}")
    e, d = ("d_model", "d_head") if d_model is None else (d_model, d_model // num_heads)
    h = "h" if d_model is None else num_heads
    length = "L" if seq_len is None else seq_len
    heads, w, hgt, gap = HEAD_COLOURS[:num_heads], 1.2, 1.4, 3.0
    xs = [i * (w + gap) for i in range(6)]
    fig = plt.figure(figsize=(10.5, 2.6))
    ax = fig.add_axes((0, 0, 1, 1))
    _boxes(ax, xs[0], w, hgt, ["#BBBBBB"])
    _boxes(ax, xs[1], w, hgt, heads, copies=3)
    _deck(ax, xs[2], w / num_heads, hgt, heads)
    _deck(ax, xs[3], w / num_heads, hgt, heads)
    _boxes(ax, xs[4], w, hgt, heads)
    _boxes(ax, xs[5], w, hgt, ["#7A6A9A"])
    labels = [
        f"input x\n(N, {length}, {e})",
        f"Q, K, V\n3 × (N, {length}, {e})",
        f"Q, K, V per head\n3 × (N, {h}, {length}, {d})",
        f"head outputs\n(N, {h}, {length}, {d})",
        f"concatenated\n(N, {length}, {e})",
        f"output\n(N, {length}, {e})",
    ]
    steps = [
        "1 projections",
        "2 split\ninto heads",
        "3 attention\nper head,\nin parallel",
        "4 concatenation",
        "5 output\nprojection",
    ]
    right = [w, w + 2 * _STEP, *[w / num_heads + (num_heads - 1) * _STEP] * 2, w, w]
    for i, label in enumerate(labels):
        ax.text(xs[i] + right[i] / 2, -0.2, label, ha="center", va="top", fontsize=10)
    for i, step in enumerate(steps):
        start, end = xs[i] + right[i] + 0.15, xs[i + 1] - 0.15
        ax.annotate(
            "",
            (end, hgt / 2),
            (start, hgt / 2),
            arrowprops={"arrowstyle": "-|>", "lw": 1.5, "color": "black"},
        )
        ax.text(
            (start + end) / 2,
            hgt / 2 + 0.1,
            step,
            ha="center",
            va="bottom",
            fontsize=10,
            fontweight="bold",
            color="#333333",
        )
    ax.text(xs[0] + w / 2, hgt + 0.08, e, ha="center", va="bottom", fontsize=9)
    ax.text(xs[0] - 0.08, hgt / 2, length, ha="right", va="center", fontsize=9)
    ax.set(xlim=(-0.6, xs[5] + w + 0.6), ylim=(-1.0, hgt + 0.9), aspect="equal")
    ax.axis("off")
    return fig


def attention_arcs(
    weights: npt.ArrayLike,
    tokens: Sequence[str],
    query: int,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """One query's attention as arcs to every key; thicker arc = more weight.

    Introduced in Chapter 1. ``weights`` is the query's row of the attention
    matrix, shape ``(S,)``; ``tokens`` has ``S`` labels; ``query`` is the
    index of the attending token. The weight of each key is written under it.
    Returns the matplotlib ``Axes``.
    """
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 1 or len(weights) != len(tokens) or not 0 <= query < len(tokens):
        raise ValueError(
            f"expected weights (S,) with S = len(tokens) = {len(tokens)} and 0 <= query < S, "
            f"got weights {weights.shape} and query={query}"
        )
    ax = ax or plt.subplots(figsize=(0.95 * len(tokens), 2.4))[1]
    t = np.linspace(0, np.pi, 60)
    for j, w in enumerate(weights):
        if j == query:
            continue
        mid, half = (query + j) / 2, abs(j - query) / 2
        alpha = 0.25 + 0.75 * w / weights.max()
        ax.plot(
            mid + half * np.cos(t),
            0.25 + 0.35 * half * np.sin(t),
            color="#4C72B0",
            lw=0.4 + 9 * w,
            alpha=alpha,
            solid_capstyle="round",
        )
    for j, (token, w) in enumerate(zip(tokens, weights, strict=True)):
        bold = "bold" if j == query else "normal"
        ax.text(j, 0.1, token, ha="center", va="top", fontsize=11, fontweight=bold)
        ax.text(j, -0.35, f"{w:.2f}", ha="center", va="top", fontsize=9, color="#4C72B0")
    ax.set(xlim=(-0.7, len(tokens) - 0.3), ylim=(-0.7, 0.45 + 0.175 * (len(tokens) - 1)))
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax

"""Figures for Chapters 2 and 3: how heads split the embedding, and how not to.

* :func:`projection_figure` (Chapter 2): one fused projection, head by head;
* :func:`split_figure` (Chapter 2): heads split the embedding, not the sequence;
* :func:`head_sources` and :func:`layout_figure` (Chapter 3): where each entry
  of a ``(h, L, d_head)`` head tensor comes from, with and without the transpose.

Call :func:`mha.course.plotting.setup` first, as every chapter does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Rectangle

from mha._validate import check_heads
from mha.course.plotting import HEAD_COLOURS
from mha.heads import project, split_heads

if TYPE_CHECKING:  # annotations only
    import numpy.typing as npt
    from matplotlib.figure import Figure

__all__ = ["projection_figure", "split_figure", "head_sources", "layout_figure"]

_GREY = "#DDDDDD"


def _outline(ax, num_heads, size, length, along="columns", labels=True):
    """Frame ``num_heads`` bands of ``size`` columns (or rows) in the head colours."""
    for i in range(num_heads):
        xy = (i * size - 0.5, -0.5) if along == "columns" else (-0.5, i * size - 0.5)
        w, h = (size, length) if along == "columns" else (length, size)
        ax.add_patch(Rectangle(xy, w, h, fill=False, edgecolor=HEAD_COLOURS[i], linewidth=3))
        if labels and along == "columns":
            ax.text(
                i * size + (size - 1) / 2,
                -0.9,
                f"head {i}",
                ha="center",
                va="bottom",
                color=HEAD_COLOURS[i],
                fontweight="bold",
            )


def projection_figure(
    x: npt.ArrayLike, weight: npt.ArrayLike, num_heads: int, tokens: Sequence[str]
) -> Figure:
    """``Q = x @ W_Q.T`` with head ``i``'s rows of ``W_Q`` and columns of ``Q`` framed.

    Introduced in Chapter 2. ``x`` is ``(L, d_model)``, ``weight`` is
    ``(d_model, d_model)`` in the ``nn.Linear`` layout. Returns the ``Figure``.
    """
    x, weight = np.asarray(x), np.asarray(weight)
    d_head = check_heads(weight.shape[0], num_heads)
    panels = [
        (x, "input x  (L, d_model)"),
        (weight.T, "W_Q.T  (d_model, d_model)"),
        (project(x, weight), "Q = x @ W_Q.T  (L, d_model)"),
    ]
    vmax = max(float(np.abs(m).max()) for m, _ in panels)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), width_ratios=[1, weight.shape[0] / 9, 1])
    xlabels = [
        "input dimension (d_model)",
        "query dimension (output of W_Q)",
        "query dimension (head i: its d_head columns)",
    ]
    for ax, (m, title), xlabel in zip(axes, panels, xlabels, strict=True):
        image = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_title(title, pad=26)
        ax.set_xlabel(xlabel)
        ax.set_xticks(range(0, m.shape[1], 2))
    axes[0].set_yticks(range(len(tokens)), tokens)
    axes[1].set_ylabel("input dimension")
    axes[2].set_yticks(range(len(tokens)), tokens)
    _outline(axes[1], num_heads, d_head, weight.shape[1])
    _outline(axes[2], num_heads, d_head, len(tokens))
    fig.colorbar(image, ax=list(axes), shrink=0.7, label="value")
    return fig


def _coverage(seq_len, num_heads, by):
    """``(L, L)`` count of heads that score each (query, key) pair."""
    if by == "embedding":
        return np.full((seq_len, seq_len), num_heads)
    chunk = np.repeat(np.arange(num_heads), -(-seq_len // num_heads))[:seq_len]
    return (chunk[:, None] == chunk[None, :]).astype(int)


def split_figure(tokens: Sequence[str], d_model: int, num_heads: int) -> Figure:
    """Left: heads split the embedding (the truth). Right: splitting the sequence (a myth).

    Introduced in Chapter 2. Top: which head owns each entry of ``Q (L, d_model)``.
    Bottom: how many heads score each (query, key) pair. Returns the ``Figure``.
    """
    d_head, seq_len = check_heads(d_model, num_heads), len(tokens)
    owner_e = np.tile(np.arange(d_model) // d_head, (seq_len, 1))
    owner_s = np.repeat(np.arange(num_heads), -(-seq_len // num_heads))[:seq_len, None]
    owner_s = np.tile(owner_s, (1, d_model))
    cmap = ListedColormap(HEAD_COLOURS[:num_heads])
    fig, axes = plt.subplots(2, 2, figsize=(10, 9.5))
    titles = (
        "heads split the EMBEDDING\n(what multi-head attention does)",
        "heads split the SEQUENCE\n(a misreading: not what it does)",
    )
    for col, (owner, by) in enumerate([(owner_e, "embedding"), (owner_s, "sequence")]):
        top, bottom = axes[0, col], axes[1, col]
        top.imshow(owner, cmap=cmap, vmin=-0.5, vmax=num_heads - 0.5, alpha=0.85)
        top.set_yticks(range(seq_len), tokens)
        top.set(title=titles[col], xlabel="dimension of Q (d_model)")
        count = _coverage(seq_len, num_heads, by)
        bottom.imshow(count, cmap="Greys", vmin=0, vmax=num_heads * 2.5)
        for (i, j), c in np.ndenumerate(count):
            bottom.text(j, i, str(c), ha="center", va="center", fontsize=8)
        bottom.set_xticks(range(seq_len), tokens, rotation=45, ha="right")
        bottom.set_yticks(range(seq_len), tokens)
        bottom.set(title="heads that score each (query, key) pair", xlabel="key", ylabel="query")
    fig.tight_layout()
    return fig


def head_sources(
    seq_len: int, d_model: int, num_heads: int, transpose: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Where each entry of head tensor ``(h, L, d_head)`` comes from: ``(token, dim)`` indices.

    Introduced in Chapter 3. With ``transpose=True`` the split is
    :func:`mha.heads.split_heads`; with ``False`` it is the classic bug
    ``x.reshape(N, h, L, d_head)``. Returns two int arrays ``(h, L, d_head)``:
    the source token and the source embedding dimension of every entry.
    """
    d_head = check_heads(d_model, num_heads)
    label = np.arange(seq_len * d_model).reshape(1, seq_len, d_model)  # entry -> its flat index
    if transpose:
        heads = split_heads(label, num_heads)[0]
    else:
        heads = label.reshape(1, num_heads, seq_len, d_head)[0]  # the bug: no transpose
    return heads // d_model, heads % d_model


def layout_figure(tokens: Sequence[str], d_model: int, num_heads: int) -> Figure:
    """Each head's ``(L, d_head)`` block, coloured by source token and labelled by dimension.

    Introduced in Chapter 3. Top row: :func:`mha.heads.split_heads`; bottom row:
    reshape without transpose. Returns the ``Figure``.
    """
    seq_len = len(tokens)
    cmap = ListedColormap(plt.get_cmap("tab20").colors[:seq_len])
    fig, axes = plt.subplots(2, num_heads, figsize=(2.3 * num_heads + 1, 8.5), squeeze=False)
    rows = [(True, "split_heads"), (False, "reshape, no transpose")]
    for r, (transpose, name) in enumerate(rows):
        token, dim = head_sources(seq_len, d_model, num_heads, transpose)
        for i, ax in enumerate(axes[r]):
            ax.imshow(token[i], cmap=cmap, vmin=-0.5, vmax=seq_len - 0.5, aspect="auto")
            for (a, b), d in np.ndenumerate(dim[i]):
                ax.text(b, a, f"d{d}", ha="center", va="center", fontsize=8)
            ax.set_yticks(range(seq_len), [tokens[t] for t in token[i][:, 0]])
            ax.set_xticks(range(dim.shape[-1]))
            ax.set_title(f"{name}\nhead {i}", color=HEAD_COLOURS[i] if transpose else "#B22222")
    for ax in axes[:, 0]:
        ax.set_ylabel("source token of each row")
    fig.tight_layout()
    return fig

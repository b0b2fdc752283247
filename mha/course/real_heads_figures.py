"""Figures for Chapter 8: the 72 real heads of all-MiniLM-L6-v2.

* :func:`grid_figure`: every head's attention map on one sentence, 6 x 12;
* :func:`query_rows_figure`: one token's attention row in every head (72 rows);
* :func:`offset_figure`: each head's attention by relative offset over the corpus;
* :func:`pruning_figure`: task scores as heads are removed, in several orders;
* :func:`importance_figure`: the two tasks' importance of every head, against each other.

Call :func:`mha.course.plotting.setup` first, as every chapter does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "grid_figure",
    "query_rows_figure",
    "offset_figure",
    "pruning_figure",
    "importance_figure",
]


def grid_figure(weights: np.ndarray, tokens: list[str], marks: dict | None = None) -> Figure:
    """``weights (layers, heads, L, L)`` as a grid of small maps (rows = layers).

    Each map has queries down and keys across, on one grey scale from 0 to 1.
    ``marks`` frames named heads, e.g. ``{"previous token": (0, 2)}``.
    """
    n_layers, n_heads = weights.shape[:2]
    fig, axes = plt.subplots(n_layers, n_heads, figsize=(1.0 * n_heads + 1, 1.0 * n_layers + 1))
    for (layer, head), ax in np.ndenumerate(axes):
        ax.imshow(weights[layer, head], cmap="Greys", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        if layer == 0:
            ax.set_title(f"H{head}", fontsize=9)
        if head == 0:
            ax.set_ylabel(f"L{layer}", fontsize=9, rotation=0, labelpad=12)
    for name, (layer, head) in (marks or {}).items():
        for spine in axes[layer, head].spines.values():
            spine.set(color="#d62728", linewidth=2.5)
        axes[layer, head].set_xlabel(name, fontsize=7, color="#d62728")
    fig.suptitle(f"All {n_layers * n_heads} heads on: {' '.join(tokens[1:-1])}", fontsize=11)
    return fig


def query_rows_figure(weights: np.ndarray, tokens: list[str], query: int) -> Figure:
    """The attention row of ``tokens[query]`` in every head: ``(layers * heads, L)``."""
    n_layers, n_heads = weights.shape[:2]
    rows = weights[:, :, query, :].reshape(n_layers * n_heads, -1)
    fig, ax = plt.subplots(figsize=(0.45 * len(tokens) + 2, 0.16 * len(rows) + 1.2))
    im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(tokens)), tokens, rotation=60, ha="right")
    ax.set_yticks(range(0, len(rows), n_heads), [f"L{i}H0" for i in range(n_layers)])
    ax.set_yticks(range(len(rows)), minor=True)
    for y in range(n_heads, len(rows), n_heads):
        ax.axhline(y - 0.5, color="grey", linewidth=0.8)
    ax.set_title(f"Where {tokens[query]!r} looks, head by head")
    fig.colorbar(im, ax=ax, label="attention weight", shrink=0.5)
    fig.tight_layout()
    return fig


def offset_figure(profile: np.ndarray, columns: list[str]) -> Figure:
    """``profile (layers, heads, columns)``: mean attention per relative offset, and on specials."""
    n_layers, n_heads, _ = profile.shape
    rows = profile.reshape(n_layers * n_heads, -1).T  # (columns, heads)
    fig, ax = plt.subplots(figsize=(12, 3.4))
    im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_yticks(range(len(columns)), [c if c.startswith("[") else f"offset {c}" for c in columns])
    ax.set_xticks(range(0, n_layers * n_heads, n_heads), [f"L{i}" for i in range(n_layers)])
    for x in range(n_heads, n_layers * n_heads, n_heads):
        ax.axvline(x - 0.5, color="grey", linewidth=0.8)
    ax.set_xlabel("head (12 per layer, H0 to H11 left to right)")
    ax.set_title("Mean attention by key position minus query position, over the corpus")
    fig.colorbar(im, ax=ax, label="mean weight", shrink=0.8)
    fig.tight_layout()
    return fig


def pruning_figure(curves: dict[str, list[dict]], full: dict, total: int = 72) -> Figure:
    """Paraphrase margin and pronoun score as heads are removed, one line per order."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key, title in zip(axes, ("margin", "pronoun"),
                              ("paraphrase margin", "pronoun score"), strict=True):  # fmt: skip
        for name, curve in curves.items():
            x = [p["removed"] for p in curve]
            style = {"color": "grey", "alpha": 0.6, "linestyle": "--"} if "random" in name else {}
            label = "random orders" if name == "random_0" else (None if "random" in name else name)
            ax.plot(x, [p[key] for p in curve], marker="o", label=label, **style)
        ax.axhline(full[key], color="black", linewidth=0.8)
        ax.set_xlabel(f"heads removed (of {total})")
        ax.set_title(title)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def importance_figure(para: np.ndarray, pron: np.ndarray, label_top: int = 3) -> Figure:
    """Each head's importance for the paraphrase task against the pronoun task."""
    fig, ax = plt.subplots(figsize=(5, 4))
    layer = np.arange(len(para)) // 12
    sc = ax.scatter(para, pron, c=layer, cmap="viridis", s=22)
    for i in np.argsort(-(np.abs(para) / np.abs(para).max() + np.abs(pron) / np.abs(pron).max()))[
        :label_top
    ]:
        ax.annotate(f"L{i // 12}H{i % 12}", (para[i], pron[i]), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")  # fmt: skip
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.axvline(0, color="grey", linewidth=0.6)
    ax.set_xlabel("drop of the paraphrase margin")
    ax.set_ylabel("drop of the pronoun score")
    fig.colorbar(sc, ax=ax, label="layer")
    fig.tight_layout()
    return fig

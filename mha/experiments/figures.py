"""Chapter 7: figures of the task and of the sweeps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

from mha.course.plotting import heatmap

if TYPE_CHECKING:  # annotations only
    import numpy.typing as npt
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["RELATION_COLOURS", "task_figure", "curves_with_band", "probe_grid"]

RELATION_COLOURS = {"previous": "#4C72B0", "marked": "#DD8452"}


def _arc(ax, start: int, end: int, colour: str, height: float, label: str) -> None:
    t = np.linspace(0, np.pi, 60)
    mid, half = (start + end) / 2, abs(end - start) / 2
    ax.plot(mid + half * np.cos(t), 0.55 + height * np.sin(t), color=colour, lw=2.5, label=label)
    ax.annotate(
        "",
        xy=(end, 0.55),
        xytext=(end + 0.001 * np.sign(start - end), 0.62),
        arrowprops={"arrowstyle": "-|>", "color": colour},
    )


def task_figure(labels: Sequence[str], query: int, marked: int, vocab_size: int) -> Figure:
    """One sequence of the task; arcs from ``query`` to the two tokens it needs (Chapter 7).

    ``labels`` are the token labels (``"3"``, ``"1*"`` for the marked token,
    see :func:`mha.experiments.tasks.describe`). Returns the Figure.
    """
    prev, mark = (int(labels[j].rstrip("*")) for j in (query - 1, marked))
    fig, ax = plt.subplots(figsize=(0.8 * len(labels) + 1, 2.6))
    for j, label in enumerate(labels):
        style = {"facecolor": "#F7EBA8" if j == query else "white", "edgecolor": "#444444"}
        ax.text(j, 0.3, label, ha="center", va="center", fontsize=13, bbox=style | {"pad": 0.4})
        ax.text(j, -0.25, str(j), ha="center", va="center", fontsize=8, color="grey")
    _arc(ax, query, query - 1, RELATION_COLOURS["previous"], 0.5, "previous token (position)")
    _arc(
        ax,
        query,
        marked,
        RELATION_COLOURS["marked"],
        0.9 + 0.08 * abs(marked - query),
        "marked token (content)",
    )
    target = f"target = ({prev} + {mark}) mod {vocab_size} = {(prev + mark) % vocab_size}"
    ax.text(query, -0.7, target, ha="center", fontsize=11, fontweight="bold")
    ax.set(xlim=(-0.7, len(labels) - 0.3), ylim=(-0.95, 2.2))
    ax.legend(loc="upper right", fontsize=9, frameon=False)
    ax.axis("off")
    return fig


def curves_with_band(
    ax: Axes, steps: npt.ArrayLike, values: npt.ArrayLike, label: str, style: str = "-"
) -> None:
    """Mean over seeds with a band of +-1 std; ``values`` is ``(seeds, len(steps))`` (Chapter 7)."""
    values = np.asarray(values, dtype=float)
    mean, std = values.mean(0), values.std(0, ddof=1) if len(values) > 1 else 0 * values[0]
    (line,) = ax.plot(steps, mean, style, label=label)
    ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.15)


def probe_grid(
    weights: npt.ArrayLike, labels: Sequence[Sequence[str]], row_titles: Sequence[str]
) -> Figure:
    """Heatmaps of every head (columns) on several sequences (rows), Chapter 7.

    ``weights`` is ``(P, h, L, L)``; ``labels[p]`` are the token labels of
    sequence ``p``; ``row_titles[p]`` names it. Returns the Figure.
    """
    weights = np.asarray(weights)
    n_probes, h, length, _ = weights.shape
    size = 0.3 * length + 1.0
    fig, axes = plt.subplots(n_probes, h, figsize=(size * h, size * n_probes), squeeze=False)
    for (p, i), ax in np.ndenumerate(axes):
        heatmap(
            weights[p, i],
            labels[p],
            labels[p],
            ax=ax,
            annotate=False,
            vmax=1.0,
            title=f"{row_titles[p]}: head {i}",
        )
        ax.set_xlabel("key" if p == n_probes - 1 else "")
        ax.set_ylabel("query" if i == 0 else "")
    fig.tight_layout()
    return fig

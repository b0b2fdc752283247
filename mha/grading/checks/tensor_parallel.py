"""Exercise of Chapter 11 for the sandboxed re-grade: ``my_partial_outputs``.

``my_partial_outputs(heads, w_o, world_size)`` returns each rank's share of the output.

Its check cell asserts on the notebook's state, so there is no checker to call;
:data:`BY_FUNCTION` lets :mod:`mha.grading.regrade` grade it on inputs of its own.
"""

from __future__ import annotations

import numpy as np

from mha.grading.checks.core import Case, Exercise
from mha.heads import merge_heads

__all__ = ["partial_outputs_cases", "BY_FUNCTION"]

_PARTIAL_BUGS = {
    "rows": (
        "Each rank used rows of w_o instead of its columns: rank r multiplies its heads by "
        "w_o[:, cols].T, the columns that meet its heads in concat @ w_o.T."
    ),
}


def _partials(heads: np.ndarray, w_o: np.ndarray, world_size: int, rows: bool = False) -> tuple:
    """Rank r's ``(N, L, E)`` share of ``merge_heads(heads) @ w_o.T`` (or the row bug)."""
    per_rank = heads.shape[1] // world_size
    width = per_rank * heads.shape[-1]
    parts = []
    for r in range(world_size):
        mine = merge_heads(heads[:, r * per_rank : (r + 1) * per_rank])  # (N, L, width)
        cols = slice(r * width, (r + 1) * width)
        parts.append(mine @ (w_o[cols, cols] if rows else w_o[:, cols].T))
    return tuple(parts)


def partial_outputs_cases(rng: np.random.Generator) -> list[Case]:
    """Heads ``(N, h, L, d_head)`` and ``w_o`` drawn from ``rng``, 1 to 4 ranks."""
    cases = []
    for num_heads, world_size in ((4, 2), (8, 4), (6, 3), (4, 1)):
        heads = rng.standard_normal((2, num_heads, 5, 3))
        w_o = rng.standard_normal((3 * num_heads, 3 * num_heads))
        expected = _partials(heads, w_o, world_size)
        bugs = {"rows": _partials(heads, w_o, world_size, rows=True)}
        label = f"h={num_heads}, world_size={world_size}"
        cases.append(Case(label, (heads, w_o, world_size), expected, bugs))
    return cases


BY_FUNCTION = {
    "my_partial_outputs": Exercise("my_partial_outputs", partial_outputs_cases, _PARTIAL_BUGS,
                                   ("mha.parallel.shard_rows",)),
}  # fmt: skip

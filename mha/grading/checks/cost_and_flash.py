"""Exercise of Chapter 9 for the sandboxed re-grade: ``my_online_softmax(x, block_size)``.

Its check cell asserts on the notebook's state, so there is no checker to call;
:data:`BY_FUNCTION` lets :mod:`mha.grading.regrade` grade it on inputs of its own.
"""

from __future__ import annotations

import numpy as np

from mha.attention import softmax
from mha.grading.checks.core import Case, Exercise

__all__ = ["online_softmax_cases", "BY_FUNCTION"]

_ONLINE_BUGS = {
    "no_rescale": (
        "The running sum is not rescaled when the maximum grows: multiply it by "
        "exp(m_old - m_new) before adding the new block's terms."
    ),
    "first_block_max": (
        "You kept the first block's maximum: update the running maximum with every block."
    ),
}


def _online_variant(x: np.ndarray, block_size: int, kind: str) -> np.ndarray:
    """The online softmax with one classic mistake switched on."""
    m, total = -np.inf, 0.0
    with np.errstate(all="ignore"):
        for start in range(0, len(x), block_size):
            block = x[start : start + block_size]
            m_new = max(m, block.max()) if kind != "first_block_max" or start == 0 else m
            scale = 1.0 if kind == "no_rescale" else np.exp(m - m_new) if np.isfinite(m) else 0.0
            total = total * scale + np.exp(block - m_new).sum()
            m = m_new
        return np.exp(x - m) / total


def online_softmax_cases(rng: np.random.Generator) -> list[Case]:
    """Vectors drawn from ``rng`` (the largest score last in one), several block sizes."""
    cases = []
    for size, block_size in ((9, 3), (10, 4), (7, 1), (5, 8), (6, 2)):
        x = 5 * rng.standard_normal(size)
        if block_size == 2:
            x[-1] = x.max() + 20.0  # the largest score comes last
        bugs = {kind: _online_variant(x, block_size, kind) for kind in _ONLINE_BUGS}
        label = f"{size} scores, block_size={block_size}"
        cases.append(Case(label, (x, block_size), softmax(x), bugs))
    return cases


BY_FUNCTION = {
    "my_online_softmax": Exercise("my_online_softmax", online_softmax_cases, _ONLINE_BUGS,
                                  ("mha.attention.softmax",)),
}  # fmt: skip

"""Exercise of Chapter 8 for the sandboxed re-grade: ``prev_token_share(m)``.

Its check cell asserts on the notebook's state, so there is no checker to call;
:data:`BY_FUNCTION` lets :mod:`mha.grading.regrade` grade it on inputs of its own.
"""

from __future__ import annotations

import numpy as np

from mha.grading.checks.core import Case, Exercise

__all__ = ["prev_token_share_cases", "BY_FUNCTION"]

_PREV_BUGS = {
    "all_queries": (
        "You averaged over every query. Queries 0 ([CLS]) and L-1 ([SEP]) are not word "
        "pieces, and query 1 has no previous word piece: average over queries 2 .. L-2."
    ),
    "next_token": "You took the weight on the NEXT key (q + 1); the previous one is q - 1.",
}


def _prev_case(label: str, shape: tuple, rng) -> Case:
    m = rng.uniform(size=shape)
    m /= m.sum(-1, keepdims=True)  # (layers, heads, L, L), rows sum to 1
    n = shape[-1]
    q = np.arange(2, n - 1)
    qa = np.arange(1, n)
    bugs = {
        "all_queries": m[:, :, qa, qa - 1].mean(-1),
        "next_token": m[:, :, q, q + 1].mean(-1) if n > 3 else [],
    }
    return Case(label, (m,), m[:, :, q, q - 1].mean(-1), bugs)


def prev_token_share_cases(rng: np.random.Generator) -> list[Case]:
    """Random attention maps ``(layers, heads, L, L)`` drawn from ``rng``."""
    return [
        _prev_case("maps (2, 3, 7, 7)", (2, 3, 7, 7), rng),
        _prev_case("maps (1, 2, 12, 12)", (1, 2, 12, 12), rng),
        _prev_case("one layer, one head, L=5", (1, 1, 5, 5), rng),
    ]


BY_FUNCTION = {
    "prev_token_share": Exercise("prev_token_share", prev_token_share_cases, _PREV_BUGS,
                                 ("mha.course.real_heads.offset_profile",)),
}  # fmt: skip

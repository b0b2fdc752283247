"""Exercise of Chapter 10 for the sandboxed re-grade: ``my_expand_kv(k, num_heads)``.

Its check cell asserts on the notebook's state, so there is no checker to call;
:data:`BY_FUNCTION` lets :mod:`mha.grading.regrade` grade it on inputs of its own.
The answer works on tensors: the cases' keys travel as :class:`TensorArg`.
"""

from __future__ import annotations

import numpy as np

from mha.grading.checks.core import Case, Exercise, TensorArg

__all__ = ["expand_kv_cases", "BY_FUNCTION"]

_EXPAND_BUGS = {
    "tiled": (
        "The groups are tiled (head i uses group i % g): repeat each group in place with "
        "repeat_interleave, so head i uses group i // (num_heads // g)."
    ),
}


def expand_kv_cases(rng: np.random.Generator) -> list[Case]:
    """Keys ``(N, g, S, d)`` drawn from ``rng`` for several ``(g, num_heads)``."""
    cases = []
    for g, num_heads in ((1, 4), (2, 4), (4, 4), (2, 8), (3, 6)):
        k = rng.standard_normal((2, g, 5, 3))
        repeat = num_heads // g
        expected = np.repeat(k, repeat, axis=1)  # (N, num_heads, S, d)
        bugs = {"tiled": np.tile(k, (1, repeat, 1, 1))}
        label = f"g={g}, num_heads={num_heads}"
        cases.append(Case(label, (TensorArg(k), num_heads), expected, bugs))
    return cases


BY_FUNCTION = {
    "my_expand_kv": Exercise("my_expand_kv", expand_kv_cases, _EXPAND_BUGS,
                             ("mha.decoding.expand_kv_heads", "mha.decoding._repeat_kv")),
}  # fmt: skip

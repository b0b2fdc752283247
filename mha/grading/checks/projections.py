"""Checker of Chapter 2: ``my_head_projections``."""

from __future__ import annotations

import numpy as np

from mha.grading.checks.core import Case, Exercise, evaluate
from mha.grading.checks.isolation import TIME_LIMIT
from mha.heads import project

__all__ = ["check_head_projections", "head_projection_cases", "EXERCISES"]


_HEAD_PROJECTION_BUGS = {
    "columns": (
        "You sliced columns of w, as if y = x @ w. The weight is in nn.Linear layout "
        "(y = x @ w.T), so head i uses ROWS i*d_head:(i+1)*d_head of w: "
        "x @ w[i*d_head:(i+1)*d_head].T."
    ),
    "seq_reshape": (
        "You reshaped the (L, d_model) projection straight to (num_heads, L, d_head). "
        "That chops the flattened sequence, so a head mixes pieces of different tokens. "
        "Heads split the EMBEDDING: reshape to (L, num_heads, d_head), then transpose to "
        "(num_heads, L, d_head)."
    ),
    "seq_chunks": (
        "You gave each head a chunk of the tokens. Heads do not split the sequence: every "
        "head sees every token, and splits the embedding into num_heads subspaces of d_head."
    ),
}


def _head_projection_case(label: str, length: int, d_model: int, num_heads: int, rng) -> Case:
    x, w = rng.normal(size=(length, d_model)), rng.normal(size=(d_model, d_model))
    d_head, y = d_model // num_heads, project(x, w)  # y: (L, d_model)
    expected = y.reshape(length, num_heads, d_head).transpose(1, 0, 2)
    bugs = {
        "columns": (x @ w).reshape(length, num_heads, d_head).transpose(1, 0, 2),
        "seq_reshape": y.reshape(num_heads, length, d_head),
        "seq_chunks": y.reshape(num_heads, -1, d_model) if length % num_heads == 0 else [],
    }
    return Case(label, (x, w, num_heads), expected, bugs)


def head_projection_cases(rng: np.random.Generator) -> list[Case]:
    """The cases of :func:`check_head_projections`, drawn from ``rng``."""
    return [
        _head_projection_case("L=9, d_model=6, num_heads=3", 9, 6, 3, rng),
        _head_projection_case("L=4, d_model=8, num_heads=2", 4, 8, 2, rng),
        _head_projection_case("one head (num_heads=1)", 5, 4, 1, rng),
        _head_projection_case("L=6, d_model=6, num_heads=3", 6, 6, 3, rng),
        _head_projection_case("d_head=1 (num_heads=d_model=4)", 3, 4, 4, rng),
    ]


def check_head_projections(
    my_head_projections, *, time_limit: float = TIME_LIMIT, quiet: bool = False
) -> bool:
    """Check ``my_head_projections(x, w, num_heads) -> (num_heads, L, d_head)`` (Chapter 2).

    ``x`` is ``(L, d_model)``, ``w`` is ``(d_model, d_model)`` in ``nn.Linear``
    layout; head ``i`` uses rows ``i*d_head:(i+1)*d_head`` of ``w``.
    """
    cases = head_projection_cases(np.random.default_rng(3))
    return evaluate(my_head_projections, "my_head_projections", cases, _HEAD_PROJECTION_BUGS,
                    time_limit=time_limit, quiet=quiet)  # fmt: skip


EXERCISES = {
    "check_head_projections": Exercise("my_head_projections", head_projection_cases,
                                       _HEAD_PROJECTION_BUGS, ("mha.heads.project",)),
}  # fmt: skip

"""Checker of Chapter 2: ``my_head_projections``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from mha.grading.checks.core import Case, Exercise, evaluate
from mha.grading.checks.isolation import TIME_LIMIT
from mha.heads import project

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["check_head_projections", "head_projection_cases", "param_count_cases", "EXERCISES",
           "BY_FUNCTION"]  # fmt: skip


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
    my_head_projections: Callable[..., object],
    *,
    time_limit: float = TIME_LIMIT,
    quiet: bool = False,
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


_PARAM_COUNT_BUGS = {
    "no_bias": "The biases are missing: with bias=True each projection has one bias per output.",
    "no_out_proj": "The output projection W_O (d_model x d_model, plus its bias) is missing.",
    "bias_always": "With bias=False there are no biases at all: count only the weight matrices.",
}


def _param_count_case(d_model: int, num_heads: int, bias: bool) -> Case:
    layer = torch.nn.MultiheadAttention(d_model, num_heads, bias=bias)
    expected = sum(p.numel() for p in layer.parameters())
    weights, biases = 4 * d_model * d_model, 4 * d_model
    bugs = {
        "no_bias": weights if bias else [],
        "no_out_proj": expected - d_model * d_model - (d_model if bias else 0),
        "bias_always": weights + biases if not bias else [],
    }
    label = f"d_model={d_model}, num_heads={num_heads}, bias={bias}"
    return Case(label, (d_model, num_heads, bias), expected, bugs)


def param_count_cases(rng: np.random.Generator) -> list[Case]:
    """Layer sizes drawn from ``rng``: ``num_heads`` 1 to 12, ``d_head`` 1 to 64, both biases."""
    cases = []
    for bias in (True, False, bool(rng.integers(2))):
        num_heads, d_head = (int(v) for v in rng.integers(1, [13, 65]))
        cases.append(_param_count_case(num_heads * d_head, num_heads, bias))
    return cases


# Exercises whose check cells assert on the notebook's own state (no checker call): the
# sandbox re-grades them by the function's name, on inputs of its own.
BY_FUNCTION = {
    "my_param_count": Exercise("my_param_count", param_count_cases, _PARAM_COUNT_BUGS, ()),
}

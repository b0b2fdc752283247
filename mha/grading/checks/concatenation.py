"""Checker of Chapter 4: ``my_merge_heads``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mha.grading.checks.core import Case, Exercise, evaluate
from mha.grading.checks.isolation import TIME_LIMIT
from mha.heads import merge_heads

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["check_merge_heads", "merge_cases", "head_contribution_cases", "EXERCISES",
           "BY_FUNCTION"]  # fmt: skip


_MERGE_BUGS = {
    "no_transpose": (
        "You reshaped (N, h, L, d_head) straight to (N, L, E) without transposing back. "
        "The shape is right but tokens get mixed. Move the head axis next to d_head first: "
        "transpose to (N, L, h, d_head), then reshape to (N, L, h * d_head)."
    ),
    "reversed": (
        "Your heads are concatenated in reverse order. Head i must land in columns "
        "i*d_head:(i+1)*d_head, the inverse of split_heads."
    ),
    "interleaved": (
        "Your heads are interleaved column by column (transposed to (N, L, d_head, h) "
        "before reshaping). Transpose to (N, L, h, d_head) so each head stays a "
        "contiguous block of d_head columns."
    ),
}


def _merge_case(label: str, shape: tuple, rng) -> Case:
    x = rng.normal(size=shape)
    n, h, length, d_head = shape
    bugs = {
        "no_transpose": x.reshape(n, length, h * d_head),
        "reversed": merge_heads(x[:, ::-1]),
        "interleaved": x.transpose(0, 2, 3, 1).reshape(n, length, h * d_head),
    }
    return Case(label, (x,), merge_heads(x), bugs)


def merge_cases(rng: np.random.Generator) -> list[Case]:
    """The cases of :func:`check_merge_heads`, drawn from ``rng``."""
    return [
        _merge_case("x (2, 2, 3, 4)", (2, 2, 3, 4), rng),
        _merge_case("x (1, 3, 9, 2)", (1, 3, 9, 2), rng),
        _merge_case("one head, x (2, 1, 4, 6)", (2, 1, 4, 6), rng),
        _merge_case("d_head=1, x (1, 4, 3, 1)", (1, 4, 3, 1), rng),
    ]


def check_merge_heads(
    my_merge_heads: Callable[..., object], *, time_limit: float = TIME_LIMIT, quiet: bool = False
) -> bool:
    """Check ``my_merge_heads(x)``: ``(N, h, L, d_head) -> (N, L, E)`` (Chapter 4)."""
    cases = merge_cases(np.random.default_rng(5))
    return evaluate(my_merge_heads, "my_merge_heads", cases, _MERGE_BUGS,
                    time_limit=time_limit, quiet=quiet)  # fmt: skip


EXERCISES = {
    "check_merge_heads": Exercise("my_merge_heads", merge_cases, _MERGE_BUGS,
                                  ("mha.heads.merge_heads",)),
}  # fmt: skip


_CONTRIBUTION_BUGS = {
    "rows": (
        "You took head i's block from the ROWS of w_o. In nn.Linear layout (y = x @ w_o.T) "
        "head i multiplies the COLUMNS i*d_head:(i+1)*d_head: heads[:, i] @ w_o[:, block].T."
    ),
}


def _contribution_case(label: str, shape: tuple, rng) -> Case:
    heads = rng.normal(size=shape)
    h, d_head = shape[1], shape[3]
    d_model = h * d_head
    w_o = rng.normal(size=(d_model, d_model))
    expected = np.einsum("nhld,ehd->nhle", heads, w_o.reshape(d_model, h, d_head))
    bugs = {
        "rows": np.einsum("nhld,hde->nhle", heads, w_o.reshape(h, d_head, d_model)),
    }
    return Case(label, (heads, w_o), expected, bugs)


def head_contribution_cases(rng: np.random.Generator) -> list[Case]:
    """The cases of Exercise 4.2 (``my_head_contributions``), drawn from ``rng``."""
    return [
        _contribution_case("heads (2, 3, 4, 2)", (2, 3, 4, 2), rng),
        _contribution_case("one head, heads (1, 1, 5, 4)", (1, 1, 5, 4), rng),
        _contribution_case("d_head=1, heads (1, 4, 3, 1)", (1, 4, 3, 1), rng),
    ]


# Exercises whose check cells assert on the notebook's own state (no checker call): the
# sandbox re-grades them by the function's name, on inputs of its own.
BY_FUNCTION = {
    "my_head_contributions": Exercise("my_head_contributions", head_contribution_cases,
                                      _CONTRIBUTION_BUGS, ()),
}  # fmt: skip

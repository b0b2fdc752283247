"""Checker of Chapter 3: ``my_split_heads``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mha.grading.checks.core import Case, Exercise, evaluate
from mha.grading.checks.isolation import TIME_LIMIT
from mha.heads import split_heads

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["check_split_heads", "split_cases", "emotion_strength_cases", "EXERCISES",
           "BY_FUNCTION"]  # fmt: skip


_SPLIT_BUGS = {
    "no_transpose": (
        "You reshaped (N, L, E) straight to (N, num_heads, L, d_head) without transposing. "
        "The shape is right but tokens get mixed between heads. Reshape to "
        "(N, L, num_heads, d_head) first, then swap axes 1 and 2."
    ),
    "no_transpose_shape": (
        "You reshaped to (N, L, num_heads, d_head) but did not move the head axis: "
        "transpose to (N, num_heads, L, d_head) (swap axes 1 and 2)."
    ),
    "interleaved": (
        "Your heads take interleaved columns (head i gets columns i, i+h, i+2h, ...). "
        "Head i owns the contiguous block i*d_head:(i+1)*d_head: reshape to "
        "(N, L, num_heads, d_head), not (N, L, d_head, num_heads)."
    ),
}


def _split_case(label: str, shape: tuple, num_heads: int, rng) -> Case:
    x = rng.normal(size=shape)
    n, length, e = shape
    d_head = e // num_heads
    bugs = {
        "no_transpose": x.reshape(n, num_heads, length, d_head),
        "no_transpose_shape": x.reshape(n, length, num_heads, d_head),
        "interleaved": x.reshape(n, length, d_head, num_heads).transpose(0, 3, 1, 2),
    }
    return Case(label, (x, num_heads), split_heads(x, num_heads), bugs)


def split_cases(rng: np.random.Generator) -> list[Case]:
    """The cases of :func:`check_split_heads`, drawn from ``rng``."""
    return [
        _split_case("x (2, 3, 8), num_heads=2", (2, 3, 8), 2, rng),
        _split_case("x (1, 9, 6), num_heads=3", (1, 9, 6), 3, rng),
        _split_case("one head (num_heads=1)", (2, 4, 6), 1, rng),
        _split_case("d_head=1 (x (1, 3, 4), num_heads=4)", (1, 3, 4), 4, rng),
    ]


def check_split_heads(
    my_split_heads: Callable[..., object], *, time_limit: float = TIME_LIMIT, quiet: bool = False
) -> bool:
    """Check ``my_split_heads(x, num_heads)``: ``(N, L, E) -> (N, h, L, d_head)`` (Chapter 3)."""
    cases = split_cases(np.random.default_rng(4))
    return evaluate(my_split_heads, "my_split_heads", cases, _SPLIT_BUGS,
                    time_limit=time_limit, quiet=quiet)  # fmt: skip


EXERCISES = {
    "check_split_heads": Exercise("my_split_heads", split_cases, _SPLIT_BUGS,
                                  ("mha.heads.split_heads",)),
}  # fmt: skip


def _emotion_share(strength: float) -> float:
    """The least share of attention any query of the emotion head gives "didn't" and "secret"."""
    from mha.course import example, lenses  # chapter helpers, imported on use
    from mha.reference import multi_head_attention_forward

    x0 = lenses.embeddings(noise=0.0)[None]
    w_in, w_out = lenses.lens_weights(strength)
    _, w = multi_head_attention_forward(x0, x0, x0, lenses.NUM_HEADS, w_in, None, w_out, None,
                                        average_attn_weights=False)  # fmt: skip
    cols = [example.TOKENS.index("didn't"), example.TOKENS.index("secret")]
    return float(w[0, 1][:, cols].sum(axis=1).min())


def _strength_judge(share: float):
    def judge(got) -> str:
        s = float(np.asarray(got))
        if _emotion_share(s) < share - 1e-9:
            return f"with strength {s:.4g} the two tokens get less than {share:g} of the attention"
        if _emotion_share(0.99 * s) >= share:
            return f"{s:.4g} reaches {share:g}, but a smaller strength does too: find the smallest"
        return ""

    return judge


def emotion_strength_cases(rng: np.random.Generator) -> list[Case]:
    """Shares drawn from ``rng`` in (0.3, 0.995); judged as the chapter's check cell does."""
    cases = []
    for share in (float(v) for v in rng.uniform(0.3, 0.995, 3)):
        closed_form = 2.0 * np.log(7.0 * share / (2.0 * (1.0 - share)))
        cases.append(Case(f"share={share:.4f}", (share,), np.float64(closed_form), {},
                          _strength_judge(share)))  # fmt: skip
    return cases


# Exercises whose check cells assert on the notebook's own state (no checker call): the
# sandbox re-grades them by the function's name, on inputs of its own.
BY_FUNCTION = {
    "my_emotion_strength": Exercise("my_emotion_strength", emotion_strength_cases, {}, ()),
}

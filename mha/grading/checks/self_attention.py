"""Checkers of Chapter 1: ``my_softmax`` and ``my_attention``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mha.attention import softmax
from mha.grading.checks.core import Case, Exercise, evaluate
from mha.grading.checks.isolation import TIME_LIMIT

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["check_softmax", "check_attention", "softmax_cases", "attention_cases",
           "object_lens_cases", "EXERCISES", "BY_FUNCTION"]  # fmt: skip

_SOFTMAX_BUGS = {
    "wrong_axis": (
        "Your softmax normalised along the wrong axis. The numbers that must sum to 1 "
        "lie along `axis`: use np.max(x, axis=axis, keepdims=True) and "
        "np.sum(e, axis=axis, keepdims=True)."
    ),
    "whole_array": (
        "Your softmax normalised over the whole array: all entries together sum to 1. "
        "Only the entries along `axis` should; pass axis=axis (and keepdims=True) to the sum."
    ),
    "no_max": (
        "Your softmax overflows on large logits: exp(1e4) is inf and inf/inf is NaN. "
        "Subtract the maximum along `axis` before exponentiating; softmax does not change "
        "when the same number is subtracted from every logit."
    ),
    "neg_inf_row": (
        "A row where every logit is -inf (every key masked) should give zeros, not NaN. "
        "The maximum of that row is -inf and -inf - (-inf) is NaN: subtract 0 instead "
        "(np.where(np.isfinite(m), m, 0)), and divide by 1 where the sum is 0."
    ),
}


def _softmax_variants(x, axis: int) -> dict:
    """What the classic buggy softmaxes return on ``x``."""
    with np.errstate(all="ignore"):
        others = [softmax(x, a) for a in range(x.ndim) if a != axis % x.ndim]
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        naive = np.exp(x) / np.exp(x).sum(axis=axis, keepdims=True)
        flat = np.exp(x - np.max(x)) / np.exp(x - np.max(x)).sum()
    return {
        "wrong_axis": others,
        "whole_array": flat if x.ndim > 1 else [],
        "no_max": naive,
        "neg_inf_row": e / e.sum(axis=axis, keepdims=True),
    }


def _softmax_case(label: str, x, axis: int | None = None) -> Case:
    x = np.asarray(x, dtype=np.float64)
    args = (x,) if axis is None else (x, axis)
    axis = -1 if axis is None else axis
    return Case(label, args, softmax(x, axis), _softmax_variants(x, axis))


_SOFTMAX_HINTS = {"broadcast": "did you forget keepdims=True when taking the max or the sum?"}


def softmax_cases(rng: np.random.Generator) -> list[Case]:
    """Softmax inputs drawn from ``rng``, with the edge cases (overflow, an all -inf row)."""
    return [
        _softmax_case("a vector of 5 logits (default axis)", rng.normal(size=5)),
        _softmax_case("a (3, 4) array with axis=-1", rng.normal(size=(3, 4)), -1),
        _softmax_case("a (3, 4) array with axis=0", rng.normal(size=(3, 4)), 0),
        _softmax_case("a (2, 3, 4) array with axis=1", rng.normal(size=(2, 3, 4)), 1),
        _softmax_case("large logits (±1e4)", [[1e4, 0.0, -1e4], [-1e4, 1 - 1e4, 2 - 1e4]], -1),
        _softmax_case("a row of all -inf", [[0.0, 1.0, 2.0], [-np.inf] * 3], -1),
    ]


def check_softmax(
    my_softmax: Callable[..., object], *, time_limit: float = TIME_LIMIT, quiet: bool = False
) -> bool:
    """Check ``my_softmax(x, axis=-1)`` against :func:`mha.attention.softmax` (Chapter 1).

    Inputs: a vector (default axis), matrices along either axis, a 3-D array,
    logits of +-1e4 (overflow) and a row of all -inf (must give zeros).
    """
    cases = softmax_cases(np.random.default_rng(1))
    return evaluate(my_softmax, "my_softmax", cases, _SOFTMAX_BUGS, error_hints=_SOFTMAX_HINTS,
                    time_limit=time_limit, quiet=quiet)  # fmt: skip


_ATTENTION_BUGS = {
    "no_scale": (
        "The scores are not scaled. Divide q @ k^T by sqrt(d), where d = q.shape[-1], "
        "so that the softmax does not saturate as d grows."
    ),
    "scale_d": (
        "You divided the scores by d instead of sqrt(d). The dot product of two random "
        "d-dimensional vectors has standard deviation about sqrt(d): divide by np.sqrt(d)."
    ),
    "wrong_axis": (
        "The softmax ran over the queries (axis -2) instead of the keys (axis -1): each "
        "query's weights over the keys must sum to 1, so use axis=-1."
    ),
    "mask_inverted": (
        "Your mask convention is inverted: you treated True as 'may attend'. In this course "
        "(and in nn.MultiheadAttention) True means BLOCKED: set those scores to -inf."
    ),
    "mask_ignored": "The mask had no effect: set the scores where mask is True to -inf.",
    "mask_after_softmax": (
        "You applied the mask after the softmax, so the weights no longer sum to 1. "
        "Set the blocked scores to -inf *before* the softmax."
    ),
    "swapped": "You returned (weights, out); the order should be (out, weights).",
}


def _attention_variant(q, k, v, mask=None, *, scale="sqrt", axis=-1, mask_mode="block"):
    """Attention with one classic mistake switched on; returns ``(out, weights)``."""
    d = q.shape[-1]
    scores = q @ np.swapaxes(k, -1, -2) / {"sqrt": np.sqrt(d), "none": 1.0, "d": d}[scale]
    if mask is not None and mask_mode in ("block", "keep"):
        scores = np.where(mask if mask_mode == "block" else ~mask, -np.inf, scores)
    weights = softmax(scores, axis=axis)
    if mask is not None and mask_mode == "after":
        weights = np.where(mask, 0.0, weights)
    return weights @ v, weights


def _attention_case(label: str, q, k, v, mask=None) -> Case:
    variant = lambda **kw: _attention_variant(q, k, v, mask, **kw)  # noqa: E731
    bugs = {
        "no_scale": variant(scale="none"),
        "scale_d": variant(scale="d"),
        "wrong_axis": variant(axis=-2),
        "swapped": variant()[::-1],
    }
    if mask is not None:
        bugs |= {
            "mask_inverted": variant(mask_mode="keep"),
            "mask_ignored": variant(mask_mode="none"),
            "mask_after_softmax": variant(mask_mode="after"),
        }
    args = (q, k, v) if mask is None else (q, k, v, mask)
    return Case(label, args, variant(), bugs)


_ATTENTION_HINTS = {
    "unexpected keyword": "the signature should be my_attention(q, k, v, mask=None)"
}


def _open_mask(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """A random boolean mask (True = blocked) that leaves every query at least one key."""
    mask = rng.random(shape) < 0.5
    mask[np.arange(shape[0]), rng.integers(0, shape[1], shape[0])] = False
    return mask


def attention_cases(rng: np.random.Generator, masks: tuple | None = None) -> list[Case]:
    """Attention inputs drawn from ``rng``; the two masks too unless ``masks`` are given."""
    r = lambda *shape: rng.normal(size=shape)  # noqa: E731
    plain = [(r(3, 4), r(5, 4), r(5, 6)), (r(2, 2, 3, 4), r(2, 2, 5, 4), r(2, 2, 5, 6))]
    masked = [(r(3, 4), r(5, 4), r(5, 6)), (r(2, 4, 8), r(2, 4, 8), r(2, 4, 3))]
    masks = masks or (_open_mask(rng, (3, 5)), _open_mask(rng, (4, 4)))
    return [
        _attention_case("L=3 queries, S=5 keys, d=4, d_v=6", *plain[0]),
        _attention_case("batched inputs (2, 2, L, d)", *plain[1]),
        _attention_case("a (3, 5) boolean mask", *masked[0], masks[0]),
        _attention_case("a (4, 4) mask, batch of 2", *masked[1], masks[1]),
    ]


def check_attention(
    my_attention: Callable[..., object], *, time_limit: float = TIME_LIMIT, quiet: bool = False
) -> bool:
    """Check ``my_attention(q, k, v, mask=None) -> (out, weights)`` (Chapter 1).

    Compares with :func:`mha.attention.scaled_dot_product_attention` for L != S
    and d != d_v, with leading batch dimensions, and with boolean masks
    (True = blocked) that leave every query at least one key.
    """
    mask = np.array([[0, 1, 0, 1, 1], [1, 0, 0, 0, 1], [0, 0, 1, 1, 0]], dtype=bool)
    mask4 = np.array([[0, 1, 1, 1], [0, 1, 0, 1], [1, 1, 0, 0], [1, 0, 0, 1]], dtype=bool)
    cases = attention_cases(np.random.default_rng(2), (mask, mask4))
    return evaluate(my_attention, "my_attention", cases, _ATTENTION_BUGS,
                    error_hints=_ATTENTION_HINTS, time_limit=time_limit, quiet=quiet)  # fmt: skip


EXERCISES = {
    "check_softmax": Exercise("my_softmax", softmax_cases, _SOFTMAX_BUGS,
                              ("mha.attention.softmax",), _SOFTMAX_HINTS),
    "check_attention": Exercise("my_attention", attention_cases, _ATTENTION_BUGS,
                                ("mha.attention.scaled_dot_product_attention",),
                                _ATTENTION_HINTS),
}  # fmt: skip


def _lens_judge(got) -> str:
    """Exercise 1.3's test: with ``(w_q, w_k)``, "knew" gives "secret" at least half its weight."""
    from mha.attention import scaled_dot_product_attention
    from mha.course import example  # the chapter's toy sentence, imported on use

    x, tokens = example.toy_embeddings(), example.TOKENS
    v = x @ example.toy_projections()[2].T
    w_q, w_k = (np.asarray(w, dtype=np.float64) for w in got)
    _, weights = scaled_dot_product_attention(x @ w_q.T, x @ w_k.T, v)
    share = weights[tokens.index("knew"), tokens.index("secret")]
    return "" if share >= 0.5 else f'"knew" puts {share:.2f} of its weight on "secret", not 0.5'


def object_lens_cases(rng: np.random.Generator) -> list[Case]:
    """Exercise 1.3 has no input: one case, judged on the chapter's toy sentence."""
    shape = (len(_features()), len(_features()))
    return [Case("the toy sentence", (), (np.zeros(shape), np.zeros(shape)), {}, _lens_judge)]


def _features() -> list:
    from mha.course import example

    return list(example.FEATURES)


# Exercises whose check cells assert on the notebook's own state (no checker call): the
# sandbox re-grades them by the function's name.
BY_FUNCTION = {"object_lens": Exercise("object_lens", object_lens_cases, {}, ())}

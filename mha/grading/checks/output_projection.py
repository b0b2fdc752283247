"""Checkers of Chapter 5: ``my_multi_head_attention``, ``my_causal_mask``, padding masks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mha.attention import softmax
from mha.grading.checks.core import Case, Exercise, evaluate
from mha.grading.checks.isolation import TIME_LIMIT
from mha.heads import merge_heads, split_heads
from mha.reference import multi_head_attention_forward

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "check_multi_head_attention",
    "check_causal_mask",
    "check_expand_padding_mask",
    "multi_head_attention_cases",
    "causal_cases",
    "padding_cases",
    "EXERCISES",
]


_MHA_BUGS = {
    "scale_d_model": (
        "You scaled the scores by 1/sqrt(d_model) instead of 1/sqrt(d_head). Each head "
        "takes dot products of d_head-dimensional vectors, so divide by sqrt(d_head)."
    ),
    "no_scale": "The scores are not scaled: divide them by sqrt(d_head) before the softmax.",
    "split_no_transpose": (
        "You reshaped (N, L, E) to (N, num_heads, L, d_head) without transposing, so "
        "tokens are mixed between heads. Reshape to (N, L, num_heads, d_head), then transpose."
    ),
    "merge_no_transpose": (
        "You reshaped the heads (N, num_heads, L, d_head) back to (N, L, E) without "
        "transposing first, so tokens are mixed. Transpose to (N, L, num_heads, d_head) first."
    ),
    "both_no_transpose": (
        "You reshaped without transposing, both when splitting into heads and when merging "
        "them back. Heads split the embedding, not the sequence: reshape to "
        "(N, L, num_heads, d_head) and swap axes 1 and 2 (and the reverse when merging)."
    ),
    "no_out_proj": (
        "The output projection is missing: after concatenating the heads, multiply by "
        "w_o.T (nn.Linear layout). It is what lets the heads' results mix."
    ),
    "weights_not_transposed": (
        "You multiplied by the weights without transposing them (x @ W). The weights are "
        "in nn.Linear layout: y = x @ W.T."
    ),
    "wrong_axis": "The softmax ran over the queries; normalise over the keys (axis=-1).",
}


def _mha_variant(x, w_qkv, w_o, num_heads, *, scale="head", split=True, merge=True,
                 out_proj=True, transpose_w=True, axis=-1):  # fmt: skip
    """Self-attention ``(N, L, E) -> (N, L, E)`` with one classic mistake switched on."""
    n, length, e = x.shape
    d_head = e // num_heads
    lin = (lambda t, w: t @ w.T) if transpose_w else (lambda t, w: t @ w)
    qkv = [lin(x, w) for w in np.split(w_qkv, 3)]
    if split:
        q, k, v = (split_heads(t, num_heads) for t in qkv)
    else:
        q, k, v = (t.reshape(n, num_heads, length, d_head) for t in qkv)
    d = {"head": d_head, "model": e, "none": 1}[scale]
    weights = softmax(q @ np.swapaxes(k, -1, -2) / np.sqrt(d), axis=axis)
    heads = weights @ v  # (N, h, L, d_head)
    concat = merge_heads(heads) if merge else heads.reshape(n, length, e)
    return lin(concat, w_o) if out_proj else concat


def _mha_case(label: str, shape: tuple, num_heads: int, rng) -> Case:
    x = rng.normal(size=shape)
    e = shape[-1]
    w_qkv, w_o = rng.normal(size=(3 * e, e)) / np.sqrt(e), rng.normal(size=(e, e)) / np.sqrt(e)
    args = (x, w_qkv, w_o, num_heads)
    expected = multi_head_attention_forward(x, x, x, num_heads, w_qkv, None, w_o, None,
                                            need_weights=False)[0]  # fmt: skip
    options = {
        "scale_d_model": {"scale": "model"},
        "no_scale": {"scale": "none"},
        "split_no_transpose": {"split": False},
        "merge_no_transpose": {"merge": False},
        "both_no_transpose": {"split": False, "merge": False},
        "no_out_proj": {"out_proj": False},
        "weights_not_transposed": {"transpose_w": False},
        "wrong_axis": {"axis": -2},
    }
    bugs = {name: _mha_variant(*args, **kw) for name, kw in options.items()}
    return Case(label, args, expected, bugs)


def multi_head_attention_cases(rng: np.random.Generator) -> list[Case]:
    """The cases of :func:`check_multi_head_attention`, drawn from ``rng``."""
    return [
        _mha_case("x (2, 4, 8), num_heads=2", (2, 4, 8), 2, rng),
        _mha_case("x (1, 9, 6), num_heads=3", (1, 9, 6), 3, rng),
        _mha_case("one head, x (1, 5, 4)", (1, 5, 4), 1, rng),
        _mha_case("d_head=2, x (2, 3, 8), num_heads=4", (2, 3, 8), 4, rng),
    ]


def check_multi_head_attention(
    my_multi_head_attention: Callable[..., object],
    *,
    time_limit: float = TIME_LIMIT,
    quiet: bool = False,
) -> bool:
    """Check ``my_multi_head_attention(x, w_qkv, w_o, num_heads) -> (N, L, E)`` (Chapter 5).

    Self-attention without biases, compared with
    :func:`mha.reference.multi_head_attention_forward`.
    """
    cases = multi_head_attention_cases(np.random.default_rng(6))
    return evaluate(my_multi_head_attention, "my_multi_head_attention", cases, _MHA_BUGS,
                    time_limit=time_limit, quiet=quiet)  # fmt: skip


_CAUSAL_BUGS = {
    "future_leak": (
        "Future tokens leak through your mask: it blocks the past and lets each query see "
        "the keys after it (the mask is transposed). Query i may attend to keys j <= i, so "
        "block the strict UPPER triangle: np.triu(np.ones((L, L), dtype=bool), k=1)."
    ),
    "next_token_leak": (
        "Your mask lets each query see the next token (the first blocked key is i + 2). "
        "Block every key j > i: np.triu(..., k=1)."
    ),
    "diag_blocked": (
        "Your mask blocks the diagonal, so a token cannot attend to itself (and the first "
        "token has nothing to attend to). Use k=1 in np.triu to keep the diagonal open."
    ),
    "inverted": (
        "Your mask convention is inverted: True should mean BLOCKED (the nn.MultiheadAttention "
        "convention), but your True entries mark the keys a query may attend to."
    ),
    "nothing_blocked": "Your mask blocks nothing: every future key j > i should be True.",
}


def _causal_case(length: int) -> Case:
    ones = np.ones((length, length), dtype=bool)
    expected = np.triu(ones, k=1)
    bugs = {
        "future_leak": np.tril(ones, k=-1),
        "next_token_leak": np.triu(ones, k=2),
        "diag_blocked": np.triu(ones, k=0),
        "inverted": ~expected,
        "nothing_blocked": ~ones,
    }
    return Case(f"L={length}", (length,), expected, bugs)


def causal_cases(rng: np.random.Generator) -> list[Case]:
    """``L`` = 1 and three lengths from 2 to 15 drawn from ``rng``."""
    return [_causal_case(int(n)) for n in (1, *sorted(rng.choice(np.arange(2, 16), 3, False)))]


def check_causal_mask(
    my_causal_mask: Callable[..., object], *, time_limit: float = TIME_LIMIT, quiet: bool = False
) -> bool:
    """Check ``my_causal_mask(L) -> bool (L, L)``, True = blocked (Chapter 5).

    Compared with :func:`mha.module.causal_mask` for ``L`` = 1, 2, 4 and 9.
    """
    cases = [_causal_case(length) for length in (1, 2, 4, 9)]
    return evaluate(my_causal_mask, "my_causal_mask", cases, _CAUSAL_BUGS,
                    time_limit=time_limit, quiet=quiet)  # fmt: skip


_PADDING_BUGS = {
    "tiled": (
        "Your mask is repeated across heads in the wrong order: np.tile / torch.repeat "
        "stacks [ex0, ex1, ex0, ex1, ...], but row b * num_heads + i must belong to example "
        "b (batch index major). Use np.repeat(..., num_heads, axis=0) / "
        "torch.repeat_interleave(..., num_heads, dim=0)."
    ),
    "inverted": (
        "Your mask convention is inverted: True should mean BLOCKED (padded keys), but your "
        "True entries mark the keys a query may attend to."
    ),
    "tiled_inverted": (
        "Two problems: the heads are repeated in the wrong order (use np.repeat / "
        "repeat_interleave, not np.tile / torch.repeat), and True should mean BLOCKED."
    ),
    "rows": (
        "Your mask blocks queries (rows) instead of keys (columns). A padded position "
        "must not be attended to: broadcast the (N, S) mask along the query axis, "
        "mask[:, None, :], to get (N * num_heads, L, S)."
    ),
}


def _padding_case(label: str, pad: np.ndarray, num_heads: int, length: int) -> Case:
    n, s = pad.shape
    grow = lambda m: np.broadcast_to(m[:, None, :], (n * num_heads, length, s)).copy()  # noqa: E731
    expected = grow(np.repeat(pad, num_heads, axis=0))
    tiled = grow(np.tile(pad, (num_heads, 1)))
    rows = np.repeat(pad, num_heads, axis=0)[:, :, None]  # (N * h, S, 1): blocks queries
    rows = np.broadcast_to(rows, (n * num_heads, s, length)).copy()
    bugs = {"tiled": tiled, "inverted": ~expected, "tiled_inverted": ~tiled, "rows": rows}
    return Case(label, (pad, num_heads, length), expected, bugs)


_PADDING_HINTS = {"reshape": "the result must have shape (N * num_heads, L, S)"}


def padding_cases(rng: np.random.Generator) -> list[Case]:
    """Four random padding masks (shapes and heads drawn from ``rng``; the first key kept)."""
    cases = []
    for _ in range(4):
        n, s, h, length = (int(v) for v in rng.integers(1, [4, 7, 5, 6], endpoint=True))
        pad = rng.random((n, s)) < 0.4
        pad[:, 0] = False
        cases.append(_padding_case(f"N={n}, S={s}, num_heads={h}, L={length}", pad, h, length))
    return cases


def check_expand_padding_mask(
    my_expand_padding_mask: Callable[..., object],
    *,
    time_limit: float = TIME_LIMIT,
    quiet: bool = False,
) -> bool:
    """Check ``my_expand_padding_mask(key_padding_mask, num_heads, L)`` (Chapter 5).

    ``key_padding_mask`` is ``(N, S)``, True = padded; the result is a boolean
    ``(N * num_heads, L, S)`` mask with the batch index major, as
    ``nn.MultiheadAttention`` expects for a 3-D ``attn_mask``.
    """
    b = lambda *rows: np.array(rows, dtype=bool)  # noqa: E731
    three = b([0, 0, 1, 1], [0, 0, 0, 0], [0, 1, 1, 1])
    cases = [
        _padding_case("N=2, S=5, num_heads=3, L=4", b([0, 0, 0, 1, 1], [0, 0, 0, 0, 1]), 3, 4),
        _padding_case("N=3, S=4, num_heads=2, L=4", three, 2, 4),
        _padding_case("one example, N=1, num_heads=4", b([0, 0, 1]), 4, 2),
        _padding_case("one head, num_heads=1", b([0, 1, 1], [0, 0, 0]), 1, 3),
    ]  # fmt: skip
    return evaluate(my_expand_padding_mask, "my_expand_padding_mask", cases, _PADDING_BUGS,
                    error_hints=_PADDING_HINTS, time_limit=time_limit, quiet=quiet)  # fmt: skip


EXERCISES = {
    "check_multi_head_attention": Exercise(
        "my_multi_head_attention", multi_head_attention_cases, _MHA_BUGS,
        ("mha.reference.multi_head_attention_forward", "mha.module.MultiHeadAttention.forward"),
    ),
    "check_causal_mask": Exercise("my_causal_mask", causal_cases, _CAUSAL_BUGS,
                                  ("mha.module.causal_mask",)),
    "check_expand_padding_mask": Exercise("my_expand_padding_mask", padding_cases,
                                          _PADDING_BUGS, (), _PADDING_HINTS),
}  # fmt: skip

"""Checkers of Chapter 6: positional encoding, add & norm, the feed-forward block."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from mha.encoder import sinusoidal_positional_encoding
from mha.grading.checks.core import Case, Exercise, evaluate
from mha.grading.checks.isolation import TIME_LIMIT

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "check_positional_encoding",
    "check_add_and_norm",
    "check_feed_forward",
    "positional_encoding_cases",
    "add_and_norm_cases",
    "feed_forward_cases",
    "EXERCISES",
]


_PE_BUGS = {
    "swapped": (
        "Sine and cosine are swapped: column 2i holds sin(pos / 10000**(2i / d_model)) and "
        "column 2i + 1 the cosine of the same angle."
    ),
    "column_index": (
        "The frequencies use the column index j where they should use 2i, the index of the "
        "sin/cos pair: columns 2i and 2i + 1 share one frequency, 1 / 10000**(2i / d_model)."
    ),
    "halves": (
        "You put all the sines in the first half and all the cosines in the second half. Some "
        "libraries do that, but Vaswani et al. (and mha) interleave them: sin in the even "
        "columns, cos in the odd ones."
    ),
    "from_one": "Positions start at 0, not 1: the first row is sin(0) = 0 and cos(0) = 1.",
}


def _pe_variant(seq_len: int, d_model: int, kind: str) -> np.ndarray:
    pos = np.arange(seq_len)[:, None] + (kind == "from_one")
    j = np.arange(d_model)
    two_i = j if kind == "column_index" else j - j % 2
    angle = pos / 10000.0 ** (two_i / d_model)  # (L, d_model)
    if kind == "halves":
        half = (d_model + 1) // 2
        freq = 10000.0 ** (-2 * np.arange(half) / d_model)
        return np.concatenate([np.sin(pos * freq), np.cos(pos * freq)[:, : d_model // 2]], 1)
    sin_cols = (j % 2 == 1) if kind == "swapped" else (j % 2 == 0)
    return np.where(sin_cols, np.sin(angle), np.cos(angle))


def positional_encoding_cases(rng: np.random.Generator | None) -> list[Case]:
    """Sizes drawn from ``rng`` (an odd ``d_model`` among them); fixed ones for ``None``."""
    sizes = ((9, 12), (50, 16), (3, 2), (6, 5))
    if rng is not None:
        sizes = [(int(rng.integers(2, 60)), int(d)) for d in (*rng.integers(1, 12, 3) * 2, 7)]
    cases = []
    for seq_len, d_model in sizes:
        expected = sinusoidal_positional_encoding(seq_len, d_model, dtype=torch.float64).numpy()
        bugs = {kind: _pe_variant(seq_len, d_model, kind) for kind in _PE_BUGS}
        label = f"seq_len={seq_len}, d_model={d_model}"
        cases.append(Case(label, (seq_len, d_model), expected, bugs))
    return cases


def check_positional_encoding(
    my_positional_encoding: Callable[..., object],
    *,
    time_limit: float = TIME_LIMIT,
    quiet: bool = False,
) -> bool:
    """Check ``my_positional_encoding(seq_len, d_model) -> (seq_len, d_model)`` (Chapter 6).

    Compared with :func:`mha.encoder.sinusoidal_positional_encoding`.
    """
    cases = positional_encoding_cases(None)
    return evaluate(my_positional_encoding, "my_positional_encoding", cases, _PE_BUGS,
                    time_limit=time_limit, quiet=quiet)  # fmt: skip


_NORM_BUGS = {
    "unbiased": (
        "You used the unbiased variance (ddof=1). LayerNorm divides by the number of features: "
        "np.var(z, axis=-1, keepdims=True), which has ddof=0."
    ),
    "no_residual": (
        "The residual connection is missing: normalise x + sublayer_out, not sublayer_out alone."
    ),
    "wrong_axis": (
        "You normalised over the sequence (axis -2). LayerNorm normalises each token's "
        "features: the mean and variance are taken over the last axis."
    ),
    "pre_norm": (
        "You computed x + LayerNorm(sublayer_out). Post-norm adds first and normalises the sum: "
        "LayerNorm(x + sublayer_out)."
    ),
    "no_affine": "gamma and beta are not applied: multiply by gamma, then add beta.",
}


def _layer_norm(z, gamma, beta, eps, axis=-1, ddof=0):
    mean = z.mean(axis=axis, keepdims=True)
    var = z.var(axis=axis, keepdims=True, ddof=ddof)
    return (z - mean) / np.sqrt(var + eps) * gamma + beta


def _norm_case(label: str, shape: tuple, rng) -> Case:
    x, sub = rng.normal(size=shape), rng.normal(size=shape)
    gamma, beta = rng.uniform(0.5, 1.5, shape[-1]), rng.normal(size=shape[-1])
    expected = F.layer_norm(torch.from_numpy(x + sub), shape[-1:], torch.from_numpy(gamma),
                            torch.from_numpy(beta), 1e-5).numpy()  # fmt: skip
    ones, zeros = np.ones_like(gamma), np.zeros_like(beta)
    bugs = {
        "unbiased": _layer_norm(x + sub, gamma, beta, 1e-5, ddof=1),
        "no_residual": _layer_norm(sub, gamma, beta, 1e-5),
        "wrong_axis": _layer_norm(x + sub, gamma, beta, 1e-5, axis=-2),
        "pre_norm": x + _layer_norm(sub, gamma, beta, 1e-5),
        "no_affine": _layer_norm(x + sub, ones, zeros, 1e-5),
    }
    return Case(label, (x, sub, gamma, beta), expected, bugs)


def add_and_norm_cases(rng: np.random.Generator) -> list[Case]:
    """The cases of :func:`check_add_and_norm`, drawn from ``rng``."""
    return [_norm_case("(1, 9, 12)", (1, 9, 12), rng), _norm_case("(2, 5, 8)", (2, 5, 8), rng),
            _norm_case("(3, 4, 6)", (3, 4, 6), rng)]  # fmt: skip


def check_add_and_norm(
    my_add_and_norm: Callable[..., object], *, time_limit: float = TIME_LIMIT, quiet: bool = False
) -> bool:
    """Check ``my_add_and_norm(x, sublayer_out, gamma, beta)`` = ``LayerNorm(x + sublayer_out)``.

    Chapter 6. Compared with ``torch.nn.functional.layer_norm`` (``eps=1e-5``) in float64.
    """
    cases = add_and_norm_cases(np.random.default_rng(6))
    return evaluate(my_add_and_norm, "my_add_and_norm", cases, _NORM_BUGS,
                    time_limit=time_limit, quiet=quiet)  # fmt: skip


_FFN_BUGS = {
    "no_relu": "The ReLU is missing: without it the two linear maps collapse into one.",
    "relu_on_output": (
        "You applied ReLU to the output as well. Only the hidden layer has the activation: "
        "relu(x @ w1.T + b1) @ w2.T + b2."
    ),
    "relu_before": "The ReLU comes after the first linear map, not before it.",
}


def _ffn_case(label: str, shape: tuple, d_ff: int, rng) -> Case:
    d_model = shape[-1]
    x = rng.normal(size=shape)
    w1, b1 = rng.normal(size=(d_ff, d_model)), rng.normal(size=d_ff)
    w2, b2 = rng.normal(size=(d_model, d_ff)), rng.normal(size=d_model)
    expected = F.linear(F.relu(F.linear(*(torch.from_numpy(a) for a in (x, w1, b1)))),
                        torch.from_numpy(w2), torch.from_numpy(b2)).numpy()  # fmt: skip
    hidden = x @ w1.T + b1
    bugs = {
        "no_relu": hidden @ w2.T + b2,
        "relu_on_output": np.maximum(expected, 0),
        "relu_before": np.maximum(x, 0) @ w1.T @ w2.T + b1 @ w2.T + b2,
    }
    return Case(label, (x, w1, b1, w2, b2), expected, bugs)


def feed_forward_cases(rng: np.random.Generator) -> list[Case]:
    """The cases of :func:`check_feed_forward`, drawn from ``rng``."""
    return [_ffn_case("x (1, 9, 12), d_ff=48", (1, 9, 12), 48, rng),
            _ffn_case("x (2, 3, 4), d_ff=6", (2, 3, 4), 6, rng),
            _ffn_case("x (5, 8), d_ff=16 (no batch axis)", (5, 8), 16, rng)]  # fmt: skip


def check_feed_forward(
    my_feed_forward: Callable[..., object], *, time_limit: float = TIME_LIMIT, quiet: bool = False
) -> bool:
    """Check ``my_feed_forward(x, w1, b1, w2, b2)`` = ``relu(x @ w1.T + b1) @ w2.T + b2``.

    Chapter 6; the layout is that of :class:`mha.encoder.PositionwiseFeedForward`.
    """
    cases = feed_forward_cases(np.random.default_rng(7))
    return evaluate(my_feed_forward, "my_feed_forward", cases, _FFN_BUGS,
                    time_limit=time_limit, quiet=quiet)  # fmt: skip


EXERCISES = {
    "check_positional_encoding": Exercise(
        "my_positional_encoding", positional_encoding_cases, _PE_BUGS,
        ("mha.encoder.sinusoidal_positional_encoding",),
    ),
    "check_add_and_norm": Exercise("my_add_and_norm", add_and_norm_cases, _NORM_BUGS, ()),
    "check_feed_forward": Exercise("my_feed_forward", feed_forward_cases, _FFN_BUGS,
                                   ("mha.encoder.PositionwiseFeedForward.forward",)),
}  # fmt: skip

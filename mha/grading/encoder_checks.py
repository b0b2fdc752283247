"""Exercise checkers of Chapters 6 (positional encoding, add & norm, feed-forward) and 7.

Same machinery and same promise as :mod:`mha.grading.checks`: the learner's function
runs in a separate process, its results are compared with ``mha``, and a wrong
result that equals a classic buggy variant is named.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mha.encoder import sinusoidal_positional_encoding
from mha.grading.checks import TIME_LIMIT, Case, evaluate

__all__ = [
    "check_positional_encoding",
    "check_add_and_norm",
    "check_feed_forward",
    "check_offset_share",
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


def check_positional_encoding(
    my_positional_encoding, *, time_limit: float = TIME_LIMIT, quiet: bool = False
) -> bool:
    """Check ``my_positional_encoding(seq_len, d_model) -> (seq_len, d_model)`` (Chapter 6).

    Compared with :func:`mha.encoder.sinusoidal_positional_encoding`.
    """
    cases = []
    for seq_len, d_model in ((9, 12), (50, 16), (3, 2), (6, 5)):
        expected = sinusoidal_positional_encoding(seq_len, d_model, dtype=torch.float64).numpy()
        bugs = {kind: _pe_variant(seq_len, d_model, kind) for kind in _PE_BUGS}
        label = f"seq_len={seq_len}, d_model={d_model}"
        cases.append(Case(label, (seq_len, d_model), expected, bugs))
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


def check_add_and_norm(
    my_add_and_norm, *, time_limit: float = TIME_LIMIT, quiet: bool = False
) -> bool:
    """Check ``my_add_and_norm(x, sublayer_out, gamma, beta)`` = ``LayerNorm(x + sublayer_out)``.

    Chapter 6. Compared with ``torch.nn.functional.layer_norm`` (``eps=1e-5``) in float64.
    """
    rng = np.random.default_rng(6)
    cases = [_norm_case("(1, 9, 12)", (1, 9, 12), rng), _norm_case("(2, 5, 8)", (2, 5, 8), rng),
             _norm_case("(3, 4, 6)", (3, 4, 6), rng)]  # fmt: skip
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


def check_feed_forward(
    my_feed_forward, *, time_limit: float = TIME_LIMIT, quiet: bool = False
) -> bool:
    """Check ``my_feed_forward(x, w1, b1, w2, b2)`` = ``relu(x @ w1.T + b1) @ w2.T + b2``.

    Chapter 6; the layout is that of :class:`mha.encoder.PositionwiseFeedForward`.
    """
    rng = np.random.default_rng(7)
    cases = [_ffn_case("x (1, 9, 12), d_ff=48", (1, 9, 12), 48, rng),
             _ffn_case("x (2, 3, 4), d_ff=6", (2, 3, 4), 6, rng),
             _ffn_case("x (5, 8), d_ff=16 (no batch axis)", (5, 8), 16, rng)]  # fmt: skip
    return evaluate(my_feed_forward, "my_feed_forward", cases, _FFN_BUGS,
                    time_limit=time_limit, quiet=quiet)  # fmt: skip


_OFFSET_BUGS = {
    "sign": (
        "Your offsets have the wrong sign: measure key position minus query position, so that "
        "the previous token is offset -1."
    ),
    "query_axis": (
        "You took the argmax over the queries (axis -2). For each query (a row), find the key "
        "(column) with the largest weight: weights.argmax(axis=-1)."
    ),
    "absolute": (
        "You counted absolute key positions, not offsets: subtract each query's own position "
        "from the position of its strongest key."
    ),
}


def _offset_variant(weights: np.ndarray, kind: str) -> tuple[int, float]:
    length = weights.shape[-1]
    axis = -2 if kind == "query_axis" else -1
    picked = weights.argmax(axis=axis)  # (N, L)
    if kind != "absolute":
        picked = picked - np.arange(length) if kind != "sign" else np.arange(length) - picked
    values, counts = np.unique(picked, return_counts=True)
    return int(values[counts.argmax()]), float(counts.max() / picked.size)


def _offset_case(label: str, n: int, length: int, offset: int, share: float, rng) -> Case:
    weights = rng.uniform(0, 1, size=(n, length, length))
    rows = rng.uniform(size=(n, length)) < share
    queries = np.arange(length)
    keys = np.clip(queries + offset, 0, length - 1)
    weights[:, queries, keys] += 5.0 * rows  # a peak on the offset for a share of the queries
    weights /= weights.sum(-1, keepdims=True)
    expected = _mha_offset_shares(weights)
    bugs = {kind: _offset_variant(weights, kind) for kind in _OFFSET_BUGS}
    return Case(label, (weights,), expected, bugs)


def check_offset_share(my_offset_share, *, time_limit: float = TIME_LIMIT, quiet: bool = False):
    """Check ``my_offset_share(weights (N, L, L)) -> (offset, share)`` for one head (Chapter 7).

    Compared with :func:`mha.experiments.metrics.offset_shares` on heads that
    prefer offset -1, +2 and 0 for a given share of their queries.
    """
    rng = np.random.default_rng(8)
    cases = [_offset_case("a previous-token head", 40, 8, -1, 0.95, rng),
             _offset_case("a head two tokens ahead", 30, 6, 2, 0.7, rng),
             _offset_case("a self head", 25, 5, 0, 0.5, rng)]  # fmt: skip
    return evaluate(my_offset_share, "my_offset_share", cases, _OFFSET_BUGS,
                    time_limit=time_limit, quiet=quiet)  # fmt: skip


def _mha_offset_shares(weights: np.ndarray) -> tuple[int, float]:
    from mha.experiments.metrics import offset_shares  # Chapter 7 module, imported on use

    offset, share = offset_shares(torch.from_numpy(weights)[:, None])
    return int(offset[0]), float(share[0])

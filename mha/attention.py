"""Chapter 1 (Self-attention: a single lens): softmax and scaled dot-product attention.

NumPy, batch-first, any number of leading dimensions. These are the reference
implementations the rest of the course builds on and checks against.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mha._validate import check_broadcast, check_mask_dtype

if TYPE_CHECKING:  # annotations only: import mha loads no numpy.typing
    import numpy.typing as npt

__all__ = ["softmax", "additive_mask", "scaled_dot_product_attention"]


def softmax(x: npt.ArrayLike, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis``.

    Introduced in Chapter 1. Three details matter:

    * the row maximum is subtracted first, so logits of +-1e4 do not overflow;
    * a row that is all ``-inf`` (every key masked) gives zeros, not NaN;
    * shifted logits below ``log(tiny)`` are clamped to ``-inf`` so that ``exp``
      never produces subnormal numbers, which are slow on many CPUs. Their
      exact value would be below the smallest normal float anyway.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # all -inf row: shift by 0, not -inf
    z = x - m
    z = np.where(z < np.log(np.finfo(x.dtype).tiny), -np.inf, z)  # no subnormals
    e = np.exp(z)
    s = np.sum(e, axis=axis, keepdims=True)
    return e / np.where(s == 0, 1, s)


def additive_mask(mask: npt.ArrayLike, name: str = "attn_mask") -> np.ndarray:
    """Turn a boolean mask (True = blocked) into an additive float mask.

    Introduced in Chapter 5. A float mask is returned unchanged; ``0`` means
    "may attend" and ``-inf`` means "blocked".
    """
    mask = np.asarray(mask)
    is_bool = mask.dtype == np.bool_
    check_mask_dtype(name, is_bool, np.issubdtype(mask.dtype, np.floating), mask.dtype)
    return np.where(mask, -np.inf, 0.0) if is_bool else mask


def scaled_dot_product_attention(
    q: npt.ArrayLike, k: npt.ArrayLike, v: npt.ArrayLike, attn_mask: npt.ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``softmax(q k^T / sqrt(d) + mask) v`` over any leading dimensions.

    Introduced in Chapter 1; masks in Chapter 5.

    Shapes: ``q`` is ``(..., L, d)``, ``k`` is ``(..., S, d)``, ``v`` is
    ``(..., S, d_v)``. ``attn_mask`` is boolean (True = blocked, the
    ``nn.MultiheadAttention`` convention, the opposite of
    ``F.scaled_dot_product_attention``) or float (added to the scores), and
    broadcasts to ``(..., L, S)``. Returns ``(out, weights)`` with shapes
    ``(..., L, d_v)`` and ``(..., L, S)``. A query row whose keys are all
    blocked gets zero weights and a zero output.
    """
    q, k, v = np.asarray(q), np.asarray(k), np.asarray(v)
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            "expected q (..., L, d), k (..., S, d), v (..., S, d_v); "
            f"got q {q.shape}, k {k.shape}, v {v.shape}"
        )
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])  # (..., L, S)
    if attn_mask is not None:
        mask = additive_mask(attn_mask)
        check_broadcast("attn_mask", mask.shape, scores.shape)
        scores = scores + mask
    weights = softmax(scores, axis=-1)
    return weights @ v, weights

"""Chapter 5: the full multi-head attention layer in NumPy, batch-first.

This module is the public NumPy reference. It gathers the pieces that the
earlier chapters introduce (:func:`softmax` and
:func:`scaled_dot_product_attention` in Chapter 1, :func:`split_heads` in
Chapter 3, :func:`merge_heads` in Chapter 4) and adds
:func:`multi_head_attention_forward`, which follows the weight layout and mask
conventions of ``torch.nn.functional.multi_head_attention_forward``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mha._validate import check_heads, check_mha_masks, check_qkv
from mha.attention import additive_mask, scaled_dot_product_attention, softmax
from mha.heads import merge_heads, project, split_heads

if TYPE_CHECKING:  # annotations only: import mha loads no numpy.typing
    import numpy.typing as npt

__all__ = [
    "softmax",
    "scaled_dot_product_attention",
    "split_heads",
    "merge_heads",
    "combine_masks",
    "multi_head_attention_forward",
]


def combine_masks(
    attn_mask: npt.ArrayLike | None,
    key_padding_mask: npt.ArrayLike | None,
    batch: int,
    num_heads: int,
    tgt_len: int,
    src_len: int,
) -> np.ndarray | None:
    """One additive mask ``(N, h, L, S)`` from the two PyTorch-style masks, or ``None``.

    Introduced in Chapter 5. ``attn_mask`` is ``(L, S)`` or
    ``(N * h, L, S)`` (batch index major); ``key_padding_mask`` is ``(N, S)``.
    Both may be boolean (True = blocked) or float (added to the scores).
    """
    check_mha_masks(
        None if attn_mask is None else np.shape(attn_mask),
        None if key_padding_mask is None else np.shape(key_padding_mask),
        batch,
        num_heads,
        tgt_len,
        src_len,
    )
    if attn_mask is None and key_padding_mask is None:
        return None
    total = np.zeros((1, 1, 1, 1))
    if attn_mask is not None:
        heads = 1 if np.ndim(attn_mask) == 2 else num_heads  # (L, S) or (N * h, L, S)
        total = total + additive_mask(attn_mask).reshape(-1, heads, tgt_len, src_len)
    if key_padding_mask is not None:
        pad = additive_mask(key_padding_mask, "key_padding_mask")  # (N, S)
        total = total + pad[:, None, None, :]
    return total


def multi_head_attention_forward(
    query: npt.ArrayLike,
    key: npt.ArrayLike,
    value: npt.ArrayLike,
    num_heads: int,
    in_proj_weight: npt.ArrayLike,
    in_proj_bias: npt.ArrayLike | None,
    out_proj_weight: npt.ArrayLike,
    out_proj_bias: npt.ArrayLike | None,
    key_padding_mask: npt.ArrayLike | None = None,
    attn_mask: npt.ArrayLike | None = None,
    need_weights: bool = True,
    average_attn_weights: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Multi-head attention, step by step, in NumPy.

    Introduced in Chapter 5. Shapes: ``query`` ``(N, L, E)``, ``key`` and
    ``value`` ``(N, S, E)``, ``in_proj_weight`` ``(3E, E)`` stacked as
    ``[W_Q; W_K; W_V]``, ``in_proj_bias`` ``(3E,)`` or ``None``,
    ``out_proj_weight`` ``(E, E)``, ``out_proj_bias`` ``(E,)`` or ``None``.

    Returns ``(out, weights)``: ``out`` is ``(N, L, E)``; ``weights`` is
    ``(N, L, S)`` averaged over heads, ``(N, h, L, S)`` when
    ``average_attn_weights=False``, or ``None`` when ``need_weights=False``.
    A query row whose keys are all masked gets zero weights, so its output is
    ``out_proj_bias`` (``nn.MultiheadAttention`` returns NaN there with
    ``need_weights=True`` and on its fast path, the bias with ``need_weights=False``).
    """
    query, key, value = np.asarray(query), np.asarray(key), np.asarray(value)
    embed_dim = np.shape(in_proj_weight)[-1]  # in_proj_weight is (3E, E)
    check_qkv(query.shape, key.shape, value.shape, embed_dim)
    check_heads(embed_dim, num_heads)
    (n, tgt_len, _), src_len = query.shape, key.shape[1]
    mask = combine_masks(attn_mask, key_padding_mask, n, num_heads, tgt_len, src_len)
    # 1) Projections: one (E, E) block of in_proj_weight each for Q, K and V.
    w_q, w_k, w_v = np.split(np.asarray(in_proj_weight), 3)
    b_q, b_k, b_v = [None] * 3 if in_proj_bias is None else np.split(np.asarray(in_proj_bias), 3)
    q, k, v = project(query, w_q, b_q), project(key, w_k, b_k), project(value, w_v, b_v)
    # 2) Split the embedding into heads: (N, L, E) -> (N, h, L, d_head).
    q, k, v = (split_heads(t, num_heads) for t in (q, k, v))
    # 3) All heads attend in parallel: (N, h, L, d_head), weights (N, h, L, S).
    heads, weights = scaled_dot_product_attention(q, k, v, mask)
    # 4) Concatenate the heads: (N, h, L, d_head) -> (N, L, E).
    concat = merge_heads(heads)
    # 5) Output projection mixes the heads: (N, L, E).
    out = project(concat, out_proj_weight, out_proj_bias)
    if not need_weights:
        return out, None
    return out, weights.mean(axis=1) if average_attn_weights else weights

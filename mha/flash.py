"""Chapter 9 (The cost of attention, and flash-style attention): exact attention in blocks.

Plain attention builds the whole ``(L, S)`` score matrix for every head, then
softmaxes it. Flash-style attention (Dao et al., 2022) gets the same result (up
to round-off) from one ``(block_size, block_size)`` tile of scores at a time. It
keeps, for every query row, three running quantities while it walks over the key blocks:

* ``m``: the largest score seen so far (the softmax's shift);
* ``l``: the sum of ``exp(score - m)`` seen so far (the softmax's denominator);
* ``acc``: the sum of ``exp(score - m) * v`` seen so far (the unnormalised output).

When a new block raises the maximum from ``m`` to ``m_new``, the old sums are
rescaled by ``exp(m - m_new)``; at the end ``acc / l`` is the attention output
(equal to plain attention up to round-off). The running pair ``m``, ``l`` is the
*online softmax* normaliser (Milakov and Gimelshein, 2018); carrying the rescaled
accumulator ``acc`` with it is FlashAttention (Dao et al., 2022).

Two implementations with the same arguments and results:

* :func:`flash_attention` in PyTorch (gradients flow through it by autograd). For speed it
  scales the scores by ``log2(e)`` and uses ``exp2`` (``exp(x) = 2 ** (x log2 e)``), as
  FlashAttention-2's kernels do (Dao, 2023); ``exp2`` is about twice as fast as ``exp``
  here. It also updates each tile in place;
* :func:`flash_attention_numpy`, the same loop in NumPy with plain ``exp``, for reading.

Masks follow the course: boolean True = blocked (the opposite of
``F.scaled_dot_product_attention``), float = added to the scores. A query row
whose keys are all blocked gets a zero output.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from mha._validate import check_broadcast, check_mask_dtype, check_positive_int

__all__ = ["flash_attention", "flash_attention_numpy"]

LOG2E = math.log2(math.e)  # the torch loop uses exp2, which is faster than exp on CPUs


def _check(q_shape, k_shape, v_shape, mask_shape, block_size) -> None:
    """Shapes ``q (N, h, L, d)``, ``k (N, h, S, d)``, ``v (N, h, S, d_v)``; mask broadcasts."""
    shapes = {"q": tuple(q_shape), "k": tuple(k_shape), "v": tuple(v_shape)}
    for name, shape in shapes.items():
        if len(shape) != 4:
            raise ValueError(
                f"{name} must have 4 dims (batch, heads, seq, d_head), got shape {shape}"
            )
    q, k, v = shapes.values()
    if q[:2] != k[:2] or k[:2] != v[:2]:
        raise ValueError(f"q, k and v must share (batch, heads), got q {q}, k {k}, v {v}")
    if q[3] != k[3] or k[2] != v[2]:
        raise ValueError(
            f"expected q (N, h, L, d), k (N, h, S, d), v (N, h, S, d_v); got q {q}, k {k}, v {v}"
        )
    if mask_shape is not None:
        check_broadcast("attn_mask", mask_shape, (*q[:3], k[2]), "expected (N, h, L, S)")
    check_positive_int("block_size", block_size)


def _tile(mask, rows: slice, cols: slice):
    """The ``(rows, cols)`` tile of a mask that broadcasts over its last two dims."""
    if mask is None:
        return None
    rows = rows if mask.shape[-2] > 1 else slice(None)  # a size-1 dim broadcasts
    cols = cols if mask.shape[-1] > 1 else slice(None)
    return mask[..., rows, cols]


# ---------------------------------------------------------------- PyTorch


def flash_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    block_size: int = 128,
) -> Tensor:
    """Exact ``softmax(q k^T / sqrt(d) + mask) v``, one ``block_size`` tile at a time.

    Introduced in Chapter 9. Shapes: ``q`` ``(N, h, L, d)``, ``k`` ``(N, h, S, d)``,
    ``v`` ``(N, h, S, d_v)``; returns ``(N, h, L, d_v)``. ``attn_mask`` is boolean
    (True = blocked) or float (added to the scores) and broadcasts to
    ``(N, h, L, S)``; it is read tile by tile, never expanded. ``is_causal=True``
    blocks key ``j > i`` for query ``i`` (top-left aligned, as in
    ``F.scaled_dot_product_attention``); it may be combined with ``attn_mask``.
    Key tiles that the causal mask blocks entirely are skipped. Extra memory is
    one ``(N, h, block_size, block_size)`` tile plus the running statistics of
    one query block, never the ``(L, S)`` matrix (autograd, when it records,
    keeps the tiles for the backward pass).
    """
    if not all(isinstance(t, Tensor) for t in (q, k, v)):
        raise ValueError(f"q, k and v must be torch tensors, got {type(q), type(k), type(v)}")
    if not (q.is_floating_point() and q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must share a floating dtype, got {q.dtype, k.dtype, v.dtype}")
    if attn_mask is not None:
        is_bool = attn_mask.dtype == torch.bool
        check_mask_dtype("attn_mask", is_bool, attn_mask.is_floating_point(), attn_mask.dtype)
    _check(q.shape, k.shape, v.shape, None if attn_mask is None else attn_mask.shape, block_size)
    length = q.shape[2]
    scale = LOG2E / math.sqrt(q.shape[3])  # scores in base 2: exp(x) = 2 ** (x * log2(e))
    out = q.new_empty((*q.shape[:3], v.shape[3]))  # (N, h, L, d_v)
    for i in range(0, length, block_size):
        rows = slice(i, min(i + block_size, length))
        qi = q[:, :, rows] * scale  # (N, h, B, d)
        out[:, :, rows] = _query_block(qi, k, v, attn_mask, is_causal, rows, block_size)
    return out


def _query_block(qi, k, v, mask, is_causal, rows, block_size) -> Tensor:
    """Online softmax over the key blocks for one block of queries ``qi`` ``(N, h, B, d)``."""
    m = qi.new_full((*qi.shape[:3], 1), -math.inf)  # running max       (N, h, B, 1)
    l = qi.new_zeros((*qi.shape[:3], 1))  # noqa: E741    running sum       (N, h, B, 1)
    acc = qi.new_zeros((*qi.shape[:3], v.shape[3]))  # running output (N, h, B, d_v)
    src_len = k.shape[2]
    last = min(src_len, rows.stop) if is_causal else src_len  # later keys: all blocked
    for j in range(0, last, block_size):
        cols = slice(j, min(j + block_size, src_len))
        s = qi @ k[:, :, cols].transpose(-1, -2)  # 1) scores of this tile (N, h, B, B_k)
        s = _masked(s, _tile(mask, rows, cols), is_causal, rows, cols)
        m_new = torch.maximum(m, s.amax(-1, keepdim=True).detach())  # 2) new running max
        shift = torch.where(torch.isfinite(m_new), m_new, 0.0)  # all blocked so far: 0
        p = s.sub_(shift).exp2_()  # 3) unnormalised weights of this tile (in place)
        alpha = torch.exp2(m - shift)  # 4) rescale what was summed under the old max
        l = l.mul_(alpha).add_(p.sum(-1, keepdim=True))  # noqa: E741
        acc = acc.mul_(alpha).add_(p @ v[:, :, cols])
        m = m_new
    return acc / torch.where(l == 0, 1.0, l)  # 5) normalise; all-blocked rows stay 0


def _masked(s: Tensor, tile, is_causal: bool, rows: slice, cols: slice) -> Tensor:
    """Apply the mask tile (bool True = blocked, or float added) and the causal mask."""
    if tile is not None:
        s = s.masked_fill(tile, -math.inf) if tile.dtype == torch.bool else s + tile * LOG2E
    if is_causal and cols.stop - 1 > rows.start:  # some key in the tile is in the future
        i = torch.arange(rows.start, rows.stop, device=s.device)[:, None]
        j = torch.arange(cols.start, cols.stop, device=s.device)[None, :]
        s = s.masked_fill(j > i, -math.inf)
    return s


# ---------------------------------------------------------------- NumPy


def flash_attention_numpy(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    attn_mask: np.ndarray | None = None,
    is_causal: bool = False,
    block_size: int = 128,
) -> np.ndarray:
    """The NumPy twin of :func:`flash_attention`: same arguments, same result.

    Introduced in Chapter 9, for reading: the loop over query blocks and key
    blocks with the running max ``m``, sum ``l`` and output ``acc`` is written
    out in one function. Shapes as in :func:`flash_attention`.
    """
    q, k, v = (np.asarray(t, dtype=np.float64) for t in (q, k, v))
    mask = None if attn_mask is None else np.asarray(attn_mask)
    if mask is not None:
        is_bool = mask.dtype == np.bool_
        check_mask_dtype("attn_mask", is_bool, np.issubdtype(mask.dtype, np.floating), mask.dtype)
        mask = np.where(mask, -np.inf, 0.0) if is_bool else mask  # additive
    _check(q.shape, k.shape, v.shape, None if mask is None else mask.shape, block_size)
    (n, h, length, d), src_len = q.shape, k.shape[2]
    out = np.zeros((n, h, length, v.shape[3]))
    for i in range(0, length, block_size):
        rows = slice(i, min(i + block_size, length))
        qi = q[:, :, rows] / np.sqrt(d)  # (N, h, B, d)
        query_pos = np.arange(rows.start, rows.stop)[:, None]
        m = np.full((n, h, qi.shape[2], 1), -np.inf)  # running max
        l = np.zeros((n, h, qi.shape[2], 1))  # noqa: E741   running sum
        acc = np.zeros((n, h, qi.shape[2], v.shape[3]))  # running output
        for j in range(0, min(src_len, rows.stop) if is_causal else src_len, block_size):
            cols = slice(j, min(j + block_size, src_len))
            s = qi @ np.swapaxes(k[:, :, cols], -1, -2)  # scores of this tile
            if mask is not None:
                s = s + _tile(mask, rows, cols)
            if is_causal:  # key j > query i is in the future
                s = np.where(np.arange(cols.start, cols.stop) > query_pos, -np.inf, s)
            m_new = np.maximum(m, s.max(-1, keepdims=True))
            shift = np.where(np.isfinite(m_new), m_new, 0.0)
            p, alpha = np.exp(s - shift), np.exp(m - shift)
            l = alpha * l + p.sum(-1, keepdims=True)  # noqa: E741
            acc, m = alpha * acc + p @ v[:, :, cols], m_new
        out[:, :, rows] = acc / np.where(l == 0, 1.0, l)
    return out

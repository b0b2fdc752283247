"""Chapter 5: attention masks in PyTorch, with ``nn.MultiheadAttention``'s conventions.

Boolean masks mean True = blocked (the opposite of
``F.scaled_dot_product_attention``); float masks are added to the scores. The
module :mod:`mha.module` merges its two masks (``attn_mask`` and
``key_padding_mask``, plus ``is_causal``) into one additive mask with
:func:`merge_masks`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mha._validate import check_mask_dtype, check_mha_masks

__all__ = ["causal_mask", "additive_mask_torch", "merge_masks", "dead_rows"]


def causal_mask(
    tgt_len: int, src_len: int | None = None, device: torch.device | str | None = None
) -> Tensor:
    """Boolean ``(L, S)`` mask, True above the diagonal: query ``i`` may not see key ``j > i``.

    Introduced in Chapter 5. True means blocked (``nn.MultiheadAttention`` convention).
    """
    src_len = tgt_len if src_len is None else src_len
    return torch.ones(tgt_len, src_len, dtype=torch.bool, device=device).triu(1)


def additive_mask_torch(mask: Tensor, dtype: torch.dtype, name: str = "attn_mask") -> Tensor:
    """Boolean mask (True = blocked) to an additive float mask of ``dtype`` (Chapter 5).

    A float mask is only cast to ``dtype``; the shape is unchanged.
    """
    is_bool = mask.dtype == torch.bool
    check_mask_dtype(name, is_bool, mask.is_floating_point(), mask.dtype)
    if is_bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            mask, float("-inf")
        )
    return mask.to(dtype)


def merge_masks(
    attn_mask: Tensor | None,
    key_padding_mask: Tensor | None,
    is_causal: bool,
    shape: tuple[int, int, int, int],
    like: Tensor,
    extra_keys: int = 0,
) -> Tensor | None:
    """One additive mask ``(N or 1, h or 1, L, S + extra_keys)`` of ``like``'s dtype, or ``None``.

    Introduced in Chapter 5. ``shape`` is ``(N, h, L, S)``. ``attn_mask`` is
    ``(L, S)`` or ``(N * h, L, S)`` (batch index major), ``key_padding_mask``
    ``(N, S)``; ``is_causal`` adds :func:`causal_mask`. ``extra_keys`` zero
    columns are appended on the right for keys that every query may see
    (``add_bias_kv``, ``add_zero_attn``), as ``F.multi_head_attention_forward``
    pads its masks.
    """
    n, h, tgt_len, src_len = shape
    check_mha_masks(
        None if attn_mask is None else attn_mask.shape,
        None if key_padding_mask is None else key_padding_mask.shape,
        n,
        h,
        tgt_len,
        src_len,
    )
    dtype, total = like.dtype, None
    if attn_mask is not None:
        heads = 1 if attn_mask.dim() == 2 else h  # (L, S) or (N * h, L, S)
        total = additive_mask_torch(attn_mask, dtype).view(-1, heads, tgt_len, src_len)
    if key_padding_mask is not None:
        pad = additive_mask_torch(key_padding_mask, dtype, "key_padding_mask")[:, None, None, :]
        total = pad if total is None else total + pad
    if is_causal:
        causal = additive_mask_torch(causal_mask(tgt_len, src_len, like.device), dtype)
        total = causal if total is None else total + causal
    if total is None or extra_keys == 0:
        return total
    return F.pad(total, (0, extra_keys))


def dead_rows(mask: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
    """Rows whose keys are all blocked (``-inf``), shape ``(..., L, 1)``; and a safe mask.

    Introduced in Chapter 5. The safe mask has those rows set to 0, so the
    softmax gives no NaN; the caller then zeroes their weights and output.
    """
    if mask is None:
        return None, None
    dead = torch.isneginf(mask).all(dim=-1, keepdim=True)
    return dead, mask.masked_fill(dead, 0.0)

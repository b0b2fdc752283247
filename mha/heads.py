"""Chapters 2 to 4: per-head projections, splitting into heads, concatenation.

Heads split the *embedding* into ``num_heads`` subspaces of size ``d_head``;
every head still sees every token of the sequence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mha._validate import check_heads

if TYPE_CHECKING:  # annotations only: import mha loads no numpy.typing
    import numpy.typing as npt

__all__ = ["project", "split_heads", "merge_heads"]


def project(
    x: npt.ArrayLike, weight: npt.ArrayLike, bias: npt.ArrayLike | None = None
) -> np.ndarray:
    """Linear map ``x @ weight.T + bias``, the PyTorch ``nn.Linear`` layout.

    Introduced in Chapter 2. ``x`` is ``(..., E_in)``, ``weight`` is
    ``(E_out, E_in)``, ``bias`` is ``(E_out,)`` or ``None``.
    """
    y = np.asarray(x) @ np.asarray(weight).T
    return y if bias is None else y + np.asarray(bias)


def split_heads(x: npt.ArrayLike, num_heads: int) -> np.ndarray:
    """``(N, L, E) -> (N, h, L, E/h)``: reshape, then move heads before the sequence.

    Introduced in Chapter 3. Reshaping straight to ``(N, h, L, d_head)``
    without the transpose is the classic bug: it mixes tokens between heads.
    """
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"split_heads expects (N, L, E), got shape {x.shape}")
    n, length, embed_dim = x.shape
    d_head = check_heads(embed_dim, num_heads)
    return x.reshape(n, length, num_heads, d_head).transpose(0, 2, 1, 3)


def merge_heads(x: npt.ArrayLike) -> np.ndarray:
    """``(N, h, L, d_head) -> (N, L, h * d_head)``: the concatenation step.

    Introduced in Chapter 4; the exact inverse of :func:`split_heads`. Head
    ``i`` lands in columns ``i * d_head : (i + 1) * d_head``.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"merge_heads expects (N, h, L, d_head), got shape {x.shape}")
    n, h, length, d_head = x.shape
    return x.transpose(0, 2, 1, 3).reshape(n, length, h * d_head)

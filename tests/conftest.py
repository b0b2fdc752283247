"""Shared fixtures: float64 everywhere, seeded, and a grid of mask cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reader_fixtures import artifacts, book_server, chromium, reader_book  # noqa: F401

MASK_KINDS = ["none", "bool_attn", "float_attn", "bool_attn_3d", "padding", "both", "causal"]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


def make_masks(kind: str, n: int, h: int, tgt_len: int, src_len: int, gen: torch.Generator):
    """Return ``(attn_mask, key_padding_mask, is_causal)`` with no fully masked row.

    Boolean masks use True = blocked. Key 0 is never blocked so every query row
    keeps at least one key (PyTorch returns NaN for fully masked rows).
    """
    attn = pad = None
    if kind in ("bool_attn", "both"):
        attn = torch.rand(tgt_len, src_len, generator=gen) < 0.4
    if kind == "bool_attn_3d":
        attn = torch.rand(n * h, tgt_len, src_len, generator=gen) < 0.4
    if kind == "float_attn":
        attn = torch.randn(tgt_len, src_len, generator=gen, dtype=torch.float64)
        attn[torch.rand(tgt_len, src_len, generator=gen) < 0.3] = float("-inf")
    if kind in ("padding", "both"):
        lengths = torch.randint(1, src_len + 1, (n,), generator=gen)
        pad = torch.arange(src_len)[None, :] >= lengths[:, None]  # (N, S), True = padded
    if attn is not None:
        attn[..., 0] = False if attn.dtype == torch.bool else 0.0
    if kind == "causal":
        attn = torch.ones(tgt_len, src_len, dtype=torch.bool).triu(1)
    return attn, pad, kind == "causal"

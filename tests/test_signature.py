"""mha.MultiHeadAttention takes nn.MultiheadAttention's arguments, in PyTorch's order.

The one difference on purpose: ``batch_first`` defaults to True (the course is batch-first).
Options PyTorch does not have may follow PyTorch's arguments, keyword-only.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

import mha


def _params(fn) -> list[tuple[str, object, object]]:
    """``(name, kind, default)`` of every parameter but ``self``."""
    sig = inspect.signature(fn)
    return [(p.name, p.kind, p.default) for p in sig.parameters.values() if p.name != "self"]


def _split(ours: list, theirs: list) -> tuple[list, list]:
    """PyTorch's parameters of ours, and our extras, which must come after, keyword-only."""
    extra = ours[len(theirs) :]
    assert all(kind is inspect.Parameter.KEYWORD_ONLY for _, kind, _ in extra), extra
    return ours[: len(theirs)], extra


def test_constructor_signature_is_pytorchs_but_batch_first():
    theirs = _params(nn.MultiheadAttention.__init__)
    ours, _ = _split(_params(mha.MultiHeadAttention.__init__), theirs)
    assert [p[:2] for p in ours] == [p[:2] for p in theirs]  # names, order, kinds
    differ = {o[0]: (o[2], t[2]) for o, t in zip(ours, theirs, strict=True) if o[2] != t[2]}
    assert differ == {"batch_first": (True, False)}


def test_forward_signature_is_pytorchs():
    theirs = _params(nn.MultiheadAttention.forward)
    ours, _ = _split(_params(mha.MultiHeadAttention.forward), theirs)
    assert ours == theirs


def test_positional_arguments_land_where_pytorch_puts_them():
    assert mha.MultiHeadAttention(16, 4, 0.5).dropout == 0.5
    args = (12, 3, 0.25, False, True, True, 6, 10, False, "cpu", torch.float64)
    ours, theirs = mha.MultiHeadAttention(*args), nn.MultiheadAttention(*args)
    names = ["embed_dim", "num_heads", "dropout", "add_zero_attn", "kdim", "vdim", "batch_first"]
    assert {n: getattr(ours, n) for n in names} == {n: getattr(theirs, n) for n in names}
    assert ours.in_proj_bias is None and ours.out_proj.bias is None  # bias=False
    assert ours.bias_k.shape == theirs.bias_k.shape == (1, 1, 12)  # add_bias_kv=True
    assert ours.k_proj_weight.shape == (12, 6) and ours.v_proj_weight.shape == (12, 10)
    assert ours.out_proj.weight.dtype == torch.float64


def test_forward_positional_arguments_land_where_pytorch_puts_them():
    """``forward(query, key, value, key_padding_mask, need_weights, attn_mask, ...)``."""
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(8, 2, batch_first=True, dtype=torch.float64)
    ours = mha.MultiHeadAttention.from_torch(theirs)
    x = torch.randn(2, 4, 8, dtype=torch.float64)
    pad = torch.tensor([[False] * 4, [False, False, True, True]])
    mask = mha.causal_mask(4)
    want = theirs(x, x, x, pad, True, mask, False)
    got = ours(x, x, x, pad, True, mask, False)
    assert got[1].shape == (2, 2, 4, 4)  # average_attn_weights=False landed
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)

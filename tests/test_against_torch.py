"""mha.MultiHeadAttention and the NumPy reference agree with PyTorch to float64 round-off."""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import MASK_KINDS, make_masks
from torch import nn

import mha
from mha import reference

TOL = 1e-10
SHAPES = [  # (batch, L, S, embed_dim, num_heads)
    (1, 5, 5, 8, 1),
    (3, 4, 7, 12, 3),
    (2, 9, 6, 16, 8),
    (4, 6, 6, 16, 2),
    (2, 3, 11, 24, 4),
]
CASES = list(itertools.product(SHAPES, [True, False], MASK_KINDS))


def _ids(case):
    (n, length, src, e, h), bias, kind = case
    return f"N{n}-L{length}-S{src}-E{e}-h{h}-{'bias' if bias else 'nobias'}-{kind}"


def _setup(case, self_attention=False):
    (n, length, src, e, h), bias, kind = case
    gen = torch.Generator().manual_seed(zlib.crc32(_ids(case).encode()))
    if kind == "causal" or self_attention:
        src = length
    torch_mha = nn.MultiheadAttention(e, h, bias=bias, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        for p in torch_mha.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.5)
    q = torch.randn(n, length, e, generator=gen, dtype=torch.float64)
    k = torch.randn(n, src, e, generator=gen, dtype=torch.float64)
    v = torch.randn(n, src, e, generator=gen, dtype=torch.float64)
    if self_attention:
        k = v = q
    attn, pad, causal = make_masks(kind, n, h, length, src, gen)
    return torch_mha, (q, k, v), attn, pad, causal


def _torch_out(torch_mha, qkv, attn, pad, causal, **kw):
    return torch_mha(*qkv, key_padding_mask=pad, attn_mask=attn, is_causal=causal, **kw)


@pytest.mark.parametrize("case", CASES, ids=_ids)
@pytest.mark.parametrize("average", [True, False], ids=["avg", "per-head"])
def test_module_matches_torch(case, average):
    torch_mha, qkv, attn, pad, causal = _setup(case)
    ours = mha.MultiHeadAttention.from_torch(torch_mha)
    want, want_w = _torch_out(torch_mha, qkv, attn, pad, causal, average_attn_weights=average)
    got, got_w = ours(
        *qkv, key_padding_mask=pad, attn_mask=attn, is_causal=causal, average_attn_weights=average
    )
    torch.testing.assert_close(got, want, rtol=0, atol=TOL)
    torch.testing.assert_close(got_w, want_w, rtol=0, atol=TOL)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_fused_path_matches_torch(case):
    torch_mha, qkv, attn, pad, causal = _setup(case)
    ours = mha.MultiHeadAttention.from_torch(torch_mha)
    want, _ = _torch_out(torch_mha, qkv, attn, pad, causal, need_weights=False)
    got, got_w = ours(
        *qkv, key_padding_mask=pad, attn_mask=attn, is_causal=causal, need_weights=False
    )
    assert got_w is None
    torch.testing.assert_close(got, want, rtol=0, atol=TOL)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_numpy_reference_matches_torch(case):
    torch_mha, qkv, attn, pad, causal = _setup(case)
    want, want_w = _torch_out(torch_mha, qkv, attn, pad, causal, average_attn_weights=False)
    sd = {k: (None if v is None else v.detach().numpy()) for k, v in torch_mha.state_dict().items()}
    np_mask = None if attn is None else attn.numpy()
    got, got_w = reference.multi_head_attention_forward(
        *(t.numpy() for t in qkv),
        torch_mha.num_heads,
        sd["in_proj_weight"],
        sd.get("in_proj_bias"),
        sd["out_proj.weight"],
        sd.get("out_proj.bias"),
        key_padding_mask=None if pad is None else pad.numpy(),
        attn_mask=np_mask,
        average_attn_weights=False,
    )
    np.testing.assert_allclose(got, want.detach().numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(got_w, want_w.detach().numpy(), rtol=0, atol=TOL)


@pytest.mark.parametrize("case", CASES[::3], ids=_ids)
def test_self_attention_fused_projection(case):
    """query is key is value takes the one-matmul projection path."""
    torch_mha, qkv, attn, pad, causal = _setup(case, self_attention=True)
    ours = mha.MultiHeadAttention.from_torch(torch_mha)
    for need in (True, False):
        want, _ = _torch_out(torch_mha, qkv, attn, pad, causal, need_weights=need)
        got, _ = ours(
            *qkv, key_padding_mask=pad, attn_mask=attn, is_causal=causal, need_weights=need
        )
        torch.testing.assert_close(got, want, rtol=0, atol=TOL)


@pytest.mark.parametrize("case", CASES[::2], ids=_ids)
@pytest.mark.parametrize("need_weights", [True, False])
def test_gradients_match_torch(case, need_weights):
    torch_mha, qkv, attn, pad, causal = _setup(case)
    ours = mha.MultiHeadAttention.from_torch(torch_mha)
    grads = []
    for module in (torch_mha, ours):
        inputs = [t.clone().requires_grad_() for t in qkv]
        module.zero_grad()
        out, _ = module(
            *inputs,
            key_padding_mask=pad,
            attn_mask=attn,
            is_causal=causal,
            need_weights=need_weights,
        )
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        grads.append([t.grad for t in inputs] + [p.grad for p in module.parameters()])
    for want, got in zip(*grads, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=TOL)


@pytest.mark.parametrize("kind", ["none", "bool", "float", "broadcast"])
@pytest.mark.parametrize("lead", [(), (3,), (2, 4)], ids=str)
def test_reference_sdpa_matches_torch_sdpa(kind, lead):
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(*lead, 5, 6, generator=gen, dtype=torch.float64)
    k = torch.randn(*lead, 7, 6, generator=gen, dtype=torch.float64)
    v = torch.randn(*lead, 7, 3, generator=gen, dtype=torch.float64)
    blocked = torch.rand(*lead, 5, 7, generator=gen) < 0.4
    blocked[..., 0] = False
    ours_mask = torch_mask = None
    if kind == "bool":  # ours: True = blocked; SDPA: True = may attend
        ours_mask, torch_mask = blocked.numpy(), ~blocked
    elif kind == "float":
        fm = torch.randn(*lead, 5, 7, generator=gen, dtype=torch.float64).masked_fill(
            blocked, -1e30
        )
        ours_mask, torch_mask = fm.numpy(), fm
    elif kind == "broadcast":
        ours_mask, torch_mask = blocked[..., :1, :].numpy(), ~blocked[..., :1, :]
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=torch_mask)
    got, weights = reference.scaled_dot_product_attention(
        q.numpy(), k.numpy(), v.numpy(), ours_mask
    )
    np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=0, atol=TOL)


def test_same_parameters_and_init_as_torch():
    torch.manual_seed(3)
    ref = nn.MultiheadAttention(32, 4, batch_first=True)
    torch.manual_seed(3)
    ours = mha.MultiHeadAttention(32, 4)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    for a, b in zip(ours.parameters(), ref.parameters(), strict=True):
        assert torch.equal(a, b)


def test_dropout_is_used_in_training_only():
    ours = mha.MultiHeadAttention(16, 4, dropout=0.5)
    x = torch.randn(2, 6, 16)
    ours.eval()
    a, _ = ours(x, x, x)
    b, _ = ours(x, x, x)
    assert torch.equal(a, b)
    ours.train()
    _, w = ours(x, x, x, average_attn_weights=False)
    assert (w == 0).any(), "dropout zeroes some attention weights in training"


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("padding", [False, True])
def test_is_causal_alone_builds_the_mask(need_weights, padding):
    """is_causal=True without attn_mask equals PyTorch given the explicit causal mask."""
    case = ((2, 6, 6, 16, 4), True, "padding" if padding else "none")
    torch_mha, qkv, _, pad, _ = _setup(case, self_attention=True)
    ours = mha.MultiHeadAttention.from_torch(torch_mha)
    mask = mha.causal_mask(6)
    want, want_w = torch_mha(*qkv, key_padding_mask=pad, attn_mask=mask, need_weights=need_weights)
    got, got_w = ours(*qkv, key_padding_mask=pad, is_causal=True, need_weights=need_weights)
    torch.testing.assert_close(got, want, rtol=0, atol=TOL)
    if need_weights:
        torch.testing.assert_close(got_w, want_w, rtol=0, atol=TOL)
        assert torch.equal(got_w.triu(1), torch.zeros_like(got_w)), "no weight on future keys"

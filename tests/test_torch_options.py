"""Every constructor option of nn.MultiheadAttention, against PyTorch in float64.

kdim/vdim (cross-attention with separate projection weights), batch_first=False
(sequence-first tensors), add_bias_kv and add_zero_attn (extra keys, with the
masks padded as PyTorch pads them): outputs, weights, gradients, masks,
initialisation, state-dict keys, and from_torch / to_torch both ways.
"""

from __future__ import annotations

import itertools
import zlib

import pytest
import torch
from conftest import MASK_KINDS, make_masks
from torch import nn

import mha

TOL = 1e-10
E, H, N, L, S = 12, 3, 2, 5, 7
KV_DIMS = {"same": (None, None), "kdim6-vdim10": (6, 10)}
OPTIONS = list(itertools.product(KV_DIMS, [True, False], [False, True], [False, True]))


def _opt_id(opt) -> str:
    dims, batch_first, bias_kv, zero_attn = opt
    return "-".join(
        [dims, "bf" if batch_first else "seqfirst"]
        + ["bias_kv"] * bias_kv
        + ["zero_attn"] * zero_attn
    )


def _gen(*parts) -> torch.Generator:
    """A generator seeded from a stable digest of the test's id (not ``hash()``)."""
    return torch.Generator().manual_seed(zlib.crc32("/".join(map(str, parts)).encode()))


def _torch_mha(opt, gen: torch.Generator, bias: bool = True) -> nn.MultiheadAttention:
    dims, batch_first, bias_kv, zero_attn = opt
    kdim, vdim = KV_DIMS[dims]
    m = nn.MultiheadAttention(
        E, H, 0.0, bias, bias_kv, zero_attn, kdim, vdim, batch_first, dtype=torch.float64
    )
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.5)
    return m


def _inputs(m: nn.MultiheadAttention, gen: torch.Generator, src: int, self_attention=False):
    """``query, key, value`` in ``m``'s layout (batch-first or sequence-first)."""
    q = torch.randn(N, L, E, generator=gen, dtype=torch.float64)
    k = torch.randn(N, src, m.kdim, generator=gen, dtype=torch.float64)
    v = torch.randn(N, src, m.vdim, generator=gen, dtype=torch.float64)
    if not m.batch_first:
        q, k, v = (t.transpose(0, 1).contiguous() for t in (q, k, v))
    return (q, q, q) if self_attention else (q, k, v)


def _both(torch_m, ours, qkv, attn, pad, causal, **kw):
    """Run PyTorch and ours on the same inputs and masks; return both results.

    PyTorch gets the causal mask as ``attn_mask`` with ``is_causal=False``: with the
    hint and ``need_weights=False`` its fused path would drop the padded mask and
    block the extra bias/zero keys, unlike its own ``need_weights=True`` path.
    """
    want = torch_m(*qkv, key_padding_mask=pad, attn_mask=attn, **kw)
    got = ours(*qkv, key_padding_mask=pad, attn_mask=attn, is_causal=causal, **kw)
    return want, got


@pytest.mark.parametrize("kind", MASK_KINDS)
@pytest.mark.parametrize("opt", OPTIONS, ids=_opt_id)
def test_outputs_and_weights_match_torch(opt, kind):
    gen = _gen(_opt_id(opt), kind)
    torch_m = _torch_mha(opt, gen)
    ours = mha.MultiHeadAttention.from_torch(torch_m)
    src = L if kind == "causal" else S
    qkv = _inputs(torch_m, gen, src)
    attn, pad, causal = make_masks(kind, N, H, L, src, gen)
    for need_weights, average in [(True, True), (True, False), (False, True)]:
        kw = {"need_weights": need_weights, "average_attn_weights": average}
        (want, want_w), (got, got_w) = _both(torch_m, ours, qkv, attn, pad, causal, **kw)
        torch.testing.assert_close(got, want, rtol=0, atol=TOL)
        if need_weights:
            torch.testing.assert_close(got_w, want_w, rtol=0, atol=TOL)
        else:
            assert got_w is None


@pytest.mark.parametrize("opt", [o for o in OPTIONS if o[0] == "same"], ids=_opt_id)
def test_self_attention_matches_torch(opt):
    """``query is key is value`` (the one-matmul projection), also sequence-first."""
    gen = _gen(_opt_id(opt), "self")
    torch_m = _torch_mha(opt, gen)
    ours = mha.MultiHeadAttention.from_torch(torch_m)
    qkv = _inputs(torch_m, gen, L, self_attention=True)
    attn, pad, _ = make_masks("both", N, H, L, L, gen)
    for need_weights in (True, False):
        kw = {"need_weights": need_weights}
        (want, _), (got, _) = _both(torch_m, ours, qkv, attn, pad, False, **kw)
        torch.testing.assert_close(got, want, rtol=0, atol=TOL)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("opt", OPTIONS, ids=_opt_id)
def test_gradients_match_torch(opt, need_weights):
    gen = _gen(_opt_id(opt), "grad")
    torch_m = _torch_mha(opt, gen)
    ours = mha.MultiHeadAttention.from_torch(torch_m)
    qkv = _inputs(torch_m, gen, S)
    attn, pad, _ = make_masks("both", N, H, L, S, gen)
    grads = []
    for module in (torch_m, ours):
        inputs = [t.clone().requires_grad_() for t in qkv]
        out, _ = module(*inputs, key_padding_mask=pad, attn_mask=attn, need_weights=need_weights)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        grads.append([t.grad for t in inputs] + [p.grad for _, p in module.named_parameters()])
    for want, got in zip(*grads, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=TOL)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("opt", OPTIONS, ids=_opt_id)
def test_same_parameters_keys_and_init_as_torch(opt, bias):
    dims, batch_first, bias_kv, zero_attn = opt
    kdim, vdim = KV_DIMS[dims]
    args = (E, H, 0.0, bias, bias_kv, zero_attn, kdim, vdim, batch_first)
    torch.manual_seed(7)
    ref = nn.MultiheadAttention(*args)
    torch.manual_seed(7)
    ours = mha.MultiHeadAttention(*args)
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    for a, b in zip(ours.parameters(), ref.parameters(), strict=True):
        assert torch.equal(a, b)
    attrs = [
        "embed_dim",
        "num_heads",
        "head_dim",
        "kdim",
        "vdim",
        "_qkv_same_embed_dim",
        "batch_first",
        "add_zero_attn",
        "dropout",
    ]
    assert {a: getattr(ours, a) for a in attrs} == {a: getattr(ref, a) for a in attrs}


@pytest.mark.parametrize("opt", OPTIONS, ids=_opt_id)
def test_from_torch_to_torch_round_trip(opt):
    gen = _gen(_opt_id(opt), "round-trip")
    torch_m = _torch_mha(opt, gen, bias=False).eval()
    torch_m.dropout = 0.25
    ours = mha.MultiHeadAttention.from_torch(torch_m)
    back = ours.to_torch()
    assert not ours.training and not back.training
    for name in ["batch_first", "kdim", "vdim", "add_zero_attn", "dropout", "_qkv_same_embed_dim"]:
        assert getattr(back, name) == getattr(ours, name) == getattr(torch_m, name), name
    assert (back.bias_k is None) == (torch_m.bias_k is None) and back.in_proj_bias is None
    want_sd, back_sd = torch_m.state_dict(), back.state_dict()
    assert list(back_sd) == list(want_sd)
    assert all(torch.equal(back_sd[k], want_sd[k]) for k in want_sd)
    qkv = _inputs(torch_m, gen, S)
    torch.testing.assert_close(back(*qkv)[0], torch_m(*qkv)[0], rtol=0, atol=0)
    torch.testing.assert_close(ours(*qkv)[0], torch_m(*qkv)[0], rtol=0, atol=TOL)


def test_sequence_first_layout_is_the_transpose_of_batch_first():
    """``batch_first=False`` takes ``(L, N, E)`` and returns ``(L, N, E)``; weights stay ``(N, L, S)``."""
    seq_first = mha.MultiHeadAttention(E, H, batch_first=False, dtype=torch.float64)
    batch_first = mha.MultiHeadAttention(E, H, dtype=torch.float64)
    batch_first.load_state_dict(seq_first.state_dict())
    gen = _gen("layout")
    x = torch.randn(N, L, E, generator=gen, dtype=torch.float64)
    y = torch.randn(N, S, E, generator=gen, dtype=torch.float64)
    out_s, w_s = seq_first(x.transpose(0, 1), y.transpose(0, 1), y.transpose(0, 1))
    out_b, w_b = batch_first(x, y, y)
    assert out_s.shape == (L, N, E) and w_s.shape == (N, L, S)
    torch.testing.assert_close(out_s.transpose(0, 1), out_b, rtol=0, atol=TOL)
    torch.testing.assert_close(w_s, w_b, rtol=0, atol=TOL)


@pytest.mark.parametrize("opt", [o for o in OPTIONS if o[2] or o[3]], ids=_opt_id)
def test_extra_keys_keep_fully_masked_rows_alive(opt):
    """With bias/zero keys no row is fully masked: ours and PyTorch agree, no NaN."""
    gen = _gen(_opt_id(opt), "dead")
    torch_m = _torch_mha(opt, gen)
    ours = mha.MultiHeadAttention.from_torch(torch_m)
    qkv = _inputs(torch_m, gen, S)
    pad = torch.zeros(N, S, dtype=torch.bool)
    pad[0] = True  # every real key of example 0 is padding
    for need_weights in (True, False):
        (want, _), (got, _) = _both(torch_m, ours, qkv, None, pad, False, need_weights=need_weights)
        assert not torch.isnan(want).any()
        torch.testing.assert_close(got, want, rtol=0, atol=TOL)

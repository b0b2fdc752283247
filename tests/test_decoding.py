"""Chapter 10: KV-cache decoding and shared K/V heads (MQA/GQA), in float64 against full attention."""

from __future__ import annotations

import zlib

import pytest
import torch
import torch.nn.functional as F

import mha
from mha import decoding

TOL = 1e-12  # float64 round-off; the cached and full paths sum in different orders


def _module(case: str, num_heads: int = 4, num_kv_heads: int | None = None, e: int = 16):
    torch.manual_seed(zlib.crc32(case.encode()))
    m = mha.MultiHeadAttention(e, num_heads, dtype=torch.float64, num_kv_heads=num_kv_heads)
    with torch.no_grad():  # nonzero biases, so a missing bias cannot pass
        m.in_proj_bias.normal_()
        m.out_proj.bias.normal_()
    return m.eval()


def _full(m, x):
    return m(x, x, x, is_causal=True, need_weights=False)[0]


@pytest.mark.parametrize("g", [4, 2, 1])
def test_step_token_by_token_equals_causal_forward(g):
    m = _module(f"token-{g}", num_kv_heads=g)
    x = torch.randn(3, 9, 16, dtype=torch.float64)
    cache = m.new_cache(3, 9)
    full = _full(m, x)
    for t in range(9):  # each token's output as soon as it is produced
        out_t = m.step(x[:, t : t + 1], cache)
        assert out_t.shape == (3, 1, 16)
        assert (out_t - full[:, t : t + 1]).abs().max() < TOL
    assert cache.length == 9
    assert cache.keys.shape == (3, g, 9, 4)


@pytest.mark.parametrize("chunks", [[4, 1, 3, 2], [10], [1, 5, 4]])
def test_step_in_chunks_equals_causal_forward(chunks):
    m = _module(f"chunks-{chunks}", num_kv_heads=2)
    x = torch.randn(2, 10, 16, dtype=torch.float64)
    cache = m.new_cache(2, 12)
    outs, start = [], 0
    for n in chunks:
        outs.append(m.step(x[:, start : start + n], cache))
        start += n
    assert (torch.cat(outs, dim=1) - _full(m, x)).abs().max() < TOL


def test_cached_keys_are_the_projected_keys():
    m = _module("keys", num_kv_heads=2)
    x = torch.randn(1, 5, 16, dtype=torch.float64)
    cache = m.new_cache(1, 8)
    m.step(x, cache)
    _, k, v = decoding.project_qkv(m, x)
    assert torch.equal(cache.keys[:, :, :5], k) and torch.equal(cache.values[:, :, :5], v)
    assert not cache.keys[:, :, 5:].any()


def test_step_sequence_first():
    m = _module("seq-first")
    m.batch_first = False
    x = torch.randn(6, 2, 16, dtype=torch.float64)  # (L, N, E)
    cache = m.new_cache(2, 6)
    out = torch.cat([m.step(x[t : t + 1], cache) for t in range(6)], dim=0)
    assert (out - _full(m, x)).abs().max() < TOL


@pytest.mark.parametrize("g", [1, 2, 4])
def test_gqa_shapes(g):
    m = mha.MultiHeadAttention(32, 8, num_kv_heads=g, kdim=32, vdim=32)
    assert m.in_proj_weight.shape == ((8 + 2 * g) * 4, 32)
    assert m.in_proj_bias.shape == ((8 + 2 * g) * 4,)
    c = mha.MultiHeadAttention(32, 8, kdim=6, vdim=10, num_kv_heads=g)
    assert c.k_proj_weight.shape == (g * 4, 6) and c.v_proj_weight.shape == (g * 4, 10)


@pytest.mark.parametrize("g", [1, 2])
@pytest.mark.parametrize("need_weights", [True, False])
def test_gqa_equals_full_module_with_repeated_kv_heads(g, need_weights):
    m = _module(f"expand-{g}", num_heads=4, num_kv_heads=g)
    full = decoding.expand_kv_heads(m)
    assert full.num_kv_heads == 4 and full.in_proj_weight.shape == (48, 16)
    q, kv = torch.randn(2, 5, 16, dtype=torch.float64), torch.randn(2, 7, 16, dtype=torch.float64)
    pad = torch.zeros(2, 7, dtype=torch.bool)
    pad[0, -2:] = True
    ours, w = m(q, kv, kv, key_padding_mask=pad, need_weights=need_weights)
    theirs, w_full = full(q, kv, kv, key_padding_mask=pad, need_weights=need_weights)
    assert (ours - theirs).abs().max() < TOL
    if need_weights:
        assert (w - w_full).abs().max() < TOL
    # the full module is PyTorch's, so GQA also matches nn.MultiheadAttention
    ref = full.to_torch()(q, kv, kv, key_padding_mask=pad, need_weights=False)[0]
    assert (ours - ref).abs().max() < TOL


def test_gqa_equals_sdpa_enable_gqa():
    m = _module("sdpa", num_heads=8, num_kv_heads=2, e=32)
    x = torch.randn(2, 6, 32, dtype=torch.float64)
    q, k, v = decoding.project_qkv(m, x)
    assert q.shape == (2, 8, 6, 4) and k.shape == (2, 2, 6, 4)
    heads = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    expected = m.out_proj(heads.transpose(1, 2).flatten(2))
    assert (_full(m, x) - expected).abs().max() < TOL


def test_gqa_gradients_flow():
    m = _module("grad", num_kv_heads=1).train()
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    _full(m, x).sum().backward()
    assert m.in_proj_weight.grad.shape == (24, 16) and m.in_proj_weight.grad.abs().sum() > 0


def test_cache_bytes_table():
    assert [decoding.cache_bytes(g, 64) for g in (8, 4, 2, 1)] == [4096, 2048, 1024, 512]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_kv_heads": 3}, "num_kv_heads must divide num_heads"),
        ({"num_kv_heads": 0}, "num_kv_heads must be a positive int"),
    ],
)
def test_bad_num_kv_heads(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mha.MultiHeadAttention(16, 4, **kwargs)


def test_bad_step_inputs():
    m = _module("bad")
    cache = m.new_cache(2, 3)
    with pytest.raises(ValueError, match=r"x_t of shape \(N=2, T_new, E=16\)"):
        m.step(torch.randn(1, 1, 16, dtype=torch.float64), cache)
    m.step(torch.randn(2, 3, 16, dtype=torch.float64), cache)
    with pytest.raises(ValueError, match="KV cache is full"):
        m.step(torch.randn(2, 1, 16, dtype=torch.float64), cache)
    with pytest.raises(ValueError, match="cache has 4 K/V heads"):
        _module("bad2", num_kv_heads=2).step(torch.randn(2, 1, 16, dtype=torch.float64), cache)
    with pytest.raises(ValueError, match="self-attention"):
        mha.MultiHeadAttention(16, 4, kdim=8).new_cache(1, 4)
    with pytest.raises(ValueError, match="no shared K/V heads"):
        _module("bad3", num_kv_heads=2).to_torch()

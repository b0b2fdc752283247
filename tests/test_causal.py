"""Causal masking (Chapter 5): changing future tokens never changes earlier outputs.

Checked for ``mha.MultiHeadAttention`` (with ``attn_mask=mha.causal_mask(L)`` and with
``is_causal=True``, with and without attention weights) and for
``mha.reference.multi_head_attention_forward`` (2-D and 3-D causal masks), in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mha
from mha import reference

SHAPES = [(1, 5, 8, 1), (2, 9, 12, 3), (3, 6, 16, 4), (2, 7, 8, 8)]  # (N, L, E, num_heads)
ATOL = 1e-12


def _ids(shape):
    n, length, e, h = shape
    return f"N{n}-L{length}-E{e}-h{h}"


def _inputs(shape, t, seed=0):
    """``x`` and a copy whose tokens after position ``t`` are replaced: (N, L, E) each."""
    n, length, e, _ = shape
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, length, e))
    x_future = x.copy()
    x_future[:, t + 1 :] = rng.normal(size=(n, length - t - 1, e))
    return x, x_future


def _module(shape):
    _, _, e, h = shape
    torch.manual_seed(0)
    layer = mha.MultiHeadAttention(e, h, dtype=torch.float64)
    with torch.no_grad():
        for p in layer.parameters():  # non-zero biases too
            p.copy_(0.5 * torch.randn_like(p))
    return layer.eval()


def _assert_past_unchanged(before, after, t):
    """Outputs up to position ``t`` are equal; some later output differs (the test is not vacuous)."""
    before, after = np.asarray(before), np.asarray(after)
    np.testing.assert_allclose(after[:, : t + 1], before[:, : t + 1], rtol=0, atol=ATOL)
    assert np.abs(after[:, t + 1 :] - before[:, t + 1 :]).max() > 1e-6


MODULE_CALLS = {
    "attn_mask": lambda layer, z, length: layer(z, z, z, attn_mask=mha.causal_mask(length)),
    "attn_mask_fused": lambda layer, z, length: layer(
        z, z, z, attn_mask=mha.causal_mask(length), need_weights=False
    ),
    "is_causal_fused": lambda layer, z, length: layer(z, z, z, is_causal=True, need_weights=False),
    "is_causal_weights": lambda layer, z, length: layer(z, z, z, is_causal=True),
}
CALL_PARAMS = list(MODULE_CALLS)


@pytest.mark.parametrize("call", CALL_PARAMS)
@pytest.mark.parametrize("shape", SHAPES, ids=_ids)
def test_module_future_does_not_change_past(shape, call):
    layer = _module(shape)
    length = shape[1]
    for t in range(length - 1):
        x, x_future = _inputs(shape, t, seed=t)
        with torch.no_grad():
            before = MODULE_CALLS[call](layer, torch.from_numpy(x), length)[0]
            after = MODULE_CALLS[call](layer, torch.from_numpy(x_future), length)[0]
        _assert_past_unchanged(before.numpy(), after.numpy(), t)


@pytest.mark.parametrize("call", CALL_PARAMS)
def test_module_causal_weights_vanish_above_diagonal(call):
    shape = (2, 6, 12, 3)
    if call.endswith("fused"):
        pytest.skip("no weights are returned on the fused path")
    layer = _module(shape)
    x = torch.from_numpy(_inputs(shape, 0)[0])
    with torch.no_grad():
        _, weights = MODULE_CALLS[call](layer, x, shape[1])  # (N, L, S), averaged over heads
    upper = torch.ones(shape[1], shape[1], dtype=torch.bool).triu(1)
    assert weights[..., upper].abs().max().item() == 0.0


def _reference_weights(shape, seed=1):
    _, _, e, _ = shape
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(3 * e, e)) / np.sqrt(e),
        rng.normal(size=3 * e),
        rng.normal(size=(e, e)) / np.sqrt(e),
        rng.normal(size=e),
    )


@pytest.mark.parametrize("mask_dims", [2, 3])
@pytest.mark.parametrize("shape", SHAPES, ids=_ids)
def test_reference_future_does_not_change_past(shape, mask_dims):
    n, length, _, h = shape
    weights = _reference_weights(shape)
    mask = mha.causal_mask(length).numpy()  # (L, L), True = blocked
    if mask_dims == 3:
        mask = np.broadcast_to(mask, (n * h, length, length))  # (N * h, L, L)
    for t in range(length - 1):
        x, x_future = _inputs(shape, t, seed=t)
        before, w = reference.multi_head_attention_forward(x, x, x, h, *weights, attn_mask=mask)
        after, _ = reference.multi_head_attention_forward(
            x_future, x_future, x_future, h, *weights, attn_mask=mask
        )
        _assert_past_unchanged(before, after, t)
        assert np.abs(w[..., np.triu(np.ones((length, length), dtype=bool), 1)]).max() == 0.0


@pytest.mark.parametrize("shape", SHAPES, ids=_ids)
def test_module_and_reference_agree_with_causal_mask(shape):
    _, length, _, h = shape
    layer = _module(shape)
    x = _inputs(shape, 0)[0]
    with torch.no_grad():
        out, _ = layer(*(torch.from_numpy(x),) * 3, attn_mask=mha.causal_mask(length))
    params = [
        p.detach().numpy()
        for p in (
            layer.in_proj_weight,
            layer.in_proj_bias,
            layer.out_proj.weight,
            layer.out_proj.bias,
        )
    ]
    ref, _ = reference.multi_head_attention_forward(
        x, x, x, h, *params, attn_mask=mha.causal_mask(length).numpy()
    )
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-10)

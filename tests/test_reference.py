"""The NumPy reference: softmax stability, split/merge, masks, fully masked rows."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import mha
from mha import reference


def test_softmax_large_logits_do_not_overflow():
    x = np.array([[1e4, -1e4, 0.0], [1e4, 1e4, -1e4]])
    with np.errstate(all="raise"):
        w = reference.softmax(x)
    np.testing.assert_allclose(w, [[1, 0, 0], [0.5, 0.5, 0]], atol=1e-300)


def test_softmax_all_neg_inf_row_is_zero_not_nan():
    x = np.array([[-np.inf, -np.inf, -np.inf], [0.0, -np.inf, 0.0]])
    w = reference.softmax(x)
    assert not np.isnan(w).any()
    np.testing.assert_array_equal(w, [[0, 0, 0], [0.5, 0, 0.5]])


def test_softmax_matches_torch_and_respects_axis():
    x = np.random.default_rng(0).normal(size=(3, 4, 5)) * 10
    for axis in (0, 1, -1):
        want = torch.softmax(torch.from_numpy(x), dim=axis).numpy()
        np.testing.assert_allclose(reference.softmax(x, axis=axis), want, rtol=0, atol=1e-15)


def test_softmax_clamps_subnormals():
    """Shifted logits below log(tiny) become exactly 0, never subnormal numbers."""
    x = np.array([0.0, -700.0, -720.0, -740.0, -800.0])
    w = reference.softmax(x)
    tiny = np.finfo(np.float64).tiny
    assert np.all((w == 0) | (w >= tiny)), w
    assert w[1] > 0 and w[2] == 0 and w[3] == 0


def test_softmax_is_not_slowed_by_subnormal_range():
    rng = np.random.default_rng(0)
    normal = rng.uniform(-5, 0, size=(256, 1024))
    sub = rng.uniform(-740, -709, size=(256, 1024))
    sub[:, 0] = 0.0  # each row's max is 0, the rest would be subnormal after exp

    def best(x):
        reference.softmax(x)
        return min(_timed(reference.softmax, x) for _ in range(5))

    # Without the clamp, exp of the subnormal range is several times slower.
    assert best(sub) < 3 * best(normal) + 1e-3


def _timed(fn, x):
    t0 = time.perf_counter()
    fn(x)
    return time.perf_counter() - t0


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    x=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
        elements=st.floats(-1e6, 1e6),
    ),
    c=st.floats(-1e3, 1e3),
)
def test_softmax_shift_invariance(x, c):
    np.testing.assert_allclose(
        reference.softmax(x + c), reference.softmax(x), rtol=1e-9, atol=1e-12
    )


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    n=st.integers(1, 3),
    length=st.integers(1, 6),
    num_heads=st.integers(1, 4),
    d_head=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_split_merge_are_inverses(n, length, num_heads, d_head, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, length, num_heads * d_head))
    split = reference.split_heads(x, num_heads)
    assert split.shape == (n, num_heads, length, d_head)
    np.testing.assert_array_equal(reference.merge_heads(split), x)
    y = rng.normal(size=(n, num_heads, length, d_head))
    np.testing.assert_array_equal(reference.split_heads(reference.merge_heads(y), num_heads), y)


def test_split_heads_slices_the_embedding_not_the_sequence():
    x = np.arange(2 * 3 * 8).reshape(2, 3, 8)
    heads = reference.split_heads(x, 4)
    for i in range(4):
        np.testing.assert_array_equal(heads[:, i], x[:, :, 2 * i : 2 * i + 2])


def _weights(e, h, bias, seed=0):
    rng = np.random.default_rng(seed)
    w_in, w_out = rng.normal(size=(3 * e, e)), rng.normal(size=(e, e))
    b_in, b_out = (rng.normal(size=3 * e), rng.normal(size=e)) if bias else (None, None)
    return w_in, b_in, w_out, b_out


def test_fully_masked_row_gives_zero_weights_and_bias_output():
    e, h = 8, 2
    x = np.random.default_rng(1).normal(size=(2, 4, e))
    w_in, b_in, w_out, b_out = _weights(e, h, bias=True)
    attn = np.zeros((4, 4), dtype=bool)
    attn[2] = True  # query 2 may see nothing
    out, w = reference.multi_head_attention_forward(
        x, x, x, h, w_in, b_in, w_out, b_out, attn_mask=attn, average_attn_weights=False
    )
    np.testing.assert_array_equal(w[:, :, 2], 0.0)
    np.testing.assert_allclose(out[:, 2], np.broadcast_to(b_out, (2, e)), rtol=0, atol=1e-12)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("need_weights", [True, False])
def test_module_fully_masked_row_is_bias_and_torch_gives_nan(need_weights):
    torch.manual_seed(0)
    ours = mha.MultiHeadAttention(8, 2).double()
    with torch.no_grad():
        ours.out_proj.bias.normal_()
    x = torch.randn(2, 4, 8, dtype=torch.float64, requires_grad=True)
    pad = torch.tensor([[False, False, False, False], [True, True, True, True]])
    out, w = ours(
        x, x, x, key_padding_mask=pad, need_weights=need_weights, average_attn_weights=False
    )
    torch.testing.assert_close(out[1], ours.out_proj.bias.expand(4, 8), rtol=0, atol=1e-12)
    if need_weights:
        assert torch.equal(w[1], torch.zeros_like(w[1]))
    out.sum().backward()
    assert torch.isfinite(x.grad).all(), "no NaN leaks into gradients"
    theirs, _ = ours.to_torch()(x, x, x, key_padding_mask=pad)
    assert torch.isnan(theirs[1]).all(), "PyTorch's module returns NaN for such rows"


def test_biases_may_be_none():
    e, h = 8, 4
    x = np.random.default_rng(2).normal(size=(1, 3, e))
    w_in, _, w_out, _ = _weights(e, h, bias=False)
    out, w = reference.multi_head_attention_forward(x, x, x, h, w_in, None, w_out, None)
    assert out.shape == (1, 3, e) and w.shape == (1, 3, 3)
    out2, none = reference.multi_head_attention_forward(
        x, x, x, h, w_in, None, w_out, None, need_weights=False
    )
    assert none is None
    np.testing.assert_array_equal(out, out2)


def test_float_key_padding_mask_is_added():
    e, h = 8, 2
    x = np.random.default_rng(3).normal(size=(2, 5, e))
    w_in, b_in, w_out, b_out = _weights(e, h, bias=True)
    bool_pad = np.array([[False] * 5, [False, False, False, True, True]])
    float_pad = np.where(bool_pad, -np.inf, 0.0)
    a = reference.multi_head_attention_forward(
        x, x, x, h, w_in, b_in, w_out, b_out, key_padding_mask=bool_pad
    )
    b = reference.multi_head_attention_forward(
        x, x, x, h, w_in, b_in, w_out, b_out, key_padding_mask=float_pad
    )
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1][1, :, 3:], 0.0)

"""Bad input raises ValueError saying what was expected and what was given."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mha
from mha import reference

E, H = 8, 2


def _np_call(q, k, v, num_heads=H, **kw):
    rng = np.random.default_rng(0)
    e = q.shape[-1]
    return reference.multi_head_attention_forward(
        q, k, v, num_heads, rng.normal(size=(3 * e, e)), None, rng.normal(size=(e, e)), None, **kw
    )


def _x(*shape):
    return np.zeros(shape)


def test_module_embed_dim_not_divisible():
    with pytest.raises(ValueError, match=r"divisible by num_heads: got embed_dim=10, num_heads=3"):
        mha.MultiHeadAttention(10, 3)


def test_reference_embed_dim_not_divisible():
    with pytest.raises(ValueError, match=r"embed_dim=9, num_heads=2"):
        _np_call(_x(1, 3, 9), _x(1, 3, 9), _x(1, 3, 9))
    with pytest.raises(ValueError, match=r"embed_dim=9, num_heads=2"):
        reference.split_heads(_x(1, 3, 9), 2)


@pytest.mark.parametrize("bad", [0, -2, 2.0])
def test_bad_num_heads(bad):
    with pytest.raises(ValueError, match="num_heads must be a positive int"):
        mha.MultiHeadAttention(8, bad)


@pytest.mark.parametrize("which", ["query", "key", "value"])
def test_wrong_last_dimension(which):
    shapes = {"query": (2, 3, E), "key": (2, 4, E), "value": (2, 4, E)}
    shapes[which] = (*shapes[which][:2], E + 1)
    msg = rf"{which} last dimension must equal embed_dim=8, got shape \({shapes[which][0]}, "
    m = mha.MultiHeadAttention(E, H)
    with pytest.raises(ValueError, match=msg):
        m(*(torch.zeros(s) for s in shapes.values()))
    with pytest.raises(ValueError, match=msg):
        reference.multi_head_attention_forward(
            *(_x(*s) for s in shapes.values()), H, _x(3 * E, E), None, _x(E, E), None
        )


def test_key_value_lengths_differ():
    m = mha.MultiHeadAttention(E, H)
    msg = r"key and value must have the same sequence length, got key \(2, 4, 8\) and value \(2, 5, 8\)"
    with pytest.raises(ValueError, match=msg):
        m(torch.zeros(2, 3, E), torch.zeros(2, 4, E), torch.zeros(2, 5, E))
    with pytest.raises(ValueError, match=msg):
        _np_call(_x(2, 3, E), _x(2, 4, E), _x(2, 5, E))


def test_not_batch_first_3d():
    with pytest.raises(ValueError, match=r"query must be batch-first .* got shape \(3, 8\)"):
        mha.MultiHeadAttention(E, H)(torch.zeros(3, E), torch.zeros(3, E), torch.zeros(3, E))


def test_batch_sizes_differ():
    with pytest.raises(ValueError, match="share the batch size, got 2, 3, 3"):
        _np_call(_x(2, 3, E), _x(3, 4, E), _x(3, 4, E))


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"attn_mask": np.zeros((3, 5), bool)}, r"attn_mask must have shape \(L, S\) = \(3, 4\)"),
        ({"attn_mask": np.zeros((2, 3, 4), bool)}, r"\(N \* num_heads, L, S\) = \(4, 3, 4\), got \(2, 3, 4\)"),
        ({"attn_mask": np.zeros((3, 4), np.int64)}, r"attn_mask must be bool .* got dtype int64"),
        ({"key_padding_mask": np.zeros((2, 3), bool)}, r"key_padding_mask must have shape \(N, S\) = \(2, 4\), got \(2, 3\)"),
        ({"key_padding_mask": np.zeros((2, 4), np.int32)}, r"key_padding_mask must be bool .* got dtype int32"),
    ],
)  # fmt: skip
def test_bad_masks(kw, msg):
    with pytest.raises(ValueError, match=msg):
        _np_call(_x(2, 3, E), _x(2, 4, E), _x(2, 4, E), **kw)
    m = mha.MultiHeadAttention(E, H)
    tkw = {k: torch.from_numpy(v) for k, v in kw.items()}
    with pytest.raises(
        ValueError, match=msg.replace("int64", "torch.int64").replace("int32", "torch.int32")
    ):
        m(torch.zeros(2, 3, E), torch.zeros(2, 4, E), torch.zeros(2, 4, E), **tkw)


def test_sdpa_bad_shapes_and_masks():
    with pytest.raises(ValueError, match=r"got q \(3, 4\), k \(5, 3\), v \(5, 2\)"):
        reference.scaled_dot_product_attention(_x(3, 4), _x(5, 3), _x(5, 2))
    with pytest.raises(
        ValueError, match=r"attn_mask of shape \(4, 5\) does not broadcast .* \(3, 5\)"
    ):
        reference.scaled_dot_product_attention(_x(3, 4), _x(5, 4), _x(5, 2), np.zeros((4, 5), bool))
    with pytest.raises(ValueError, match=r"attn_mask must be bool .* got dtype <U1"):
        reference.scaled_dot_product_attention(_x(3, 4), _x(5, 4), _x(5, 2), np.full((3, 5), "a"))


def test_split_merge_bad_rank():
    with pytest.raises(ValueError, match=r"split_heads expects \(N, L, E\), got shape \(3, 8\)"):
        reference.split_heads(_x(3, 8), 2)
    with pytest.raises(
        ValueError, match=r"merge_heads expects \(N, h, L, d_head\), got shape \(2, 3, 8\)"
    ):
        reference.merge_heads(_x(2, 3, 8))


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"dropout": True}, r"dropout must be a probability in \[0, 1\], got True; the positional order is PyTorch's"),
        ({"dropout": 1.5}, r"dropout must be a probability in \[0, 1\], got 1.5"),
        ({"bias": 0.5}, r"bias must be True or False, got 0.5"),
        ({"add_bias_kv": 1}, r"add_bias_kv must be True or False, got 1"),
        ({"add_zero_attn": None}, r"add_zero_attn must be True or False, got None"),
        ({"batch_first": "yes"}, r"batch_first must be True or False, got 'yes'"),
        ({"kdim": 0}, r"kdim must be a positive int, got 0"),
        ({"vdim": 2.5}, r"vdim must be a positive int, got 2.5"),
        ({"embed_dim": -8}, r"embed_dim must be a positive int, got -8"),
    ],
)  # fmt: skip
def test_bad_constructor_arguments(kw, msg):
    """The old positional order ``(embed_dim, num_heads, bias, dropout)`` fails loudly."""
    args = {"embed_dim": E, "num_heads": H, **kw}
    with pytest.raises(ValueError, match=msg):
        mha.MultiHeadAttention(**args)
    with pytest.raises(ValueError, match="dropout must be a probability"):
        mha.MultiHeadAttention(E, H, True, 0.1)  # bias, dropout in the old order


def test_kdim_vdim_and_sequence_first_shapes():
    m = mha.MultiHeadAttention(E, H, kdim=4, vdim=6)
    with pytest.raises(
        ValueError, match=r"key last dimension must equal kdim=4, got shape \(2, 5, 8\)"
    ):
        m(torch.zeros(2, 3, E), torch.zeros(2, 5, E), torch.zeros(2, 5, 6))
    with pytest.raises(
        ValueError, match=r"value last dimension must equal vdim=6, got shape \(2, 5, 4\)"
    ):
        m(torch.zeros(2, 3, E), torch.zeros(2, 5, 4), torch.zeros(2, 5, 4))
    seq_first = mha.MultiHeadAttention(E, H, batch_first=False)
    with pytest.raises(ValueError, match=r"sequence-first \(seq, batch, dim\).* unsqueeze\(1\)"):
        seq_first(torch.zeros(3, E), torch.zeros(3, E), torch.zeros(3, E))
    with pytest.raises(
        ValueError, match=r"same sequence length, got key \(5, 2, 8\) and value \(4, 2, 8\)"
    ):
        seq_first(torch.zeros(3, 2, E), torch.zeros(5, 2, E), torch.zeros(4, 2, E))
    with pytest.raises(ValueError, match="share the batch size, got 2, 3, 3"):
        seq_first(torch.zeros(3, 2, E), torch.zeros(5, 3, E), torch.zeros(5, 3, E))

"""Tests for mha.course.lenses: the hand-built heads of Chapter 3 do what their names say."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mha import MultiHeadAttention, reference
from mha.course import example, lenses

TOKENS = example.TOKENS


def _head_weights(strength=8.0, noise=0.05):
    x = lenses.embeddings(noise=noise)[None]  # (1, L, E)
    w_in, w_out = lenses.lens_weights(strength)
    _, w = reference.multi_head_attention_forward(
        x, x, x, lenses.NUM_HEADS, w_in, None, w_out, None, average_attn_weights=False
    )
    return w[0]  # (h, L, L)


def test_embeddings_extend_the_chapter_1_embeddings():
    x = lenses.embeddings()
    assert x.shape == (len(TOKENS), len(lenses.FEATURES)) == (9, 12)
    np.testing.assert_array_equal(x[:, :8], example.toy_embeddings())
    np.testing.assert_array_equal(x, lenses.embeddings())  # seeded


def test_extra_features_without_noise():
    x = lenses.embeddings(noise=0.0)
    col = lenses.FEATURES.index
    assert x[:, col("shared")].tolist() == [1.0] * 9
    assert [TOKENS[i] for i in np.flatnonzero(x[:, col("relation")])] == ["trust"]
    assert [TOKENS[i] for i in np.flatnonzero(x[:, col("negation")])] == ["didn't"]


def test_weight_shapes_and_layout():
    w_in, w_out = lenses.lens_weights()
    assert w_in.shape == (36, 12) and w_out.shape == (12, 12)
    np.testing.assert_array_equal(w_in[24:], np.eye(12))  # W_V = identity
    used = np.flatnonzero(np.abs(w_in[:24]).sum(axis=1))
    assert used.tolist() == [0, 4, 8, 12, 16, 20]  # first dim of each head, for Q and K


@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_heads_do_what_their_names_say(noise):
    w = _head_weights(noise=noise)
    group = [TOKENS.index("He"), TOKENS.index("trust"), 5]
    for q in group:
        assert sorted(np.argsort(w[0, q])[-3:]) == sorted(group)
    assert set(np.argsort(w[1], axis=-1)[:, -2:].ravel()) == {1, 8}  # didn't, secret
    assert (np.argmax(w[2], axis=-1) == TOKENS.index("because")).all()


def test_no_noise_gives_uniform_rows_outside_the_group():
    w = _head_weights(noise=0.0)
    np.testing.assert_allclose(w[0, TOKENS.index("knew")], 1 / 9)


def test_matches_torch_module():
    x = torch.as_tensor(lenses.embeddings()[None])
    w_in, w_out = lenses.lens_weights()
    m = MultiHeadAttention(12, 3, bias=False, dtype=torch.float64)
    with torch.no_grad():
        m.in_proj_weight.copy_(torch.as_tensor(w_in))
        m.out_proj.weight.copy_(torch.as_tensor(w_out))
    _, w = m(x, x, x, average_attn_weights=False)
    np.testing.assert_allclose(w[0].detach().numpy(), _head_weights(), atol=1e-12)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_bad_strength(bad):
    with pytest.raises(ValueError, match="strength must be a positive number"):
        lenses.lens_weights(bad)


def test_bad_noise():
    with pytest.raises(ValueError, match="noise must be >= 0"):
        lenses.embeddings(noise=-0.1)

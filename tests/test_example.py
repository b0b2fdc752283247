"""The running example's toy embeddings and projections (Chapter 1), and the intro figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from mha.course import example, plotting
from mha.reference import scaled_dot_product_attention

HE, KNEW = 0, 6  # "He" and "knew"; the second "he" is token 5


def knew_row(**kwargs):
    x = example.toy_embeddings()
    w_q, w_k, w_v = example.toy_projections(**kwargs)
    _, weights = scaled_dot_product_attention(x @ w_q.T, x @ w_k.T, x @ w_v.T)
    return weights[KNEW]


def test_tokens_and_features():
    assert len(example.TOKENS) == 9
    assert [example.TOKENS[i].lower() for i in (0, 5)] == ["he", "he"]
    assert example.TOKENS[KNEW] == "knew"
    assert len(example.FEATURES) == 8


def test_toy_embeddings_shape_and_seed():
    x = example.toy_embeddings()
    assert x.shape == (9, 8) and x.dtype == np.float64
    np.testing.assert_array_equal(x, example.toy_embeddings())
    assert not np.array_equal(x, example.toy_embeddings(seed=1))


def test_toy_embeddings_features_are_what_they_say():
    x = example.toy_embeddings(noise=0.0)
    col = {name: j for j, name in enumerate(example.FEATURES)}
    subjects = [t for t, row in zip(example.TOKENS, x, strict=True) if row[col["subject"]] == 1]
    verbs = [t for t, row in zip(example.TOKENS, x, strict=True) if row[col["verb"]] == 1]
    assert subjects == ["He", "he"]
    assert verbs == ["didn't", "trust", "knew"]
    np.testing.assert_allclose(np.hypot(x[:, 6], x[:, 7]), 0.5)


def test_toy_projections_shapes_and_value_identity():
    w_q, w_k, w_v = example.toy_projections()
    assert w_q.shape == w_k.shape == w_v.shape == (8, 8)
    np.testing.assert_array_equal(w_v, np.eye(8))


def test_knew_attends_most_to_both_he():
    row = knew_row()
    assert set(np.argsort(row)[-2:]) == {0, 5}
    assert row[[0, 5]].sum() > 0.5


def test_without_strength_knew_spreads_its_attention():
    row = knew_row(strength=0.0)
    assert row.max() < 0.2  # nearly uniform (1/9 each) when nothing is built in


def test_bad_noise_raises():
    with pytest.raises(ValueError, match="noise"):
        example.toy_embeddings(noise=-1.0)


@pytest.mark.parametrize("num_heads", [1, 3, 4])
def test_shape_flow_draws(num_heads):
    fig = plotting.shape_flow(num_heads=num_heads)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    for step in ["1 projections", "4 concatenation", "(N, h, L, d_head)", "(N, L, d_model)"]:
        assert step in texts
    plt.close(fig)


def test_shape_flow_numbers():
    fig = plotting.shape_flow(num_heads=2, d_model=8, seq_len=9)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "(N, 2, 9, 4)" in texts and "(N, 9, 8)" in texts
    plt.close(fig)


@pytest.mark.parametrize("kwargs", [{"num_heads": 0}, {"num_heads": 3, "d_model": 8}])
def test_shape_flow_bad_input(kwargs):
    with pytest.raises(ValueError):
        plotting.shape_flow(**kwargs)


def test_attention_arcs():
    ax = plotting.attention_arcs(knew_row(), example.TOKENS, KNEW)
    assert len(ax.lines) == 8  # one arc per other token
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="expected weights"):
        plotting.attention_arcs(np.ones(3), example.TOKENS, KNEW)


def test_second_sentence_embeddings():
    """Chapter 5's cross-attention: the second sentence has Chapter 1's features, its own positions."""
    y = example.second_embeddings(noise=0.0)
    assert y.shape == (len(example.SECOND_TOKENS), len(example.FEATURES)) == (4, 8)
    col = {name: j for j, name in enumerate(example.FEATURES)}
    assert y[:, col["subject"]].tolist() == [1.0, 0.0, 0.0, 0.0]  # Il
    assert y[:, col["verb"]].tolist() == [0.0, 1.0, 0.0, 0.0]  # connaissait
    assert y[:, col["object"]].tolist() == [0.0, 0.0, 0.0, 1.0]  # secret
    np.testing.assert_allclose(np.hypot(y[:, 6], y[:, 7]), 0.5)  # positions on a circle
    assert not np.array_equal(example.second_embeddings(), y)  # noise by default
    with pytest.raises(ValueError, match="noise"):
        example.second_embeddings(noise=-1.0)

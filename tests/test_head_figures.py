"""Tests for mha.course.head_figures (Chapters 2 and 3)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from mha import heads
from mha.course import example, head_figures

TOKENS = example.TOKENS


def test_head_sources_transpose_matches_split_heads():
    token, dim = head_figures.head_sources(9, 12, 3)
    assert token.shape == dim.shape == (3, 9, 4)
    assert (token == np.arange(9)[None, :, None]).all()  # every head sees every token
    assert (dim[1] == np.arange(4, 8)).all()  # head 1 owns dimensions 4..7
    label = np.arange(9 * 12).reshape(1, 9, 12)
    np.testing.assert_array_equal(token * 12 + dim, heads.split_heads(label, 3)[0])


def test_head_sources_bug_splits_the_sequence():
    token, dim = head_figures.head_sources(9, 12, 3, transpose=False)
    assert sorted(set(token[0].ravel())) == [0, 1, 2]  # head 0 sees only 3 tokens
    assert sorted(set(dim[0].ravel())) == list(range(12))  # ... but all 12 dimensions


@pytest.mark.parametrize(
    ("make", "n_axes"),
    [
        (lambda: head_figures.split_figure(TOKENS, 12, 3), 4),
        (lambda: head_figures.layout_figure(TOKENS, 12, 3), 6),
        (lambda: head_figures.projection_figure(np.ones((9, 12)), np.eye(12), 3, TOKENS), 4),
    ],
)
def test_figures_draw(make, n_axes):
    fig = make()
    assert len(fig.axes) == n_axes  # projection_figure: 3 panels and a colour bar
    plt.close(fig)


def test_bad_head_count():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        head_figures.split_figure(TOKENS, 12, 5)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        head_figures.head_sources(9, 12, 5)

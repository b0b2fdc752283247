"""Chapter 6 exercise checkers and figures: the reference passes, classic bugs are named."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from mha.course import encoder_figures
from mha.grading import encoder_checks
from mha.grading.encoder_checks import _pe_variant


def reference_pe(seq_len, d_model):
    angles = np.arange(seq_len)[:, None] / 10000 ** (np.arange(0, d_model, 2) / d_model)
    pe = np.zeros((seq_len, d_model))
    pe[:, 0::2], pe[:, 1::2] = np.sin(angles), np.cos(angles[:, : d_model // 2])
    return pe


def add_and_norm(x, sub, gamma, beta):
    z = x + sub
    return (z - z.mean(-1, keepdims=True)) / np.sqrt(z.var(-1, keepdims=True) + 1e-5) * gamma + beta


def feed_forward(x, w1, b1, w2, b2):
    return np.maximum(x @ w1.T + b1, 0) @ w2.T + b2


@pytest.mark.parametrize(
    ("check", "fn"),
    [
        (encoder_checks.check_positional_encoding, reference_pe),
        (encoder_checks.check_add_and_norm, add_and_norm),
        (encoder_checks.check_feed_forward, feed_forward),
    ],
)
def test_reference_solutions_pass(check, fn, capsys):
    assert check(fn)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["swapped", "column_index", "from_one"])
def test_pe_bugs_are_named(kind, capsys):
    assert not encoder_checks.check_positional_encoding(lambda s, d: _pe_variant(s, d, kind))
    assert encoder_checks._PE_BUGS[kind][:40] in capsys.readouterr().out


def test_norm_and_ffn_bugs_are_named(capsys):
    unbiased = lambda x, s, g, b: (  # noqa: E731
        (x + s - (x + s).mean(-1, keepdims=True))
        / np.sqrt((x + s).var(-1, ddof=1, keepdims=True) + 1e-5)
        * g
        + b
    )
    assert not encoder_checks.check_add_and_norm(unbiased)
    assert "unbiased variance" in capsys.readouterr().out
    relu_out = lambda x, w1, b1, w2, b2: np.maximum(feed_forward(x, w1, b1, w2, b2), 0)  # noqa: E731
    assert not encoder_checks.check_feed_forward(relu_out)
    assert "ReLU to the output" in capsys.readouterr().out


def test_encoder_diagram():
    fig = encoder_figures.encoder_diagram()
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "post-norm (norm_first=False)" in texts and "pre-norm (norm_first=True)" in texts
    assert texts.count("add & LayerNorm") == 2 and texts.count("LayerNorm") == 2

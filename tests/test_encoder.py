"""Chapter 6: ``mha.EncoderLayer`` and ``mha.Encoder`` against PyTorch, in float64."""

import math
import warnings

import pytest
import torch
from torch import nn

import mha
from mha.encoder import PositionwiseFeedForward, sinusoidal_positional_encoding

F64 = torch.float64
TOL = 1e-10


def torch_layer(norm_first, d_model=16, num_heads=4, dim_ff=32, seed=0):
    torch.manual_seed(seed)
    layer = nn.TransformerEncoderLayer(d_model, num_heads, dim_ff, dropout=0.0, batch_first=True,
                                       norm_first=norm_first, dtype=F64)  # fmt: skip
    with torch.no_grad():  # non-trivial LayerNorm parameters, so a swapped norm shows up
        for norm in (layer.norm1, layer.norm2):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    return layer


def padding_mask(batch=3, seq=7):
    pad = torch.zeros(batch, seq, dtype=torch.bool)
    pad[1, 5:] = True  # example 1: last 2 tokens are padding
    pad[2, 3:] = True  # example 2: last 4 tokens are padding
    return pad


@pytest.fixture
def fused_calls(monkeypatch):
    """Count the calls of PyTorch's fused encoder-layer kernel (its eval "fast path")."""
    calls, kernel = [], torch._transformer_encoder_layer_fwd

    def counting(*args, **kwargs):
        calls.append(1)
        return kernel(*args, **kwargs)

    monkeypatch.setattr(torch, "_transformer_encoder_layer_fwd", counting)
    return calls


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval-fastpath"])
def test_layer_matches_torch(norm_first, padded, train, fused_calls):
    layer = torch_layer(norm_first)
    ours = mha.EncoderLayer.from_torch(layer)
    x = torch.randn(3, 7, 16, dtype=F64)
    pad = padding_mask() if padded else None
    layer.train(train), ours.train(train)
    with torch.no_grad():  # in eval mode this lets PyTorch take its fused fast path
        expected = layer(x, src_key_padding_mask=pad)
        got = ours(x, src_key_padding_mask=pad)
    assert len(fused_calls) == (0 if train else 1)  # the fast path really ran in eval mode
    assert got.shape == (3, 7, 16)
    assert (got - expected).abs().max().item() < TOL


@pytest.mark.parametrize("norm_first", [False, True])
def test_layer_gradients_match_torch(norm_first):
    layer = torch_layer(norm_first)
    ours = mha.EncoderLayer.from_torch(layer)
    x = torch.randn(2, 5, 16, dtype=F64)
    pad = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    layer(x, src_key_padding_mask=pad).pow(2).sum().backward()
    ours(x, src_key_padding_mask=pad).pow(2).sum().backward()
    theirs = dict(layer.named_parameters())
    for name, p in ours.named_parameters():
        ref = theirs[name.replace("ffn.", "")].grad
        assert (p.grad - ref).abs().max().item() < TOL, name


def test_attention_mask_and_weights():
    layer = torch_layer(False)
    ours = mha.EncoderLayer.from_torch(layer)
    x = torch.randn(2, 6, 16, dtype=F64)
    causal = mha.causal_mask(6)
    expected = layer(x, src_mask=causal)
    out, weights = ours(x, src_mask=causal, need_weights=True)
    assert (out - expected).abs().max().item() < TOL
    assert weights.shape == (2, 4, 6, 6)  # (N, h, L, L), never averaged
    assert torch.all(weights.triu(1) == 0)


def test_round_trip_to_torch():
    ours = mha.EncoderLayer(16, 4, 32, norm_first=True, dtype=F64)
    back = ours.to_torch()
    assert back.norm_first and back.self_attn.batch_first
    x = torch.randn(2, 5, 16, dtype=F64)
    assert (back(x) - ours(x)).abs().max().item() < TOL


@pytest.mark.parametrize("norm_first", [False, True])
def test_gelu_layer_matches_torch(norm_first):
    """GELU and a small LayerNorm eps (BERT's layer, Chapter 8), both ways across."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=norm_first, layer_norm_eps=1e-12, dtype=F64)  # fmt: skip
    ours = mha.EncoderLayer.from_torch(layer)
    assert ours.ffn.activation == "gelu" and ours.norm1.eps == ours.norm2.eps == 1e-12
    x = torch.randn(2, 5, 16, dtype=F64)
    assert (ours(x) - layer(x)).abs().max().item() < TOL
    back = ours.to_torch()
    assert back.activation_relu_or_gelu == 2
    assert (back(x) - ours(x)).abs().max().item() < TOL
    ours.ffn.activation = "relu"  # same weights, other nonlinearity: the test can fail
    assert (ours(x) - layer(x)).abs().max().item() > 1e-3


@pytest.mark.parametrize(
    "activation", [nn.GELU(approximate="tanh"), torch.tanh], ids=["gelu-tanh", "tanh"]
)
def test_from_torch_rejects_other_activations(activation):
    layer = nn.TransformerEncoderLayer(16, 4, 32, activation=activation, batch_first=True)
    with pytest.raises(ValueError, match="relu' or exact 'gelu"):
        mha.EncoderLayer.from_torch(layer)


def test_from_torch_keeps_mode_and_dropout():
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.25, batch_first=True).eval()
    ours = mha.EncoderLayer.from_torch(layer)
    assert not ours.training
    assert ours.dropout1.p == ours.self_attn.dropout == ours.ffn.dropout.p == 0.25


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_stack_matches_torch(norm_first):
    layer = torch_layer(norm_first)
    final = nn.LayerNorm(16, dtype=F64) if norm_first else None
    with warnings.catch_warnings():  # PyTorch warns that norm_first disables nested tensors
        warnings.simplefilter("ignore", UserWarning)
        stack = nn.TransformerEncoder(layer, 2, norm=final, enable_nested_tensor=False)
    ours = mha.Encoder(2, 16, 4, 32, norm_first=norm_first, positional=False, dtype=F64)
    for i, theirs in enumerate(stack.layers):
        ours.layers[i] = mha.EncoderLayer.from_torch(theirs)
    if norm_first:
        ours.norm.load_state_dict(final.state_dict())
    x = torch.randn(3, 7, 16, dtype=F64)
    pad = padding_mask()
    expected = stack(x, src_key_padding_mask=pad)
    assert (ours(x, src_key_padding_mask=pad) - expected).abs().max().item() < TOL


def test_encoder_with_embedding_and_weights():
    torch.manual_seed(0)
    enc = mha.Encoder(2, 8, 2, 16, vocab_size=11, dtype=F64)
    tokens = torch.randint(0, 11, (4, 9))
    out, weights = enc(tokens, need_weights=True)
    assert out.shape == (4, 9, 8)
    assert [w.shape for w in weights] == [(4, 2, 9, 9)] * 2
    x0 = enc.embedding(tokens) * math.sqrt(8) + sinusoidal_positional_encoding(9, 8, dtype=F64)
    assert (enc.embed(tokens) - x0).abs().max().item() < TOL


def test_head_mask_equals_zeroing_out_proj_columns():
    torch.manual_seed(0)
    layer = mha.EncoderLayer(16, 4, 32, dtype=F64)
    x = torch.randn(2, 5, 16, dtype=F64)
    gate = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=F64)
    masked = layer(x, head_mask=gate)
    with torch.no_grad():  # heads 1 and 3 use columns 4:8 and 12:16 of out_proj.weight
        layer.self_attn.out_proj.weight[:, 4:8] = 0
        layer.self_attn.out_proj.weight[:, 12:16] = 0
    assert (layer(x) - masked).abs().max().item() < TOL
    assert not layer.self_attn.out_proj._forward_pre_hooks  # the gate hook is removed


def test_head_mask_gradient_is_differentiable():
    layer = mha.EncoderLayer(16, 4, 32, dtype=F64)
    gate = torch.ones(4, dtype=F64, requires_grad=True)
    layer(torch.randn(2, 5, 16, dtype=F64), head_mask=gate).sum().backward()
    assert gate.grad.shape == (4,) and torch.all(gate.grad != 0)


def test_positional_encoding_values():
    pe = sinusoidal_positional_encoding(50, 6, dtype=F64)
    pos, i = 7, 1  # columns 2 and 3: sin and cos with period 2 pi * 10000**(2/6)
    angle = pos / 10000 ** (2 * i / 6)
    assert pe.shape == (50, 6)
    assert abs(pe[pos, 2].item() - math.sin(angle)) < 1e-15
    assert abs(pe[pos, 3].item() - math.cos(angle)) < 1e-15
    assert torch.all(pe[0, 0::2] == 0) and torch.all(pe[0, 1::2] == 1)
    assert sinusoidal_positional_encoding(4, 5).shape == (4, 5)  # odd d_model: 3 sin, 2 cos


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: sinusoidal_positional_encoding(-1, 4), "seq_len"),
        (lambda: sinusoidal_positional_encoding(4, 0), "d_model"),
        (lambda: PositionwiseFeedForward(8, 0), "dim_feedforward"),
        (lambda: mha.EncoderLayer(8, 3, 16), "divisible"),
        (lambda: mha.EncoderLayer(8, 2, 16, dropout=1.0), "dropout"),
        (lambda: mha.EncoderLayer(8, 2, 16, activation="swish"), "activation"),
        (lambda: mha.Encoder(0, 8, 2, 16), "num_layers"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_head_mask_and_length():
    enc = mha.Encoder(2, 8, 2, 16, vocab_size=5, max_len=4)
    with pytest.raises(ValueError, match="num_layers, num_heads"):
        enc(torch.zeros(1, 3, dtype=torch.long), head_mask=torch.ones(2))
    with pytest.raises(ValueError, match="max_len"):
        enc(torch.zeros(1, 5, dtype=torch.long))

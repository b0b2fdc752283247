"""Chapter 6: the Transformer encoder around multi-head attention.

The article says the combined output of the heads "is then used as the input
to the next layer of the encoder". In a real encoder four more pieces sit
between two attention layers, and this module adds them in chapter order:

1. :func:`sinusoidal_positional_encoding`: attention itself ignores word order;
2. the residual connection with ``LayerNorm`` (post-norm as in Vaswani et al.,
   or pre-norm), inside :class:`EncoderLayer`;
3. :class:`PositionwiseFeedForward`, the same small MLP applied to every token;
4. :class:`Encoder`, a stack of layers with optional embedding and positions.

:class:`EncoderLayer` is a batch-first twin of
``torch.nn.TransformerEncoderLayer(batch_first=True)`` with ReLU; its
:meth:`EncoderLayer.from_torch` copies the weights of a PyTorch layer.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mha._validate import check_positive_int
from mha.module import MultiHeadAttention

__all__ = [
    "sinusoidal_positional_encoding",
    "PositionwiseFeedForward",
    "EncoderLayer",
    "Encoder",
]

# state_dict keys of nn.TransformerEncoderLayer -> ours (the rest are identical).
_TORCH_TO_MHA = {"linear1.": "ffn.linear1.", "linear2.": "ffn.linear2."}


def _check_dropout(p: float) -> None:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout must be a probability in [0, 1), got {p!r}")


# The feed-forward nonlinearities: ReLU (Vaswani et al.) and exact erf-GELU (BERT, Chapter 8).
_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def _check_activation(activation: str) -> None:
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")


def sinusoidal_positional_encoding(
    seq_len: int,
    d_model: int,
    base: float = 10000.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """The fixed position signal of Vaswani et al., shape ``(seq_len, d_model)``.

    Introduced in Chapter 6. Column ``2i`` holds ``sin(pos / base**(2i / d_model))``
    and column ``2i + 1`` the matching cosine, so every pair of columns is a
    clock with its own period, from ``2 pi`` up to ``2 pi * base``.
    """
    if not isinstance(seq_len, int) or seq_len < 0:
        raise ValueError(f"seq_len must be a non-negative int, got {seq_len!r}")
    check_positive_int("d_model", d_model)
    pos = torch.arange(seq_len, dtype=torch.float64, device=device)[:, None]  # (L, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64, device=device)  # (ceil(d/2),)
    angles = pos / base ** (two_i / d_model)  # (L, ceil(d/2))
    pe = torch.zeros(seq_len, d_model, dtype=torch.float64, device=device)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles[:, : d_model // 2])
    return pe.to(dtype)


class PositionwiseFeedForward(nn.Module):
    """``linear2(dropout(relu(linear1(x))))``, applied to every position alone.

    Introduced in Chapter 6. ``x`` is ``(..., d_model)``; the hidden layer has
    ``dim_feedforward`` units (``4 * d_model`` in Vaswani et al.). The layout
    and the order of dropout and activation follow ``nn.TransformerEncoderLayer``.
    ``activation="gelu"`` (exact, erf-based) is BERT's choice (Chapter 8).
    """

    def __init__(
        self,
        d_model: int,
        dim_feedforward: int,
        dropout: float = 0.0,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        check_positive_int("d_model", d_model)
        check_positive_int("dim_feedforward", dim_feedforward)
        _check_dropout(dropout)
        _check_activation(activation)
        self.activation = activation
        kw = {"bias": bias, "device": device, "dtype": dtype}
        self.linear1 = nn.Linear(d_model, dim_feedforward, **kw)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, **kw)

    def forward(self, x: Tensor) -> Tensor:
        """``(..., d_model) -> (..., d_model)``."""
        return self.linear2(self.dropout(_ACTIVATIONS[self.activation](self.linear1(x))))


class EncoderLayer(nn.Module):
    """One encoder layer: self-attention and feed-forward, each with residual + LayerNorm.

    Introduced in Chapter 6. Batch-first: ``src`` is ``(N, L, d_model)``.

    * ``norm_first=False`` (post-norm, Vaswani et al.):
      ``x = norm1(x + sa(x))``, then ``x = norm2(x + ffn(x))``.
    * ``norm_first=True`` (pre-norm, Xiong et al.):
      ``x = x + sa(norm1(x))``, then ``x = x + ffn(norm2(x))``.

    Parameter names follow ``nn.TransformerEncoderLayer`` (``self_attn``,
    ``norm1``, ``norm2``, ``dropout1``, ``dropout2``), except that the two
    linear maps live in ``ffn`` (:class:`PositionwiseFeedForward`).
    ``activation`` (``"relu"`` or ``"gelu"``) and ``layer_norm_eps`` are what a
    BERT layer needs (post-norm, GELU, eps ``1e-12``; :mod:`mha.pretrained`, Chapter 8).
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        dim_feedforward: int,
        dropout: float = 0.0,
        norm_first: bool = False,
        layer_norm_eps: float = 1e-5,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        _check_dropout(dropout)
        kw = {"device": device, "dtype": dtype}
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout, bias=bias, **kw)
        self.ffn = PositionwiseFeedForward(
            d_model, dim_feedforward, dropout, bias, activation=activation, **kw
        )
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)
        self.norm_first = norm_first
        self.d_model, self.num_heads, self.dim_feedforward = d_model, num_heads, dim_feedforward

    @classmethod
    def from_torch(cls, layer: nn.TransformerEncoderLayer) -> EncoderLayer:
        """Build an equivalent layer from a ``torch.nn.TransformerEncoderLayer`` (same weights).

        ReLU and exact GELU are supported. The result is batch-first
        whatever ``layer.self_attn.batch_first`` is, and in the same train/eval mode.
        """
        activation = _torch_activation_name(layer)
        if layer.norm1.eps != layer.norm2.eps:
            raise ValueError(
                f"norm1.eps and norm2.eps must be equal, got {layer.norm1.eps}, {layer.norm2.eps}"
            )
        w = layer.linear1.weight
        new = cls(layer.self_attn.embed_dim, layer.self_attn.num_heads, w.shape[0],
                  layer.dropout.p, layer.norm_first, layer.norm1.eps,
                  layer.linear1.bias is not None, device=w.device, dtype=w.dtype,
                  activation=activation)  # fmt: skip
        state = {_rename(k, _TORCH_TO_MHA): v for k, v in layer.state_dict().items()}
        new.load_state_dict(state)
        return new.train(layer.training)

    def to_torch(self) -> nn.TransformerEncoderLayer:
        """The equivalent ``torch.nn.TransformerEncoderLayer(batch_first=True)``."""
        w = self.ffn.linear1.weight
        layer = nn.TransformerEncoderLayer(
            self.d_model, self.num_heads, self.dim_feedforward, self.dropout1.p,
            batch_first=True, norm_first=self.norm_first, layer_norm_eps=self.norm1.eps,
            bias=self.ffn.linear1.bias is not None, device=w.device, dtype=w.dtype,
            activation=self.ffn.activation,
        )  # fmt: skip
        back = {v: k for k, v in _TORCH_TO_MHA.items()}
        layer.load_state_dict({_rename(k, back): v for k, v in self.state_dict().items()})
        return layer.train(self.training)

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
        head_mask: Tensor | None = None,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Return ``out (N, L, d_model)``, or ``(out, weights (N, h, L, L))`` with ``need_weights``.

        Masks follow ``nn.TransformerEncoderLayer``: ``src_mask`` ``(L, L)`` or
        ``(N * h, L, L)``, ``src_key_padding_mask`` ``(N, L)``, True = blocked.
        ``head_mask`` ``(h,)`` scales each head's output before the output
        projection (0 removes a head; Michel et al. 2019, Chapter 7).
        """
        x = src
        sa = self._sa_block  # (N, L, E) -> ((N, L, E), weights or None)
        args = (src_mask, src_key_padding_mask, is_causal, need_weights, head_mask)
        if self.norm_first:
            a, weights = sa(self.norm1(x), *args)
            x = x + a
            x = x + self._ff_block(self.norm2(x))
        else:
            a, weights = sa(x, *args)
            x = self.norm1(x + a)
            x = self.norm2(x + self._ff_block(x))
        return (x, weights) if need_weights else x

    def _sa_block(
        self,
        x: Tensor,
        attn_mask: Tensor | None,
        key_padding_mask: Tensor | None,
        is_causal: bool,
        need_weights: bool,
        head_mask: Tensor | None,
    ) -> tuple[Tensor, Tensor | None]:
        """Self-attention and dropout: ``(N, L, E) -> (N, L, E)``, weights ``(N, h, L, L)``."""
        with _gate_heads(self.self_attn, head_mask):
            out, weights = self.self_attn(
                x, x, x, key_padding_mask=key_padding_mask, attn_mask=attn_mask,
                need_weights=need_weights, average_attn_weights=False, is_causal=is_causal,
            )  # fmt: skip
        return self.dropout1(out), weights

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.dropout2(self.ffn(x))


def _torch_activation_name(layer: nn.TransformerEncoderLayer) -> str:
    """``"relu"`` or ``"gelu"`` for a PyTorch layer's activation; ValueError otherwise."""
    act = layer.activation
    kind = {1: "relu", 2: "gelu"}.get(getattr(layer, "activation_relu_or_gelu", 0))
    if kind is None or getattr(act, "approximate", "none") != "none":
        raise ValueError(
            "from_torch supports activation='relu' or exact 'gelu' only, got activation="
            f"{getattr(act, '__name__', act)!r}"
        )
    return kind


def _rename(key: str, mapping: dict[str, str]) -> str:
    for old, new in mapping.items():
        if key.startswith(old):
            return new + key[len(old) :]
    return key


@contextmanager
def _gate_heads(attn: MultiHeadAttention, head_mask: Tensor | None) -> Iterator[None]:
    """Context in which head ``i``'s block of the concatenation is scaled by ``head_mask[i]``.

    The gate acts on the input of ``out_proj``, ``(N, L, h * d_head)``, which
    is exactly the concatenation of the heads (Chapter 4).
    """
    if head_mask is None:
        yield
        return
    if tuple(head_mask.shape) != (attn.num_heads,):
        raise ValueError(
            f"head_mask must have shape (num_heads,) = ({attn.num_heads},), "
            f"got {tuple(head_mask.shape)}"
        )
    gate = head_mask.repeat_interleave(attn.d_head)  # (E,): head i -> its d_head columns
    handle = attn.out_proj.register_forward_pre_hook(lambda _m, args: (args[0] * gate,))
    try:
        yield
    finally:
        handle.remove()


class Encoder(nn.Module):
    """A stack of :class:`EncoderLayer`, with optional token embedding and positions.

    Introduced in Chapter 6, used by the experiments of Chapter 7. With
    ``vocab_size`` the input is token ids ``(N, L)`` and is embedded as
    ``embedding * sqrt(d_model)`` (Vaswani et al.), with the embedding drawn
    from ``N(0, 1 / d_model)`` so that the scaled entries have size about 1,
    like the positional encoding, which would otherwise be drowned (an
    ``nn.Embedding`` starts at ``N(0, 1)``); otherwise the input is
    ``(N, L, d_model)``. With ``positional=True`` the sinusoidal encoding of
    the first ``L`` positions is added. ``final_norm`` (default: ``norm_first``)
    applies one last ``LayerNorm``, which pre-norm stacks need.
    """

    def __init__(
        self,
        num_layers: int,
        d_model: int,
        num_heads: int,
        dim_feedforward: int,
        dropout: float = 0.0,
        norm_first: bool = False,
        vocab_size: int | None = None,
        positional: bool = True,
        max_len: int = 512,
        final_norm: bool | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("num_layers", num_layers)
        kw = {"device": device, "dtype": dtype}
        self.embedding = None if vocab_size is None else nn.Embedding(vocab_size, d_model, **kw)
        if self.embedding is not None:  # entries of embedding * sqrt(d_model) start at size ~1
            nn.init.normal_(self.embedding.weight, std=d_model**-0.5)
        pe = sinusoidal_positional_encoding(max_len, d_model, dtype=dtype or torch.float32)
        self.register_buffer("pe", pe.to(device) if positional else None, persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, num_heads, dim_feedforward, dropout, norm_first, **kw)
            for _ in range(num_layers)
        )
        use_norm = norm_first if final_norm is None else final_norm
        self.norm = nn.LayerNorm(d_model, **kw) if use_norm else None
        self.d_model, self.num_heads = d_model, num_heads

    def embed(self, src: Tensor) -> Tensor:
        """Token ids ``(N, L)`` (or vectors ``(N, L, d_model)``) to ``(N, L, d_model)``."""
        x = src if self.embedding is None else self.embedding(src) * math.sqrt(self.d_model)
        if self.pe is not None:
            if x.shape[1] > self.pe.shape[0]:
                raise ValueError(f"sequence length {x.shape[1]} exceeds max_len={self.pe.shape[0]}")
            x = x + self.pe[: x.shape[1]]
        return self.dropout(x)

    def forward(
        self,
        src: Tensor,
        src_key_padding_mask: Tensor | None = None,
        need_weights: bool = False,
        head_mask: Tensor | None = None,
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """Return ``out (N, L, d_model)``, or ``(out, [weights (N, h, L, L) per layer])``.

        ``head_mask`` ``(num_layers, num_heads)`` gates every head (1 keeps, 0 removes).
        """
        if head_mask is not None and tuple(head_mask.shape) != (len(self.layers), self.num_heads):
            raise ValueError(
                f"head_mask must have shape (num_layers, num_heads) = "
                f"({len(self.layers)}, {self.num_heads}), got {tuple(head_mask.shape)}"
            )
        x, all_weights = self.embed(src), []
        for i, layer in enumerate(self.layers):
            gate = None if head_mask is None else head_mask[i]
            pad = src_key_padding_mask
            x = layer(x, src_key_padding_mask=pad, need_weights=need_weights, head_mask=gate)
            if need_weights:
                x, w = x
                all_weights.append(w)
        x = x if self.norm is None else self.norm(x)
        return (x, all_weights) if need_weights else x

"""Chapter 5: ``mha.MultiHeadAttention``, a ``torch.nn.Module`` twin of ``nn.MultiheadAttention``.

It follows the five steps of the course in order (projections, split into
heads, attention in parallel, concatenation, output projection), with the
same constructor, parameters, state-dict keys, initialisation and mask
conventions as ``torch.nn.MultiheadAttention``. Only the default of
``batch_first`` differs (``True`` here, as everywhere in the course).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mha import decoding
from mha._validate import check_dropout, check_flag, check_heads, check_positive_int, check_qkv
from mha.decoding import KVCache, check_kv_heads
from mha.masks import additive_mask_torch, causal_mask, dead_rows, merge_masks

__all__ = ["MultiHeadAttention", "additive_mask_torch", "causal_mask"]


class MultiHeadAttention(nn.Module):
    """Multi-head attention, a drop-in twin of ``torch.nn.MultiheadAttention``.

    Introduced in Chapter 5. The arguments are PyTorch's, in PyTorch's order
    and with PyTorch's defaults, except ``batch_first=True``: the course
    writes every tensor batch-first, ``(N, L, E)``. Pass ``batch_first=False``
    for PyTorch's sequence-first ``(L, N, E)`` layout.

    Shapes (batch-first): ``query`` ``(N, L, E)``, ``key`` ``(N, S, kdim)``,
    ``value`` ``(N, S, vdim)``; ``kdim`` and ``vdim`` default to ``E``
    (``embed_dim``). Parameters, with PyTorch's names and state-dict keys:

    * ``in_proj_weight`` ``(3E, E)``, stacked as ``[W_Q; W_K; W_V]``, when
      ``kdim == vdim == E``; otherwise ``q_proj_weight`` ``(E, E)``,
      ``k_proj_weight`` ``(E, kdim)`` and ``v_proj_weight`` ``(E, vdim)``;
    * ``in_proj_bias`` ``(3E,)`` and ``out_proj`` (``nn.Linear(E, E)``);
    * with ``add_bias_kv=True``, ``bias_k`` and ``bias_v`` ``(1, 1, E)``: one
      extra key and value, appended after the projection, that every query
      may attend to. ``add_zero_attn=True`` appends a zero key and value per
      head after the split. The masks are padded with "may attend" for them.
    * keyword ``num_kv_heads=g`` (Chapter 10; not in PyTorch): ``g`` key/value
      heads shared by the ``h`` query heads (``g = 1``: multi-query, ``g | h``:
      grouped-query); ``in_proj_weight`` is then ``((h + 2g) * d_head, E)``.
      ``new_cache`` and ``step`` decode token by token with a KV cache.

    Differences from PyTorch, on purpose:

    * A query row whose keys are all masked gets zero attention weights and a
      zero attention output, so the module returns ``out_proj.bias`` for that
      row. ``nn.MultiheadAttention`` returns NaN there when it computes the
      weights (``need_weights=True``) and on its inference fast path, and
      ``out_proj.bias`` with ``need_weights=False`` (Chapter 5 and its appendix).
    * ``is_causal=True`` builds the causal mask ``(L, S)`` itself; PyTorch
      requires the caller to pass it as ``attn_mask`` as well. If both are
      given, both apply. Keys added by ``add_bias_kv``/``add_zero_attn`` stay
      visible, as they do in PyTorch with an explicit ``attn_mask``.
    * Inputs must be batched (3 dims); unbatched ``(L, E)`` raises ``ValueError``.
    * With ``need_weights=False`` the attention runs through the fused
      ``F.scaled_dot_product_attention``; with weights requested it computes
      the softmax explicitly and returns the weights (after dropout, as PyTorch).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        num_kv_heads: int | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("embed_dim", embed_dim)
        self.d_head = check_heads(embed_dim, num_heads)
        self.num_kv_heads = check_kv_heads(num_heads, num_kv_heads)  # Chapter 10: MQA/GQA
        check_dropout(dropout)
        flags = {"bias": bias, "add_bias_kv": add_bias_kv, "add_zero_attn": add_zero_attn}
        _check_options(kdim, vdim, batch_first=batch_first, **flags)
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.batch_first, self.add_zero_attn = batch_first, add_zero_attn
        kw = {"device": device, "dtype": dtype}
        self._make_in_proj(bias, kw)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **kw)
        if add_bias_kv:
            self.bias_k = nn.Parameter(torch.empty(1, 1, self.proj_sizes[1], **kw))
            self.bias_v = nn.Parameter(torch.empty(1, 1, self.proj_sizes[2], **kw))
        else:
            self.bias_k = self.bias_v = None
        self.reset_parameters()

    def _make_in_proj(self, bias: bool, kw: dict) -> None:
        """Input-projection parameters, registered in ``nn.MultiheadAttention``'s order."""
        e, kv = self.embed_dim, self.proj_sizes[1]
        if self._qkv_same_embed_dim:
            self.in_proj_weight = nn.Parameter(torch.empty(e + 2 * kv, e, **kw))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = nn.Parameter(torch.empty(e, e, **kw))
            self.k_proj_weight = nn.Parameter(torch.empty(kv, self.kdim, **kw))
            self.v_proj_weight = nn.Parameter(torch.empty(kv, self.vdim, **kw))
            self.register_parameter("in_proj_weight", None)
        bias_param = nn.Parameter(torch.empty(e + 2 * kv, **kw)) if bias else None
        self.register_parameter("in_proj_bias", bias_param)

    @property
    def proj_sizes(self) -> tuple[int, int, int]:
        """Rows of ``W_Q``, ``W_K``, ``W_V``: ``(E, g * d_head, g * d_head)`` (Chapter 10)."""
        kv = self.num_kv_heads * self.d_head
        return self.embed_dim, kv, kv

    def new_cache(self, batch_size: int, max_len: int) -> KVCache:
        """An empty KV cache for :meth:`step` (Chapter 10; :func:`mha.decoding.new_cache`)."""
        return decoding.new_cache(self, batch_size, max_len)

    def step(self, x_t: Tensor, cache: KVCache) -> Tensor:
        """Causal self-attention of new tokens ``(N, T_new, E)``; updates ``cache`` (Chapter 10)."""
        return decoding.step(self, x_t, cache)

    @property
    def head_dim(self) -> int:
        """``embed_dim // num_heads``, PyTorch's name for ``d_head``."""
        return self.d_head

    def reset_parameters(self) -> None:
        """Same initialisation, in the same RNG order, as ``nn.MultiheadAttention``.

        ``out_proj`` keeps ``nn.Linear``'s own initialisation from construction.
        """
        for w in (self.in_proj_weight, self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
            if w is not None:
                nn.init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)
        if self.bias_k is not None:
            nn.init.xavier_normal_(self.bias_k)
            nn.init.xavier_normal_(self.bias_v)

    @classmethod
    def from_torch(cls, m: nn.MultiheadAttention) -> MultiHeadAttention:
        """Build an equivalent module from a ``torch.nn.MultiheadAttention`` (same weights).

        Every constructor option carries over, ``batch_first`` included, and
        the train/eval mode too.
        """
        new = cls(**_constructor_args(m))
        new.load_state_dict(m.state_dict())
        return new.train(m.training)

    def to_torch(self) -> nn.MultiheadAttention:
        """The equivalent ``torch.nn.MultiheadAttention`` (same options, weights and mode)."""
        if self.num_kv_heads != self.num_heads:
            raise ValueError(
                f"nn.MultiheadAttention has no shared K/V heads: num_kv_heads={self.num_kv_heads}"
                f" != num_heads={self.num_heads}; use mha.decoding.expand_kv_heads first"
            )
        m = nn.MultiheadAttention(**_constructor_args(self))
        m.load_state_dict(self.state_dict())
        return m.train(self.training)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Return ``(out, weights)``; the arguments are ``nn.MultiheadAttention.forward``'s.

        ``out`` is ``(N, L, E)`` (``(L, N, E)`` with ``batch_first=False``).
        ``weights`` is ``(N, L, S')`` averaged over heads, ``(N, h, L, S')``
        with ``average_attn_weights=False``, or ``None`` with
        ``need_weights=False``; ``S'`` is ``S`` plus one for ``add_bias_kv``
        and one for ``add_zero_attn``. Masks: ``attn_mask`` ``(L, S)`` or
        ``(N * h, L, S)``, ``key_padding_mask`` ``(N, S)``; boolean True =
        blocked, float = added to the scores.
        """
        query, key, value = self._check_inputs(query, key, value)
        mask, causal_only = self._merge_masks(
            attn_mask, key_padding_mask, is_causal, need_weights, query, key
        )
        # 1) Projections to Q, K, V: (N, L, E), (N, S, E), (N, S, E).
        q, k, v = self._project(query, key, value)
        k, v = self._append_bias_kv(k, v)  # add_bias_kv: (N, S + 1, E)
        # 2) Split the embedding into heads: (N, L, E) -> (N, h, L, d_head).
        q, k, v = (self._split_heads(t) for t in (q, k, v))
        k, v = self._append_zero_attn(k, v)  # add_zero_attn: (N, h, S', d_head)
        # 3) All heads attend in parallel: (N, h, L, d_head).
        heads, weights = self._attend(q, k, v, mask, need_weights, causal_only)
        # 4) Concatenate the heads: (N, h, L, d_head) -> (N, L, E).
        concat = heads.transpose(1, 2).flatten(2)
        # 5) Output projection mixes the heads: (N, L, E).
        out = self.out_proj(concat)
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)
        return (out if self.batch_first else out.transpose(0, 1)), weights

    def _check_inputs(self, query: Tensor, key: Tensor, value: Tensor) -> list[Tensor]:
        """Check the shapes; return ``(N, L, E)``, ``(N, S, kdim)``, ``(N, S, vdim)`` tensors."""
        dims = (self.embed_dim, self.kdim, self.vdim, self.batch_first)
        check_qkv(query.shape, key.shape, value.shape, *dims)
        return self._to_batch_first(query, key, value)

    def _merge_masks(
        self,
        attn_mask: Tensor | None,
        key_padding_mask: Tensor | None,
        is_causal: bool,
        need_weights: bool,
        query: Tensor,
        key: Tensor,
    ) -> tuple[Tensor | None, bool]:
        """One additive mask ``(N or 1, h or 1, L, S')`` or ``None``; and ``causal_only``.

        ``causal_only`` is True when a lone causal mask can be left to the fused
        kernel, which applies it without building it.
        """
        extra = (self.bias_k is not None) + self.add_zero_attn
        no_masks = attn_mask is None and key_padding_mask is None
        if is_causal and no_masks and not need_weights and not extra:
            return None, True
        shape = (query.shape[0], self.num_heads, query.shape[1], key.shape[1])
        return merge_masks(attn_mask, key_padding_mask, is_causal, shape, query, extra), False

    def _to_batch_first(self, *tensors: Tensor) -> list[Tensor]:
        """``(L, N, E) -> (N, L, E)`` when ``batch_first=False``; one tensor stays one tensor.

        Transposing a shared tensor once keeps ``query is key is value`` true,
        which the fused self-attention projection relies on.
        """
        if self.batch_first:
            return list(tensors)
        done: dict[int, Tensor] = {}
        return [done.setdefault(id(t), t.transpose(0, 1)) for t in tensors]

    def _project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, ...]:
        """Step 1, with one fused matmul when query, key and value are the same tensor."""
        b = self.in_proj_bias
        b_q, b_k, b_v = (None,) * 3 if b is None else b.split(self.proj_sizes)
        if not self._qkv_same_embed_dim:
            w_q, w_k, w_v = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        elif query is key and key is value:  # self-attention: (N, L, 3E) in one matmul
            return F.linear(query, self.in_proj_weight, b).split(self.proj_sizes, dim=-1)
        else:
            w_q, w_k, w_v = self.in_proj_weight.split(self.proj_sizes)
        return F.linear(query, w_q, b_q), F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)

    def _split_heads(self, x: Tensor) -> Tensor:
        """Step 2: ``(N, L, E) -> (N, h, L, d_head)`` (``g`` heads for K, V with GQA)."""
        return x.unflatten(-1, (-1, self.d_head)).transpose(1, 2)

    def _append_bias_kv(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """``add_bias_kv``: ``bias_k``, ``bias_v`` as one more key and value, ``(N, S + 1, E)``."""
        if self.bias_k is None:
            return k, v
        n = k.shape[0]
        return (
            torch.cat([k, self.bias_k.expand(n, 1, -1)], dim=1),
            torch.cat([v, self.bias_v.expand(n, 1, -1)], dim=1),
        )

    def _append_zero_attn(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """``add_zero_attn``: append a zero key and value to every head, ``(N, h, S' + 1, d)``."""
        if not self.add_zero_attn:
            return k, v
        return F.pad(k, (0, 0, 0, 1)), F.pad(v, (0, 0, 0, 1))

    def _attend(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        mask: Tensor | None,
        need_weights: bool,
        causal_only: bool,
    ) -> tuple[Tensor, Tensor | None]:
        """Step 3: ``(N, h, L, d_head)`` heads, and weights ``(N, h, L, S)`` or ``None``."""
        dropout_p = self.dropout if self.training else 0.0
        if need_weights:  # GQA: K/V head j serves query heads j * h/g .. (j+1) * h/g - 1
            k, v = (t.repeat_interleave(q.shape[1] // t.shape[1], dim=1) for t in (k, v))
            return _attend_with_weights(q, k, v, mask, dropout_p)
        return _attend_fused(q, k, v, mask, dropout_p, causal_only), None


def _check_options(kdim: int | None, vdim: int | None, **flags: bool) -> None:
    """``kdim`` and ``vdim`` are ``None`` or positive ints; every flag is a ``bool``."""
    for name, dim in (("kdim", kdim), ("vdim", vdim)):
        if dim is not None:
            check_positive_int(name, dim)
    for name, value in flags.items():
        check_flag(name, value)


def _constructor_args(m: nn.Module) -> dict:
    """The constructor arguments that rebuild ``m``, ours or PyTorch's, with fresh weights."""
    w = m.out_proj.weight
    return {
        "embed_dim": m.embed_dim,
        "num_heads": m.num_heads,
        "dropout": m.dropout,
        "bias": m.in_proj_bias is not None,
        "add_bias_kv": m.bias_k is not None,
        "add_zero_attn": m.add_zero_attn,
        "kdim": m.kdim,
        "vdim": m.vdim,
        "batch_first": m.batch_first,
        "device": w.device,
        "dtype": w.dtype,
    }


def _attend_with_weights(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float
) -> tuple[Tensor, Tensor]:
    """Explicit softmax attention; ``q`` ``(N, h, L, d)``, weights ``(N, h, L, S)``."""
    dead, mask = dead_rows(mask)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # (N, h, L, S)
    if mask is not None:
        scores = scores + mask
    weights = torch.softmax(scores, dim=-1)
    if dead is not None:
        weights = weights.masked_fill(dead, 0.0)  # nothing to attend to: zeros, not NaN
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ v, weights


def _attend_fused(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float, is_causal: bool
) -> Tensor:
    """Fused ``F.scaled_dot_product_attention``; returns ``(N, h, L, d)``."""
    dead, mask = dead_rows(mask)
    gqa = {"enable_gqa": True} if k.shape[1] != q.shape[1] else {}  # Chapter 10
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal, **gqa
    )
    return out if dead is None else out.masked_fill(dead, 0.0)

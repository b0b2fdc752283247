"""Chapter 5: ``mha.MultiHeadAttention``, a batch-first ``torch.nn.Module``.

It follows the five steps of the course in order (projections, split into
heads, attention in parallel, concatenation, output projection), with the
same parameters, state-dict keys, initialisation and mask conventions as
``torch.nn.MultiheadAttention(batch_first=True)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mha._validate import check_heads, check_mask_dtype, check_mha_masks, check_qkv

__all__ = ["MultiHeadAttention", "additive_mask_torch", "causal_mask"]


def causal_mask(tgt_len: int, src_len: int | None = None, device=None) -> Tensor:
    """Boolean ``(L, S)`` mask, True above the diagonal: query ``i`` may not see key ``j > i``.

    Introduced in Chapter 5. True means blocked (``nn.MultiheadAttention`` convention).
    """
    src_len = tgt_len if src_len is None else src_len
    return torch.ones(tgt_len, src_len, dtype=torch.bool, device=device).triu(1)


def additive_mask_torch(mask: Tensor, dtype: torch.dtype, name: str = "attn_mask") -> Tensor:
    """Boolean mask (True = blocked) to an additive float mask of ``dtype`` (Chapter 5)."""
    is_bool = mask.dtype == torch.bool
    check_mask_dtype(name, is_bool, mask.is_floating_point(), mask.dtype)
    if is_bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            mask, float("-inf")
        )
    return mask.to(dtype)


class MultiHeadAttention(nn.Module):
    """Batch-first multi-head attention, a drop-in twin of ``nn.MultiheadAttention``.

    Introduced in Chapter 5. Shapes: ``query`` ``(N, L, E)``, ``key`` and
    ``value`` ``(N, S, E)``. Parameters: ``in_proj_weight`` ``(3E, E)``
    stacked as ``[W_Q; W_K; W_V]``, ``in_proj_bias`` ``(3E,)``, and
    ``out_proj`` (an ``nn.Linear(E, E)``), so ``state_dict`` keys match
    PyTorch's and :meth:`from_torch` / :meth:`to_torch` copy weights across.

    Differences from PyTorch, on purpose:

    * A query row whose keys are all masked gets zero attention weights and a
      zero attention output, so the module returns ``out_proj.bias`` for that
      row. PyTorch returns NaN there (Chapter 5 shows both).
    * ``is_causal=True`` builds the causal mask itself; PyTorch requires the
      caller to pass it as ``attn_mask`` as well. If both are given, both apply.
    * With ``need_weights=False`` the attention runs through the fused
      ``F.scaled_dot_product_attention``; with weights requested it computes
      the softmax explicitly and returns the weights (after dropout, as PyTorch).
    """

    def __init__(self, embed_dim, num_heads, bias=True, dropout=0.0, device=None, dtype=None):
        super().__init__()
        self.d_head = check_heads(embed_dim, num_heads)
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        kw = {"device": device, "dtype": dtype}
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim, **kw))
        bias_param = nn.Parameter(torch.empty(3 * embed_dim, **kw)) if bias else None
        self.register_parameter("in_proj_bias", bias_param)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **kw)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Same initialisation, in the same RNG order, as ``nn.MultiheadAttention``.

        ``out_proj`` keeps ``nn.Linear``'s own initialisation from construction.
        """
        nn.init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    @classmethod
    def from_torch(cls, m: nn.MultiheadAttention) -> MultiHeadAttention:
        """Build an equivalent module from a ``torch.nn.MultiheadAttention`` (same weights).

        The result is batch-first whatever ``m.batch_first`` is.
        """
        if not m._qkv_same_embed_dim or m.bias_k is not None or m.add_zero_attn:
            raise ValueError(
                "from_torch supports kdim == vdim == embed_dim, add_bias_kv=False and "
                f"add_zero_attn=False; got kdim={m.kdim}, vdim={m.vdim}, "
                f"add_bias_kv={m.bias_k is not None}, add_zero_attn={m.add_zero_attn}"
            )
        w = m.in_proj_weight
        new = cls(m.embed_dim, m.num_heads, m.in_proj_bias is not None, m.dropout,
                  device=w.device, dtype=w.dtype)  # fmt: skip
        new.load_state_dict(m.state_dict())
        return new.train(m.training)

    def to_torch(self) -> nn.MultiheadAttention:
        """The equivalent ``torch.nn.MultiheadAttention(batch_first=True)``."""
        w = self.in_proj_weight
        m = nn.MultiheadAttention(self.embed_dim, self.num_heads, self.dropout,
                                  bias=self.in_proj_bias is not None, batch_first=True,
                                  device=w.device, dtype=w.dtype)  # fmt: skip
        m.load_state_dict(self.state_dict())
        return m.train(self.training)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        need_weights: bool = True,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Return ``(out (N, L, E), weights)``.

        ``weights`` is ``(N, L, S)`` averaged over heads, ``(N, h, L, S)`` with
        ``average_attn_weights=False``, or ``None`` with ``need_weights=False``.
        Masks: ``attn_mask`` ``(L, S)`` or ``(N * h, L, S)``, ``key_padding_mask``
        ``(N, S)``; boolean True = blocked, float = added to the scores.
        """
        check_qkv(query.shape, key.shape, value.shape, self.embed_dim)
        (n, tgt_len, _), src_len = query.shape, key.shape[1]
        # The fused kernel applies a lone causal mask itself, without building it.
        causal_only = (
            is_causal and attn_mask is None and key_padding_mask is None and not need_weights
        )
        mask = None if causal_only else self._merge_masks(
            attn_mask, key_padding_mask, is_causal, n, tgt_len, src_len, query)  # fmt: skip
        # 1) Projections to Q, K, V: (N, L, E), (N, S, E), (N, S, E).
        q, k, v = self._project(query, key, value)
        # 2) Split the embedding into heads: (N, L, E) -> (N, h, L, d_head).
        q, k, v = (t.unflatten(-1, (self.num_heads, self.d_head)).transpose(1, 2)
                   for t in (q, k, v))  # fmt: skip
        # 3) All heads attend in parallel: (N, h, L, d_head).
        dropout_p = self.dropout if self.training else 0.0
        if need_weights:
            heads, weights = _attend_with_weights(q, k, v, mask, dropout_p)
        else:
            heads, weights = _attend_fused(q, k, v, mask, dropout_p, causal_only), None
        # 4) Concatenate the heads: (N, h, L, d_head) -> (N, L, E).
        concat = heads.transpose(1, 2).flatten(2)
        # 5) Output projection mixes the heads: (N, L, E).
        out = self.out_proj(concat)
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)
        return out, weights

    def _project(self, query: Tensor, key: Tensor, value: Tensor):
        """Step 1, with one fused matmul when query, key and value are the same tensor."""
        w, b = self.in_proj_weight, self.in_proj_bias
        if query is key and key is value:  # self-attention: (N, L, 3E) in one matmul
            return F.linear(query, w, b).chunk(3, dim=-1)
        w_q, w_k, w_v = w.chunk(3)
        b_q, b_k, b_v = (None,) * 3 if b is None else b.chunk(3)
        return F.linear(query, w_q, b_q), F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)

    def _merge_masks(self, attn_mask, key_padding_mask, is_causal, n, tgt_len, src_len, like):
        """One additive mask ``(N or 1, h or 1, L, S)`` of ``like``'s dtype, or ``None``."""
        dtype, device = like.dtype, like.device
        check_mha_masks(None if attn_mask is None else attn_mask.shape,
                        None if key_padding_mask is None else key_padding_mask.shape,
                        n, self.num_heads, tgt_len, src_len)  # fmt: skip
        total = None
        if attn_mask is not None:
            heads = 1 if attn_mask.dim() == 2 else self.num_heads  # (L, S) or (N * h, L, S)
            total = additive_mask_torch(attn_mask, dtype).view(-1, heads, tgt_len, src_len)
        if key_padding_mask is not None:
            pad = additive_mask_torch(key_padding_mask, dtype, "key_padding_mask")
            total = pad[:, None, None, :] if total is None else total + pad[:, None, None, :]
        if is_causal:
            causal = additive_mask_torch(causal_mask(tgt_len, src_len, device), dtype)
            total = causal if total is None else total + causal
        return total


def _dead_rows(mask: Tensor | None):
    """Rows whose keys are all blocked (``-inf``), shape ``(.., L, 1)``; and a safe mask."""
    if mask is None:
        return None, None
    dead = torch.isneginf(mask).all(dim=-1, keepdim=True)
    return dead, mask.masked_fill(dead, 0.0)


def _attend_with_weights(q, k, v, mask, dropout_p):
    """Explicit softmax attention; ``q`` ``(N, h, L, d)``, weights ``(N, h, L, S)``."""
    dead, mask = _dead_rows(mask)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # (N, h, L, S)
    if mask is not None:
        scores = scores + mask
    weights = torch.softmax(scores, dim=-1)
    if dead is not None:
        weights = weights.masked_fill(dead, 0.0)  # nothing to attend to: zeros, not NaN
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ v, weights


def _attend_fused(q, k, v, mask, dropout_p, is_causal):
    """Fused ``F.scaled_dot_product_attention``; returns ``(N, h, L, d)``."""
    dead, mask = _dead_rows(mask)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                         is_causal=is_causal)  # fmt: skip
    return out if dead is None else out.masked_fill(dead, 0.0)

"""Chapter 11: the heads of one attention layer on several processes (Megatron-style).

Chapter 4's head-sum identity is the whole trick: concatenating the heads and
multiplying by ``W_O`` equals the sum over heads of ``head_i @ W_O[:, cols_i].T``
(``cols_i`` the ``d_head`` columns of head ``i``, see :func:`mha.heads.merge_heads`).
So each rank keeps the rows of ``W_Q``, ``W_K``, ``W_V`` for its own heads and
the matching columns of ``W_O``, computes a partial output, and one all-reduce
(a sum) gives every rank the full output. The output bias is added once, after
the sum. In backward the matching all-reduce sums the ranks' gradients of the
input (Megatron's ``f`` and ``g`` operators).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from mha.masks import dead_rows, merge_masks
from mha.module import MultiHeadAttention

__all__ = ["TensorParallelMultiHeadAttention", "shard_rows"]


class _CopyToRanks(torch.autograd.Function):
    """Identity in forward; all-reduce (sum) of the gradient in backward (Megatron's ``f``)."""

    @staticmethod
    def forward(ctx, x: Tensor, group) -> Tensor:
        ctx.group = group
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        grad = grad.contiguous()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) in forward; identity in backward (Megatron's ``g``)."""

    @staticmethod
    def forward(ctx, x: Tensor, group) -> Tensor:
        x = x.contiguous()
        dist.all_reduce(x, group=group)
        return x

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return grad, None


def shard_rows(module: MultiHeadAttention, rank: int, world_size: int) -> Tensor:
    """Indices of ``in_proj_weight``'s rows (and ``in_proj_bias``'s entries) that ``rank`` holds.

    Introduced in Chapter 11. Rank ``r`` holds query heads ``r * h/p .. (r+1) * h/p - 1``
    and K/V heads ``r * g/p .. (r+1) * g/p - 1`` (``p`` = ``world_size``).
    """
    _check_split(module, world_size)
    e, kv, _ = module.proj_sizes
    q_rows, kv_rows = e // world_size, kv // world_size
    q = torch.arange(rank * q_rows, (rank + 1) * q_rows)
    k = e + torch.arange(rank * kv_rows, (rank + 1) * kv_rows)
    return torch.cat([q, k, k + kv])


class TensorParallelMultiHeadAttention(nn.Module):
    """One rank's share of a :class:`mha.MultiHeadAttention`: ``h / p`` of its heads.

    Introduced in Chapter 11. Build it with :meth:`from_module` on every rank
    of a ``torch.distributed`` group. Parameters: ``in_proj_weight``
    ``(3 * E/p, E)`` (the rows :func:`shard_rows` names), ``in_proj_bias``,
    ``out_proj_weight`` ``(E, E/p)`` (the matching columns of ``W_O``) and the
    full ``out_proj_bias`` ``(E,)``. Every rank gets the full output.
    """

    def __init__(self, module: MultiHeadAttention, group: dist.ProcessGroup | None = None) -> None:
        super().__init__()
        _check_module(module)
        self.group = group
        self.rank, self.world_size = dist.get_rank(group), dist.get_world_size(group)
        rows = shard_rows(module, self.rank, self.world_size)
        e = module.embed_dim
        self.num_heads = module.num_heads // self.world_size
        self.num_kv_heads = module.num_kv_heads // self.world_size
        self.d_head, self.embed_dim, self.total_heads = module.d_head, e, module.num_heads
        self.batch_first = module.batch_first
        self.dropout = module.dropout
        cols = rows[: e // self.world_size]
        self.in_proj_weight = _param(module.in_proj_weight[rows])
        self.in_proj_bias = _param(
            None if module.in_proj_bias is None else module.in_proj_bias[rows]
        )
        self.out_proj_weight = _param(module.out_proj.weight[:, cols])
        self.out_proj_bias = _param(module.out_proj.bias)
        self.train(module.training)

    @classmethod
    def from_module(
        cls, module: MultiHeadAttention, group: dist.ProcessGroup | None = None
    ) -> TensorParallelMultiHeadAttention:
        """Shard ``module`` (the same weights on every rank) across ``group``'s ranks."""
        return cls(module, group)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
    ) -> tuple[Tensor, None]:
        """Return ``(out, None)``, ``out`` the full ``(N, L, E)`` on every rank.

        Masks as in :meth:`mha.MultiHeadAttention.forward`: ``attn_mask``
        ``(L, S)`` or ``(N * h, L, S)`` (this rank takes its heads' slices),
        ``key_padding_mask`` ``(N, S)``; boolean True = blocked.
        """
        if not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        query, key, value = self._copy_inputs(query, key, value)
        q, k, v = self._project(query, key, value)
        mask = self._mask(attn_mask, key_padding_mask, q, k)
        dead, mask = dead_rows(mask)
        dropout_p = self.dropout if self.training else 0.0
        gqa = {"enable_gqa": True} if k.shape[1] != q.shape[1] else {}
        heads = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, **gqa)
        if dead is not None:
            heads = heads.masked_fill(dead, 0.0)
        # This rank's heads times its columns of W_O: a partial sum of the output.
        partial = F.linear(heads.transpose(1, 2).flatten(2), self.out_proj_weight)
        out = _SumOverRanks.apply(partial, self.group)  # the forward all-reduce
        if self.out_proj_bias is not None:
            out = out + self.out_proj_bias  # once, after the sum
        return (out if self.batch_first else out.transpose(0, 1)), None

    def _copy_inputs(self, *tensors: Tensor) -> list[Tensor]:
        """Megatron's ``f`` on each distinct input (self-attention: one backward all-reduce)."""
        done: dict[int, Tensor] = {}
        return [done.setdefault(id(t), _CopyToRanks.apply(t, self.group)) for t in tensors]

    def _project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, ...]:
        """This rank's heads: ``(N, h/p, L, d)``, ``(N, g/p, S, d)``, ``(N, g/p, S, d)``."""
        sizes = (self.num_heads * self.d_head, *(2 * [self.num_kv_heads * self.d_head]))
        w = self.in_proj_weight.split(sizes)
        b = (None,) * 3 if self.in_proj_bias is None else self.in_proj_bias.split(sizes)
        out = (F.linear(x, wi, bi) for x, wi, bi in zip((query, key, value), w, b, strict=True))
        return tuple(t.unflatten(-1, (-1, self.d_head)).transpose(1, 2) for t in out)

    def _mask(
        self, attn_mask: Tensor | None, key_padding_mask: Tensor | None, q: Tensor, k: Tensor
    ) -> Tensor | None:
        """The merged additive mask, restricted to this rank's heads."""
        shape = (q.shape[0], self.total_heads, q.shape[2], k.shape[2])
        mask = merge_masks(attn_mask, key_padding_mask, False, shape, q)
        if mask is None or mask.shape[1] == 1:
            return mask
        start = self.rank * self.num_heads
        return mask[:, start : start + self.num_heads]


def _param(t: Tensor | None) -> nn.Parameter | None:
    """A fresh leaf parameter holding a copy of ``t``."""
    return None if t is None else nn.Parameter(t.detach().clone())


def _check_split(module: MultiHeadAttention, world_size: int) -> None:
    """Heads (and K/V heads) must split evenly across the ranks."""
    if module.num_heads % world_size or module.num_kv_heads % world_size:
        raise ValueError(
            f"tensor parallelism splits heads evenly: num_heads={module.num_heads} and "
            f"num_kv_heads={module.num_kv_heads} must be divisible by world_size={world_size}"
        )


def _check_module(module: MultiHeadAttention) -> None:
    """Supported: packed ``in_proj_weight``, no ``add_bias_kv``/``add_zero_attn``."""
    if not isinstance(module, MultiHeadAttention):
        raise ValueError(f"expected an mha.MultiHeadAttention, got {type(module).__name__}")
    if not module._qkv_same_embed_dim or module.bias_k is not None or module.add_zero_attn:
        raise ValueError(
            "TensorParallelMultiHeadAttention expects kdim == vdim == embed_dim and no "
            f"add_bias_kv/add_zero_attn; got kdim={module.kdim}, vdim={module.vdim}"
        )

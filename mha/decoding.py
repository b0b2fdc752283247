"""Chapter 10: decoding one token at a time, with a KV cache and shared K/V heads.

A decoder's masked self-attention is the encoder's attention with a causal
mask. When it generates token ``t``, the keys and values of tokens ``0 .. t-1``
do not change, so a :class:`KVCache` keeps them and each step projects only
the new tokens: ``O(T)`` work per step instead of ``O(T^2)`` for re-running the
whole prefix.

Multi-query (MQA, ``g = 1``) and grouped-query attention (GQA, ``g`` divides
``h``) give ``h`` query heads only ``g`` key/value heads: query head ``i`` uses
K/V head ``i // (h // g)``. The cache shrinks by ``h / g``.

``mha.MultiHeadAttention(..., num_kv_heads=g)`` builds such a module; its
``new_cache`` and ``step`` methods call :func:`new_cache` and :func:`step`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from mha._validate import check_positive_int

if TYPE_CHECKING:  # annotations only: no import cycle with mha.module
    from mha.module import MultiHeadAttention

__all__ = ["KVCache", "check_kv_heads", "new_cache", "step", "expand_kv_heads", "cache_bytes"]


def check_kv_heads(num_heads: int, num_kv_heads: int | None) -> int:
    """Return ``g`` (``num_heads`` when ``None``); raise unless ``g`` divides ``num_heads``."""
    if num_kv_heads is None:
        return num_heads
    check_positive_int("num_kv_heads", num_kv_heads)
    if num_heads % num_kv_heads != 0:
        raise ValueError(
            f"num_kv_heads must divide num_heads: got num_heads={num_heads}, "
            f"num_kv_heads={num_kv_heads}; valid: "
            f"{[g for g in range(1, num_heads + 1) if num_heads % g == 0]}"
        )
    return num_kv_heads


class KVCache:
    """Keys and values of the tokens decoded so far, ``(N, g, max_len, d_head)`` each.

    Introduced in Chapter 10. ``length`` counts the cached tokens; only
    ``keys[:, :, :length]`` and ``values[:, :, :length]`` are valid.
    """

    def __init__(
        self,
        batch_size: int,
        max_len: int,
        num_kv_heads: int,
        d_head: int,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        for name, value in (("batch_size", batch_size), ("max_len", max_len)):
            check_positive_int(name, value)
        shape = (batch_size, num_kv_heads, max_len, d_head)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        self.length = 0

    @property
    def max_len(self) -> int:
        """How many tokens the cache can hold."""
        return self.keys.shape[2]

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store ``(N, g, T_new, d_head)`` keys and values; return all cached ``(N, g, S, d)``."""
        start, new = self.length, k.shape[2]
        if start + new > self.max_len:
            raise ValueError(
                f"KV cache is full: it holds {start} of max_len={self.max_len} tokens, "
                f"cannot add {new} more"
            )
        self.keys[:, :, start : start + new] = k
        self.values[:, :, start : start + new] = v
        self.length = start + new
        return self.keys[:, :, : self.length], self.values[:, :, : self.length]


def new_cache(module: MultiHeadAttention, batch_size: int, max_len: int) -> KVCache:
    """An empty :class:`KVCache` for ``module`` (its ``g``, ``d_head``, dtype and device)."""
    _check_decoder(module)
    w = module.out_proj.weight
    g = module.num_kv_heads
    return KVCache(batch_size, max_len, g, module.d_head, dtype=w.dtype, device=w.device)


def step(module: MultiHeadAttention, x_t: Tensor, cache: KVCache) -> Tensor:
    """Causal self-attention of ``T_new`` new tokens ``x_t`` ``(N, T_new, E)``; updates ``cache``.

    Introduced in Chapter 10. Returns ``(N, T_new, E)`` (``(T_new, N, E)``
    and input in that layout with ``batch_first=False``). The outputs of
    successive steps, concatenated, equal
    ``module(x, x, x, is_causal=True, need_weights=False)[0]``.
    """
    _check_decoder(module)
    x_t = x_t if module.batch_first else x_t.transpose(0, 1)
    _check_step_input(module, x_t, cache)
    q, k, v = project_qkv(module, x_t)
    past = cache.length
    k, v = cache.append(k, v)
    n_new, n_all = q.shape[2], k.shape[2]
    # Query past + i may see keys 0 .. past + i (SDPA's boolean mask: True = may attend).
    allowed = torch.ones(n_new, n_all, dtype=torch.bool, device=q.device).tril(past)
    dropout_p = module.dropout if module.training else 0.0
    heads = F.scaled_dot_product_attention(
        q, k, v, attn_mask=None if n_new == 1 else allowed, dropout_p=dropout_p, enable_gqa=True
    )
    out = module.out_proj(heads.transpose(1, 2).flatten(2))
    return out if module.batch_first else out.transpose(0, 1)


def project_qkv(module: MultiHeadAttention, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Self-attention projections of ``x`` ``(N, T, E)``: ``(N, h, T, d)``, ``(N, g, T, d)`` x2."""
    qkv = F.linear(x, module.in_proj_weight, module.in_proj_bias)
    q, k, v = qkv.split(module.proj_sizes, dim=-1)
    d = module.d_head
    return tuple(t.unflatten(-1, (-1, d)).transpose(1, 2) for t in (q, k, v))


def expand_kv_heads(module: MultiHeadAttention) -> MultiHeadAttention:
    """The full ``h``-head module whose K/V heads repeat each group's weights (Chapter 10).

    Key/value head ``j`` of ``module`` becomes heads ``j * h/g .. (j+1) * h/g - 1``
    (``repeat_interleave``). Its output equals ``module``'s.
    """
    from mha.module import MultiHeadAttention as MHA  # run time only: no import cycle

    if not module._qkv_same_embed_dim or module.bias_k is not None:
        raise ValueError("expand_kv_heads expects kdim == vdim == embed_dim and no add_bias_kv")
    w = module.out_proj.weight
    full = MHA(
        module.embed_dim,
        module.num_heads,
        dropout=module.dropout,
        bias=module.in_proj_bias is not None,
        add_zero_attn=module.add_zero_attn,
        batch_first=module.batch_first,
        device=w.device,
        dtype=w.dtype,
    )
    state = dict(module.state_dict())
    state["in_proj_weight"] = _repeat_kv(module, module.in_proj_weight.detach())
    if module.in_proj_bias is not None:
        state["in_proj_bias"] = _repeat_kv(module, module.in_proj_bias.detach())
    full.load_state_dict(state)
    return full.train(module.training)


def _repeat_kv(module: MultiHeadAttention, packed: Tensor) -> Tensor:
    """``[W_Q; W_K; W_V]`` with ``g`` K/V heads -> the same with each K/V head repeated ``h/g``."""
    h, g, d = module.num_heads, module.num_kv_heads, module.d_head
    q, k, v = packed.split(module.proj_sizes, dim=0)
    rest = packed.shape[1:]
    k, v = (
        t.reshape(g, d, *rest).repeat_interleave(h // g, dim=0).reshape(h * d, *rest)
        for t in (k, v)
    )
    return torch.cat([q, k, v], dim=0)


def cache_bytes(num_kv_heads: int, d_head: int, bytes_per_value: int = 4) -> int:
    """Bytes of cache per token per layer: keys and values of ``g`` heads (Chapter 10)."""
    return 2 * num_kv_heads * d_head * bytes_per_value


def _check_decoder(module: MultiHeadAttention) -> None:
    """``step`` supports self-attention without ``add_bias_kv``/``add_zero_attn``."""
    if not module._qkv_same_embed_dim or module.bias_k is not None or module.add_zero_attn:
        raise ValueError(
            "KV-cache decoding expects self-attention (kdim == vdim == embed_dim) without "
            f"add_bias_kv/add_zero_attn; got kdim={module.kdim}, vdim={module.vdim}, "
            f"add_bias_kv={module.bias_k is not None}, add_zero_attn={module.add_zero_attn}"
        )


def _check_step_input(module: MultiHeadAttention, x_t: Tensor, cache: KVCache) -> None:
    """``x_t`` must be ``(N, T_new, E)`` with the cache's ``N``."""
    n = cache.keys.shape[0]
    if x_t.dim() != 3 or x_t.shape[0] != n or x_t.shape[2] != module.embed_dim:
        raise ValueError(
            f"step expects x_t of shape (N={n}, T_new, E={module.embed_dim}) (batch-first), "
            f"got {tuple(x_t.shape)}"
        )
    if cache.keys.shape[1] != module.num_kv_heads or cache.keys.shape[3] != module.d_head:
        raise ValueError(
            f"cache has {cache.keys.shape[1]} K/V heads of size {cache.keys.shape[3]}, "
            f"the module needs {module.num_kv_heads} of size {module.d_head}"
        )

"""Input checks shared by the NumPy reference and the PyTorch module.

Every check raises ``ValueError`` with a message that says what was expected
and what was given, so that a learner sees the mistake, not a stack of
broadcasting errors from deep inside NumPy or PyTorch.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "check_positive_int",
    "check_heads",
    "check_qkv",
    "check_dropout",
    "check_flag",
    "check_mask_dtype",
    "check_broadcast",
    "check_mha_masks",
]


def check_positive_int(name: str, value: object) -> None:
    """Raise unless ``value`` is a positive ``int`` (``bool`` is not accepted)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def check_heads(embed_dim: int, num_heads: int) -> int:
    """Return ``d_head = embed_dim // num_heads`` or raise if it is not whole.

    Introduced in Chapter 2 (projections): each head works in a subspace of
    size ``d_head``, so ``embed_dim`` must split evenly.
    """
    check_positive_int("num_heads", num_heads)
    if embed_dim % num_heads != 0:
        raise ValueError(
            f"embed_dim must be divisible by num_heads: got embed_dim={embed_dim}, "
            f"num_heads={num_heads} (remainder {embed_dim % num_heads}). "
            f"Valid head counts for {embed_dim}: "
            f"{[h for h in range(1, embed_dim + 1) if embed_dim % h == 0][:12]}"
        )
    return embed_dim // num_heads


def check_qkv(
    query_shape: Sequence[int],
    key_shape: Sequence[int],
    value_shape: Sequence[int],
    embed_dim: int,
    kdim: int | None = None,
    vdim: int | None = None,
    batch_first: bool = True,
) -> None:
    """Check ``(N, L, E)`` / ``(N, S, kdim)`` / ``(N, S, vdim)`` inputs.

    With ``batch_first=False`` the layout is ``(L, N, E)`` / ``(S, N, kdim)`` /
    ``(S, N, vdim)``. ``kdim`` and ``vdim`` default to ``embed_dim``.
    """
    layout = "(batch, seq, dim)" if batch_first else "(seq, batch, dim), as batch_first=False"
    dims = {"query": ("embed_dim", embed_dim)}
    dims["key"] = ("embed_dim", embed_dim) if kdim in (None, embed_dim) else ("kdim", kdim)
    dims["value"] = ("embed_dim", embed_dim) if vdim in (None, embed_dim) else ("vdim", vdim)
    shapes = (tuple(query_shape), tuple(key_shape), tuple(value_shape))
    for (name, (dim_name, dim)), shape in zip(dims.items(), shapes, strict=True):
        if len(shape) != 3:
            raise ValueError(
                f"{name} must be {'batch-first' if batch_first else 'sequence-first'} "
                f"{layout} with 3 dims, got shape {shape}; for one unbatched sequence, "
                f"add the batch dimension with unsqueeze({0 if batch_first else 1})"
            )
        if shape[-1] != dim:
            raise ValueError(
                f"{name} last dimension must equal {dim_name}={dim}, got shape {shape}"
            )
    b, s = (0, 1) if batch_first else (1, 0)
    if shapes[1][s] != shapes[2][s]:
        raise ValueError(
            f"key and value must have the same sequence length, got key {shapes[1]} "
            f"and value {shapes[2]}"
        )
    batches = [shape[b] for shape in shapes]
    if len(set(batches)) != 1:
        raise ValueError(
            f"query, key and value must share the batch size, got {', '.join(map(str, batches))}"
        )


def check_dropout(p: float) -> None:
    """Raise unless ``p`` is a probability in ``[0, 1]`` (a number, not a ``bool``).

    A ``bool`` here is most often PyTorch's old positional slip: ``bias`` passed
    where ``dropout`` goes (the order is ``embed_dim, num_heads, dropout, bias``).
    """
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
        raise ValueError(
            f"dropout must be a probability in [0, 1], got {p!r}; the positional order is "
            "PyTorch's: (embed_dim, num_heads, dropout, bias, ...)"
        )


def check_flag(name: str, value: bool) -> None:
    """Raise unless ``value`` is a ``bool`` (so that ``bias=0.5`` is not silently True)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def check_mask_dtype(name: str, is_bool: bool, is_float: bool, dtype: object) -> None:
    """Masks are boolean (True = blocked) or floating point (added to scores)."""
    if not (is_bool or is_float):
        raise ValueError(
            f"{name} must be bool (True = blocked) or floating point (added to the "
            f"scores), got dtype {dtype}"
        )


def check_broadcast(name: str, shape: Sequence[int], target: Sequence[int], hint: str = "") -> None:
    """Raise unless ``shape`` broadcasts to ``target`` without growing it."""
    shape, target = tuple(shape), tuple(target)
    ok = len(shape) <= len(target) and all(
        s in (1, t) for s, t in zip(shape[::-1], target[::-1], strict=False)
    )
    if not ok:
        raise ValueError(
            f"{name} of shape {shape} does not broadcast to the scores' shape "
            f"{target}{'; ' + hint if hint else ''}"
        )


def check_mha_masks(
    attn_shape: Sequence[int] | None,
    padding_shape: Sequence[int] | None,
    batch: int,
    num_heads: int,
    tgt_len: int,
    src_len: int,
) -> None:
    """Check ``nn.MultiheadAttention``-style mask shapes (``None`` = no mask).

    ``attn_mask`` is ``(L, S)`` or ``(N * num_heads, L, S)`` with the batch
    index major (row ``b * num_heads + i`` is head ``i`` of example ``b``);
    ``key_padding_mask`` is ``(N, S)``.
    """
    if attn_shape is not None:
        attn_shape = tuple(attn_shape)
        allowed = [(tgt_len, src_len), (batch * num_heads, tgt_len, src_len)]
        if attn_shape not in allowed:
            raise ValueError(
                f"attn_mask must have shape (L, S) = {allowed[0]} or "
                f"(N * num_heads, L, S) = {allowed[1]}, got {attn_shape}"
            )
    if padding_shape is not None and tuple(padding_shape) != (batch, src_len):
        raise ValueError(
            f"key_padding_mask must have shape (N, S) = {(batch, src_len)}, "
            f"got {tuple(padding_shape)}"
        )

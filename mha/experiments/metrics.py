"""Chapter 7: what do the heads do, and which ones matter?

* :func:`relation_shares`, :func:`example_shares`: how much of each head's
  attention falls on each relation of the task (the previous token, the
  marked token), on average or sequence by sequence;
* :func:`division_of_labour`: sequences where one head follows each relation;
* :func:`offset_shares` / :func:`positional_heads`: Voita et al.'s
  "positional head", one whose maximum weight falls on one relative offset
  at least 90% of the time;
* :func:`head_importance`: Michel et al.'s importance, the expected absolute
  gradient of the loss with respect to a gate on each head;
* :func:`pruning_curve`: accuracy as heads are removed in a given order.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from mha.experiments.tasks import IGNORE, TaskBatch
from mha.experiments.train import TaskModel, accuracy, task_loss

__all__ = [
    "attention_weights",
    "relation_shares",
    "example_shares",
    "division_of_labour",
    "offset_shares",
    "positional_heads",
    "head_importance",
    "pruning_curve",
    "scored_queries",
]


@torch.no_grad()
def attention_weights(model: TaskModel, data: TaskBatch) -> list[Tensor]:
    """Every layer's per-head weights on ``data``: a list of ``(N, h, L, L)`` (Chapter 7)."""
    return model(data.tokens, need_weights=True)[1]


def relation_shares(weights: Tensor, marked: Tensor) -> tuple[Tensor, Tensor]:
    """Mean weight each head puts on the previous token and on the marked token.

    Introduced in Chapter 7. ``weights`` is ``(N, h, L, L)``, ``marked`` ``(N,)``.
    Averages over queries ``i >= 1`` whose previous token is not the marked
    one (there the two relations point at different keys). Returns two ``(h,)``.
    """
    n, _, length, _ = weights.shape
    i = torch.arange(1, length)  # queries with a previous token
    rows = torch.arange(n)[:, None]
    w = weights[:, :, 1:, :].transpose(1, 2)  # (N, L-1, h, L): query-major
    prev = w[rows, i - 1, :, (i - 1)[None, :].expand(n, -1)]  # (N, L-1, h)
    mark = w[rows, i - 1, :, marked[:, None].expand(-1, length - 1)]  # (N, L-1, h)
    distinct = marked[:, None] != (i - 1)[None, :]  # (N, L-1)
    return prev[distinct].mean(0), mark[distinct].mean(0)


def example_shares(weights: Tensor, marked: Tensor) -> tuple[Tensor, Tensor]:
    """Like :func:`relation_shares`, but per example: two ``(N, h)`` tensors.

    Introduced in Chapter 7. An average over examples can hide heads that
    switch roles from one sequence to the next; these per-example shares do not.
    """
    n, h, length, _ = weights.shape
    i = torch.arange(1, length)
    prev = weights[:, :, i, i - 1]  # (N, h, L-1)
    mark = weights[torch.arange(n)[:, None, None], torch.arange(h)[None, :, None], i,
                   marked[:, None, None]]  # fmt: skip
    distinct = (marked[:, None] != (i - 1)[None, :])[:, None, :].to(weights.dtype)  # (N, 1, L-1)
    count = distinct.sum(-1)
    return (prev * distinct).sum(-1) / count, (mark * distinct).sum(-1) / count


def division_of_labour(prev: Tensor, mark: Tensor, threshold: float = 0.5) -> Tensor:
    """``(N,)`` bool: some head puts more than ``threshold`` on the marked token and
    another head more than ``threshold`` on the previous token (Chapter 7).

    ``prev`` and ``mark`` are the ``(N, h)`` shares of :func:`example_shares`.
    The two heads must differ, so one head can never make a sequence divided.
    """
    h = prev.shape[-1]
    other = ~torch.eye(h, dtype=torch.bool)  # (h, h): pairs of different heads
    pairs = (mark > threshold)[:, :, None] & (prev > threshold)[:, None, :] & other
    return pairs.flatten(1).any(-1)


def offset_shares(weights: Tensor, queries: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Each head's most frequent relative offset of its maximum weight, and how often.

    Introduced in Chapter 7, after Voita et al. (2019). ``weights`` is
    ``(N, h, L, L)``; ``queries`` ``(N, L)`` (bool) picks the query positions
    to count (default: all). Returns ``offset (h,)`` (key minus query, so -1
    is the previous token) and ``share (h,)`` in ``[0, 1]``.
    """
    n, _, length, _ = weights.shape
    queries = torch.ones(n, length, dtype=torch.bool) if queries is None else queries
    offsets = weights.argmax(-1) - torch.arange(length)  # (N, h, L): key - query
    picked = offsets.transpose(1, 2)[queries]  # (M, h)
    values = torch.arange(-(length - 1), length)  # every possible offset
    counts = (picked[..., None] == values).sum(0)  # (h, 2L - 1)
    best = counts.argmax(-1)
    return values[best], counts.max(-1).values.double() / picked.shape[0]


def positional_heads(
    weights: Tensor, queries: Tensor | None = None, threshold: float = 0.9
) -> Tensor:
    """Boolean ``(h,)``: heads whose maximum weight sits on one offset at least ``threshold``.

    Introduced in Chapter 7 (Voita et al. 2019 use 90%).
    """
    return offset_shares(weights, queries)[1] >= threshold


def head_importance(
    model: TaskModel, data: TaskBatch, chunk: int = 50, normalise: bool = True
) -> Tensor:
    """Michel et al.'s importance ``(num_layers, num_heads)``: mean ``|dL / d gate|``.

    Introduced in Chapter 7. Every head gets a gate ``xi = 1`` (its block of
    the concatenation is multiplied by it); the importance is the absolute
    gradient of the mean loss on each chunk of ``chunk`` examples, averaged
    over chunks. This is per 50-example chunk (by default), not per example
    as in Michel et al., whose absolute value is taken for every example
    before averaging: gradients of opposite sign within a chunk cancel here,
    so these scores are lower bounds of theirs and rank heads only roughly
    alike. With ``normalise`` each layer's scores are divided by their L2
    norm, as Michel et al. do before comparing heads across layers.
    """
    layers, heads = len(model.encoder.layers), model.encoder.num_heads
    gate = torch.ones(layers, heads, dtype=torch.float64, requires_grad=True)
    total = torch.zeros(layers, heads, dtype=torch.float64)
    starts = range(0, data.tokens.shape[0], chunk)
    for start in starts:
        part = data.subset(slice(start, start + chunk))
        loss = task_loss(model(part.tokens, head_mask=gate), part.targets)
        total += torch.autograd.grad(loss, gate)[0].abs()
    importance = total / len(starts)
    return importance / importance.norm(dim=-1, keepdim=True) if normalise else importance


def pruning_curve(model: TaskModel, data: TaskBatch, order: Sequence[int]) -> list[tuple[int, int]]:
    """Exact ``(correct, total)`` after removing the first ``k`` heads of ``order``, k = 0..H.

    Introduced in Chapter 7. ``order`` lists flat head indices
    ``layer * num_heads + head``; a removed head's gate is 0.
    """
    layers, heads = len(model.encoder.layers), model.encoder.num_heads
    gate = torch.ones(layers * heads, dtype=torch.float64)
    curve = [accuracy(model, data, head_mask=gate.view(layers, heads))]
    for flat in order:
        gate[int(flat)] = 0.0
        curve.append(accuracy(model, data, head_mask=gate.view(layers, heads)))
    return curve


def scored_queries(data: TaskBatch) -> Tensor:
    """``(N, L)`` bool: the positions that have a target, ``i >= 1`` (Chapter 7)."""
    return data.targets != IGNORE

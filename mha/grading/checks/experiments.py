"""Checker of Chapter 7: ``my_offset_share`` (a head's preferred offset and its share)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from mha.grading.checks.core import Case, Exercise, evaluate
from mha.grading.checks.isolation import TIME_LIMIT

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["check_offset_share", "offset_share_cases", "EXERCISES"]


_OFFSET_BUGS = {
    "sign": (
        "Your offsets have the wrong sign: measure key position minus query position, so that "
        "the previous token is offset -1."
    ),
    "query_axis": (
        "You took the argmax over the queries (axis -2). For each query (a row), find the key "
        "(column) with the largest weight: weights.argmax(axis=-1)."
    ),
    "absolute": (
        "You counted absolute key positions, not offsets: subtract each query's own position "
        "from the position of its strongest key."
    ),
}


def _offset_variant(weights: np.ndarray, kind: str) -> tuple[int, float]:
    length = weights.shape[-1]
    axis = -2 if kind == "query_axis" else -1
    picked = weights.argmax(axis=axis)  # (N, L)
    if kind != "absolute":
        picked = picked - np.arange(length) if kind != "sign" else np.arange(length) - picked
    values, counts = np.unique(picked, return_counts=True)
    return int(values[counts.argmax()]), float(counts.max() / picked.size)


def _offset_case(label: str, n: int, length: int, offset: int, share: float, rng) -> Case:
    weights = rng.uniform(0, 1, size=(n, length, length))
    rows = rng.uniform(size=(n, length)) < share
    queries = np.arange(length)
    keys = np.clip(queries + offset, 0, length - 1)
    weights[:, queries, keys] += 5.0 * rows  # a peak on the offset for a share of the queries
    weights /= weights.sum(-1, keepdims=True)
    expected = _mha_offset_shares(weights)
    bugs = {kind: _offset_variant(weights, kind) for kind in _OFFSET_BUGS}
    return Case(label, (weights,), expected, bugs)


def offset_share_cases(rng: np.random.Generator) -> list[Case]:
    """The cases of :func:`check_offset_share`, drawn from ``rng``."""
    return [_offset_case("a previous-token head", 40, 8, -1, 0.95, rng),
            _offset_case("a head two tokens ahead", 30, 6, 2, 0.7, rng),
            _offset_case("a self head", 25, 5, 0, 0.5, rng)]  # fmt: skip


def check_offset_share(
    my_offset_share: Callable[..., object], *, time_limit: float = TIME_LIMIT, quiet: bool = False
) -> bool:
    """Check ``my_offset_share(weights (N, L, L)) -> (offset, share)`` for one head (Chapter 7).

    Compared with :func:`mha.experiments.metrics.offset_shares` on heads that
    prefer offset -1, +2 and 0 for a given share of their queries.
    """
    cases = offset_share_cases(np.random.default_rng(8))
    return evaluate(my_offset_share, "my_offset_share", cases, _OFFSET_BUGS,
                    time_limit=time_limit, quiet=quiet)  # fmt: skip


def _mha_offset_shares(weights: np.ndarray) -> tuple[int, float]:
    from mha.experiments.metrics import offset_shares  # Chapter 7 module, imported on use

    offset, share = offset_shares(torch.from_numpy(weights)[:, None])
    return int(offset[0]), float(share[0])


EXERCISES = {
    "check_offset_share": Exercise("my_offset_share", offset_share_cases, _OFFSET_BUGS,
                                   ("mha.experiments.metrics.offset_shares",)),
}  # fmt: skip

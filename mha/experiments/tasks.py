"""Chapter 7: the synthetic task of the experiments, generated and seeded here.

**Previous plus marked.** A sequence holds ``seq_len`` values in
``[0, vocab_size)``. Exactly one position is *marked*: its token id is the
value plus ``vocab_size``, so the vocabulary has ``2 * vocab_size`` ids. At
every position ``i >= 1`` the model must output::

    (value[i - 1] + value[marked]) % vocab_size

so each position needs two relations at once: a positional one (the previous
token) and a content one (the marked token, wherever it is). Position 0 has no
previous token and no target (``IGNORE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

__all__ = ["IGNORE", "TaskBatch", "task_rng", "previous_plus_marked", "describe"]

IGNORE = -100  # target id that the loss and the accuracy skip (PyTorch's ignore_index)

# One independent random stream per use, so that changing one never shifts another.
_STREAMS = {"train": 1, "train_set": 2, "importance": 3, "prune": 4}
TEST_SEED = 2017  # the test set is the same for every run of a sweep: paired comparisons


class TaskBatch(NamedTuple):
    """A batch of the task: ``tokens`` ``(N, L)``, ``targets`` ``(N, L)``, ``marked`` ``(N,)``."""

    tokens: Tensor
    targets: Tensor
    marked: Tensor

    def subset(self, index: slice | Tensor) -> TaskBatch:
        """The examples ``index`` (a slice or an index tensor) of every field."""
        return TaskBatch(self.tokens[index], self.targets[index], self.marked[index])


def task_rng(seed: int | None, stream: str) -> np.random.Generator:
    """The NumPy generator for ``stream`` (``"train"``, ``"test"``, ...) of run ``seed``.

    Introduced in Chapter 7. The test stream ignores ``seed``: every run is
    scored on the same test set.
    """
    if stream == "test":
        return np.random.default_rng([TEST_SEED])
    if stream not in _STREAMS:
        raise ValueError(f"stream must be one of {['test', *_STREAMS]}, got {stream!r}")
    return np.random.default_rng([seed, _STREAMS[stream]])


def previous_plus_marked(
    num_examples: int, seq_len: int, vocab_size: int, rng: np.random.Generator
) -> TaskBatch:
    """Draw ``num_examples`` sequences of the previous-plus-marked task (Chapter 7)."""
    if seq_len < 2 or vocab_size < 2 or num_examples < 1:
        raise ValueError(
            "need num_examples >= 1, seq_len >= 2 and vocab_size >= 2, got "
            f"num_examples={num_examples}, seq_len={seq_len}, vocab_size={vocab_size}"
        )
    values = rng.integers(0, vocab_size, size=(num_examples, seq_len))  # (N, L)
    marked = rng.integers(0, seq_len, size=num_examples)  # (N,)
    rows = np.arange(num_examples)
    tokens = values.copy()
    tokens[rows, marked] += vocab_size  # the marked token has its own ids
    targets = np.full((num_examples, seq_len), IGNORE)
    targets[:, 1:] = (values[:, :-1] + values[rows, marked][:, None]) % vocab_size
    return TaskBatch(*(torch.from_numpy(a).long() for a in (tokens, targets, marked)))


def describe(tokens: Tensor | Sequence[int], vocab_size: int) -> list[str]:
    """Readable labels for one sequence ``(L,)``: ``"3"``, or ``"3*"`` for the marked token."""
    return [f"{t % vocab_size}*" if t >= vocab_size else str(int(t)) for t in tokens]

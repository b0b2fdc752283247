"""Chapter 8: removing real heads (Michel et al. 2019) on two tasks.

* paraphrase: cosine similarity of the sentence embeddings of a pair; the task
  score is the mean similarity of paraphrase pairs minus that of non-paraphrase
  pairs (the *margin*), and its AUC;
* pronoun: the final hidden state of "he"/"she" is compared with the two names
  of the sentence; the score is cos(pronoun, antecedent) - cos(pronoun, other
  name), averaged over the "he" and "she" versions so that position cancels.

A head's importance for a task is the drop of the task score when that head
alone is removed (``head_mask`` 0). :func:`pruning_curve` removes heads
cumulatively in a given order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from mha.course.real_heads import _batches, _position
from mha.pretrained import mean_pool

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from mha.pretrained import BertEncoder, WordPieceTokenizer

__all__ = ["Tasks", "task_scores", "single_head_scores", "pruning_curve", "auc"]


class Tasks:
    """The sentences of both tasks, tokenized once, with the index bookkeeping."""

    def __init__(self, tok: WordPieceTokenizer, corpus: dict) -> None:
        pairs, items = corpus["paraphrase_pairs"], corpus["pronoun_pairs"]
        texts = list(dict.fromkeys([p["a"] for p in pairs] + [p["b"] for p in pairs]))
        self.para_texts = texts
        self.pairs = np.array([[texts.index(p["a"]), texts.index(p["b"])] for p in pairs])
        self.labels = np.array([p["label"] for p in pairs])
        self.pron_texts = [i[v] for i in items for v in ("he", "she")]
        self.pron_index = []  # (pronoun, antecedent, other) token index per pronoun sentence
        for item in items:
            for pronoun, right, wrong in (("he", "man", "woman"), ("she", "woman", "man")):
                t = tok.tokens(item[pronoun])
                self.pron_index.append(
                    [_position(t, w) for w in (pronoun, item[right], item[wrong])]
                )
        self.texts = self.para_texts + self.pron_texts
        self.batches = [(idx, tok([self.texts[i] for i in idx]))
                        for idx in _batches(tok, self.texts, 64)]  # fmt: skip


@torch.no_grad()
def task_scores(
    enc: BertEncoder, tasks: Tasks, head_mask: torch.Tensor | None = None
) -> dict[str, np.ndarray]:
    """Per-item scores with ``head_mask`` applied.

    ``"pair_cos"`` (pairs,), ``"pronoun"`` (items,) and ``"emb"`` (sentences, d_model).
    """
    n = len(tasks.texts)
    emb = torch.zeros(n, enc.d_model, dtype=torch.float64)
    pron = np.zeros((len(tasks.pron_texts), 2))
    offset = len(tasks.para_texts)
    for idx, batch in tasks.batches:
        hidden = enc(batch["input_ids"], batch["attention_mask"], head_mask=head_mask)
        emb[idx] = F.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1).double()
        for j, i in enumerate(idx):
            if i >= offset:
                p, a, b = tasks.pron_index[i - offset]
                h = F.normalize(hidden[j, [p, a, b]].double(), dim=-1)
                pron[i - offset] = [h[0] @ h[1], h[0] @ h[2]]
    e = emb.numpy()
    pair_cos = (e[tasks.pairs[:, 0]] * e[tasks.pairs[:, 1]]).sum(-1)
    margin = pron[:, 0] - pron[:, 1]  # (2 * items,): he, she, he, she, ...
    return {"pair_cos": pair_cos, "pronoun": margin.reshape(-1, 2).mean(1), "emb": e}


def auc(cos: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a paraphrase pair is more similar than a non-paraphrase pair."""
    pos, neg = cos[labels == 1], cos[labels == 0]
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def margin(cos: np.ndarray, labels: np.ndarray) -> float:
    """Mean similarity of paraphrase pairs minus that of non-paraphrase pairs."""
    return float(cos[labels == 1].mean() - cos[labels == 0].mean())


def single_head_scores(
    enc: BertEncoder, tasks: Tasks, progress: Callable[[int, int], object] | None = None
) -> list[dict[str, np.ndarray]]:
    """:func:`task_scores` with each of the ``layers * heads`` heads removed alone, in order."""
    out = []
    for layer in range(enc.num_layers):
        for head in range(enc.num_heads):
            mask = torch.ones(enc.num_layers, enc.num_heads)
            mask[layer, head] = 0
            out.append(task_scores(enc, tasks, mask))
            if progress:
                progress(layer, head)
    return out


def pruning_curve(
    enc: BertEncoder, tasks: Tasks, order: Sequence[int], steps: Iterable[int]
) -> list[dict[str, float]]:
    """Remove the heads ``order[:k]`` (flat indices ``layer * heads + head``) for each ``k``."""
    out = []
    for k in steps:
        mask = torch.ones(enc.num_layers * enc.num_heads)
        mask[list(order[:k])] = 0
        s = task_scores(enc, tasks, mask.reshape(enc.num_layers, enc.num_heads))
        out.append({
            "removed": int(k),
            "margin": margin(s["pair_cos"], tasks.labels),
            "auc": auc(s["pair_cos"], tasks.labels),
            "pronoun": float(s["pronoun"].mean()),
        })  # fmt: skip
    return out

"""Chapter 8: measurements on the 72 real heads of all-MiniLM-L6-v2.

Attention maps are NumPy arrays ``(layers, heads, L, L)`` over one sentence's
real word pieces (``[CLS]`` = 0, ``[SEP]`` = ``L - 1``); a score is a
``(layers, heads)`` array, one number per head.

* :func:`attention_maps`: the maps of many sentences, batched by length;
* :func:`mass`: how much attention a set of query tokens puts on a set of keys;
* :func:`offset_profile`: each head's attention by relative offset, over a corpus;
* :func:`lens_scores`: the article's three lenses on a 13-piece frame sentence;
* :func:`pronoun_scores`: pronoun-to-antecedent attention with the position cancelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from mha.course.corpus import SLOTS

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from mha.pretrained import BertEncoder, WordPieceTokenizer

__all__ = [
    "OFFSETS",
    "attention_maps",
    "mass",
    "offset_profile",
    "lens_scores",
    "pronoun_scores",
    "head_name",
]

OFFSETS = (-3, -2, -1, 0, 1, 2, 3)  # key position minus query position


def head_name(layer: int, head: int) -> str:
    """``"L0H2"``: layer 0, head 2 (both counted from 0)."""
    return f"L{layer}H{head}"


def _batches(tok, texts: list[str], batch_size: int):
    """Sentence indices in batches of similar length (less padding)."""
    lengths = [len(tok.tokens(t)) for t in texts]
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(texts), batch_size):
        yield order[start : start + batch_size].tolist()


@torch.no_grad()
def attention_maps(
    tok: WordPieceTokenizer, enc: BertEncoder, texts: list[str], batch_size: int = 32
) -> list[np.ndarray]:
    """One ``(layers, heads, L, L)`` float64 array per sentence, its real tokens only."""
    maps: list[np.ndarray | None] = [None] * len(texts)
    for idx in _batches(tok, texts, batch_size):
        batch = tok([texts[i] for i in idx])
        _, w = enc(batch["input_ids"], batch["attention_mask"], need_weights=True)
        w = w.double().numpy()  # (layers, N, heads, T, T)
        for j, i in enumerate(idx):
            n = int(batch["attention_mask"][j].sum())
            maps[i] = w[:, j, :, :n, :n]
    return maps  # type: ignore[return-value]


def mass(m: np.ndarray, queries: Iterable[int], keys: Iterable[int]) -> np.ndarray:
    """Mean over ``queries`` of the attention summed over ``keys``: ``(layers, heads)``."""
    return m[:, :, list(queries)][:, :, :, list(keys)].sum(-1).mean(-1)


def offset_profile(maps: list[np.ndarray]) -> np.ndarray:
    """``(layers, heads, len(OFFSETS) + 2)``: mean attention at each offset, on [CLS], on [SEP].

    Queries are the word pieces (not [CLS]/[SEP]); an offset counts only where the key is a
    word piece too, averaged over the queries that have one.
    """
    total = np.zeros((*maps[0].shape[:2], len(OFFSETS) + 2))
    count = np.zeros(len(OFFSETS) + 2)
    for m in maps:
        n = m.shape[-1]
        for q in range(1, n - 1):
            for j, d in enumerate(OFFSETS):
                if 1 <= q + d <= n - 2:
                    total[:, :, j] += m[:, :, q, q + d]
                    count[j] += 1
            total[:, :, -2] += m[:, :, q, 0]
            total[:, :, -1] += m[:, :, q, n - 1]
            count[-2:] += 1
    return total / count


def lens_scores(m: np.ndarray) -> dict[str, np.ndarray]:
    """The article's three lenses on one frame sentence (13 word pieces), each ``(layers, heads)``.

    * relationships: "trust" (the verb) to the two "he" (slots A and C), summed;
    * emotion: "didn" (the first piece of "didn't") to "secret" (the noun);
    * chronology: every word piece to "because" (the link), averaged.
    """
    if m.shape[-1] != 13:
        raise ValueError(f"expected a frame sentence of 13 word pieces, got {m.shape[-1]}")
    return {
        "relationships": mass(m, [SLOTS["verb"]], [SLOTS["A"], SLOTS["C"]]),
        "emotion": mass(m, [SLOTS["didn"]], [SLOTS["noun"]]),
        "chronology": mass(m, range(1, 12), [SLOTS["link"]]),
    }


def _position(tokens: list[str], word: str) -> int:
    if word not in tokens:
        raise ValueError(f"{word!r} is not a word piece of {tokens}")
    return tokens.index(word)


def pronoun_scores(
    tok: WordPieceTokenizer,
    maps_he: Sequence[np.ndarray],
    maps_she: Sequence[np.ndarray],
    items: Sequence[dict],
) -> np.ndarray:
    """``(items, layers, heads)``: pronoun attention to its antecedent minus to the other name.

    Each item is one sentence in two versions ("he" and "she"); only the pronoun
    differs, so positional habits cancel in the average of the two versions.
    """
    out = []
    for item, m_he, m_she in zip(items, maps_he, maps_she, strict=True):
        diffs = []
        for m, pronoun, right, wrong in ((m_he, "he", "man", "woman"),
                                         (m_she, "she", "woman", "man")):  # fmt: skip
            tokens = tok.tokens(item[pronoun])
            p = _position(tokens, pronoun)
            a, b = _position(tokens, item[right]), _position(tokens, item[wrong])
            diffs.append(m[:, :, p, a] - m[:, :, p, b])
        out.append((diffs[0] + diffs[1]) / 2)
    return np.stack(out)

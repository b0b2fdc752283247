"""Chapter 3: the article's three "lenses" as hand-built heads on the running example.

The article imagines a *relationships* head ("trust" and the two "he"), an
*emotion* head ("didn't" and "secret") and a *chronology* head ("because").
Heads of a trained model come with no such labels; these three are built by
hand, weight by weight, so that each does what its name says.

The toy embeddings of Chapter 1 (:func:`mha.course.example.toy_embeddings`,
``d_model = 8``) get four more features here, so that ``d_model = 12`` splits
evenly into the article's three heads of ``d_head = 4``.
"""

from __future__ import annotations

import numpy as np

from mha.course import example

__all__ = [
    "EXTRA_FEATURES",
    "FEATURES",
    "HEAD_NAMES",
    "HEAD_RECIPES",
    "NUM_HEADS",
    "embeddings",
    "lens_weights",
]

EXTRA_FEATURES: tuple[str, ...] = (
    "relation",  # 8: names a relation between two people: trust
    "negation",  # 9: didn't
    "knowledge",  # 10: knew, secret
    "shared",  # 11: 1 for every token, so a head can ask every token the same question
)
FEATURES: tuple[str, ...] = tuple(example.FEATURES) + EXTRA_FEATURES
_EXTRA_WORDS = {
    "relation": ("trust",),
    "negation": ("didn't",),
    "knowledge": ("knew", "secret"),
    "shared": tuple(example.TOKENS),
}
HEAD_NAMES: tuple[str, ...] = ("relationships", "emotion", "chronology")
NUM_HEADS = len(HEAD_NAMES)
# (what the query reads, what the key reads) for each head, as {feature: coefficient}.
HEAD_RECIPES: dict[str, tuple[dict[str, float], dict[str, float]]] = {
    # "He", "trust" and "he" ask for each other: same direction for query and key.
    "relationships": ({"subject": 1.0, "relation": 1.0}, {"subject": 1.0, "relation": 1.0}),
    # Every token asks for emotional words, except "trust" (emotion minus relation).
    "emotion": ({"shared": 1.0}, {"emotion": 1.0, "relation": -1.0}),
    # Every token asks for the word that links cause and effect.
    "chronology": ({"shared": 1.0}, {"link": 1.0}),
}


def embeddings(noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """Embeddings ``(9, 12)`` of :data:`mha.course.example.TOKENS`, features :data:`FEATURES`.

    Introduced in Chapter 2. Columns 0 to 7 are
    ``mha.course.example.toy_embeddings(noise, seed)``; columns 8 to 11 are the
    :data:`EXTRA_FEATURES` (1 where a word has the feature), plus seeded
    Gaussian noise of standard deviation ``noise`` (seed ``seed + 1``).
    """
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    extra = np.array([[word in _EXTRA_WORDS[f] for f in EXTRA_FEATURES] for word in example.TOKENS])
    extra = extra + noise * np.random.default_rng(seed + 1).standard_normal(extra.shape)
    return np.concatenate([example.toy_embeddings(noise, seed), extra], axis=1)  # (L, d_model)


def _reader(recipe: dict[str, float]) -> np.ndarray:
    """One weight row ``(d_model,)`` that reads the features of ``recipe``."""
    row = np.zeros(len(FEATURES))
    for feature, coefficient in recipe.items():
        row[FEATURES.index(feature)] = coefficient
    return row


def lens_weights(strength: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """``(in_proj_weight (3E, E), out_proj_weight (E, E))`` of the three hand-built heads.

    Introduced in Chapter 3. ``E = d_model = 12``, ``d_head = 4``, no biases;
    the layout is ``nn.MultiheadAttention``'s: ``in_proj_weight`` stacks
    ``[W_Q; W_K; W_V]`` and head ``i`` owns rows ``4 i : 4 i + 4`` of each.
    In head ``i`` only the first query and key dimensions are used: the query
    row reads :data:`HEAD_RECIPES` times ``strength``, the key row reads its
    key features, so a matching (query, key) pair scores
    ``strength / sqrt(d_head)`` more than a non-matching one. ``W_V`` and the
    output projection are identities, so the outputs stay readable feature by feature.
    """
    if not np.isfinite(strength) or strength <= 0:
        raise ValueError(f"strength must be a positive number, got {strength}")
    d_model = len(FEATURES)
    d_head = d_model // NUM_HEADS
    w_q, w_k = np.zeros((d_model, d_model)), np.zeros((d_model, d_model))
    for i, name in enumerate(HEAD_NAMES):
        query_reads, key_reads = HEAD_RECIPES[name]
        w_q[i * d_head] = strength * _reader(query_reads)
        w_k[i * d_head] = _reader(key_reads)
    return np.concatenate([w_q, w_k, np.eye(d_model)]), np.eye(d_model)

"""The running example of the course: "He didn't trust him because he knew the secret".

Introduced in Chapter 1 and reused in every chapter.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SENTENCE",
    "TOKENS",
    "FEATURES",
    "SECOND_SENTENCE",
    "SECOND_TOKENS",
    "toy_embeddings",
    "second_embeddings",
    "toy_projections",
]

SENTENCE = "He didn't trust him because he knew the secret"
TOKENS: list[str] = SENTENCE.split()  # 9 tokens; "He" (0) and "he" (5) are both "he"
# A second sentence for cross-attention (Chapter 5): the French for "he knew the secret".
SECOND_SENTENCE = "Il connaissait le secret"
SECOND_TOKENS: list[str] = SECOND_SENTENCE.split()  # 4 tokens

# Toy embeddings (Chapter 1): each of the d_model = 8 dimensions means something.
FEATURES: tuple[str, ...] = (
    "person",  # 0: a pronoun that names a person: He, him, he
    "subject",  # 1: the doer of a verb (nominative case): He, he
    "verb",  # 2: didn't, trust, knew
    "emotion",  # 3: emotionally charged words: didn't, trust, secret
    "link",  # 4: a word that links two clauses: because
    "object",  # 5: the receiver of a verb: him, secret
    "position (cos)",  # 6: where the token sits, as a slow cosine ...
    "position (sin)",  # 7: ... and sine of its index
)
_FEATURE_WORDS = {
    "person": ("He", "him", "he"),
    "subject": ("He", "he"),
    "verb": ("didn't", "trust", "knew"),
    "emotion": ("didn't", "trust", "secret"),
    "link": ("because",),
    "object": ("him", "secret"),
}
_SECOND_FEATURE_WORDS = {
    "person": ("Il",),
    "subject": ("Il",),
    "verb": ("connaissait",),
    "emotion": ("secret",),
    "link": (),
    "object": ("secret",),
}


def _features(words: list[str], feature_words: dict[str, tuple[str, ...]]) -> np.ndarray:
    """Word features and the two positional features of ``words``: ``(len(words), 8)``."""
    x = np.zeros((len(words), len(FEATURES)))  # (L, d_model)
    for j, name in enumerate(FEATURES[:6]):
        x[:, j] = [word in feature_words[name] for word in words]
    angle = np.pi * np.arange(len(words)) / len(words)
    x[:, 6], x[:, 7] = 0.5 * np.cos(angle), 0.5 * np.sin(angle)
    return x


def toy_embeddings(noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """Hand-made embeddings of :data:`TOKENS`, shape ``(9, d_model=8)``.

    Introduced in Chapter 1 and reused by later chapters. Column ``j`` is the
    feature ``FEATURES[j]``: a word carries 1 for each feature in
    ``_FEATURE_WORDS`` it has, two positional features ``0.5 cos(pi i / 9)``
    and ``0.5 sin(pi i / 9)`` say where token ``i`` sits, and seeded Gaussian
    noise of standard deviation ``noise`` keeps the numbers from looking too tidy.
    """
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    x = _features(TOKENS, _FEATURE_WORDS)
    return x + noise * np.random.default_rng(seed).standard_normal(x.shape)


def second_embeddings(noise: float = 0.05, seed: int = 2) -> np.ndarray:
    """Hand-made embeddings of :data:`SECOND_TOKENS`, shape ``(4, 8)``, Chapter 1's features.

    Introduced in Chapter 5 (cross-attention): the keys and values come from
    this sentence, the queries from the running one. Built like
    :func:`toy_embeddings`, with positions ``0.5 cos(pi i / 4)``, ``0.5 sin(pi i / 4)``.
    """
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    x = _features(SECOND_TOKENS, _SECOND_FEATURE_WORDS)
    return x + noise * np.random.default_rng(seed).standard_normal(x.shape)


def toy_projections(
    strength: float = 3.0, noise: float = 0.05, seed: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hand-made ``W_Q, W_K, W_V``, each ``(d_model, d_model) = (8, 8)``.

    Introduced in Chapter 1. The layout is PyTorch's ``nn.Linear`` one:
    ``q = x @ W_Q.T``, so row ``r`` of ``W_Q`` says which embedding features
    query dimension ``r`` reads. Two relations are built in:

    * query/key dimension 0: a *verb* asks for a *subject* (``W_Q[0]`` reads
      the verb feature, ``W_K[0]`` the subject feature, both times ``strength``);
      so "knew" attends to both "He" and "he";
    * query/key dimension 1: *linking words and objects* ask for a *verb*, with
      ``2 / 3`` of that strength.

    The other rows hold seeded noise only (standard deviation ``noise``), like
    unused directions of a freshly initialised network. ``W_V`` is the identity,
    so each output is a weighted average of the embeddings, readable feature by feature.
    """
    d_model = len(FEATURES)
    rng = np.random.default_rng(seed)
    w_q, w_k = (noise * rng.standard_normal((d_model, d_model)) for _ in range(2))
    col = {name: j for j, name in enumerate(FEATURES)}
    w_q[0, col["verb"]] += strength  # verbs ask "who is my subject?"
    w_k[0, col["subject"]] += strength  # subjects answer
    w_q[1, [col["link"], col["object"]]] += 2 / 3 * strength  # links, objects ask for a verb
    w_k[1, col["verb"]] += 2 / 3 * strength  # verbs answer
    return w_q, w_k, np.eye(d_model)

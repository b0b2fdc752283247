"""Multi-head attention, step by step: the reference package of the course.

Modules follow the chapters:

* :mod:`mha.attention` (Chapter 1): ``softmax``, ``scaled_dot_product_attention``;
* :mod:`mha.heads` (Chapters 2 to 4): ``project``, ``split_heads``, ``merge_heads``;
* :mod:`mha.reference` (Chapter 5): the NumPy ``multi_head_attention_forward``
  and the public NumPy API;
* :mod:`mha.module` (Chapter 5): ``MultiHeadAttention``, a ``torch.nn.Module``;
* :mod:`mha.example`: the running example sentence;
* :mod:`mha.plotting`: reproducible figures for the notebooks.
"""

from mha import reference
from mha.module import MultiHeadAttention, causal_mask

__all__ = ["MultiHeadAttention", "causal_mask", "reference"]
__version__ = "0.1.0"

# Chapter 6: the encoder around multi-head attention.
from mha.encoder import Encoder, EncoderLayer

__all__ += ["EncoderLayer", "Encoder"]

# Chapter 1: the running example (tokens, toy embeddings and projections).
from mha import example  # noqa: E402

__all__ += ["example"]

# Exercise checkers for every chapter (``mha.checks.check_softmax(my_softmax)``, ...).
from mha import checks  # noqa: E402

__all__ += ["checks"]

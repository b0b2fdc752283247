"""Multi-head attention, step by step: the reference package of the course.

Modules follow the chapters:

* :mod:`mha.example` (Chapter 1): the running example sentence, toy embeddings;
* :mod:`mha.attention` (Chapter 1): ``softmax``, ``scaled_dot_product_attention``;
* :mod:`mha.heads` (Chapters 2 to 4): ``project``, ``split_heads``, ``merge_heads``;
* :mod:`mha.lenses` (Chapter 3): three hand-built heads for the running example;
* :mod:`mha.reference` (Chapter 5): the NumPy ``multi_head_attention_forward``
  and the public NumPy API;
* :mod:`mha.module` (Chapter 5): ``MultiHeadAttention``, a ``torch.nn.Module``;
* :mod:`mha.encoder` (Chapter 6): ``EncoderLayer``, ``Encoder``, positional encoding;
* :mod:`mha.experiments` (Chapter 7): seeded synthetic tasks, training, sweeps
  (``python -m mha.experiments``);
* :mod:`mha.checks`: exercise checkers that name the classic bugs;
* :mod:`mha.coursework`, :mod:`mha.student_edition`: nbgrader course and student edition;
* :mod:`mha.plotting`, :mod:`mha.head_figures`: reproducible figures for the notebooks.
"""

from mha import checks, example, reference
from mha.encoder import Encoder, EncoderLayer
from mha.module import MultiHeadAttention, causal_mask

__all__ = [
    "MultiHeadAttention",
    "causal_mask",
    "reference",
    "EncoderLayer",
    "Encoder",
    "example",
    "checks",
]
__version__ = "0.1.0"

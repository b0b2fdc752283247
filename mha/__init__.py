"""Multi-head attention, step by step: the reference package of the course.

The tree has four parts. ``import mha`` loads the first alone (torch and numpy, nothing else):

* the attention library, at the top of ``mha/``, in chapter order:

  * :mod:`mha.attention` (Chapter 1): ``softmax``, ``scaled_dot_product_attention``;
  * :mod:`mha.heads` (Chapters 2 to 4): ``project``, ``split_heads``, ``merge_heads``;
  * :mod:`mha.reference` (Chapter 5): the NumPy ``multi_head_attention_forward``;
  * :mod:`mha.masks` (Chapter 5): ``causal_mask`` and the PyTorch-convention masks;
  * :mod:`mha.module` (Chapter 5): ``MultiHeadAttention``, the twin of
    ``torch.nn.MultiheadAttention`` (same arguments; ``batch_first=True`` by default);
  * :mod:`mha.encoder` (Chapter 6): ``EncoderLayer``, ``Encoder``, positional encoding;
  * :mod:`mha.pretrained` (Chapter 8): all-MiniLM-L6-v2 in ``EncoderLayer`` s, loaded on
    first use of ``mha.pretrained`` (it needs ``safetensors`` and ``tokenizers``);
  * :mod:`mha.flash` (Chapter 9): ``flash_attention`` (online softmax, block by block);
  * :mod:`mha.decoding` (Chapter 10): ``KVCache``, ``MultiHeadAttention.step`` and
    ``num_kv_heads`` (multi-query and grouped-query attention);
  * :mod:`mha.parallel` (Chapter 11): ``TensorParallelMultiHeadAttention``, heads split
    across ``torch.distributed`` ranks (import it explicitly);
* :mod:`mha.course`: what only the chapters use (the running example, the hand-built
  heads, figures);
* :mod:`mha.grading`: the exercise checkers, the nbgrader course and the student edition;
* :mod:`mha.experiments`: Chapter 7's seeded experiments (``python -m mha.experiments``);
  their recorded results are the JSON files in ``mha/results/``.

``mha._validate`` holds the input checks (``ValueError`` saying what was expected).
Nothing imports upward: the library never imports the other three parts, the course
never imports grading or experiments, and experiments never import grading
(``tests/test_layout.py`` checks it).
"""

from mha import reference
from mha.encoder import Encoder, EncoderLayer
from mha.flash import flash_attention
from mha.module import MultiHeadAttention, causal_mask

__all__ = [
    "MultiHeadAttention",
    "causal_mask",
    "reference",
    "EncoderLayer",
    "Encoder",
    "flash_attention",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    """Load :mod:`mha.pretrained` (Chapter 8) on first use, so ``import mha`` stays light."""
    if name == "pretrained":
        import importlib

        return importlib.import_module("mha.pretrained")
    raise AttributeError(f"module 'mha' has no attribute {name!r}")
